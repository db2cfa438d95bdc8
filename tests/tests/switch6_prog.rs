//! IPv6 first-hop security of the port programs under BPF_PROG_TEST_RUN:
//! the header walk, the source check, the RA guard, the ND spoof rules,
//! the ND responder and the host-access rule, on the TC port program and
//! on the XDP port program loaded from the same object with the same maps.
//! Every case runs the frame through both and asserts each one's verdict
//! and the counters it moved; where the XDP program leaves the decision
//! to TC (solicitations the responder may answer, VLAN tags) it must say
//! so (`xdp_port_to_tc`) and nothing else.
//!
//! Like switch_prog.rs, every test runs on a thread in a private network
//! namespace whose throwaway veth devices carry the made-up ports'
//! ifindexes (flood copies and XDP devmap entries need real devices).

use std::net::Ipv6Addr;

use aya::maps::DevMapHash;
use netlab::{
    bpf::{
        loader::PORT_PROGRAM,
        maps::SwitchMaps,
        maps6::{HostAddrs6, SwitchMaps6},
        verdict::{TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_DROP, XDP_PASS, XDP_REDIRECT},
    },
    datapath::xdp::PORT_XDP_PROGRAM,
    names::link_local_for,
};
use netlab_common::{
    counters::Counter,
    maps::XDP_PORTS_MAP,
    switch::{HOST_ADDR_LOCAL, PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, Port6},
};
use netlab_tests::{
    harness::{Loaded, moved, port_info},
    packets::{self, Mac, *},
    private_netns::{add_veth_port, assert_private_netns, in_private_netns},
};

const A_IF: u32 = 121;
const B_IF: u32 = 122;
const GW_IF: u32 = 123;
const VBRIDGE_IF: u32 = 124;
/// An endpoint port without IPv6 (no `ports6` entry).
const C_IF: u32 = 125;
const A_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 1];
const B_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 2];
const GW_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 5];
const C_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 3];

fn global(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x10, 0x162, 0, 0, 0, 0, last)
}
fn a() -> Ipv6Addr {
    global(1)
}
fn b() -> Ipv6Addr {
    global(2)
}
fn gw() -> Ipv6Addr {
    global(5)
}
fn ll(mac: Mac) -> Ipv6Addr {
    link_local_for(mac)
}
/// Another address of the host side, and one beyond it.
fn host_other() -> Ipv6Addr {
    "2001:db8:203:113::1".parse().unwrap()
}
fn outside() -> Ipv6Addr {
    "2001:db8:203:113::2".parse().unwrap()
}

/// What one program did with a frame: its verdict, the frame after, and
/// the counters that moved (by name).
#[derive(Debug)]
struct Run {
    verdict: u32,
    out: Vec<u8>,
    moved: Vec<(&'static str, u64)>,
}

/// Both port programs loaded from one object (one set of maps), and the
/// made-up lab: endpoints A and B with IPv6, C without, the gateway.
struct Switch6 {
    loaded: Loaded,
}

impl Switch6 {
    fn new(name: &str) -> Self {
        assert_private_netns("the port programs under test_run");
        for (dev, ifindex) in [
            ("s6a", A_IF),
            ("s6b", B_IF),
            ("s6gw", GW_IF),
            ("s6vbr", VBRIDGE_IF),
            ("s6c", C_IF),
        ] {
            add_veth_port(dev, Some(ifindex));
        }
        let mut loaded = Loaded::new("sw6", name, None, &[PORT_PROGRAM, PORT_XDP_PROGRAM]);
        let mut maps = SwitchMaps::open(loaded.dir()).expect("maps");
        let mut maps6 = SwitchMaps6::open(loaded.dir()).expect("IPv6 maps");
        let ports = [
            (
                A_IF,
                A_IF,
                PORT_KIND_ENDPOINT,
                A_MAC,
                [10, 162, 0, 1],
                0,
                Some(a()),
            ),
            (
                B_IF,
                B_IF,
                PORT_KIND_ENDPOINT,
                B_MAC,
                [10, 162, 0, 2],
                1,
                Some(b()),
            ),
            (
                GW_IF,
                VBRIDGE_IF,
                PORT_KIND_GATEWAY,
                GW_MAC,
                [10, 162, 0, 5],
                2,
                Some(gw()),
            ),
            (
                C_IF,
                C_IF,
                PORT_KIND_ENDPOINT,
                C_MAC,
                [10, 162, 0, 3],
                3,
                None,
            ),
        ];
        for (ifindex, deliver, kind, mac, ip, slot, v6) in ports {
            maps.write_port(&port_info(ifindex, deliver, kind, mac, ip, slot))
                .unwrap();
            let addrs = v6.map(|g| Port6 {
                global: g.octets(),
                link_local: ll(mac).octets(),
            });
            maps6
                .write_port(ifindex, mac, kind == PORT_KIND_ENDPOINT, addrs)
                .unwrap();
        }
        let mut devmap: DevMapHash<_> =
            DevMapHash::try_from(loaded.ebpf_mut().map_mut(XDP_PORTS_MAP).unwrap()).unwrap();
        for i in [A_IF, B_IF, GW_IF, C_IF] {
            devmap.insert(i, i, None, 0).expect("devmap entry");
        }
        HostAddrs6::open(loaded.dir())
            .unwrap()
            .sync(&[(host_other(), HOST_ADDR_LOCAL)].into_iter().collect())
            .unwrap();
        Self { loaded }
    }

