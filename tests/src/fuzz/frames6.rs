//! The IPv6 frames the fuzzer starts from, built with
//! [`crate::packets::ipv6`]: TCP, UDP, ICMPv6 echo, ICMPv6 errors (types
//! 1-4) quoting a TCP, UDP or echo packet, neighbour discovery, DHCPv6,
//! behind extension header chains of 0 to 6 headers (hop-by-hop with a
//! jumbo or router-alert option, routing, destination options, fragment
//! first or later), for the uplink (NAT66) and the switch ports.
//!
//! The addresses are fixed so that the NAT66 model, the programs'
//! configuration and the generator agree, as in [`super::frames`].

use std::net::Ipv6Addr;

use netlab_common::nat::{NAT_FRAG_IN, NAT_FRAG_OUT};
use netlab_common::nat6::Nat6FragKey;

use super::Rng;
use super::frames::{Dir, INET_MAC, PORT_MAX, PORT_MIN, UPLINK_MAC};
use crate::packets::*;

const fn v6(s: [u16; 8]) -> Ipv6Addr {
    Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
}

/// The masqueraded lab prefix (fd00:10:78:200::/64).
pub const SUBNET6: Ipv6Addr = v6([0xfd00, 0x10, 0x78, 0x200, 0, 0, 0, 0]);
pub const PREFIX6_LEN: u8 = 64;
/// Lab endpoints (the last is unusual on purpose: high bits set).
pub const LAB_HOSTS6: [Ipv6Addr; 4] = [
    v6([0xfd00, 0x10, 0x78, 0x200, 0, 0, 0, 1]),
    v6([0xfd00, 0x10, 0x78, 0x200, 0, 0, 0, 2]),
    v6([0xfd00, 0x10, 0x78, 0x200, 0, 0, 0, 3]),
    v6([0xfd00, 0x10, 0x78, 0x200, 0xffff, 0xffff, 0xffff, 0xfffe]),
];
/// The uplink's global address (the sandbox's, RFC 3849 space).
pub const EXTERNAL6: Ipv6Addr = v6([0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 1]);
pub const REMOTES6: [Ipv6Addr; 3] = [
    v6([0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 2]),
    v6([0x2001, 0xdb8, 0x51, 0x100, 0, 0, 0, 9]),
    v6([0x2001, 0xdb8, 0x2, 0, 0, 0, 0, 0x77]),
];
/// A router beyond the uplink that sends ICMPv6 errors.
pub const ROUTER6: Ipv6Addr = REMOTES6[1];
/// The one endpoint the NAT66 fast path knows (`endpoints6`).
pub const FAST_PATH_HOST6: Ipv6Addr = LAB_HOSTS6[0];
/// Link-local addresses on the uplink (the internet end's and ours).
pub const UPLINK_LL: Ipv6Addr = v6([0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x7811]);
pub const INET_LL: Ipv6Addr = v6([0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x7822]);
pub const ALL_NODES: Ipv6Addr = v6([0xff02, 0, 0, 0, 0, 0, 0, 1]);
pub const ALL_ROUTERS: Ipv6Addr = v6([0xff02, 0, 0, 0, 0, 0, 0, 2]);
pub const DHCP6_SERVERS: Ipv6Addr = v6([0xff02, 0, 0, 0, 0, 0, 1, 2]);

/// Addresses mutations put into headers: every class the programs tell apart.
pub const INTERESTING_ADDRS6: [Ipv6Addr; 10] = [
    EXTERNAL6,
    LAB_HOSTS6[0],
    LAB_HOSTS6[1],
    SUBNET6,
    REMOTES6[0],
    ROUTER6,
    Ipv6Addr::UNSPECIFIED,
    Ipv6Addr::LOCALHOST,
    ALL_NODES,
    UPLINK_LL,
];

