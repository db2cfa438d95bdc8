//! The frames the fuzzer starts from: random bytes, and valid frames of
//! every kind the uplink (and the switch ports) meet in a lab, built with
//! the builders of [`crate::packets`].
//!
//! The addresses are fixed so that the NAT model, the programs'
//! configuration and the generator agree: a lab subnet, the uplink's
//! external address, a few remote hosts, the NAT port range.

use std::net::{Ipv4Addr, Ipv6Addr};

use netlab_common::nat::{NAT_FRAG_IN, NAT_FRAG_OUT, NatFragKey};

use super::Rng;
use crate::packets::*;

pub const MAX_FRAME: usize = 1514;

/// The masqueraded lab subnet (10.78.200.0/24).
pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 78, 200, 0);
pub const PREFIX_LEN: u8 = 24;
/// Lab endpoints the generator sends from (the last one is unusual on purpose).
pub const LAB_HOSTS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(10, 78, 200, 1),
    Ipv4Addr::new(10, 78, 200, 2),
    Ipv4Addr::new(10, 78, 200, 3),
    Ipv4Addr::new(10, 78, 200, 200),
];
/// The uplink's address: translated packets leave with it.
pub const EXTERNAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// Remote peers, including a router that sends ICMP errors.
pub const REMOTES: [Ipv4Addr; 3] = [
    Ipv4Addr::new(203, 0, 113, 2),
    Ipv4Addr::new(198, 51, 100, 9),
    Ipv4Addr::new(192, 0, 2, 77),
];
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
pub const PORT_MIN: u16 = 40000;
pub const PORT_MAX: u16 = 40999;

pub const GATEWAY_MAC: [u8; 6] = [0x02, 0x4e, 10, 78, 200, 5];
pub const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x78, 0x11];
pub const INET_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x78, 0x22];
/// The one endpoint the NAT's fast path knows (replies to it are redirected).
pub const FAST_PATH_HOST: Ipv4Addr = LAB_HOSTS[0];
pub const FAST_PATH_MAC: [u8; 6] = [0x02, 0x4e, 10, 78, 200, 1];
pub const FAST_PATH_IFINDEX: u32 = 4242;

/// Published ports the fuzzed NAT has (`nat_publish`, any host address):
/// (host port, protocol, namespace address, namespace port). The first
/// leads to the fast-path endpoint; the last two share a namespace port
/// (a client reaching it through both from one source port meets the
/// first's translation: a conflict).
pub const PUBLISHED: [(u16, u8, Ipv4Addr, u16); 4] = [
    (8080, PROTO_TCP, FAST_PATH_HOST, 80),
    (5353, PROTO_UDP, LAB_HOSTS[1], 53),
    (8081, PROTO_TCP, LAB_HOSTS[1], 80),
    (8082, PROTO_TCP, LAB_HOSTS[1], 80),
];

/// The published port a packet to `dport`/`proto` at the external address
/// reaches: (namespace address, port), network order as in `NatEntry`.
pub fn published(dport_raw: u16, proto: u8) -> Option<(u32, u16)> {
    PUBLISHED
        .iter()
        .find(|(p, pr, ..)| p.to_be() == dport_raw && *pr == proto)
        .map(|(_, _, a, port)| (u32::from_ne_bytes(a.octets()), port.to_be()))
}

/// Addresses mutations put into headers: every class the programs
/// distinguish.
pub const INTERESTING_ADDRS: [Ipv4Addr; 10] = [
    EXTERNAL,
    LAB_HOSTS[0],
    LAB_HOSTS[1],
    SUBNET,
    Ipv4Addr::new(10, 78, 200, 255),
    REMOTES[0],
    ROUTER,
    Ipv4Addr::new(0, 0, 0, 0),
    Ipv4Addr::new(255, 255, 255, 255),
    Ipv4Addr::new(127, 0, 0, 1),
];

/// A translation the NAT holds, as the generator needs it to build replies
/// and ICMP errors. ICMP echo: ports are echo ids, `remote_port` is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub proto: u8,
    pub lab: Ipv4Addr,
    pub lab_port: u16,
    pub remote: Ipv4Addr,
    pub remote_port: u16,
    pub external_port: u16,
}

