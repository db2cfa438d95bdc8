//! Who may send IPv6 from an endpoint port: the source check, the RA
//! guard, the host-access rule; IPv4 untouched by them.

use crate::fixture::*;

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
