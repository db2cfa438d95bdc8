//! Builders for IPv6 beyond the bare header of [`super::build`]: ICMPv6
//! (Neighbour Discovery with its options, router advertisements,
//! redirects, echo, errors quoting a packet), TCP and UDP over IPv6
//! (DHCPv6), extension header chains, fragments, hop-by-hop jumbograms
//! (the fuzzer's chains as values: [`super::ipv6`]). Each writes its fields explicitly;
//! every checksum comes from the oracle ([`super::checksum`]), computed
//! over the final source and destination (RFC 8200 §8.1: the pseudo
//! header of the final destination, without extension headers).

use std::net::Ipv6Addr;

use super::{
    ETH_P_IPV6, Mac,
    checksum::{l4_checksum6, ones_sum},
    ethernet, ipv6_packet,
};

pub const PROTO_ICMPV6: u8 = 58;
pub const NEXTHDR_HOP: u8 = 0;
pub const NEXTHDR_ROUTING: u8 = 43;
pub const NEXTHDR_FRAGMENT: u8 = 44;
pub const NEXTHDR_NONE: u8 = 59;
pub const NEXTHDR_DEST: u8 = 60;

pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
pub const ICMPV6_NEIGHBOUR_SOLICIT: u8 = 135;
pub const ICMPV6_NEIGHBOUR_ADVERT: u8 = 136;
pub const ICMPV6_REDIRECT: u8 = 137;

/// ND option types (RFC 4861 §4.6).
pub const ND_OPT_SOURCE_LLADDR: u8 = 1;
pub const ND_OPT_TARGET_LLADDR: u8 = 2;
pub const ND_OPT_PREFIX_INFO: u8 = 3;
/// NA flags (the first byte of the flags word).
pub const NA_ROUTER: u8 = 0x80;
pub const NA_SOLICITED: u8 = 0x40;
pub const NA_OVERRIDE: u8 = 0x20;

/// ICMPv6 message types (RFC 4443) the NAT66 tests and the fuzzer build.
pub const ICMP6_DEST_UNREACH: u8 = 1;
pub const ICMP6_PACKET_TOO_BIG: u8 = 2;
pub const ICMP6_TIME_EXCEEDED: u8 = 3;
pub const ICMP6_PARAM_PROB: u8 = 4;
pub const ICMP6_ECHO_REQUEST: u8 = 128;
pub const ICMP6_ECHO_REPLY: u8 = 129;
pub const ICMP6_NEIGHBOR_SOLICIT: u8 = 135;

/// The IPv6 header's fields for [`ipv6_full`].
#[derive(Clone, Debug)]
pub struct Ip6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// Extension headers in order: (type, whole header bytes whose first
    /// byte — the next header — the builder fills in).
    pub ext: Vec<(u8, Vec<u8>)>,
}

impl Ip6 {
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self {
            src,
            dst,
            hop_limit: 64,
            ext: Vec::new(),
        }
    }
}

/// An IPv6 packet: the header of `ip`, its extension headers chained (each
/// one's next header is the following one's type, the last one's is
/// `proto`), then `upper`. The payload length counts all of it.
pub fn ipv6_full(ip: &Ip6, proto: u8, upper: &[u8]) -> Vec<u8> {
    let mut chain = Vec::new();
    for (i, (_, bytes)) in ip.ext.iter().enumerate() {
        let mut h = bytes.clone();
        h[0] = ip.ext.get(i + 1).map_or(proto, |(t, _)| *t);
        chain.extend_from_slice(&h);
    }
    chain.extend_from_slice(upper);
    let first = ip.ext.first().map_or(proto, |(t, _)| *t);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(chain.len() as u16).to_be_bytes());
    p.push(first);
    p.push(ip.hop_limit);
    p.extend_from_slice(&ip.src.octets());
    p.extend_from_slice(&ip.dst.octets());
    p.extend_from_slice(&chain);
    p
}

/// An options-type extension header (hop-by-hop, destination options) of
/// `8 * units` bytes, padded with PadN.
pub fn options_header(units: usize) -> Vec<u8> {
    assert!(units >= 1);
    let mut h = vec![0u8; 8 * units];
    h[1] = (units - 1) as u8;
    h[2] = 1; // PadN
    h[3] = (8 * units - 4) as u8;
    h
}

/// A routing header (type 0-style layout, segments left 0): 8 bytes.
pub fn routing_header() -> Vec<u8> {
    vec![0, 0, 0, 0, 0, 0, 0, 0]
}