    fn tc(&self, ingress: u32, frame: &[u8]) -> Run {
        let before = self.loaded.counters();
        let (verdict, out) = self
            .loaded
            .run_tc(PORT_PROGRAM, frame, Some(ingress))
            .expect("test_run");
        let moved = moved(&before, &self.loaded.counters());
        Run {
            verdict,
            out,
            moved,
        }
    }

    fn xdp(&self, ingress: u32, frame: &[u8]) -> Run {
        let before = self.loaded.counters();
        let (verdict, out) = self
            .loaded
            .run_xdp(PORT_XDP_PROGRAM, frame, Some(ingress))
            .expect("test_run");
        let moved = moved(&before, &self.loaded.counters());
        Run {
            verdict,
            out,
            moved,
        }
    }

    /// Both programs drop `frame` from `ingress` for `reason`, counted once
    /// each.
    fn dropped(&self, ingress: u32, frame: &[u8], reason: Counter, what: &str) {
        let tc = self.tc(ingress, frame);
        assert_eq!(tc.verdict, TC_ACT_SHOT, "TC, {what}: {tc:?}");
        assert_eq!(tc.moved, [("port_rx", 1), (reason.name(), 1)], "TC, {what}");
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_DROP, "XDP, {what}: {xdp:?}");
        assert_eq!(
            xdp.moved,
            sorted([(reason.name(), 1), ("xdp_port_rx", 1)]),
            "XDP, {what}"
        );
    }

    /// TC delivers `frame` as unicast (`counter`: to a namespace or the
    /// host) and XDP redirects it the same way.
    fn unicast(&self, ingress: u32, frame: &[u8], counter: Counter, what: &str) {
        let tc = self.tc(ingress, frame);
        assert_eq!(tc.verdict, TC_ACT_REDIRECT, "TC, {what}: {tc:?}");
        assert_eq!(tc.out, frame, "TC, {what}: switching rewrites nothing");
        assert_eq!(
            tc.moved,
            sorted([("port_rx", 1), (counter.name(), 1)]),
            "TC, {what}"
        );
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_REDIRECT, "XDP, {what}: {xdp:?}");
        assert_eq!(
            xdp.moved,
            sorted([
                (counter.name(), 1),
                ("xdp_port_redirect", 1),
                ("xdp_port_rx", 1)
            ]),
            "XDP, {what}"
        );
    }

    /// Both programs flood `frame` (TC: copies to the 3 other ports).
    fn flooded(&self, ingress: u32, frame: &[u8], what: &str) {
        let tc = self.tc(ingress, frame);
        assert_eq!(tc.verdict, TC_ACT_SHOT, "TC, {what}: {tc:?}");
        assert_eq!(
            tc.moved,
            [("port_rx", 1), ("flooded", 1), ("flood_copies", 3)],
            "TC, {what}"
        );
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_REDIRECT, "XDP, {what}: {xdp:?}");
        assert_eq!(
            xdp.moved,
            sorted([("flooded", 1), ("xdp_port_flood", 1), ("xdp_port_rx", 1)]),
            "XDP, {what}"
        );
    }

    /// The XDP program hands `frame` to TC and decides nothing.
    fn xdp_passes_to_tc(&self, ingress: u32, frame: &[u8], what: &str) {
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_PASS, "XDP, {what}: {xdp:?}");
        assert_eq!(xdp.out, frame, "XDP, {what}");
        assert_eq!(
            xdp.moved,
            [("xdp_port_rx", 1), ("xdp_port_to_tc", 1)],
            "XDP, {what}"
        );
    }
}