/// Which way a frame travels through the uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Leaving the host side for the internet (uplink TC egress).
    Egress,
    /// Arriving from the internet (uplink TC ingress).
    Ingress,
}

/// Random bytes: any length up to 1514 (short ones more often, they hit
/// more parser edges); sometimes with an IPv4 EtherType and a plausible
/// version/IHL byte, so that random bytes also reach the IPv4 parsers.
pub fn random_frame(rng: &mut Rng) -> (Vec<u8>, String) {
    let len = if rng.chance(50) {
        rng.range(0, MAX_FRAME)
    } else {
        rng.range(0, 128)
    };
    let mut f = rng.bytes(len);
    if len >= 15 && rng.chance(40) {
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        if rng.chance(70) {
            f[14] = 0x40 | (f[14] & 0x0f);
        }
        (f, format!("random {len} bytes, IPv4 ethertype"))
    } else {
        (f, format!("random {len} bytes"))
    }
}

fn lab_host(rng: &mut Rng) -> Ipv4Addr {
    *rng.pick(&LAB_HOSTS)
}

fn remote(rng: &mut Rng) -> Ipv4Addr {
    *rng.pick(&REMOTES)
}

/// A source port: often inside the NAT range (kept when free), often from
/// a small pool (so flows repeat and hit existing entries).
fn local_port(rng: &mut Rng) -> u16 {
    match rng.below(4) {
        0 => rng.range(PORT_MIN as usize, PORT_MAX as usize) as u16,
        1 => *rng.pick(&[1111, 2222, 40100, 40999, 65535, 1]),
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

fn tcp_flags(rng: &mut Rng) -> u8 {
    *rng.pick(&[
        TCP_SYN,
        TCP_SYN | TCP_ACK,
        TCP_ACK,
        TCP_ACK | 0x08,
        TCP_FIN | TCP_ACK,
        TCP_RST,
        TCP_RST | TCP_ACK,
        0,
        0xff,
    ])
}

fn payload(rng: &mut Rng) -> Vec<u8> {
    let n = if rng.chance(90) {
        rng.range(0, 64)
    } else {
        rng.range(0, 1400)
    };
    rng.bytes(n)
}

/// TCP, UDP or ICMP echo from `src:sport` to `dst:dport` (echo: `sport`
/// is the id, `request` decides request or reply).
pub fn l4_packet(
    rng: &mut Rng,
    proto: u8,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    request: bool,
) -> Vec<u8> {
    let data = payload(rng);
    let l4 = match proto {
        PROTO_TCP => tcp(src, dst, sport, dport, tcp_flags(rng), &data),
        PROTO_UDP => udp(src, dst, sport, dport, &data, rng.chance(80)),
        _ => icmp_echo(
            if request {
                ICMP_ECHO_REQUEST
            } else {
                ICMP_ECHO_REPLY
            },
            sport,
            rng.u16(),
            &data,
        ),
    };
    let mut ip = Ip::new(src, dst, proto);
    ip.id = rng.u16();
    ip.ttl = *rng.pick(&[64, 64, 2, 1, 255]);
    // Sometimes the first fragment of a datagram larger than the MTU (the
    // generator keeps the whole L4 segment in it; only the flag matters).
    ip.frag = *rng.pick(&[0x4000, 0x4000, 0x0000, 0x2000]);
    ipv4(&ip, &l4)
}

/// A later fragment (offset > 0, sometimes the last) of the datagram `key`
/// (as its first fragment crossed the uplink): no L4 header, just data.
/// Sometimes of another IP id, a datagram whose first fragment was not seen.
pub fn later_fragment(rng: &mut Rng, key: &NatFragKey) -> Vec<u8> {
    let raw = |a: u32| Ipv4Addr::from(a.to_ne_bytes());
    let mut ip = Ip::new(raw(key.saddr), raw(key.daddr), key.proto);
    ip.id = u16::from_be(key.id);
    if rng.chance(15) {
        ip.id = ip.id.wrapping_add(rng.range(1, 0xffff) as u16);
    }
    ip.ttl = *rng.pick(&[64, 64, 2, 1]);
    let offset = *rng.pick(&[185u16, 370, 1, 0x1fff]);
    ip.frag = offset | *rng.pick(&[0x2000u16, 0]);
    let len = if rng.chance(80) {
        rng.range(0, 64)
    } else {
        rng.range(64, 1480)
    };
    let data = rng.bytes(len);
    ipv4(&ip, &data)
}

fn frame_of(dir: Dir, packet: &[u8]) -> Vec<u8> {
    let (dst, src) = match dir {
        Dir::Egress => (INET_MAC, UPLINK_MAC),
        Dir::Ingress => (UPLINK_MAC, INET_MAC),
    };
    ethernet(dst, src, ETH_P_IP, packet)
}

pub fn arp_frame(rng: &mut Rng) -> Vec<u8> {
    let request = rng.chance(50);
    let (op, tha, dst) = if request {
        (ARP_REQUEST, [0; 6], BROADCAST)
    } else {
        (ARP_REPLY, UPLINK_MAC, UPLINK_MAC)
    };
    let spa = remote(rng).octets();
    let tpa = rng.pick(&[EXTERNAL, LAB_HOSTS[0]]).octets();
    ethernet(
        dst,
        INET_MAC,
        ETH_P_ARP,
        &arp_body(op, INET_MAC, spa, tha, tpa),
    )
}

/// IPv6 between two documentation addresses, carrying a UDP-like header
/// (to port 53, no checksum) under a next header chosen at random.
pub fn ipv6_frame(rng: &mut Rng) -> Vec<u8> {
    let data = payload(rng);
    let next_header = *rng.pick(&[PROTO_UDP, PROTO_TCP, 58, 0]);
    let mut l4 = rng.u16().to_be_bytes().to_vec();
    l4.extend_from_slice(&53u16.to_be_bytes());
    l4.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(&data);
    let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    ethernet(
        INET_MAC,
        UPLINK_MAC,
        ETH_P_IPV6,
        &ipv6_packet(src, dst, next_header, &l4),
    )
}

fn any_proto(rng: &mut Rng) -> u8 {
    *rng.pick(&[PROTO_TCP, PROTO_UDP, PROTO_ICMP])
}

/// An ICMP error of a random kind about `offending` (an IPv4 packet).
fn icmp_error_about(rng: &mut Rng, offending: &[u8]) -> Vec<u8> {
    let (kind, code, rest) = *rng.pick(&[
        (ICMP_DEST_UNREACH, 3, 0),
        (ICMP_DEST_UNREACH, 4, 1400),
        (ICMP_DEST_UNREACH, 1, 0),
        (ICMP_TIME_EXCEEDED, 0, 0),
        (12, 0, 0x1400_0000),
    ]);
    icmp_error(kind, code, rest, offending)
}

/// A valid frame travelling `dir`, of a kind chosen at random. `known` are
/// the translations the NAT holds now: replies and ICMP errors are built
/// for them; `datagrams` the fragmented datagrams it holds (`nat_frags`):
/// their later fragments are built.
pub fn valid_frame(
    rng: &mut Rng,
    dir: Dir,
    known: &[Translation],
    datagrams: &[NatFragKey],
) -> (Vec<u8>, String) {
    let want = if dir == Dir::Egress {
        NAT_FRAG_OUT
    } else {
        NAT_FRAG_IN
    };
    let ours: Vec<&NatFragKey> = datagrams.iter().filter(|k| k.dir == want).collect();
    if !ours.is_empty() && rng.chance(12) {
        let key = **rng.pick(&ours);
        let p = later_fragment(rng, &key);
        return (
            frame_of(dir, &p),
            format!("later fragment, proto {}", key.proto),
        );
    }
    let flow = (!known.is_empty()).then(|| *rng.pick(known));
    match (dir, rng.below(10)) {
        (_, 0) => (arp_frame(rng), "arp".into()),
        (_, 1) if rng.chance(50) => (ipv6_frame(rng), "ipv6".into()),
        // Egress: new and repeated flows from the lab.
        (Dir::Egress, 1..=4) => {
            let proto = any_proto(rng);
            let (src, dst) = (lab_host(rng), remote(rng));
            let (sport, dport) = (local_port(rng), remote_port(rng));
            let p = l4_packet(rng, proto, src, sport, dst, dport, true);
            (frame_of(dir, &p), format!("new flow out, proto {proto}"))
        }
        (Dir::Egress, 5..=6) if flow.is_some() => {
            let t = flow.unwrap();
            let p = l4_packet(
                rng,
                t.proto,
                t.lab,
                t.lab_port,
                t.remote,
                t.remote_port,
                true,
            );
            (
                frame_of(dir, &p),
                format!("known flow out, proto {}", t.proto),
            )
        }
        (Dir::Egress, 7) if flow.is_some() => {
            // The lab reports an error about a reply it got (as it saw it).
            let t = flow.unwrap();
            let reply = l4_packet(
                rng,
                t.proto,
                t.remote,
                t.remote_port,
                t.lab,
                t.lab_port,
                false,
            );
            let reply = fix_echo_id(t.proto, reply, t.lab_port);
            let err = icmp_error_about(rng, &reply);
            let p = ipv4(&Ip::new(t.lab, t.remote, PROTO_ICMP), &err);
            (
                frame_of(dir, &p),
                format!("ICMP error out about proto {}", t.proto),
            )
        }
        (Dir::Egress, _) => {
            // The host's own traffic.
            let proto = any_proto(rng);
            let (sport, dst, dport) = (rng.u16(), remote(rng), remote_port(rng));
            let p = l4_packet(rng, proto, EXTERNAL, sport, dst, dport, true);
            (frame_of(dir, &p), format!("host flow out, proto {proto}"))
        }
        // Ingress: replies and errors for translations, unsolicited, host's.
        (Dir::Ingress, 1..=4) if flow.is_some() => {
            let t = flow.unwrap();
            let p = l4_packet(
                rng,
                t.proto,
                t.remote,
                t.remote_port,
                EXTERNAL,
                t.external_port,
                false,
            );
            let p = fix_echo_id(t.proto, p, t.external_port);
            (frame_of(dir, &p), format!("reply in, proto {}", t.proto))
        }
        (Dir::Ingress, 5..=6) if flow.is_some() => {
            let t = flow.unwrap();
            let translated = l4_packet(
                rng,
                t.proto,
                EXTERNAL,
                t.external_port,
                t.remote,
                t.remote_port,
                true,
            );
            let err = icmp_error_about(rng, &translated);
            let from = *rng.pick(&[t.remote, ROUTER]);
            let p = ipv4(&Ip::new(from, EXTERNAL, PROTO_ICMP), &err);
            (
                frame_of(dir, &p),
                format!("ICMP error in about proto {}", t.proto),
            )
        }
        (Dir::Ingress, 7) => {
            let proto = any_proto(rng);
            let (src, sport) = (remote(rng), remote_port(rng));
            let (dst, dport) = (lab_host(rng), local_port(rng));
            let p = l4_packet(rng, proto, src, sport, dst, dport, true);
            (frame_of(dir, &p), format!("unsolicited in, proto {proto}"))
        }
        (Dir::Ingress, _) => {
            let proto = *rng.pick(&[PROTO_TCP, PROTO_UDP, PROTO_ICMP, 47]);
            let (src, sport, dport) = (remote(rng), remote_port(rng), rng.u16());
            let p = if proto == 47 {
                let data = payload(rng);
                ipv4(&Ip::new(src, EXTERNAL, 47), &data)
            } else if proto != PROTO_ICMP && rng.chance(40) {
                // A client of a published port (or of one with the other
                // protocol: the host's).
                let (port, ..) = *rng.pick(&PUBLISHED);
                let p = l4_packet(rng, proto, src, sport, EXTERNAL, port, true);
                return (
                    frame_of(dir, &p),
                    format!("to published port {port}, proto {proto}"),
                );
            } else {
                let request = rng.chance(50);
                l4_packet(rng, proto, src, sport, EXTERNAL, dport, request)
            };
            (frame_of(dir, &p), format!("host flow in, proto {proto}"))
        }
    }
}

/// [`l4_packet`] puts the id where a port would be only for requests'
/// source; for an echo *reply* addressed to `id`, rewrite it.
fn fix_echo_id(proto: u8, mut packet: Vec<u8>, id: u16) -> Vec<u8> {
    if proto == PROTO_ICMP {
        let ihl = ((packet[0] & 0x0f) as usize) * 4;
        let icmp = &mut packet[ihl..];
        icmp[4..6].copy_from_slice(&id.to_be_bytes());
        icmp[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
    }
    packet
}
