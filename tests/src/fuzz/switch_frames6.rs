//! The frames an endpoint (or the gateway) sends over IPv6 into the
//! fuzzer's switch, of every kind the switch's IPv6 rules tell apart
//! ([`super::switch_model6`]): neighbour solicitations and advertisements
//! (right and wrong targets and link-layer options, DAD), router
//! advertisements, redirects, router solicitations, DHCPv6 both ways, MLD,
//! ICMPv6 errors, unicast TCP/UDP/echo, from the port's own addresses
//! mostly and from others' sometimes.

use std::net::Ipv6Addr;

use netlab_common::switch::PORT_KIND_GATEWAY;

use super::Rng;
use super::frames6::{ALL_NODES, ALL_ROUTERS, DHCP6_SERVERS, packet6};
use super::switch_model::SwPort;
use super::switch_model6::{HOST_ADDRS6, OUTSIDE6, STRANGER_MAC, STRANGER6, global6, link_local6};
use crate::packets::*;

/// An IPv6 frame from port `from` (sources its own mostly, sometimes not)
/// towards port `to`, of a kind the rules above tell apart. `src_mac` is
/// what the caller chose as the Ethernet source.
pub fn ipv6_case(rng: &mut Rng, from: &SwPort, to: &SwPort, src_mac: Mac) -> (Vec<u8>, String) {
    let gateway = from.kind == PORT_KIND_GATEWAY;
    let src = match rng.below(20) {
        _ if gateway && rng.chance(40) => OUTSIDE6,
        0..=6 => global6(from),
        7..=13 => link_local6(from),
        14 | 15 => Ipv6Addr::UNSPECIFIED,
        16 => global6(to),
        17 => link_local6(to),
        18 => STRANGER6,
        _ => OUTSIDE6,
    };
    let own_lla = if rng.chance(85) {
        src_mac
    } else {
        STRANGER_MAC
    };
    let peer = *rng.pick(&[global6(to), link_local6(to)]);
    let nd_ip = |dst: Ipv6Addr, rng: &mut Rng| {
        let mut ip = Ipv6Header::new(src, dst);
        ip.hop_limit = if rng.chance(90) { 255 } else { 64 };
        ip
    };
    let (dst, proto, l4, what, plain_ip) = match rng.below(14) {
        0 | 1 => {
            let target = *rng.pick(&[
                global6(to),
                link_local6(to),
                global6(to),
                STRANGER6,
                global6(from),
            ]);
            let dst = if rng.chance(70) {
                solicited_node(target)
            } else {
                target
            };
            let opts = match rng.below(8) {
                _ if src.is_unspecified() && rng.chance(80) => Vec::new(),
                0..=4 => ll_option(ND_OPT_SOURCE_LL, own_lla),
                5 => [
                    vec![14, 1, 1, 2, 3, 4, 5, 6],
                    ll_option(ND_OPT_SOURCE_LL, own_lla),
                ]
                .concat(),
                _ => Vec::new(),
            };
            let body = ns_body(target, &opts);
            let m = icmpv6(src, dst, ND_NEIGHBOR_SOLICIT, 0, &body);
            (dst, PROTO_ICMPV6, m, "NS", Some(nd_ip(dst, rng)))
        }
        2 | 3 => {
            let target = *rng.pick(&[global6(from), link_local6(from), global6(to), STRANGER6]);
            let dst = if rng.chance(60) { peer } else { ALL_NODES };
            let opts = if rng.chance(75) {
                ll_option(ND_OPT_TARGET_LL, own_lla)
            } else {
                Vec::new()
            };
            let flags = *rng.pick(&[
                NA_SOLICITED | NA_OVERRIDE,
                NA_OVERRIDE,
                NA_ROUTER | NA_OVERRIDE,
            ]);
            let m = icmpv6(
                src,
                dst,
                ND_NEIGHBOR_ADVERT,
                0,
                &na_body(flags, target, &opts),
            );
            (dst, PROTO_ICMPV6, m, "NA", Some(nd_ip(dst, rng)))
        }
        4 => {
            let prefix = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 0);
            let m = icmpv6(
                src,
                ALL_NODES,
                ND_ROUTER_ADVERT,
                0,
                &ra_body(prefix, Some(own_lla)),
            );
            (
                ALL_NODES,
                PROTO_ICMPV6,
                m,
                "RA",
                Some(nd_ip(ALL_NODES, rng)),
            )
        }
        5 => {
            let m = icmpv6(src, peer, ND_REDIRECT, 0, &redirect_body(src, OUTSIDE6));
            (peer, PROTO_ICMPV6, m, "redirect", Some(nd_ip(peer, rng)))
        }
        6 => {
            let m = icmpv6(src, ALL_ROUTERS, ND_ROUTER_SOLICIT, 0, &[0; 4]);
            (
                ALL_ROUTERS,
                PROTO_ICMPV6,
                m,
                "RS",
                Some(nd_ip(ALL_ROUTERS, rng)),
            )
        }
        7 => {
            let n = rng.range(4, 40);
            let data = rng.bytes(n);
            let u = udp6(
                src,
                DHCP6_SERVERS,
                DHCP6_CLIENT_PORT,
                DHCP6_SERVER_PORT,
                &data,
            );
            (DHCP6_SERVERS, PROTO_UDP, u, "DHCPv6 client", None)
        }
        8 => {
            let n = rng.range(4, 40);
            let data = rng.bytes(n);
            let u = udp6(src, peer, DHCP6_SERVER_PORT, DHCP6_CLIENT_PORT, &data);
            (peer, PROTO_UDP, u, "DHCPv6 server", None)
        }
        9 => {
            // An MLD report (hop-by-hop router alert follows via the chain).
            let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
            let m = icmpv6(src, group, 143, 0, &[0, 0, 0, 0]);
            (group, PROTO_ICMPV6, m, "MLD report", None)
        }
        10 => {
            let quoted = *rng.pick(&[PROTO_TCP, PROTO_UDP, PROTO_ICMPV6]);
            let offending = super::frames6::plain_packet(rng, quoted, peer, 80, src, 40000, true);
            let e = super::frames6::error_about(rng, src, peer, &offending);
            (peer, PROTO_ICMPV6, e, "ICMPv6 error", None)
        }
        _ => {
            let dst = if rng.chance(30) {
                *rng.pick(&[HOST_ADDRS6[0], HOST_ADDRS6[1], OUTSIDE6])
            } else {
                peer
            };
            let proto = *rng.pick(&[PROTO_TCP, PROTO_UDP, PROTO_ICMPV6]);
            let l4 = super::frames6::l4_6(rng, proto, src, 40000, dst, 80, true);
            (dst, proto, l4, "IPv6 unicast", None)
        }
    };
    let packet = match plain_ip {
        Some(ip) if rng.chance(90) => ipv6_with(&ip, proto, &l4),
        _ => packet6(rng, src, dst, proto, &l4),
    };
    let dst_mac = if dst.is_multicast() {
        multicast_mac(dst)
    } else if rng.chance(90) {
        to.mac
    } else {
        BROADCAST
    };
    let frame = ipv6_frame_of(dst_mac, src_mac, &packet);
    (frame, format!("{what} {src} -> {dst}"))
}