/// `moved` lists counters in index order: the expectation `v` put in the
/// same order.
fn sorted<const N: usize>(mut v: [(&'static str, u64); N]) -> Vec<(&'static str, u64)> {
    let index = |name: &str| Counter::ALL.iter().position(|c| c.name() == name);
    v.sort_by_key(|(name, _)| index(name));
    v.to_vec()
}

/// A UDP datagram over IPv6 in a frame.
fn udp_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ports: (u16, u16),
) -> Vec<u8> {
    eth6(
        dst_mac,
        src_mac,
        &ipv6_full(
            &Ip6::new(src, dst),
            17,
            &udp6(src, dst, ports.0, ports.1, b"payload"),
        ),
    )
}

fn echo(dst_mac: Mac, src_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let m = icmpv6(src, dst, ICMPV6_ECHO_REQUEST, 0, &[0, 7, 0, 1, b'p', b'i']);
    eth6(
        dst_mac,
        src_mac,
        &ipv6_full(&Ip6::new(src, dst), PROTO_ICMPV6, &m),
    )
}

#[test]
fn an_endpoint_sends_ipv6_only_from_its_own_addresses() {
    in_private_netns(|| {
        let sw = Switch6::new("source");
        // Its global and its link-local address: switched.
        sw.unicast(
            A_IF,
            &echo(B_MAC, A_MAC, a(), b()),
            Counter::RedirectPeer,
            "global",
        );
        sw.unicast(
            A_IF,
            &echo(B_MAC, A_MAC, ll(A_MAC), ll(B_MAC)),
            Counter::RedirectPeer,
            "link-local",
        );
        sw.unicast(
            A_IF,
            &echo(GW_MAC, A_MAC, a(), outside()),
            Counter::ToHost,
            "to the gateway",
        );
        // Another endpoint's address, a made-up one, the gateway's, a
        // link-local of another MAC: spoofed.
        for (src, what) in [
            (b(), "B's global"),
            (ll(B_MAC), "B's link-local"),
            (gw(), "the gateway's"),
            (global(99), "an unused one"),
            ("fe80::1".parse().unwrap(), "fe80::1"),
        ] {
            sw.dropped(
                A_IF,
                &echo(B_MAC, A_MAC, src, b()),
                Counter::DropSpoofed,
                what,
            );
        }
        // `::` only for duplicate address detection.
        sw.flooded(
            A_IF,
            &neighbour_solicit(A_MAC, Ipv6Addr::UNSPECIFIED, a()),
            "DAD solicitation",
        );
        sw.dropped(
            A_IF,
            &udp_frame(B_MAC, A_MAC, Ipv6Addr::UNSPECIFIED, b(), (1000, 2000)),
            Counter::DropSpoofed,
            ":: in UDP",
        );
        sw.dropped(
            A_IF,
            &echo(B_MAC, A_MAC, Ipv6Addr::UNSPECIFIED, b()),
            Counter::DropSpoofed,
            ":: in an echo request",
        );
        // A port with no IPv6 addresses sends no IPv6 at all, DAD included.
        sw.dropped(
            C_IF,
            &echo(B_MAC, C_MAC, ll(C_MAC), b()),
            Counter::DropSpoofed,
            "C",
        );
        sw.dropped(
            C_IF,
            &neighbour_solicit(C_MAC, Ipv6Addr::UNSPECIFIED, global(3)),
            Counter::DropSpoofed,
            "C's DAD",
        );
        // The host's frames are not checked.
        sw.unicast(
            GW_IF,
            &echo(A_MAC, GW_MAC, outside(), a()),
            Counter::RedirectPeer,
            "from the host",
        );
    });
}

#[test]
fn the_ra_guard_drops_router_and_dhcpv6_server_messages_from_endpoints() {
    in_private_netns(|| {
        let sw = Switch6::new("ra-guard");
        let rogue = router_advert(A_MAC, ll(A_MAC), "2001:db8:bad::".parse().unwrap());
        sw.dropped(A_IF, &rogue, Counter::DropRaGuard, "router advertisement");
        // Redirect: "reach B through me" (target A, destination B).
        let mut body = vec![0u8; 4];
        body.extend_from_slice(&ll(A_MAC).octets());
        body.extend_from_slice(&b().octets());
        let redirect = nd_frame(A_MAC, B_MAC, ll(A_MAC), ll(B_MAC), ICMPV6_REDIRECT, &body);
        sw.dropped(A_IF, &redirect, Counter::DropRaGuard, "redirect");
        // DHCPv6: server (547) to client (546), and a reply to a client
        // from any port; a client's request to the servers passes.
        let servers = "ff02::1:2".parse().unwrap();
        for ports in [(547, 546), (547, 547), (40000, 546)] {
            sw.dropped(
                A_IF,
                &udp_frame(B_MAC, A_MAC, ll(A_MAC), ll(B_MAC), ports),
                Counter::DropRaGuard,
                &format!("DHCPv6 server message {ports:?}"),
            );
        }
        sw.flooded(
            A_IF,
            &udp_frame(
                multicast_mac(servers),
                A_MAC,
                ll(A_MAC),
                servers,
                (546, 547),
            ),
            "DHCPv6 client solicit",
        );
        // A later ICMPv6 fragment (it may carry the rest of an RA).
        let mut ip = Ip6::new(ll(A_MAC), ll(B_MAC));
        ip.ext = vec![(NEXTHDR_FRAGMENT, fragment_header(2, false, 9))];
        let later = eth6(B_MAC, A_MAC, &ipv6_full(&ip, PROTO_ICMPV6, &[0u8; 16]));
        sw.dropped(A_IF, &later, Counter::DropRaGuard, "later ICMPv6 fragment");
        // ...but a later UDP fragment is just data.
        let later_udp = eth6(B_MAC, A_MAC, &ipv6_full(&ip, 17, &[0u8; 16]));
        sw.unicast(
            A_IF,
            &later_udp,
            Counter::RedirectPeer,
            "later UDP fragment",
        );
        // The first ICMPv6 fragment is classified by its type.
        ip.ext = vec![(NEXTHDR_FRAGMENT, fragment_header(0, true, 9))];
        let m = icmpv6(ll(A_MAC), ll(B_MAC), ICMPV6_ROUTER_ADVERT, 0, &[0u8; 12]);
        let first = eth6(B_MAC, A_MAC, &ipv6_full(&ip, PROTO_ICMPV6, &m));
        sw.dropped(
            A_IF,
            &first,
            Counter::DropRaGuard,
            "first fragment of an RA",
        );
        // The host (the real router) may advertise.
        let from_host = router_advert(GW_MAC, ll(GW_MAC), "fd00:10:162::".parse().unwrap());
        sw.flooded(GW_IF, &from_host, "the gateway's own RA");
        // Behind a priority tag, the rules still hold (TC; XDP passes tags).
        let tagged = tag(ETH_P_8021AD, 0, &tag(ETH_P_8021Q, 0, &rogue));
        let tc = sw.tc(A_IF, &tagged);
        assert_eq!(tc.verdict, TC_ACT_SHOT);
        assert_eq!(tc.moved, [("port_rx", 1), ("drop_ra_guard", 1)]);
        sw.xdp_passes_to_tc(A_IF, &tagged, "tagged RA");
    });
}

/// The advertisement the responder should send for `target` (owned by
/// `owner_mac`) to `asker` at `asker_mac`: built from scratch by the
/// tests' builder and checksum oracle.
fn expected_advert(
    owner_mac: Mac,
    target: Ipv6Addr,
    asker_mac: Mac,
    asker: Ipv6Addr,
    flags: u8,
) -> Vec<u8> {
    nd_frame(
        owner_mac,
        asker_mac,
        target,
        asker,
        ICMPV6_NEIGHBOUR_ADVERT,
        &nd_body(
            flags,
            target,
            &[lladdr_option(ND_OPT_TARGET_LLADDR, owner_mac)],
        ),
    )
}

#[test]
fn solicitations_for_known_addresses_are_answered_in_place() {
    in_private_netns(|| {
        let sw = Switch6::new("responder");
        let cases = [
            (
                A_IF,
                A_MAC,
                a(),
                b(),
                B_MAC,
                NA_SOLICITED | NA_OVERRIDE,
                "B's global",
            ),
            (
                A_IF,
                A_MAC,
                ll(A_MAC),
                ll(B_MAC),
                B_MAC,
                NA_SOLICITED | NA_OVERRIDE,
                "B's link-local",
            ),
            (
                A_IF,
                A_MAC,
                a(),
                gw(),
                GW_MAC,
                NA_ROUTER | NA_SOLICITED | NA_OVERRIDE,
                "the gateway's global",
            ),
            (
                A_IF,
                A_MAC,
                ll(A_MAC),
                ll(GW_MAC),
                GW_MAC,
                NA_ROUTER | NA_SOLICITED | NA_OVERRIDE,
                "the gateway's link-local",
            ),
            (
                GW_IF,
                GW_MAC,
                gw(),
                a(),
                A_MAC,
                NA_SOLICITED | NA_OVERRIDE,
                "A, asked by the host",
            ),
        ];
        let mut answered = 0;
        for (ingress, mac, src, target, owner_mac, flags, what) in cases {
            let ns = neighbour_solicit(mac, src, target);
            sw.xdp_passes_to_tc(ingress, &ns, what);
            let tc = sw.tc(ingress, &ns);
            assert_eq!(tc.verdict, TC_ACT_REDIRECT, "{what}: back out of its port");
            assert_eq!(tc.moved, [("port_rx", 1), ("nd_answered", 1)], "{what}");
            answered += 1;
            let na = &tc.out;
            // Field by field, then the whole frame against the builder's.
            assert_eq!(&na[0..6], &mac, "{what}: to the asker's MAC");
            assert_eq!(&na[6..12], &owner_mac, "{what}: from the owner's MAC");
            assert_eq!(&na[12..14], &ETH_P_IPV6.to_be_bytes());
            assert_eq!(&na[14..18], &[0x60, 0, 0, 0], "{what}: version 6");
            assert_eq!(&na[18..20], &[0, 32], "{what}: payload length");
            assert_eq!(
                (na[20], na[21]),
                (PROTO_ICMPV6, 255),
                "{what}: ICMPv6, hop limit 255"
            );
            assert_eq!(&na[22..38], &target.octets(), "{what}: from the target");
            assert_eq!(&na[38..54], &src.octets(), "{what}: to the asker");
            assert_eq!((na[54], na[55]), (ICMPV6_NEIGHBOUR_ADVERT, 0), "{what}");
            assert_eq!(&na[58..62], &[flags, 0, 0, 0], "{what}: flags");
            assert_eq!(&na[62..78], &target.octets(), "{what}: target");
            assert_eq!(&na[78..80], &[ND_OPT_TARGET_LLADDR, 1], "{what}: option");
            assert_eq!(&na[80..86], &owner_mac, "{what}: target link-layer address");
            assert!(upper_checksum_holds(&na[14..]), "{what}: ICMPv6 checksum");
            assert_eq!(
                *na,
                expected_advert(owner_mac, target, mac, src, flags),
                "{what}"
            );
        }
        assert_eq!(sw.loaded.counter(Counter::NdAnswered), answered);

        // Not answered, switched: an unknown target, the asker's own
        // address, the host asking for the gateway's (its own) address.
        for (ingress, mac, src, target, what) in [
            (A_IF, A_MAC, a(), global(99), "an unknown target"),
            (A_IF, A_MAC, a(), a(), "its own address"),
            (GW_IF, GW_MAC, gw(), gw(), "the gateway's own, by the host"),
        ] {
            let ns = neighbour_solicit(mac, src, target);
            sw.xdp_passes_to_tc(ingress, &ns, what);
            let tc = sw.tc(ingress, &ns);
            assert_eq!(tc.verdict, TC_ACT_SHOT, "{what}: flooded");
            assert_eq!(
                tc.moved,
                [("port_rx", 1), ("flooded", 1), ("flood_copies", 3)],
                "{what}"
            );
        }
        // Not of the shape answered in place (no source link-layer option,
        // an extension header): switched; XDP decides those itself.
        let bare = nd_frame(
            A_MAC,
            multicast_mac(solicited_node(b())),
            a(),
            solicited_node(b()),
            ICMPV6_NEIGHBOUR_SOLICIT,
            &nd_body(0, b(), &[]),
        );
        sw.flooded(A_IF, &bare, "no option");
        let mut ip = Ip6::new(a(), solicited_node(b()));
        ip.hop_limit = 255;
        ip.ext = vec![(NEXTHDR_DEST, options_header(1))];
        let m = icmpv6(
            a(),
            solicited_node(b()),
            ICMPV6_NEIGHBOUR_SOLICIT,
            0,
            &nd_body(0, b(), &[lladdr_option(ND_OPT_SOURCE_LLADDR, A_MAC)]),
        );
        let extended = eth6(
            multicast_mac(solicited_node(b())),
            A_MAC,
            &ipv6_full(&ip, PROTO_ICMPV6, &m),
        );
        sw.flooded(A_IF, &extended, "behind a destination options header");
        assert_eq!(sw.loaded.counter(Counter::NdAnswered), answered);
    });
}

#[test]
fn duplicate_address_detection_is_flooded_never_answered() {
    in_private_netns(|| {
        let sw = Switch6::new("dad");
        // A probing for its own address, and for B's (a real duplicate the
        // responder must not fake either way): switched as multicast.
        for (target, what) in [(a(), "its own"), (b(), "B's")] {
            sw.flooded(
                A_IF,
                &neighbour_solicit(A_MAC, Ipv6Addr::UNSPECIFIED, target),
                what,
            );
        }
        assert_eq!(sw.loaded.counter(Counter::NdAnswered), 0);
    });
}

#[test]
fn neighbour_discovery_cannot_claim_another_address_or_mac() {
    in_private_netns(|| {
        let sw = Switch6::new("nd-spoof");
        let own = lladdr_option(ND_OPT_TARGET_LLADDR, A_MAC);
        // Honest advertisements: flooded to all nodes.
        sw.flooded(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[own.clone()]),
            "own global",
        );
        sw.flooded(
            A_IF,
            &neighbour_advert(A_MAC, ll(A_MAC), ll(A_MAC), NA_OVERRIDE, &[]),
            "own link-local, no option",
        );
        // Claiming B's or the gateway's address, from A's own source.
        for (target, what) in [
            (b(), "B's global"),
            (ll(B_MAC), "B's link-local"),
            (gw(), "the gateway's"),
        ] {
            sw.dropped(
                A_IF,
                &neighbour_advert(A_MAC, a(), target, NA_OVERRIDE, &[own.clone()]),
                Counter::DropNdSpoof,
                &format!("NA for {what}"),
            );
        }
        // Its own address with another MAC in the option (first or later).
        let wrong = lladdr_option(ND_OPT_TARGET_LLADDR, B_MAC);
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[wrong.clone()]),
            Counter::DropNdSpoof,
            "NA with B's MAC",
        );
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[own.clone(), wrong]),
            Counter::DropNdSpoof,
            "NA with B's MAC in a second option",
        );
        // A solicitation with another MAC in its source option.
        let ns = nd_frame(
            A_MAC,
            multicast_mac(solicited_node(b())),
            a(),
            solicited_node(b()),
            ICMPV6_NEIGHBOUR_SOLICIT,
            &nd_body(0, b(), &[lladdr_option(ND_OPT_SOURCE_LLADDR, GW_MAC)]),
        );
        sw.dropped(A_IF, &ns, Counter::DropNdSpoof, "NS with the gateway's MAC");
        // Options the check cannot follow: length 0, running past the
        // message, more than four.
        let zero = vec![ND_OPT_TARGET_LLADDR, 0, 0, 0, 0, 0, 0, 0];
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[zero]),
            Counter::DropNdSpoof,
            "option of length 0",
        );
        let long = vec![ND_OPT_TARGET_LLADDR, 2, 0, 0, 0, 0, 0, 0];
        sw.dropped(
            A_IF,
            &neighbour_advert(A_MAC, a(), a(), NA_OVERRIDE, &[long]),
            Counter::DropNdSpoof,
            "option past the end",
        );
        let nonce = vec![14, 1, 1, 2, 3, 4, 5, 6];
        sw.dropped(
            A_IF,
            &neighbour_advert(
                A_MAC,
                a(),
                a(),
                NA_OVERRIDE,
                &vec![nonce.clone(); 4]
                    .into_iter()
                    .chain([own.clone()])
                    .collect::<Vec<_>>(),
            ),
            Counter::DropNdSpoof,
            "five options",
        );
        sw.flooded(
            A_IF,
            &neighbour_advert(
                A_MAC,
                a(),
                a(),
                NA_OVERRIDE,
                &vec![nonce; 3].into_iter().chain([own]).collect::<Vec<_>>(),
            ),
            "four options",
        );
        // An advertisement cut short before its target.
        let short = nd_frame(
            A_MAC,
            B_MAC,
            a(),
            b(),
            ICMPV6_NEIGHBOUR_ADVERT,
            &[0x20, 0, 0, 0, 0xfd, 0],
        );
        sw.dropped(A_IF, &short, Counter::DropTruncated, "NA of 10 bytes");
        // The host's advertisements are its own business.
        sw.flooded(
            GW_IF,
            &neighbour_advert(GW_MAC, gw(), a(), NA_OVERRIDE, &[]),
            "from the host",
        );
    });
}

