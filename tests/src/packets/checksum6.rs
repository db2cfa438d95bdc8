//! The checksum oracle for IPv6 (RFC 8200 §8.1: TCP, UDP and ICMPv6 sum a
//! pseudo-header of the addresses, the upper-layer length and the next
//! header; the sums are [`super::checksum`]'s), from scratch like
//! `checksum`, never incrementally; a parser through the extension
//! headers ([`parse_ipv6`], and [`walk6`] for packets that need not be
//! whole); the fuzzer's "valid in" predicate ([`valid_checksums6`]).

use std::net::Ipv6Addr;

use super::{
    ETH_P_IPV6, PROTO_TCP, PROTO_UDP,
    build6::*,
    checksum::{ones_sum, pseudo_sum6},
};

/// An IPv6 packet read through its extension headers.
#[derive(Clone, Debug)]
pub struct Ipv6View {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// The upper-layer protocol.
    pub proto: u8,
    /// Offset of the upper-layer header in the packet.
    pub l4_off: usize,
    /// The Fragment header's (offset in bytes, more, id), if any.
    pub frag: Option<(u16, bool, u32)>,
    pub packet: Vec<u8>,
}

impl Ipv6View {
    /// The upper-layer bytes.
    pub fn l4(&self) -> &[u8] {
        &self.packet[self.l4_off..]
    }

    /// TCP/UDP source port or ICMPv6 echo id.
    pub fn sport_or_id(&self) -> u16 {
        let l4 = self.l4();
        if self.proto == PROTO_ICMPV6 {
            u16::from_be_bytes([l4[4], l4[5]])
        } else {
            u16::from_be_bytes([l4[0], l4[1]])
        }
    }

    pub fn dport(&self) -> u16 {
        let l4 = self.l4();
        u16::from_be_bytes([l4[2], l4[3]])
    }
}

/// Parses an IPv6 packet (payload length checked against the bytes).
pub fn parse_ipv6(packet: &[u8]) -> Result<Ipv6View, String> {
    if packet.len() < 40 || packet[0] >> 4 != 6 {
        return Err(format!(
            "not an IPv6 packet: {:02x?}",
            &packet[..packet.len().min(8)]
        ));
    }
    let plen = u16::from_be_bytes([packet[4], packet[5]]) as usize;
    if 40 + plen != packet.len() {
        return Err(format!(
            "payload length {plen}, {} bytes after the header",
            packet.len() - 40
        ));
    }
    let addr = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&packet[at..at + 16]).unwrap());
    let mut next = packet[6];
    let mut off = 40;
    let mut frag = None;
    loop {
        match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let h = packet
                    .get(off..off + 2)
                    .ok_or("truncated extension header")?;
                next = h[0];
                off += (h[1] as usize + 1) * 8;
            }
            NEXTHDR_FRAGMENT => {
                let h = packet
                    .get(off..off + 8)
                    .ok_or("truncated fragment header")?;
                let fo = u16::from_be_bytes([h[2], h[3]]);
                frag = Some((
                    fo & 0xfff8,
                    fo & 1 != 0,
                    u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                ));
                next = h[0];
                off += 8;
                if fo & 0xfff8 != 0 {
                    break;
                }
            }
            _ => break,
        }
    }
    if off > packet.len() {
        return Err("extension headers beyond the packet".into());
    }
    Ok(Ipv6View {
        src: addr(8),
        dst: addr(24),
        hop_limit: packet[7],
        proto: next,
        l4_off: off,
        frag,
        packet: packet.to_vec(),
    })
}

/// Checks the upper-layer checksum of an IPv6 packet (TCP, UDP, ICMPv6;
/// a later fragment has none of its own; a first fragment's covers the
/// whole datagram, which it does not hold, so it is not checked here),
/// and for an ICMPv6 error the quoted packet's when it is all quoted.
pub fn check_ipv6(packet: &[u8]) -> Result<(), String> {
    let v = parse_ipv6(packet)?;
    if v.frag.is_some() {
        return Ok(());
    }
    check_l4(&v)?;
    if v.proto == PROTO_ICMPV6 && (1..=4).contains(&v.l4()[0]) && v.l4().len() > 8 {
        let quoted = &v.l4()[8..];
        if let Ok(q) = parse_ipv6(quoted)
            && q.frag.is_none()
        {
            check_l4(&q).map_err(|e| format!("quoted packet: {e}"))?;
        }
    }
    Ok(())
}

fn check_l4(v: &Ipv6View) -> Result<(), String> {
    let (proto, seg) = (v.proto, v.l4());
    if !matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_ICMPV6) {
        return Ok(());
    }
    if proto == PROTO_UDP && seg.get(6..8) == Some(&[0, 0]) {
        return Err("UDP over IPv6 without a checksum".into());
    }
    if !ones_sum(seg, pseudo_sum6(v.src, v.dst, proto, seg.len())) == 0 {
        Ok(())
    } else {
        Err(format!(
            "proto {proto} checksum wrong ({} -> {}): {:02x?}",
            v.src,
            v.dst,
            &seg[..seg.len().min(24)]
        ))
    }
}

/// The program tests' check of an output frame: an untagged IPv6 frame,
/// the payload length matching the bytes, every checksum right.
pub fn verify_checksums6(frame: &[u8]) -> Result<Ipv6View, String> {
    if frame.len() < 14 || frame[12..14] != super::ETH_P_IPV6.to_be_bytes() {
        return Err("not an IPv6 frame".into());
    }
    check_ipv6(&frame[14..])?;
    parse_ipv6(&frame[14..])
}