/// A fragment header: `offset` in 8-byte units, more fragments, id.
pub fn fragment_header(offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[2..4].copy_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h[4..8].copy_from_slice(&id.to_be_bytes());
    h
}

/// A hop-by-hop header with the jumbo payload option (RFC 2675).
pub fn jumbo_header(length: u32) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[2] = 0xc2;
    h[3] = 4;
    h[4..8].copy_from_slice(&length.to_be_bytes());
    h
}

/// An ICMPv6 message from `src` to `dst` with a correct checksum.
pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, kind: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(body);
    let c = l4_checksum6(src, dst, PROTO_ICMPV6, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// A UDP datagram over IPv6 with a correct (never zero) checksum.
pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0u8; 8];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    let mut c = l4_checksum6(src, dst, 17, &s);
    if c == 0 {
        c = 0xffff;
    }
    s[6..8].copy_from_slice(&c.to_be_bytes());
    s
}

/// A link-layer address option (`kind` source or target).
pub fn lladdr_option(kind: u8, mac: Mac) -> Vec<u8> {
    let mut o = vec![kind, 1];
    o.extend_from_slice(&mac);
    o
}

/// The body (after type, code, checksum) of an NS or NA: the flags word,
/// the target, then `options`.
pub fn nd_body(flags: u8, target: Ipv6Addr, options: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![flags, 0, 0, 0];
    b.extend_from_slice(&target.octets());
    for o in options {
        b.extend_from_slice(o);
    }
    b
}

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet multicast address of an IPv6 multicast address (RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// An Ethernet frame carrying the IPv6 packet `packet`.
pub fn eth6(dst: Mac, src: Mac, packet: &[u8]) -> Vec<u8> {
    super::ethernet(dst, src, ETH_P_IPV6, packet)
}

/// A neighbour solicitation as Linux sends it: from `src` (with `mac` in
/// a source link-layer option, unless `src` is `::`: duplicate address
/// detection), to the target's solicited-node group, hop limit 255.
pub fn neighbour_solicit(mac: Mac, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let options = if src.is_unspecified() {
        vec![]
    } else {
        vec![lladdr_option(ND_OPT_SOURCE_LLADDR, mac)]
    };
    let group = solicited_node(target);
    nd_frame(
        mac,
        multicast_mac(group),
        src,
        group,
        ICMPV6_NEIGHBOUR_SOLICIT,
        &nd_body(0, target, &options),
    )
}

/// A neighbour advertisement from `src` for `target` with the given
/// flags and options, to all nodes, hop limit 255.
pub fn neighbour_advert(
    mac: Mac,
    src: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    options: &[Vec<u8>],
) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    nd_frame(
        mac,
        multicast_mac(all_nodes),
        src,
        all_nodes,
        ICMPV6_NEIGHBOUR_ADVERT,
        &nd_body(flags, target, options),
    )
}

/// A router advertisement from `src` announcing `prefix`/64, to all
/// nodes: what a rogue router sends.
pub fn router_advert(mac: Mac, src: Ipv6Addr, prefix: Ipv6Addr) -> Vec<u8> {
    // Hop limit 64, flags 0, router lifetime 1800 s, reachable 0, retrans 0.
    let mut body = vec![64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&lladdr_option(ND_OPT_SOURCE_LLADDR, mac));
    // Prefix information: /64, on-link + autonomous, lifetimes.
    let mut prefix_opt = vec![ND_OPT_PREFIX_INFO, 4, 64, 0xc0];
    prefix_opt.extend_from_slice(&86400u32.to_be_bytes());
    prefix_opt.extend_from_slice(&14400u32.to_be_bytes());
    prefix_opt.extend_from_slice(&[0; 4]);
    prefix_opt.extend_from_slice(&prefix.octets());
    body.extend_from_slice(&prefix_opt);
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    nd_frame(
        mac,
        multicast_mac(all_nodes),
        src,
        all_nodes,
        ICMPV6_ROUTER_ADVERT,
        &body,
    )
}

/// An ND message frame (hop limit 255, no extension headers).
pub fn nd_frame(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: u8,
    body: &[u8],
) -> Vec<u8> {
    let ip = Ip6 {
        hop_limit: 255,
        ..Ip6::new(src, dst)
    };
    eth6(
        dst_mac,
        src_mac,
        &ipv6_full(&ip, PROTO_ICMPV6, &icmpv6(src, dst, kind, 0, body)),
    )
}

