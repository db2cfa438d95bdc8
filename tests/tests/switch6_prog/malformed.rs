//! The header walk's rules for malformed IPv6.

use crate::fixture::*;

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