/// A NAT66 translation as the generator needs it (echo: ports are ids,
/// `remote_port` 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation6 {
    pub proto: u8,
    pub lab: Ipv6Addr,
    pub lab_port: u16,
    pub remote: Ipv6Addr,
    pub remote_port: u16,
    pub external_port: u16,
}

fn payload(rng: &mut Rng) -> Vec<u8> {
    let n = if rng.chance(90) {
        rng.range(0, 64)
    } else {
        rng.range(0, 1300)
    };
    rng.bytes(n)
}

fn tcp_flags(rng: &mut Rng) -> u8 {
    *rng.pick(&[
        TCP_SYN,
        TCP_SYN | TCP_ACK,
        TCP_ACK,
        TCP_FIN | TCP_ACK,
        TCP_RST,
        0,
    ])
}

/// A random option area for a hop-by-hop or destination options header:
/// none, PadN, router alert, a jumbo payload option, unknown options.
fn options(rng: &mut Rng, hop_by_hop: bool) -> (Vec<u8>, bool) {
    match rng.below(6) {
        0 if hop_by_hop => (jumbo_option(rng.range(65536, 1 << 20) as u32), true),
        1 if hop_by_hop => (router_alert_option(), false),
        2 => (vec![1, 2, 0, 0], false),
        3 => {
            // An unknown option "skip" (00xx xxxx) of a few bytes.
            let n = rng.range(0, 12);
            let mut o = vec![0x1e, n as u8];
            o.extend(rng.bytes(n));
            (o, false)
        }
        _ => (Vec::new(), false),
    }
}

/// An extension header chain of 0 to 6 headers (short ones mostly), never a
/// fragment header (that is [`fragment_header`]'s). Returns the chain and
/// whether it carries a jumbo payload option.
pub fn ext_headers(rng: &mut Rng) -> (Vec<Ext>, bool) {
    let n = *rng.pick(&[0usize, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6]);
    let mut chain = Vec::new();
    let mut jumbo = false;
    for i in 0..n {
        let e = match rng.below(4) {
            0 if i == 0 => {
                let (o, j) = options(rng, true);
                jumbo |= j;
                Ext::HopByHop(o)
            }
            1 => Ext::Routing {
                kind: *rng.pick(&[0u8, 2, 4]),
                segments_left: 0,
                data: vec![0; *rng.pick(&[0usize, 4, 20])],
            },
            _ => Ext::DestOpts(options(rng, false).0),
        };
        chain.push(e);
    }
    (chain, jumbo)
}

/// Sometimes a fragment header: the first fragment (offset 0, M set; the
/// generator keeps the whole segment in it) or an atomic fragment.
pub fn fragment_header(rng: &mut Rng) -> Option<Ext> {
    rng.chance(12).then(|| Ext::Fragment {
        offset: 0,
        more: rng.chance(85),
        id: rng.next_u64() as u32,
    })
}

/// An IPv6 packet of `proto` with an extension chain, a fragment header
/// sometimes, a hop limit that is sometimes 1, and a jumbogram's zero
/// payload length when the chain has the jumbo option (RFC 2675) mostly.
pub fn packet6(rng: &mut Rng, src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut ip = Ipv6Header::new(src, dst);
    ip.hop_limit = *rng.pick(&[64, 64, 64, 255, 2, 1]);
    ip.flow_label = if rng.chance(30) { rng.u16() as u32 } else { 0 };
    let (mut ext, jumbo) = if rng.chance(35) {
        ext_headers(rng)
    } else {
        (Vec::new(), false)
    };
    if let Some(f) = fragment_header(rng) {
        let at = rng.range(0, ext.len());
        ext.insert(at, f);
    }
    ip.ext = ext;
    let mut p = ipv6_with(&ip, proto, l4);
    if jumbo && rng.chance(80) {
        p[4..6].copy_from_slice(&[0, 0]);
    }
    p
}

