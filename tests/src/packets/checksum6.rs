//! The checksum oracle's IPv6 half: every IPv6 upper-layer checksum from
//! scratch (RFC 8200 §8.1 pseudo header; TCP, UDP — mandatory over IPv6,
//! a zero checksum is wrong — and ICMPv6, RFC 4443 §2.3), never
//! incrementally, like its IPv4 half ([`super::checksum`]). IPv6 has no
//! header checksum.
//!
//! The pseudo header takes the destination as the packet carries it:
//! the builders make routing headers with no segments left only, for
//! which that is the final destination.

use std::net::Ipv6Addr;

use super::{
    ETH_P_IPV6, PROTO_TCP, PROTO_UDP,
    build6::PROTO_ICMPV6,
    checksum::{ones_sum, pseudo_sum6, sums_right},
    ipv6::{NH_DEST_OPTS, NH_FRAGMENT, NH_HOP_BY_HOP, NH_ROUTING},
};

const IP: usize = 14;

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
            NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS => {
                if at + 2 > end {
                    return Err(format!("extension header {next} cut at {at}"));
                }
                (packet[at + 1] as usize + 1) * 8
            }
            NH_FRAGMENT => {
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

fn addr(p: &[u8], at: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&p[at..at + 16]).unwrap())
}

/// Checks the checksums of the IPv6 packet `packet` over exactly the
/// bytes its payload length says: unless it is a later fragment (offset
/// > 0, no upper-layer header), the TCP, UDP or ICMPv6 checksum over the
/// pseudo header and the segment. A first fragment is checked over what it
/// holds (the builders put the whole segment in it). Other protocols carry
/// no checksum the oracle knows.
pub fn check_ipv6(packet: &[u8]) -> Result<(), String> {
    if packet.len() < 40 || packet[0] >> 4 != 6 {
        return Err(format!(
            "not an IPv6 packet: {:02x?}",
            &packet[..packet.len().min(40)]
        ));
    }
    let end = 40 + u16::from_be_bytes([packet[4], packet[5]]) as usize;
    if end > packet.len() {
        return Err(format!(
            "payload length {} in a packet of {}",
            end - 40,
            packet.len()
        ));
    }
    let upper = walk6(packet, end)?;
    if upper.frag_offset.is_some_and(|o| o > 0) {
        return Ok(());
    }
    let seg = &packet[upper.at..end];
    let (name, min) = match upper.proto {
        PROTO_TCP => ("TCP", 20),
        PROTO_UDP => ("UDP", 8),
        PROTO_ICMPV6 => ("ICMPv6", 4),
        _ => return Ok(()),
    };
    if seg.len() < min {
        return Err(format!("{name} header cut: {} bytes", seg.len()));
    }
    if upper.proto == PROTO_UDP && seg[6] == 0 && seg[7] == 0 {
        return Err("UDP checksum 0 over IPv6 (RFC 8200 §8.1: mandatory)".into());
    }
    let initial = pseudo_sum6(addr(packet, 8), addr(packet, 24), upper.proto, seg.len());
    if sums_right(seg, initial) {
        Ok(())
    } else {
        Err(format!(
            "{name} checksum wrong (sum {:#06x})",
            ones_sum(seg, initial)
        ))
    }
}

/// The fuzzer's "valid in" predicate for IPv6: an untagged IPv6 frame
/// whose checksums are right ([`check_ipv6`]).
pub fn valid_checksums6(frame: &[u8]) -> bool {
    frame.len() >= IP + 40
        && frame[12..14] == ETH_P_IPV6.to_be_bytes()
        && check_ipv6(&frame[IP..]).is_ok()
}

/// The program tests' check of an IPv6 output frame: untagged, no byte
/// beyond the payload length, every checksum right.
pub fn verify_checksums6(frame: &[u8]) -> Result<(), String> {
    if frame.len() < IP + 40 || frame[12..14] != ETH_P_IPV6.to_be_bytes() {
        return Err(format!(
            "not an IPv6 frame: {:02x?}",
            &frame[..frame.len().min(14)]
        ));
    }
    let packet = &frame[IP..];
    let total = 40 + u16::from_be_bytes([packet[4], packet[5]]) as usize;
    if total != packet.len() {
        return Err(format!(
            "IPv6 payload length says {total} bytes, {} in the frame",
            packet.len()
        ));
    }
    check_ipv6(packet)
}

#[cfg(test)]
mod tests {
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
