//! The switch port program's IPv6 rules for the fuzzer: what the program
//! must do with an IPv6 frame, written from the lab's IPv6 first-hop
//! security rules (netlab/doc/ARCHITECTURE.md), not from the program.
//! Where those rules left a choice open, the choice the program made is
//! written here as a rule (marked "chosen"), so that it is tested too.
//!
//! * header walk, on every port (chosen: the gateway's too, and before the
//!   source check): a payload length of 0 (a jumbogram; chosen: not with
//!   next header 59, an empty packet) or beyond the
//!   frame, or a chain of more than 4 extension headers (hop-by-hop,
//!   routing, destination options, fragment), is `drop_ipv6_malformed`;
//!   an extension header, ICMPv6 header (4 bytes) or UDP header the
//!   packet does not hold whole is `drop_truncated`;
//! * source check, endpoints: the port's global or link-local address
//!   (`ports6`), or `::` in a neighbour solicitation only (duplicate
//!   address detection); a port without a `ports6` entry sends no IPv6.
//!   Otherwise `drop_spoofed`. Then an NS or NA shorter than its target
//!   is `drop_truncated`;
//! * RA guard (RFC 6105), endpoints: router advertisements (134),
//!   redirects (137), UDP from port 547 (DHCPv6 server/relay), and a later
//!   fragment of an ICMPv6 packet (it could hide an RA, RFC 7113) are
//!   `drop_ra_guard`;
//! * ND spoofing, endpoints: an NA whose target is not one of the port's
//!   addresses, or whose target link-layer option is not the port's MAC;
//!   an NS whose source link-layer option is not the port's MAC; (chosen)
//!   an NS or NA with an option of length 0, an option header cut short,
//!   or a link-layer option whose address is cut short (RFC 4861 §4.6
//!   discards them): `drop_nd_spoof`;
//! * ND responder, every port (as the ARP responder): an NS (not DAD) for
//!   an address in `endpoints6` behind another port is answered in place
//!   (`nd_answered`) with the NA the owner would send ([`nd_answer`]:
//!   chosen, the router flag when the gateway owns the address); chosen:
//!   only an NS that is the fixed header and a 32-byte message (the NA
//!   takes exactly its room); others go to their owner;
//! * host access, endpoints: IPv6 to an address in `host_addrs6` that
//!   would reach the host stack (to the gateway port, or flooded) is
//!   `drop_host_access`;
//! * behind VLAN tags (chosen), an endpoint's IPv6 meets the same drops.
//!
//! Everything else is switched by MAC as IPv4 is.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use netlab_common::{
    counters::Counter,
    switch::{Endpoint, PORT_KIND_GATEWAY, Port6},
};

use super::frames6::addr6;
use super::switch_model::SwPort;
use crate::packets::*;

const IP: usize = 14;
/// The extension header bound of the switch's walk.
pub const EXT_BOUND: usize = 4;

/// The switch lab's IPv6 prefix: fd00:10:78:201::/64 (the ports' IPv4
/// 10.78.201.0/24 written the lab's way).
pub fn global6(p: &SwPort) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x10, 0x78, 0x201, 0, 0, 0, p.ip.octets()[3] as u16)
}

pub fn link_local6(p: &SwPort) -> Ipv6Addr {
    eui64_link_local(p.mac)
}

/// The host side's other IPv6 addresses (the uplink's global and
/// link-local) the harness lists in `host_addrs6` while host access is
/// not allowed.
pub const HOST_ADDRS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 1),
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x7811),
];
/// Beyond the host: the internet server.
pub const OUTSIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 2);
pub const STRANGER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x78, 0x201, 0, 0, 0, 0x99);
pub const STRANGER_MAC: Mac = [0x02, 0xaa, 0, 0, 0, 9];

/// The IPv6 maps of the switch as the model reads them.
#[derive(Clone, Debug, Default)]
pub struct V6Tables {
    /// The gateway port's ifindex: its addresses are a router's.
    pub gateway_port: u32,
    /// `ports6`: endpoint port ifindex → its addresses.
    pub ports6: BTreeMap<u32, Port6>,
    /// `endpoints6`: address → MAC and port.
    pub endpoints6: BTreeMap<[u8; 16], Endpoint>,
    /// `host_addrs6` (empty: host access allowed).
    pub host_addrs6: Vec<Ipv6Addr>,
}

/// What the IPv6 rules decide for a frame from an endpoint port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V6Verdict {
    Drop(Counter),
    /// Answered in place with the NA of the target's owner (its MAC;
    /// `router`: the owner is the gateway).
    Answer {
        mac: Mac,
        router: bool,
    },
    /// Switched by MAC; `to_host_addr`: its destination is in
    /// `host_addrs6` (dropped if it would reach the host stack).
    Forward {
        to_host_addr: bool,
    },
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

