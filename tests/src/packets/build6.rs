//! IPv6 frames for the NAT66 tests: TCP, UDP and ICMPv6 (echo, errors
//! quoting a packet) over IPv6, extension headers and Fragment headers.
//! Every checksum is computed with the oracle (`checksum6`), from scratch.

use std::net::Ipv6Addr;

use super::{ETH_P_IPV6, Mac, checksum6::l4_checksum6, ethernet, ipv6_packet};

pub const PROTO_ICMPV6: u8 = 58;
pub const NEXTHDR_HOP: u8 = 0;
pub const NEXTHDR_ROUTING: u8 = 43;
pub const NEXTHDR_FRAGMENT: u8 = 44;
pub const NEXTHDR_DEST: u8 = 60;

pub const ICMP6_DEST_UNREACH: u8 = 1;
pub const ICMP6_PACKET_TOO_BIG: u8 = 2;
pub const ICMP6_TIME_EXCEEDED: u8 = 3;
pub const ICMP6_PARAM_PROB: u8 = 4;
pub const ICMP6_ECHO_REQUEST: u8 = 128;
pub const ICMP6_ECHO_REPLY: u8 = 129;
pub const ICMP6_NEIGHBOR_SOLICIT: u8 = 135;

/// A TCP segment (20-byte header, window 65535) with its checksum over
/// the IPv6 pseudo-header.
pub fn tcp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = Vec::with_capacity(20 + payload.len());
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&1u32.to_be_bytes());
    s.extend_from_slice(&0u32.to_be_bytes());
    s.push(5 << 4);
    s.push(flags);
    s.extend_from_slice(&65535u16.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(payload);
    let c = l4_checksum6(src, dst, super::PROTO_TCP, &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

/// A UDP datagram with its (mandatory over IPv6) checksum.
pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut s = Vec::with_capacity(len);
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&(len as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    let mut c = l4_checksum6(src, dst, super::PROTO_UDP, &s);
    if c == 0 {
        c = 0xffff;
    }
    s[6..8].copy_from_slice(&c.to_be_bytes());
    s
}

/// An ICMPv6 message of `kind`/`code` with the 4 bytes `rest` and `body`,
/// its checksum over the pseudo-header of `src` → `dst`.
pub fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, kind: u8, code: u8, rest: u32, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(body);
    let c = l4_checksum6(src, dst, PROTO_ICMPV6, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 echo request or reply.
pub fn icmp6_echo(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: u8,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    icmp6(src, dst, kind, 0, (id as u32) << 16 | seq as u32, payload)
}

/// An ICMPv6 error from `src` to `dst` quoting the whole `offending`
/// IPv6 packet (RFC 4443 quotes as much as fits in 1280 bytes).
pub fn icmp6_error(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: u8,
    code: u8,
    rest: u32,
    offending: &[u8],
) -> Vec<u8> {
    icmp6(src, dst, kind, code, rest, offending)
}

/// An extension header (hop-by-hop, routing, destination options) of
/// `units` 8-byte units (PadN-filled options), followed by `next`.
pub fn ext_header(next: u8, units: u8) -> Vec<u8> {
    let len = (units as usize) * 8;
    let mut h = vec![next, units - 1];
    // One PadN option filling the rest.
    h.push(1);
    h.push((len - 4) as u8);
    h.resize(len, 0);
    h
}

/// A Fragment header: `offset` in bytes (a multiple of 8), `more`
/// fragments, identification `id`, followed by `next`.
pub fn frag_header(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// An IPv6 packet whose first next header is `first` and whose payload is
/// `headers` (extension headers, already chained) followed by `l4`.
pub fn ipv6_chain(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    first: u8,
    headers: &[Vec<u8>],
    l4: &[u8],
) -> Vec<u8> {
    let mut payload: Vec<u8> = headers.concat();
    payload.extend_from_slice(l4);
    ipv6_packet(src, dst, first, &payload)
}

/// An Ethernet frame carrying the IPv6 packet `packet`.
pub fn frame6(dst_mac: Mac, src_mac: Mac, packet: &[u8]) -> Vec<u8> {
    ethernet(dst_mac, src_mac, ETH_P_IPV6, packet)
}
