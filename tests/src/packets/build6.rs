//! Builders for IPv6 beyond the bare header of [`super::build`]: ICMPv6
//! (Neighbour Discovery with its options, router advertisements,
//! redirects), UDP over IPv6 (DHCPv6), extension header chains,
//! fragments, hop-by-hop jumbograms. Each writes its fields explicitly;
//! every checksum comes from the oracle ([`super::checksum`]), computed
//! over the final source and destination (RFC 8200 §8.1: the pseudo
//! header of the final destination, without extension headers).

use std::net::Ipv6Addr;

use super::{
    ETH_P_IPV6, Mac,
    checksum::{l4_checksum6, ones_sum},
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