/// The link-layer address options of `kind` in the ND options from `at`
/// to `end` (RFC 4861 §4.6).
fn ll_options(f: &[u8], mut at: usize, end: usize, kind: u8) -> Result<Vec<Mac>, Counter> {
    let mut found = Vec::new();
    while at < end {
        // (chosen) an option header cut short, or of length 0 (RFC 4861
        // §4.6 discards the packet), or a link-layer option whose address
        // is cut short, is counted with the ND spoofing it may hide; an
        // option of another kind running past the end ends the walk.
        if at + 2 > end || f[at + 1] == 0 {
            return Err(Counter::DropNdSpoof);
        }
        if f[at] == kind {
            if at + 8 > end {
                return Err(Counter::DropNdSpoof);
            }
            found.push(f[at + 2..at + 8].try_into().unwrap());
        }
        at += f[at + 1] as usize * 8;
    }
    Ok(found)
}

/// What the header walk found: the upper layer (offset, protocol), the
/// packet's end, and whether the packet is a later fragment.
struct Walked {
    at: usize,
    next: u8,
    end: usize,
    later_fragment: bool,
}

/// The header walk of the IPv6 packet at `l3`: the payload length
/// against the frame (0 = a jumbogram), the extension headers within the
/// bound, each whole. (The version nibble is not looked at: the EtherType
/// says IPv6.)
fn walk(frame: &[u8], l3: usize) -> Result<Walked, Counter> {
    if frame.len() < l3 + 40 {
        return Err(Counter::DropTruncated);
    }
    let payload_len = be16(frame, l3 + 4) as usize;
    // A payload length of 0 is a jumbogram's, unless nothing follows the
    // header (next header 59: an empty packet, RFC 8200 §4.7; chosen).
    let jumbogram = payload_len == 0 && frame[l3 + 6] != NH_NONE;
    if jumbogram || payload_len > frame.len() - l3 - 40 {
        return Err(Counter::DropIpv6Malformed);
    }
    let end = l3 + 40 + payload_len;
    let mut next = frame[l3 + 6];
    let mut at = l3 + 40;
    let mut headers = 0;
    while matches!(
        next,
        NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS | NH_FRAGMENT
    ) {
        if headers == EXT_BOUND {
            return Err(Counter::DropIpv6Malformed);
        }
        headers += 1;
        let len = if next == NH_FRAGMENT {
            8
        } else {
            if at + 2 > end {
                return Err(Counter::DropTruncated);
            }
            (frame[at + 1] as usize + 1) * 8
        };
        if at + len > end {
            return Err(Counter::DropTruncated);
        }
        if next == NH_FRAGMENT && be16(frame, at + 2) >> 3 != 0 {
            return Ok(Walked {
                at,
                next: frame[at],
                end,
                later_fragment: true,
            });
        }
        next = frame[at];
        at += len;
    }
    Ok(Walked {
        at,
        next,
        end,
        later_fragment: false,
    })
}

/// The upper-layer header bytes the switch reads of every port's IPv6:
/// the ICMPv6 header, the UDP header.
fn upper_needed(w: &Walked) -> usize {
    match w.next {
        _ if w.later_fragment => 0,
        PROTO_ICMPV6 => 4,
        PROTO_UDP => 8,
        _ => 0,
    }
}

/// The IPv6 rules for the IPv6 packet at `l3` of `frame` (behind the
/// Ethernet header, or behind VLAN tags) entering on `port` (its source
/// MAC already checked): every port's IPv6 gets the header walk (the
/// headers the switch reads whole) and the ND responder; an endpoint's
/// the source check, the RA guard and the ND spoofing rules between them.
pub fn expect6(port: &SwPort, frame: &[u8], l3: usize, t: &V6Tables) -> V6Verdict {
    use V6Verdict::Drop;
    let w = match walk(frame, l3) {
        Ok(w) => w,
        Err(c) => return Drop(c),
    };
    let (at, next, end) = (w.at, w.next, w.end);
    let endpoint = port.kind != PORT_KIND_GATEWAY;
    if at + upper_needed(&w) > end {
        return Drop(Counter::DropTruncated);
    }
    let src = addr6(frame, l3 + 8);
    let dst = addr6(frame, l3 + 24);
    let unspecified = src.is_unspecified();
    let icmp = (next == PROTO_ICMPV6 && !w.later_fragment).then(|| frame[at]);
    if endpoint && let Some(c) = endpoint_rules(port, frame, &w, src, icmp, t) {
        return Drop(c);
    }
    // Answered in place: a solicitation that is the fixed header and a
    // 32-byte message (the NA with its target link-layer option takes
    // exactly its room), not DAD, for an address behind another port.
    if icmp == Some(ND_NEIGHBOR_SOLICIT) && !unspecified && at == l3 + 40 && end - at == 32 {
        let target: [u8; 16] = frame[at + 8..at + 24].try_into().unwrap();
        if let Some(e) = t.endpoints6.get(&target)
            && e.port_ifindex != port.ifindex
        {
            return V6Verdict::Answer {
                mac: e.mac,
                router: e.port_ifindex == t.gateway_port,
            };
        }
    }
    V6Verdict::Forward {
        to_host_addr: port.kind != PORT_KIND_GATEWAY && t.host_addrs6.contains(&dst),
    }
}

