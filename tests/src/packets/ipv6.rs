//! IPv6 beside [`super::build`], [`super::parse`] and
//! [`super::checksum`]: TCP and UDP over IPv6 with their checksums, the
//! fields of an IPv6 packet the tests look at, and the IPv6 checksum
//! oracle. Computed from scratch (RFC 8200 §8.1: the pseudo-header of
//! source, destination, upper-layer length and next header), never
//! incrementally, like the IPv4 oracle.

use std::net::Ipv6Addr;

use super::{ETH_P_IPV6, Mac, PROTO_TCP, PROTO_UDP, checksum::ones_sum, ethernet, ipv6_packet};

/// ICMPv6's next header value (RFC 4443).
pub const PROTO_ICMPV6: u8 = 58;

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn pseudo_sum6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: usize) -> u32 {
    let mut p = Vec::with_capacity(40);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, next_header]);
    ones_sum(&p, 0) as u32
}

/// TCP/UDP/ICMPv6 checksum of `segment` over IPv6 (checksum field
/// included as it is).
pub fn l4_checksum6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, segment: &[u8]) -> u16 {
    !ones_sum(segment, pseudo_sum6(src, dst, next_header, segment.len()))
}

/// A TCP segment (20-byte header) over IPv6 with a correct checksum.
pub fn tcp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = vec![0u8; 20];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    s[12] = 5 << 4;
    s[13] = flags;
    s[14..16].copy_from_slice(&64240u16.to_be_bytes());
    s.extend_from_slice(payload);
    let c = l4_checksum6(src, dst, PROTO_TCP, &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

/// A UDP datagram over IPv6, with its (mandatory, RFC 8200 §8.1) checksum.
pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 8];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    let mut c = l4_checksum6(src, dst, PROTO_UDP, &s);
    if c == 0 {
        c = 0xffff;
    }
    s[6..8].copy_from_slice(&c.to_be_bytes());
    s
}

/// An Ethernet frame carrying IPv6 `src` → `dst` with `l4` as
/// `next_header` (no extension headers).
pub fn ipv6_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    l4: &[u8],
) -> Vec<u8> {
    ethernet(
        dst_mac,
        src_mac,
        ETH_P_IPV6,
        &ipv6_packet(src, dst, next_header, l4),
    )
}

/// The fields of an IPv6 packet (fixed header, no extension headers) the
/// tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6View {
    pub hop_limit: u8,
    pub next_header: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// What follows the fixed header, as the payload length says.
    pub payload: Vec<u8>,
}

impl Ipv6View {
    /// TCP/UDP source port.
    pub fn sport(&self) -> u16 {
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }
    /// TCP/UDP destination port.
    pub fn dport(&self) -> u16 {
        u16::from_be_bytes([self.payload[2], self.payload[3]])
    }
}

/// Parses an untagged Ethernet frame carrying IPv6: (destination MAC,
/// source MAC, the packet). The frame must hold exactly what the payload
/// length says (the programs neither pad nor trim).
pub fn parse_frame6(frame: &[u8]) -> Result<(Mac, Mac, Ipv6View), String> {
    if frame.len() < 14 + 40 {
        return Err(format!("{} bytes: no IPv6 header", frame.len()));
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if ethertype != ETH_P_IPV6 {
        return Err(format!("EtherType {ethertype:#06x}, not IPv6"));
    }
    let p = &frame[14..];
    if p[0] >> 4 != 6 {
        return Err(format!("IP version {}", p[0] >> 4));
    }
    let len = u16::from_be_bytes([p[4], p[5]]) as usize;
    if 40 + len != p.len() {
        return Err(format!(
            "payload length {len}, {} bytes after the header",
            p.len() - 40
        ));
    }
    let addr = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&p[at..at + 16]).unwrap());
    let mut macs = ([0u8; 6], [0u8; 6]);
    macs.0.copy_from_slice(&frame[0..6]);
    macs.1.copy_from_slice(&frame[6..12]);
    Ok((
        macs.0,
        macs.1,
        Ipv6View {
            hop_limit: p[7],
            next_header: p[6],
            src: addr(8),
            dst: addr(24),
            payload: p[40..].to_vec(),
        },
    ))
}

/// The oracle for IPv6 frames: parses the frame ([`parse_frame6`]) and,
/// for TCP, UDP and ICMPv6, checks the checksum over the pseudo-header
/// and the whole upper-layer payload (a UDP checksum of 0 is invalid over
/// IPv6). Returns the packet's fields.
pub fn verify_checksums6(frame: &[u8]) -> Result<Ipv6View, String> {
    let (_, _, ip) = parse_frame6(frame)?;
    if matches!(ip.next_header, PROTO_TCP | PROTO_UDP | PROTO_ICMPV6) {
        let check_at = match ip.next_header {
            PROTO_TCP => 16,
            PROTO_UDP => 6,
            _ => 2,
        };
        if ip.payload.len() < check_at + 2 {
            return Err(format!("{} bytes: truncated L4 header", ip.payload.len()));
        }
        if ip.next_header == PROTO_UDP && ip.payload[6..8] == [0, 0] {
            return Err("UDP checksum 0 over IPv6".into());
        }
        let sum = ones_sum(
            &ip.payload,
            pseudo_sum6(ip.src, ip.dst, ip.next_header, ip.payload.len()),
        );
        if sum != 0xffff {
            return Err(format!(
                "next header {} checksum wrong (sums to {sum:#06x}): {:02x?}",
                ip.next_header,
                &ip.payload[..ip.payload.len().min(24)]
            ));
        }
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_accepts_what_the_builders_make_and_names_a_bad_byte() {
        let (a, b): (Ipv6Addr, Ipv6Addr) =
            ("2001:db8::2".parse().unwrap(), "fd00::1".parse().unwrap());
        let frame = ipv6_frame(
            [1; 6],
            [2; 6],
            a,
            b,
            PROTO_TCP,
            &tcp6(a, b, 1, 2, 0x02, b"x"),
        );
        let ip = verify_checksums6(&frame).unwrap();
        assert_eq!((ip.src, ip.dst, ip.sport(), ip.dport()), (a, b, 1, 2));
        // The pseudo-header covers the addresses: another destination
        // without a checksum update is caught.
        let mut moved = frame.clone();
        moved[14 + 24 + 15] ^= 1;
        assert!(
            verify_checksums6(&moved)
                .unwrap_err()
                .contains("checksum wrong")
        );
        let frame = ipv6_frame([1; 6], [2; 6], a, b, PROTO_UDP, &udp6(a, b, 5, 6, b"hello"));
        verify_checksums6(&frame).unwrap();
        let mut zero = frame.clone();
        zero[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
        assert!(verify_checksums6(&zero).is_err());
        let mut padded = frame;
        padded.push(0);
        assert!(
            parse_frame6(&padded)
                .unwrap_err()
                .contains("payload length")
        );
    }
}