/// TCP, UDP or ICMPv6 echo from `src:sport` to `dst:dport` (echo: `sport`
/// is the id; `request` picks request or reply). Returns the segment.
pub fn l4_6(
    rng: &mut Rng,
    proto: u8,
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    request: bool,
) -> Vec<u8> {
    let data = payload(rng);
    match proto {
        PROTO_TCP => tcp6(src, dst, sport, dport, tcp_flags(rng), &data),
        PROTO_UDP => udp6(src, dst, sport, dport, &data),
        _ => {
            let kind = if request {
                ICMP6_ECHO_REQUEST
            } else {
                ICMP6_ECHO_REPLY
            };
            icmp6_echo(src, dst, kind, sport, rng.u16(), &data)
        }
    }
}

/// An ICMPv6 error of a random kind (1-4) from `from` to `to` quoting
/// `offending` (an IPv6 packet, no extension headers).
pub fn error_about(rng: &mut Rng, from: Ipv6Addr, to: Ipv6Addr, offending: &[u8]) -> Vec<u8> {
    let (kind, code, rest) = *rng.pick(&[
        (ICMP6_DEST_UNREACH, 4u8, 0u32),
        (ICMP6_DEST_UNREACH, 1, 0),
        (ICMP6_PACKET_TOO_BIG, 0, 1280),
        (ICMP6_PACKET_TOO_BIG, 0, 1400),
        (ICMP6_TIME_EXCEEDED, 0, 0),
        (ICMP6_PARAM_PROB, 0, 6),
    ]);
    icmp6_error(from, to, kind, code, rest, offending)
}

/// The packet a flow's side sent, without extension headers (what errors
/// quote): TCP, UDP or echo from `src:sport` to `dst:dport`.
pub fn plain_packet(
    rng: &mut Rng,
    proto: u8,
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    request: bool,
) -> Vec<u8> {
    let l4 = l4_6(rng, proto, src, sport, dst, dport, request);
    ipv6_with(&Ipv6Header::new(src, dst), proto, &l4)
}

/// A later fragment (offset > 0) of the datagram `key`: the fragment
/// header and data only. Sometimes of another identification.
pub fn later_fragment6(rng: &mut Rng, key: &Nat6FragKey) -> Vec<u8> {
    let mut ip = Ipv6Header::new(Ipv6Addr::from(key.saddr), Ipv6Addr::from(key.daddr));
    let mut id = u32::from_be(key.id);
    if rng.chance(15) {
        id = id.wrapping_add(rng.range(1, 0xffff) as u32);
    }
    ip.ext = vec![Ext::Fragment {
        offset: *rng.pick(&[1u16, 161, 0x1fff]),
        more: rng.chance(50),
        id,
    }];
    let len = if rng.chance(80) {
        rng.range(0, 64)
    } else {
        rng.range(64, 1400)
    };
    let data = rng.bytes(len);
    ipv6_with(&ip, key.proto, &data)
}

fn frame_of(dir: Dir, packet: &[u8]) -> Vec<u8> {
    match dir {
        Dir::Egress => ipv6_frame_of(INET_MAC, UPLINK_MAC, packet),
        Dir::Ingress => ipv6_frame_of(UPLINK_MAC, INET_MAC, packet),
    }
}

fn any_proto(rng: &mut Rng) -> u8 {
    *rng.pick(&[PROTO_TCP, PROTO_UDP, PROTO_ICMPV6])
}

fn local_port(rng: &mut Rng) -> u16 {
    match rng.below(4) {
        0 => rng.range(PORT_MIN as usize, PORT_MAX as usize) as u16,
        1 => *rng.pick(&[1111, 2222, 40100, 65535, 1]),
        _ => rng.range(1024, 65535) as u16,
    }
}

fn remote_port(rng: &mut Rng) -> u16 {
    if rng.chance(80) {
        *rng.pick(&[80, 443, 53])
    } else {
        rng.u16()
    }
}