/// The checksum of an IPv6 packet's upper layer (no extension headers)
/// holds: the sum over the pseudo header and the message is all ones.
pub fn upper_checksum_holds(packet: &[u8]) -> bool {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[8..24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&packet[24..40]).unwrap());
    let len = u16::from_be_bytes([packet[4], packet[5]]) as usize;
    let upper = &packet[40..40 + len];
    let initial = super::checksum::pseudo_sum6(src, dst, packet[6], upper.len());
    ones_sum(upper, initial) == 0xffff
}

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

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        process::{Command, Stdio},
    };

    use super::*;

    #[test]
    fn addresses_derive_as_rfc_4291_says() {
        let a: Ipv6Addr = "fd00:10:162::1:2:3".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(solicited_node(a)),
            [0x33, 0x33, 0xff, 0x02, 0, 3]
        );
    }

    #[test]
    fn chains_are_linked_and_counted() {
        let a: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut ip = Ip6::new(a, a);
        ip.ext = vec![
            (NEXTHDR_HOP, options_header(1)),
            (NEXTHDR_FRAGMENT, fragment_header(0, true, 7)),
        ];
        let p = ipv6_full(&ip, PROTO_ICMPV6, &[1, 2, 3, 4]);
        assert_eq!(p[6], NEXTHDR_HOP);
        assert_eq!(p[40], NEXTHDR_FRAGMENT, "hop-by-hop → fragment");
        assert_eq!(p[48], PROTO_ICMPV6, "fragment → ICMPv6");
        assert_eq!(&p[50..52], &[0, 1], "offset 0, more fragments");
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 8 + 8 + 4);
    }

    /// scapy (an implementation that shares nothing with ours) parses
    /// each frame, forgets the ICMPv6/UDP checksum, rebuilds it: the bytes
    /// must come back unchanged, and the layers be the ones we meant.
    #[test]
    fn scapy_rebuilds_the_nd_ra_and_dhcpv6_frames_byte_for_byte() {
        let mac = [0x02, 0x4e, 10, 162, 0, 1];
        let ll: Ipv6Addr = "fe80::4e:aff:fea2:1".parse().unwrap();
        let global: Ipv6Addr = "fd00:10:162:0::1".parse().unwrap();
        let dst: Ipv6Addr = "fd00:10:162:0::2".parse().unwrap();
        let frames = [
            (neighbour_solicit(mac, global, dst), "ICMPv6ND_NS"),
            (
                neighbour_solicit(mac, Ipv6Addr::UNSPECIFIED, global),
                "ICMPv6ND_NS",
            ),
            (
                neighbour_advert(
                    mac,
                    global,
                    global,
                    NA_SOLICITED | NA_OVERRIDE,
                    &[lladdr_option(ND_OPT_TARGET_LLADDR, mac)],
                ),
                "ICMPv6ND_NA",
            ),
            (
                router_advert(mac, ll, "2001:db8:bad::".parse().unwrap()),
                "ICMPv6ND_RA",
            ),
            (
                eth6(
                    [0x33, 0x33, 0, 1, 0, 2],
                    mac,
                    &ipv6_full(&Ip6::new(ll, dst), 17, &udp6(ll, dst, 547, 546, b"dhcp")),
                ),
                "UDP",
            ),
        ];
        let script = r#"
import sys
from scapy.all import Ether, UDP
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RA
for line in sys.stdin:
    p = Ether(bytes.fromhex(line.strip()))
    for layer in (ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RA):
        if p.haslayer(layer):
            p[layer].cksum = None
    if p.haslayer(UDP):
        p[UDP].chksum = None
    print(bytes(p).hex() + " " + "/".join(c.__name__ for c in p.layers()))
"#;
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 (python3-scapy, installed by cargo xtask setup)");
        let input: String = frames
            .iter()
            .map(|(f, _)| crate::fuzz::hex(f) + "\n")
            .collect();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "scapy failed");
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), frames.len());
        for ((frame, layer), line) in frames.iter().zip(&lines) {
            let (hex, layers) = line.split_once(' ').unwrap();
            assert_eq!(hex, crate::fuzz::hex(frame), "{layers}");
            assert!(layers.contains(layer), "{layers} lacks {layer}");
            assert!(upper_checksum_holds(&frame[14..]), "{layers}");
        }
    }
}
