//! The one checksum oracle of the tests: every Internet checksum a test
//! builds or checks is computed here, from scratch, the textbook way —
//! RFC 1071's ones-complement sum over big-endian 16-bit words, with the
//! pseudo header of RFC 793 (TCP) and RFC 768 (UDP; a zero checksum means
//! "none"), and RFC 792 for ICMP (the whole message; an error quotes the
//! offending IPv4 header, whose checksum must hold too).
//!
//! Never incrementally: the programs update checksums incrementally
//! (RFC 1624), and the oracle shares no logic with them, so a wrong update
//! cannot hide behind the same wrong arithmetic.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{ETH_P_IP, ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

/// ICMP "parameter problem": an error that quotes a packet, as type 3 and 11.
pub const ICMP_PARAM_PROBLEM: u8 = 12;

/// Where the IPv4 header starts in an untagged Ethernet frame.
const IP: usize = 14;

/// RFC 1071 ones-complement sum of `data` (odd length padded with a zero
/// byte), starting from `initial`, not yet complemented, folded to 16 bits.
pub fn ones_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum: u64 = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u64) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum of `data` (the value to put in the header).
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data, 0)
}

/// Sum of the TCP/UDP pseudo header (source, destination, zero, protocol,
/// segment length).
pub fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.push(0);
    p.push(proto);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    ones_sum(&p, 0) as u32
}

/// Sum of the IPv6 pseudo header (RFC 8200 §8.1: source, destination,
/// upper-layer length as 32 bits, three zero bytes, next header).
pub fn pseudo_sum6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: usize) -> u32 {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, next_header]);
    ones_sum(&p, 0) as u32
}

/// ICMPv6/TCP/UDP-over-IPv6 checksum of `segment` (checksum field
/// included as it is; zero for a fresh sum).
pub fn l4_checksum6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, segment: &[u8]) -> u16 {
    !ones_sum(segment, pseudo_sum6(src, dst, next_header, segment.len()))
}

/// TCP/UDP checksum of `segment` (checksum field included as it is).
pub fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> u16 {
    !ones_sum(segment, pseudo_sum(src, dst, proto, segment.len()))
}

/// True when a checksummed area (checksum field included) sums to all ones.
pub(crate) fn sums_right(data: &[u8], initial: u32) -> bool {
    ones_sum(data, initial) == 0xffff
}