/// Neighbour discovery on the uplink (between the link-local addresses, or
/// for the external address): never the NAT's.
fn uplink_nd(rng: &mut Rng, dir: Dir) -> Vec<u8> {
    let (src, mac) = match dir {
        Dir::Egress => (UPLINK_LL, UPLINK_MAC),
        Dir::Ingress => (INET_LL, INET_MAC),
    };
    let target = *rng.pick(&[EXTERNAL6, REMOTES6[0], INET_LL]);
    let (kind, body) = match rng.below(3) {
        0 => (
            ND_NEIGHBOR_SOLICIT,
            ns_body(target, &ll_option(ND_OPT_SOURCE_LL, mac)),
        ),
        1 => (
            ND_NEIGHBOR_ADVERT,
            na_body(NA_SOLICITED, target, &ll_option(ND_OPT_TARGET_LL, mac)),
        ),
        _ => (ND_ROUTER_ADVERT, ra_body(REMOTES6[0], Some(mac))),
    };
    let dst = if kind == ND_NEIGHBOR_SOLICIT {
        solicited_node(target)
    } else {
        ALL_NODES
    };
    let mut ip = Ipv6Header::new(src, dst);
    ip.hop_limit = 255;
    ipv6_with(&ip, PROTO_ICMPV6, &icmpv6(src, dst, kind, 0, &body))
}

