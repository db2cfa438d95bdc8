//! The checksum oracle for IPv6 (RFC 8200 §8.1: TCP, UDP and ICMPv6 sum a
//! pseudo-header of the addresses, the upper-layer length and the next
//! header), from scratch like `checksum`, never incrementally.

use std::net::Ipv6Addr;

use super::{PROTO_TCP, PROTO_UDP, build6::*, ones_sum};

/// Sum of the IPv6 pseudo-header.
pub fn pseudo_sum6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: usize) -> u32 {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, proto]);
    ones_sum(&p, 0) as u32
}

/// The TCP/UDP/ICMPv6 checksum of `segment` (checksum field as it is).
pub fn l4_checksum6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, segment: &[u8]) -> u16 {
    !ones_sum(segment, pseudo_sum6(src, dst, proto, segment.len()))
}

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