#[test]
fn malformed_ipv6_is_dropped_by_a_stated_rule() {
    in_private_netns(|| {
        let sw = Switch6::new("malformed");
        let good = echo(B_MAC, A_MAC, a(), b());
        // The header cut short: truncated. BPF_PROG_TEST_RUN refuses to
        // build an skb of an IPv6 frame shorter than its header (EINVAL),
        // so only the XDP program can be shown these; the TC program reads
        // them with the same walk.
        for len in [14, 20, 14 + 39] {
            let frame = &good[..len];
            let refused = sw.loaded.run_tc(PORT_PROGRAM, frame, Some(A_IF));
            assert!(refused.is_err(), "{len} bytes: {refused:?}");
            let xdp = sw.xdp(A_IF, frame);
            assert_eq!(xdp.verdict, XDP_DROP, "{len} bytes");
            assert_eq!(
                xdp.moved,
                sorted([("drop_truncated", 1), ("xdp_port_rx", 1)]),
                "{len} bytes"
            );
        }
        // A payload length beyond the frame.
        let mut long = good.clone();
        long[18..20].copy_from_slice(&500u16.to_be_bytes());
        sw.dropped(
            A_IF,
            &long,
            Counter::DropIpv6Malformed,
            "payload length 500",
        );
        // Cut inside the payload: the length no longer fits.
        sw.dropped(
            A_IF,
            &good[..good.len() - 2],
            Counter::DropIpv6Malformed,
            "frame shorter than its payload length",
        );
        // Payload length 0 with a next header.
        let mut zero = good.clone();
        zero[18..20].copy_from_slice(&[0, 0]);
        sw.dropped(A_IF, &zero, Counter::DropIpv6Malformed, "payload length 0");
        // A hop-by-hop jumbogram (payload length 0, jumbo option).
        let mut ip = Ip6::new(a(), b());
        ip.ext = vec![(NEXTHDR_HOP, jumbo_header(70_000))];
        let mut jumbo = eth6(
            B_MAC,
            A_MAC,
            &ipv6_full(&ip, 17, &udp6(a(), b(), 1, 2, b"x")),
        );
        jumbo[18..20].copy_from_slice(&[0, 0]);
        sw.dropped(A_IF, &jumbo, Counter::DropIpv6Malformed, "jumbogram");
        // Padding after the payload is allowed; "no next header" with
        // nothing behind it too.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 6]);
        sw.unicast(A_IF, &padded, Counter::RedirectPeer, "padded");
        let none = eth6(
            B_MAC,
            A_MAC,
            &ipv6_full(&Ip6::new(a(), b()), NEXTHDR_NONE, &[]),
        );
        sw.unicast(A_IF, &none, Counter::RedirectPeer, "no next header");
        // Extension header chains: four walked, five refused.
        let udp = udp6(a(), b(), 1000, 2000, b"x");
        let chain = |n: usize| {
            let mut ip = Ip6::new(a(), b());
            ip.ext.push((NEXTHDR_HOP, options_header(2)));
            for i in 1..n {
                let h = if i % 2 == 0 {
                    (NEXTHDR_DEST, options_header(1))
                } else {
                    (NEXTHDR_ROUTING, routing_header())
                };
                ip.ext.push(h);
            }
            eth6(B_MAC, A_MAC, &ipv6_full(&ip, 17, &udp))
        };
        sw.unicast(A_IF, &chain(4), Counter::RedirectPeer, "a chain of 4");
        sw.dropped(A_IF, &chain(5), Counter::DropIpv6Malformed, "a chain of 5");
        // An extension header running past the payload.
        let mut ip = Ip6::new(a(), b());
        let mut big = options_header(1);
        big[1] = 9; // claims 80 bytes
        ip.ext = vec![(NEXTHDR_DEST, big)];
        let past = eth6(B_MAC, A_MAC, &ipv6_full(&ip, 17, &udp));
        sw.dropped(
            A_IF,
            &past,
            Counter::DropTruncated,
            "header past the payload",
        );
        // An ICMPv6 header that does not fit.
        let stub = eth6(
            B_MAC,
            A_MAC,
            &ipv6_full(&Ip6::new(a(), b()), PROTO_ICMPV6, &[128, 0]),
        );
        sw.dropped(A_IF, &stub, Counter::DropTruncated, "2 bytes of ICMPv6");
        // The walk applies on the gateway port too.
        let mut from_host = echo(A_MAC, GW_MAC, outside(), a());
        from_host[18..20].copy_from_slice(&900u16.to_be_bytes());
        sw.dropped(
            GW_IF,
            &from_host,
            Counter::DropIpv6Malformed,
            "from the host",
        );
    });
}