/// A valid IPv6 frame travelling `dir` through the uplink. `known`: the
/// NAT66 translations now; `datagrams`: the fragmented datagrams it holds.
pub fn valid_frame6(
    rng: &mut Rng,
    dir: Dir,
    known: &[Translation6],
    datagrams: &[Nat6FragKey],
) -> (Vec<u8>, String) {
    let want = if dir == Dir::Egress {
        NAT_FRAG_OUT
    } else {
        NAT_FRAG_IN
    };
    let ours: Vec<&Nat6FragKey> = datagrams.iter().filter(|k| k.dir == want).collect();
    if !ours.is_empty() && rng.chance(12) {
        let key = **rng.pick(&ours);
        let p = later_fragment6(rng, &key);
        return (
            frame_of(dir, &p),
            format!("IPv6 later fragment, proto {}", key.proto),
        );
    }
    let flow = (!known.is_empty()).then(|| *rng.pick(known));
    let lab = *rng.pick(&LAB_HOSTS6);
    let remote = *rng.pick(&REMOTES6);
    match (dir, rng.below(10), flow) {
        (_, 0, _) => (
            frame_of(dir, &uplink_nd(rng, dir)),
            "IPv6 ND on the uplink".into(),
        ),
        (Dir::Egress, 1..=4, _) => {
            let proto = any_proto(rng);
            let (sport, dport) = (local_port(rng), remote_port(rng));
            let l4 = l4_6(rng, proto, lab, sport, remote, dport, true);
            let p = packet6(rng, lab, remote, proto, &l4);
            (
                frame_of(dir, &p),
                format!("IPv6 new flow out, proto {proto}"),
            )
        }
        (Dir::Egress, 5..=6, Some(t)) => {
            let l4 = l4_6(
                rng,
                t.proto,
                t.lab,
                t.lab_port,
                t.remote,
                t.remote_port,
                true,
            );
            let p = packet6(rng, t.lab, t.remote, t.proto, &l4);
            (
                frame_of(dir, &p),
                format!("IPv6 known flow out, proto {}", t.proto),
            )
        }
        (Dir::Egress, 7, Some(t)) => {
            // The lab reports an error about a reply it got.
            let reply = plain_packet(
                rng,
                t.proto,
                t.remote,
                t.remote_port,
                t.lab,
                t.lab_port,
                false,
            );
            let reply = fix_echo_id6(t.proto, reply, t.lab_port);
            let err = error_about(rng, t.lab, t.remote, &reply);
            let p = ipv6_with(&Ipv6Header::new(t.lab, t.remote), PROTO_ICMPV6, &err);
            (
                frame_of(dir, &p),
                format!("ICMPv6 error out about proto {}", t.proto),
            )
        }
        (Dir::Egress, _, _) => {
            // The host's own traffic (external or link-local source), and
            // a lab source to multicast.
            let proto = any_proto(rng);
            let src = *rng.pick(&[EXTERNAL6, EXTERNAL6, UPLINK_LL]);
            let dst = if rng.chance(15) { ALL_NODES } else { remote };
            let (sport, dport) = (rng.u16(), remote_port(rng));
            let l4 = l4_6(rng, proto, src, sport, dst, dport, true);
            let p = packet6(rng, src, dst, proto, &l4);
            (
                frame_of(dir, &p),
                format!("IPv6 host flow out, proto {proto}"),
            )
        }
        (Dir::Ingress, 1..=4, Some(t)) => {
            let l4 = l4_6(
                rng,
                t.proto,
                t.remote,
                t.remote_port,
                EXTERNAL6,
                t.external_port,
                false,
            );
            let p = packet6(rng, t.remote, EXTERNAL6, t.proto, &l4);
            let p = fix_echo_id6(t.proto, p, t.external_port);
            (
                frame_of(dir, &p),
                format!("IPv6 reply in, proto {}", t.proto),
            )
        }
        (Dir::Ingress, 5..=6, Some(t)) => {
            let translated = plain_packet(
                rng,
                t.proto,
                EXTERNAL6,
                t.external_port,
                t.remote,
                t.remote_port,
                true,
            );
            let from = *rng.pick(&[t.remote, ROUTER6]);
            let err = error_about(rng, from, EXTERNAL6, &translated);
            let p = ipv6_with(&Ipv6Header::new(from, EXTERNAL6), PROTO_ICMPV6, &err);
            (
                frame_of(dir, &p),
                format!("ICMPv6 error in about proto {}", t.proto),
            )
        }
        (Dir::Ingress, 7, _) => {
            let proto = any_proto(rng);
            let dst = if rng.chance(70) { lab } else { remote };
            let (sport, dport) = (remote_port(rng), local_port(rng));
            let l4 = l4_6(rng, proto, remote, sport, dst, dport, true);
            let p = packet6(rng, remote, dst, proto, &l4);
            (
                frame_of(dir, &p),
                format!("IPv6 unsolicited in, proto {proto}"),
            )
        }
        (Dir::Ingress, _, _) => {
            let proto = *rng.pick(&[PROTO_TCP, PROTO_UDP, PROTO_ICMPV6, 47]);
            let p = if proto == 47 {
                let data = payload(rng);
                ipv6_with(&Ipv6Header::new(remote, EXTERNAL6), 47, &data)
            } else {
                let request = rng.chance(50);
                let (sport, dport) = (remote_port(rng), rng.u16());
                let l4 = l4_6(rng, proto, remote, sport, EXTERNAL6, dport, request);
                packet6(rng, remote, EXTERNAL6, proto, &l4)
            };
            (
                frame_of(dir, &p),
                format!("IPv6 host flow in, proto {proto}"),
            )
        }
    }
}

/// For an echo packet built by [`l4_6`] whose id must be `id` (a reply to
/// a translated id), rewrites the id and recomputes the checksum.
pub fn fix_echo_id6(proto: u8, mut packet: Vec<u8>, id: u16) -> Vec<u8> {
    if proto != PROTO_ICMPV6 {
        return packet;
    }
    let Ok(upper) = walk6(&packet, packet.len()) else {
        return packet;
    };
    if upper.at + 8 > packet.len() {
        return packet;
    }
    let (src, dst) = (addr6(&packet, 8), addr6(&packet, 24));
    let m = &mut packet[upper.at..];
    m[4..6].copy_from_slice(&id.to_be_bytes());
    m[2..4].copy_from_slice(&[0, 0]);
    let c = l4_checksum6(src, dst, PROTO_ICMPV6, m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    packet
}

/// The IPv6 address at `at` of `bytes`.
pub fn addr6(bytes: &[u8], at: usize) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[at..at + 16]).unwrap())
}