/// Checks every checksum of the IPv4 packet `packet`, over exactly the
/// bytes its total length says (anything after is link-layer padding):
/// the header; unless it is a later fragment (offset > 0, whose data is
/// covered by the L4 checksum in the datagram's first fragment), the TCP
/// or UDP checksum over the pseudo header and the segment (a UDP checksum
/// of 0 means none) or the ICMP checksum over the message, and for an
/// ICMP error whose quoted header is all there, the quoted header's.
/// Other protocols carry no checksum the oracle knows. The error names
/// the first area that is wrong, or what could not be read.
pub fn check_ipv4(packet: &[u8]) -> Result<(), String> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return Err(format!(
            "not an IPv4 packet: {:02x?}",
            &packet[..packet.len().min(20)]
        ));
    }
    let hl = ((packet[0] & 0x0f) as usize) * 4;
    let total = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    if hl < 20 || total < hl || total > packet.len() {
        return Err(format!(
            "IHL {hl}, total length {total} in a packet of {}",
            packet.len()
        ));
    }
    if !sums_right(&packet[..hl], 0) {
        return Err(format!(
            "IPv4 header checksum wrong: {:02x?}",
            &packet[..hl]
        ));
    }
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x1fff != 0 {
        return Ok(());
    }
    let seg = &packet[hl..total];
    let proto = packet[9];
    let addr =
        |at: usize| Ipv4Addr::new(packet[at], packet[at + 1], packet[at + 2], packet[at + 3]);
    match proto {
        PROTO_UDP if seg.len() >= 8 && seg[6] == 0 && seg[7] == 0 => Ok(()),
        PROTO_TCP | PROTO_UDP => {
            let initial = pseudo_sum(addr(12), addr(16), proto, seg.len());
            if sums_right(seg, initial) {
                Ok(())
            } else {
                let name = if proto == PROTO_TCP { "TCP" } else { "UDP" };
                Err(format!(
                    "{name} checksum wrong (sum {:#06x})",
                    ones_sum(seg, initial)
                ))
            }
        }
        PROTO_ICMP => {
            if !sums_right(seg, 0) {
                return Err("ICMP checksum wrong".into());
            }
            match quoted_header(seg) {
                Some(q) if !sums_right(q, 0) => Err("quoted IPv4 header checksum wrong".into()),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The IPv4 header an ICMP error message quotes, when it is all there.
pub fn quoted_header(icmp: &[u8]) -> Option<&[u8]> {
    let kind = *icmp.first()?;
    if !matches!(
        kind,
        ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAM_PROBLEM
    ) || icmp.len() < 28
    {
        return None;
    }
    let q = &icmp[8..];
    let qhl = ((q[0] & 0x0f) as usize) * 4;
    (qhl >= 20 && qhl <= q.len()).then(|| &q[..qhl])
}

/// The fuzzer's "valid in" predicate: true when the untagged Ethernet
/// frame's IPv4 checksums are all correct ([`check_ipv4`]), false for
/// anything it cannot tell.
pub fn valid_checksums(frame: &[u8]) -> bool {
    frame.len() > IP && check_ipv4(&frame[IP..]).is_ok()
}

/// The program tests' check of an output frame: an untagged IPv4 frame
/// with no byte beyond the IPv4 total length (the programs neither pad
/// nor trim), every checksum right ([`check_ipv4`]), and an ICMP
/// destination-unreachable or time-exceeded that quotes a whole header.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let packet = ipv4_of(frame)?;
    let total = u16::from_be_bytes([packet[2], packet[3]]) as usize;
    if total != packet.len() {
        return Err(format!(
            "IPv4 total length {total}, {} bytes in the frame",
            packet.len()
        ));
    }
    check_ipv4(packet)?;
    let hl = ((packet[0] & 0x0f) as usize) * 4;
    let icmp = &packet[hl..];
    if packet[9] == PROTO_ICMP
        && matches!(
            icmp.first(),
            Some(&ICMP_DEST_UNREACH) | Some(&ICMP_TIME_EXCEEDED)
        )
        && quoted_header(icmp).is_none()
    {
        return Err(format!(
            "ICMP error without a whole quoted header: {icmp:02x?}"
        ));
    }
    Ok(())
}

/// Verifies the IPv4 header checksum of a frame alone (all a later
/// fragment holds: its data is covered by the L4 checksum in the first).
pub fn verify_ip_header(frame: &[u8]) -> Result<(), String> {
    let packet = ipv4_of(frame)?;
    let hl = ((packet[0] & 0x0f) as usize) * 4;
    if hl < 20 || hl > packet.len() || !sums_right(&packet[..hl], 0) {
        return Err(format!(
            "IPv4 header checksum wrong: {:02x?}",
            &packet[..hl.min(packet.len())]
        ));
    }
    Ok(())
}

/// The IPv4 packet of an untagged Ethernet frame.
fn ipv4_of(frame: &[u8]) -> Result<&[u8], String> {
    if frame.len() < IP + 20 {
        return Err(format!("frame of {} bytes", frame.len()));
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if ethertype != ETH_P_IP {
        return Err(format!("ethertype {ethertype:#06x}"));
    }
    Ok(&frame[IP..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_sum(&data, 0), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn rfc1071_header_example() {
        // The IPv4 header of RFC 1071's companion example (and of every
        // textbook): 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
    }

    #[test]
    fn built_packets_verify_and_corruption_is_caught() {
        let a = Ipv4Addr::new(192, 168, 28, 1);
        let b = Ipv4Addr::new(203, 0, 113, 2);
        for (proto, l4) in [
            (PROTO_TCP, tcp(a, b, 1000, 80, TCP_SYN, b"hello")),
            (PROTO_UDP, udp(a, b, 1000, 53, b"odd", true)),
            (PROTO_ICMP, icmp_echo(ICMP_ECHO_REQUEST, 7, 1, b"ping")),
        ] {
            let frame = ethernet([2; 6], [4; 6], ETH_P_IP, &ipv4(&Ip::new(a, b, proto), &l4));
            verify_checksums(&frame).unwrap();
            assert!(valid_checksums(&frame));
            let mut bad = frame.clone();
            *bad.last_mut().unwrap() ^= 0x40;
            assert!(verify_checksums(&bad).is_err(), "proto {proto}");
            assert!(!valid_checksums(&bad), "proto {proto}");
            let mut bad_ip = frame.clone();
            bad_ip[14 + 8] ^= 1; // TTL
            assert!(verify_checksums(&bad_ip).is_err());
            assert!(verify_ip_header(&bad_ip).is_err());
            assert!(!valid_checksums(&bad_ip));
        }
    }

    #[test]
    fn an_icmp_error_needs_its_quoted_header_right() {
        let a = Ipv4Addr::new(192, 168, 28, 1);
        let b = Ipv4Addr::new(203, 0, 113, 2);
        let offending = ipv4(&Ip::new(a, b, PROTO_UDP), &udp(a, b, 1000, 53, b"q", true));
        let frame = |quoted: &[u8]| {
            let err = icmp_error(ICMP_DEST_UNREACH, 3, 0, quoted);
            ethernet(
                [2; 6],
                [4; 6],
                ETH_P_IP,
                &ipv4(&Ip::new(b, a, PROTO_ICMP), &err),
            )
        };
        verify_checksums(&frame(&offending)).unwrap();
        // A quoted header with a wrong checksum, in a message whose own
        // checksum is right (icmp_error computes it over what it quotes).
        let mut broken = offending.clone();
        broken[8] ^= 1;
        let e = verify_checksums(&frame(&broken)).unwrap_err();
        assert!(e.contains("quoted"), "{e}");
        assert!(!valid_checksums(&frame(&broken)));
        // A quote cut short inside the header: the program tests refuse it.
        assert!(verify_checksums(&frame(&offending[..12])).is_err());
    }

    #[test]
    fn padding_is_not_part_of_the_packet_but_the_program_tests_refuse_it() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut f = ethernet(
            [2; 6],
            [4; 6],
            ETH_P_IP,
            &ipv4(&Ip::new(a, b, PROTO_UDP), &udp(a, b, 1, 2, b"x", true)),
        );
        f.extend_from_slice(&[0xaa; 6]);
        assert!(valid_checksums(&f));
        assert!(verify_checksums(&f).is_err());
        f[14 + 20 + 8] ^= 1;
        assert!(!valid_checksums(&f));
    }
}