/// The endpoint's rules after the walk: the reason to drop, if any.
fn endpoint_rules(
    port: &SwPort,
    frame: &[u8],
    w: &Walked,
    src: Ipv6Addr,
    icmp: Option<u8>,
    t: &V6Tables,
) -> Option<Counter> {
    let Some(own) = t.ports6.get(&port.ifindex) else {
        return Some(Counter::DropSpoofed);
    };
    let unspecified = src.is_unspecified();
    if src.octets() != own.global && src.octets() != own.link_local && !unspecified {
        return Some(Counter::DropSpoofed);
    }
    // `::` only for duplicate address detection.
    if unspecified && icmp != Some(ND_NEIGHBOR_SOLICIT) {
        return Some(Counter::DropSpoofed);
    }
    let (at, end) = (w.at, w.end);
    if w.later_fragment {
        // No upper-layer header here: an ICMPv6 one could hide an RA.
        return (w.next == PROTO_ICMPV6).then_some(Counter::DropRaGuard);
    }
    match (w.next, icmp) {
        (_, Some(ND_ROUTER_ADVERT | ND_REDIRECT)) => Some(Counter::DropRaGuard),
        (_, Some(kind @ (ND_NEIGHBOR_ADVERT | ND_NEIGHBOR_SOLICIT))) => {
            if at + 24 > end {
                return Some(Counter::DropTruncated);
            }
            let target: [u8; 16] = frame[at + 8..at + 24].try_into().unwrap();
            let (option, own_target) = if kind == ND_NEIGHBOR_ADVERT {
                (
                    ND_OPT_TARGET_LL,
                    target == own.global || target == own.link_local,
                )
            } else {
                (ND_OPT_SOURCE_LL, true)
            };
            match ll_options(frame, at + 24, end, option) {
                Err(c) => Some(c),
                Ok(lla) => (!own_target || lla.iter().any(|m| *m != port.mac))
                    .then_some(Counter::DropNdSpoof),
            }
        }
        (PROTO_UDP, _) => (be16(frame, at) == DHCP6_SERVER_PORT).then_some(Counter::DropRaGuard),
        _ => None,
    }
}

/// The neighbour advertisement the owner (`mac`) of the NS's target sends
/// back to the soliciting endpoint (RFC 4861 §7.2.4): to its MAC and
/// address, from the target address, hop limit 255, solicited and
/// override set (and router, when the owner is the gateway: the host
/// forwards), with the target link-layer option; the frame's padding
/// beyond the packet kept as it was (as the ARP answer keeps it).
pub fn nd_answer(ns: &[u8], mac: Mac, router: bool) -> Vec<u8> {
    let requester_mac: Mac = ns[6..12].try_into().unwrap();
    let requester = addr6(ns, IP + 8);
    let upper = walk6(&ns[IP..], ns.len() - IP).expect("a solicitation the model answers");
    let target = addr6(ns, IP + upper.at + 8);
    let router = if router { NA_ROUTER } else { 0 };
    let body = na_body(
        router | NA_SOLICITED | NA_OVERRIDE,
        target,
        &ll_option(ND_OPT_TARGET_LL, mac),
    );
    let mut ip = Ipv6Header::new(target, requester);
    ip.hop_limit = 255;
    let na = icmpv6(target, requester, ND_NEIGHBOR_ADVERT, 0, &body);
    let mut frame = ipv6_frame_of(requester_mac, mac, &ipv6_with(&ip, PROTO_ICMPV6, &na));
    frame.extend_from_slice(&ns[frame.len().min(ns.len())..]);
    frame
}