/// Where an IPv6 packet's upper layer starts, found by walking every
/// extension header (no bound: the oracle reads what a receiver would).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upper6 {
    /// Offset of the upper-layer header in the packet.
    pub at: usize,
    /// Its protocol (the last next header).
    pub proto: u8,
    /// The fragment header's offset (8-byte units), if there is one.
    pub frag_offset: Option<u16>,
}

/// Walks the extension headers of `packet` (an IPv6 packet, fixed header
/// first) within `end`.
pub fn walk6(packet: &[u8], end: usize) -> Result<Upper6, String> {
    let mut next = packet[6];
    let mut at = 40;
    let mut frag_offset = None;
    loop {
        let len = match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                if at + 2 > end {
                    return Err(format!("extension header {next} cut at {at}"));
                }
                (packet[at + 1] as usize + 1) * 8
            }
            NEXTHDR_FRAGMENT => {
                if at + 8 > end {
                    return Err(format!("fragment header cut at {at}"));
                }
                frag_offset = Some(u16::from_be_bytes([packet[at + 2], packet[at + 3]]) >> 3);
                8
            }
            _ => {
                return Ok(Upper6 {
                    at,
                    proto: next,
                    frag_offset,
                });
            }
        };
        if at + len > end {
            return Err(format!(
                "extension header {next} of {len} bytes cut at {at}"
            ));
        }
        next = packet[at];
        at += len;
    }
}

/// The fuzzer's "valid in" predicate for IPv6: an untagged IPv6 frame
/// whose packet, as far as its payload length says (link-layer padding
/// after it is not part of it), is right by [`check_ipv6`].
pub fn valid_checksums6(frame: &[u8]) -> bool {
    const IP: usize = 14;
    if frame.len() < IP + 40 || frame[12..14] != ETH_P_IPV6.to_be_bytes() {
        return false;
    }
    let end = IP + 40 + u16::from_be_bytes([frame[IP + 4], frame[IP + 5]]) as usize;
    end <= frame.len() && check_ipv6(&frame[IP..end]).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_packets_check_and_a_flipped_bit_does_not() {
        let a: Ipv6Addr = "fd00::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        for l4 in [
            (PROTO_TCP, tcp6(a, b, 1, 2, 0x02, b"odd")),
            (PROTO_UDP, udp6(a, b, 1, 2, b"x")),
            (
                PROTO_ICMPV6,
                icmp6_echo(a, b, ICMP6_ECHO_REQUEST, 7, 1, b"ping"),
            ),
        ] {
            let p = super::super::ipv6_packet(a, b, l4.0, &l4.1);
            check_ipv6(&p).unwrap();
            let mut bad = p.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(check_ipv6(&bad).is_err());
        }
        let offending = super::super::ipv6_packet(b, a, PROTO_UDP, &udp6(b, a, 9, 53, b"q"));
        let err = icmp6_error(a, b, ICMP6_DEST_UNREACH, 4, 0, &offending);
        let p = super::super::ipv6_packet(a, b, PROTO_ICMPV6, &err);
        check_ipv6(&p).unwrap();
        let chained = ipv6_chain(
            a,
            b,
            NEXTHDR_HOP,
            &[ext_header(NEXTHDR_DEST, 1), ext_header(PROTO_UDP, 2)],
            &udp6(a, b, 1, 2, b"x"),
        );
        let v = parse_ipv6(&chained).unwrap();
        assert_eq!((v.proto, v.l4_off), (PROTO_UDP, 40 + 8 + 16));
        check_ipv6(&chained).unwrap();
    }
}

#[cfg(test)]
mod oracle_tests {
    use super::*;
    use crate::packets::*;

    #[test]
    fn rfc_example_and_corruption() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        for (proto, l4) in [
            (PROTO_TCP, tcp6(a, b, 1000, 80, TCP_SYN, b"hello")),
            (PROTO_UDP, udp6(a, b, 1000, 53, b"odd")),
            (
                PROTO_ICMPV6,
                icmp6_echo(a, b, ICMP6_ECHO_REQUEST, 7, 1, b"ping"),
            ),
        ] {
            let f = ipv6_frame_of(
                [2; 6],
                [4; 6],
                &ipv6_with(&Ipv6Header::new(a, b), proto, &l4),
            );
            verify_checksums6(&f).unwrap();
            let mut bad = f.clone();
            *bad.last_mut().unwrap() ^= 0x40;
            assert!(!valid_checksums6(&bad), "proto {proto}");
            // The pseudo header covers the addresses.
            let mut moved = f.clone();
            moved[14 + 8 + 15] ^= 1;
            assert!(verify_checksums6(&moved).is_err(), "proto {proto}");
        }
        // A later fragment has no checksum to check.
        let mut ip = Ipv6Header::new(a, b);
        ip.ext = vec![Ext::Fragment {
            offset: 10,
            more: false,
            id: 1,
        }];
        verify_checksums6(&ipv6_frame_of(
            [2; 6],
            [4; 6],
            &ipv6_with(&ip, PROTO_UDP, &[9; 30]),
        ))
        .unwrap();
    }

    #[test]
    fn the_icmpv6_checksum_matches_a_known_packet() {
        // An echo request fe80::1 -> ff02::1, id 0x1234 seq 1, no data:
        // sum of the pseudo header and message computed by hand.
        let a: Ipv6Addr = "fe80::1".parse().unwrap();
        let b: Ipv6Addr = "ff02::1".parse().unwrap();
        let m = icmp6_echo(a, b, ICMP6_ECHO_REQUEST, 0x1234, 1, &[]);
        // pseudo: fe80+0001+ff02+0001+0008+003a = 0x1fdc6 (folded 0xfdc7);
        // message: 8000+1234+0001 = 0x9235; total 0x18ffc -> 0x8ffd.
        assert_eq!(u16::from_be_bytes([m[2], m[3]]), !0x8ffdu16);
    }
}