#[test]
fn ipv6_to_the_hosts_other_addresses_is_dropped() {
    in_private_netns(|| {
        let sw = Switch6::new("host-access");
        sw.dropped(
            A_IF,
            &echo(GW_MAC, A_MAC, a(), host_other()),
            Counter::DropHostAccess,
            "unicast to the gateway port",
        );
        let group_mac = multicast_mac(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
        sw.dropped(
            A_IF,
            &echo(group_mac, A_MAC, a(), host_other()),
            Counter::DropHostAccess,
            "in a multicast frame (flooded to the host too)",
        );
        // The gateway's own addresses, and what the host routes on.
        sw.unicast(
            A_IF,
            &echo(GW_MAC, A_MAC, a(), gw()),
            Counter::ToHost,
            "the gateway's global",
        );
        sw.unicast(
            A_IF,
            &echo(GW_MAC, A_MAC, ll(A_MAC), ll(GW_MAC)),
            Counter::ToHost,
            "the gateway's link-local",
        );
        sw.unicast(
            A_IF,
            &echo(GW_MAC, A_MAC, a(), outside()),
            Counter::ToHost,
            "beyond the host",
        );
        // Namespace to namespace never meets the rule.
        sw.unicast(
            A_IF,
            &echo(B_MAC, A_MAC, a(), host_other()),
            Counter::RedirectPeer,
            "to B's MAC",
        );
        // With host access allowed, the map is empty.
        HostAddrs6::open(sw.loaded.dir())
            .unwrap()
            .sync(&Default::default())
            .unwrap();
        sw.unicast(
            A_IF,
            &echo(GW_MAC, A_MAC, a(), host_other()),
            Counter::ToHost,
            "allowed",
        );
    });
}

#[test]
fn ipv4_takes_none_of_the_ipv6_counters() {
    in_private_netns(|| {
        let sw = Switch6::new("ipv4");
        let frame = packets::ipv4_udp(B_MAC, A_MAC, [10, 162, 0, 1], [10, 162, 0, 2], b"x");
        let tc = sw.tc(A_IF, &frame);
        assert_eq!(tc.verdict, TC_ACT_REDIRECT);
        assert_eq!(tc.moved, sorted([("port_rx", 1), ("redirect_peer", 1)]));
        let xdp = sw.xdp(A_IF, &frame);
        assert_eq!(xdp.verdict, XDP_REDIRECT);
    });
}