/// The model's test fixture: the switch model's ports (ifindex 10..),
/// every port's global and link-local address in `endpoints6`, the
/// endpoint ports' in `ports6` (the model's own tests and the generator's
/// coverage test share it).
#[cfg(test)]
pub(crate) fn example_tables() -> (Vec<SwPort>, V6Tables) {
    let mut ports = crate::fuzz::switch_model::PORTS.to_vec();
    for (i, p) in ports.iter_mut().enumerate() {
        p.ifindex = 10 + i as u32;
    }
    let mut t = V6Tables {
        gateway_port: ports[3].ifindex,
        ..Default::default()
    };
    for p in &ports {
        let e = Endpoint {
            mac: p.mac,
            _pad: [0; 2],
            port_ifindex: p.ifindex,
        };
        t.endpoints6.insert(global6(p).octets(), e);
        t.endpoints6.insert(link_local6(p).octets(), e);
        if p.kind == netlab_common::switch::PORT_KIND_ENDPOINT {
            t.ports6.insert(
                p.ifindex,
                Port6 {
                    global: global6(p).octets(),
                    link_local: link_local6(p).octets(),
                },
            );
        }
    }
    (ports, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(from: &SwPort, src: Ipv6Addr, target: Ipv6Addr, lla: Option<Mac>) -> Vec<u8> {
        let dst = solicited_node(target);
        let opts = lla
            .map(|m| ll_option(ND_OPT_SOURCE_LL, m))
            .unwrap_or_default();
        let mut ip = Ipv6Header::new(src, dst);
        ip.hop_limit = 255;
        let m = icmpv6(src, dst, ND_NEIGHBOR_SOLICIT, 0, &ns_body(target, &opts));
        ipv6_frame_of(
            multicast_mac(dst),
            from.mac,
            &ipv6_with(&ip, PROTO_ICMPV6, &m),
        )
    }

    #[test]
    fn the_rules_decide_the_textbook_cases() {
        let (ports, t) = example_tables();
        let (a, b, gw) = (&ports[0], &ports[1], &ports[3]);
        let answer = expect6(a, &ns(a, link_local6(a), global6(b), Some(a.mac)), IP, &t);
        assert_eq!(
            answer,
            V6Verdict::Answer {
                mac: b.mac,
                router: false
            }
        );
        let to_gw = expect6(a, &ns(a, global6(a), link_local6(gw), None), IP, &t);
        // (An NS without a source link-layer option is 24 bytes: the NA
        // would not fit in its place.)
        assert!(matches!(to_gw, V6Verdict::Forward { .. }));
        let to_gw = expect6(a, &ns(a, global6(a), link_local6(gw), Some(a.mac)), IP, &t);
        assert_eq!(
            to_gw,
            V6Verdict::Answer {
                mac: gw.mac,
                router: true
            }
        );
        // DAD is not answered, and may not carry a link-layer option.
        let dad = ns(a, Ipv6Addr::UNSPECIFIED, global6(a), None);
        assert!(matches!(
            expect6(a, &dad, IP, &t),
            V6Verdict::Forward { .. }
        ));
        let spoofed = ns(a, global6(a), global6(b), Some(b.mac));
        assert_eq!(
            expect6(a, &spoofed, IP, &t),
            V6Verdict::Drop(Counter::DropNdSpoof)
        );
        let other_source = ns(a, global6(b), global6(b), None);
        assert_eq!(
            expect6(a, &other_source, IP, &t),
            V6Verdict::Drop(Counter::DropSpoofed)
        );
        // The answer: the owner's NA, with a right checksum.
        let reply = nd_answer(
            &ns(a, link_local6(a), global6(b), Some(a.mac)),
            b.mac,
            false,
        );
        verify_checksums6(&reply).unwrap();
        assert_eq!(&reply[0..12], &[a.mac, b.mac].concat()[..]);
        assert_eq!(reply.len(), 14 + 40 + 32);
        assert_eq!((reply[14 + 7], reply[54], reply[58]), (255, 136, 0x60));
        assert_eq!(&reply[14 + 8..14 + 24], &global6(b).octets());
        assert_eq!(&reply[14 + 24..14 + 40], &link_local6(a).octets());
        assert_eq!(&reply[78..86], &ll_option(ND_OPT_TARGET_LL, b.mac)[..]);
        // A port without IPv6 addresses sends no IPv6.
        let c = &ports[2];
        let mut none = t.clone();
        none.ports6.remove(&c.ifindex);
        let from_c = ns(c, link_local6(c), global6(a), Some(c.mac));
        assert_eq!(
            expect6(c, &from_c, IP, &none),
            V6Verdict::Drop(Counter::DropSpoofed)
        );
    }
}
