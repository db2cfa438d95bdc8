//! Single IPv6 packets: TCP, UDP and ICMPv6 echo translated and reversed,
//! the fast path, what is never translated, exhaustion.

use crate::lab::*;

#[test]
fn tcp_flow_is_created_hit_and_its_reply_reversed() {
    let lab = Nat6Lab::new("tcp");
    let before = lab.counters();
    let a = translate_ok(&lab, &tcp_out(ns1(), 40100, TCP_SYN));
    assert_eq!(a.sport_or_id(), 40100, "a free port in the range is kept");
    assert_eq!((a.dst, a.dport()), (remote(), 80));
    lab.assert_moved(&before, &[(Counter::NatCreated, 1)]);
    // Same port from another endpoint to the same remote: another port.
    let b = translate_ok(&lab, &tcp_out(ns2(), 40100, TCP_SYN));
    assert_ne!(b.sport_or_id(), 40100);
    assert!((PORT_MIN..=PORT_MAX).contains(&b.sport_or_id()));
    // The first flow again: the same translation, a hit.
    let before = lab.counters();
    let a2 = translate_ok(&lab, &tcp_out(ns1(), 40100, TCP_ACK));
    assert_eq!(a2.sport_or_id(), 40100);
    lab.assert_moved(&before, &[(Counter::NatHit, 1)]);

    // The reply to b: destination and port restored, to the host stack
    // (no endpoint known), hop limit untouched.
    let before = lab.counters();
    let (verdict, out) = lab.run(INGRESS, &tcp_in(b.sport_or_id(), TCP_SYN | TCP_ACK));
    assert_eq!(verdict, TC_ACT_OK);
    let r = verify_checksums6(&out).unwrap();
    assert_eq!((r.src, r.dst), (remote(), ns2()));
    assert_eq!((r.sport_or_id(), r.dport()), (80, 40100));
    assert_eq!(r.hop_limit, 64, "the host stack routes it");
    lab.assert_moved(&before, &[(Counter::NatReversed, 1)]);

    // Both directions recorded, with the TCP state.
    let (orig, reply) = lab.entries();
    assert_eq!((orig.len(), reply.len()), (2, 2));
    let (_, eb) = orig
        .iter()
        .find(|(k, _)| k.saddr == ns2().octets())
        .unwrap();
    assert_eq!(eb.addr, external().octets());
    assert_eq!(u16::from_be(eb.port), b.sport_or_id());
    assert_eq!(eb.state, netlab_common::nat::NAT_STATE_TCP_ESTABLISHED);
}

#[test]
fn udp_and_echo_are_translated_both_ways() {
    let lab = Nat6Lab::new("udp");
    let udp_frame = out6(&ipv6_packet(
        ns1(),
        remote(),
        PROTO_UDP,
        &udp6(ns1(), remote(), 5353, 53, b"odd-length query!"),
    ));
    let x = translate_ok(&lab, &udp_frame);
    assert!((PORT_MIN..=PORT_MAX).contains(&x.sport_or_id()));
    let answer = in6(&ipv6_packet(
        remote(),
        external(),
        PROTO_UDP,
        &udp6(remote(), external(), 53, x.sport_or_id(), b"answer"),
    ));
    let (verdict, out) = lab.run(INGRESS, &answer);
    assert_eq!(verdict, TC_ACT_OK);
    let r = verify_checksums6(&out).unwrap();
    assert_eq!((r.dst, r.dport()), (ns1(), 5353));

    let before = lab.counters();
    let echo = out6(&ipv6_packet(
        ns1(),
        remote(),
        PROTO_ICMPV6,
        &icmp6_echo(ns1(), remote(), ICMP6_ECHO_REQUEST, 7, 1, b"ping"),
    ));
    let e = translate_ok(&lab, &echo);
    assert!(
        (PORT_MIN..=PORT_MAX).contains(&e.sport_or_id()),
        "echo id from the range"
    );
    let reply = in6(&ipv6_packet(
        remote(),
        external(),
        PROTO_ICMPV6,
        &icmp6_echo(
            remote(),
            external(),
            ICMP6_ECHO_REPLY,
            e.sport_or_id(),
            1,
            b"ping",
        ),
    ));
    let (verdict, out) = lab.run(INGRESS, &reply);
    assert_eq!(verdict, TC_ACT_OK);
    let r = verify_checksums6(&out).unwrap();
    assert_eq!((r.dst, r.sport_or_id()), (ns1(), 7), "the original id back");
    lab.assert_moved(
        &before,
        &[(Counter::NatCreated, 1), (Counter::NatReversed, 1)],
    );
}

#[test]
fn fast_path_delivers_into_the_namespace_as_a_router() {
    let lab = Nat6Lab::new("fast");
    let x = translate_ok(&lab, &tcp_out(ns1(), 40200, TCP_SYN));
    lab.set_endpoint6(ns1(), NS1_MAC, 4242);
    let before = lab.counters();
    let (verdict, out) = lab.run(INGRESS, &tcp_in(x.sport_or_id(), TCP_SYN | TCP_ACK));
    assert_eq!(verdict, TC_ACT_REDIRECT);
    let r = verify_checksums6(&out).unwrap();
    assert_eq!(&out[..6], &NS1_MAC, "destination MAC: the endpoint's");
    assert_eq!(&out[6..12], &GATEWAY_MAC, "source MAC: the gateway's");
    assert_eq!(r.hop_limit, 63, "routed: hop limit decremented");
    assert_eq!((r.dst, r.dport()), (ns1(), 40200));
    lab.assert_moved(
        &before,
        &[(Counter::NatReversed, 1), (Counter::NatFastPath, 1)],
    );
    // Hop limit 1: the host stack answers with time exceeded.
    let mut last_hop = tcp_in(x.sport_or_id(), TCP_ACK);
    last_hop[14 + 7] = 1;
    assert_eq!(lab.run(INGRESS, &last_hop).0, TC_ACT_OK);
}

#[test]
fn what_is_not_the_labs_passes_untouched() {
    let lab = Nat6Lab::new("pass");
    let ll_a = a6("fe80::1");
    let ll_b = a6("fe80::2");
    let ns = |src, dst| {
        // A neighbour solicitation (type 135, target = dst).
        let mut body = dst_octets(dst);
        body.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 0x11]);
        ipv6_packet(
            src,
            dst,
            PROTO_ICMPV6,
            &icmp6(src, dst, ICMP6_NEIGHBOR_SOLICIT, 0, 0, &body),
        )
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("egress", "link-local ND", out6(&ns(ll_a, ll_b))),
        ("ingress", "link-local ND", in6(&ns(ll_b, ll_a))),
        (
            "ingress",
            "ND to the external address",
            in6(&ns(router(), external())),
        ),
        (
            "egress",
            "the host's own UDP",
            out6(&ipv6_packet(
                external(),
                remote(),
                PROTO_UDP,
                &udp6(external(), remote(), 5000, 53, b"q"),
            )),
        ),
        (
            "ingress",
            "to the host, no translation",
            in6(&ipv6_packet(
                remote(),
                external(),
                PROTO_UDP,
                &udp6(remote(), external(), 53, 5000, b"a"),
            )),
        ),
        (
            "ingress",
            "multicast",
            in6(&ipv6_packet(
                router(),
                a6("ff02::1"),
                PROTO_UDP,
                &udp6(router(), a6("ff02::1"), 521, 521, b"rip"),
            )),
        ),
    ];
    for (dir, what, frame) in cases {
        let prog = if dir == "egress" { EGRESS } else { INGRESS };
        let before = lab.counters();
        let (verdict, out) = lab.run(prog, &frame);
        assert_eq!(verdict, TCX_NEXT, "{what}: next program");
        assert_eq!(out, frame, "{what}: untouched");
        lab.assert_moved(&before, &[(Counter::NatPassHost, 1)]);
    }
    let (orig, reply) = lab.entries();
    assert!(orig.is_empty() && reply.is_empty());
}

fn dst_octets(a: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0];
    v.extend_from_slice(&a.octets());
    v
}

#[test]
fn unsolicited_and_lab_sourced_packets_from_outside_are_dropped() {
    let lab = Nat6Lab::new("refuse");
    for (what, src, dst, counter) in [
        (
            "to the lab prefix",
            remote(),
            ns1(),
            Counter::NatDropUnsolicited,
        ),
        (
            "claiming a lab source",
            ns2(),
            external(),
            Counter::NatDropLabSource,
        ),
    ] {
        let frame = in6(&ipv6_packet(
            src,
            dst,
            PROTO_UDP,
            &udp6(src, dst, 53, 5000, b"x"),
        ));
        let before = lab.counters();
        let (verdict, _) = lab.run(INGRESS, &frame);
        assert_eq!(verdict, TC_ACT_SHOT, "{what}");
        lab.assert_moved(&before, &[(counter, 1)]);
    }
    // A lab packet the NAT does not translate: dropped, never leaves as is.
    let esp = out6(&ipv6_packet(ns1(), remote(), 50, &[0; 16]));
    let before = lab.counters();
    assert_eq!(lab.run(EGRESS, &esp).0, TC_ACT_SHOT);
    lab.assert_moved(&before, &[(Counter::NatDropUnknownProto, 1)]);
}

#[test]
fn an_exhausted_range_drops_new_flows() {
    let lab = Nat6Lab::with_plan("exhaust", &plan(40000, 40001));
    for sport in [1000, 1001] {
        translate_ok(&lab, &tcp_out(ns1(), sport, TCP_SYN));
    }
    let before = lab.counters();
    let frame = tcp_out(ns1(), 1002, TCP_SYN);
    let (verdict, out) = lab.run(EGRESS, &frame);
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(out, frame);
    lab.assert_moved(&before, &[(Counter::NatDropNoPort, 1)]);
    // An existing flow still works.
    translate_ok(&lab, &tcp_out(ns1(), 1000, TCP_ACK));
}

#[test]
fn a_lab_packet_to_link_local_or_multicast_is_never_translated() {
    let lab = Nat6Lab::new("scope");
    for dst in [a6("ff02::1"), a6("ff05::2"), a6("fe80::1")] {
        let frame = out6(&ipv6_packet(
            ns1(),
            dst,
            PROTO_UDP,
            &udp6(ns1(), dst, 5000, 53, b"q"),
        ));
        let before = lab.counters();
        let (verdict, out) = lab.run(EGRESS, &frame);
        assert_eq!(
            verdict, TC_ACT_SHOT,
            "{dst}: a lab source never leaves as is"
        );
        assert_eq!(out, frame, "{dst}: never rewritten");
        lab.assert_moved(&before, &[(Counter::NatDropUnknownProto, 1)]);
    }
    let (orig, reply) = lab.entries();
    assert!(orig.is_empty() && reply.is_empty());
}

#[test]
fn a_short_packet_of_an_untranslated_protocol_is_unknown_not_malformed() {
    let lab = Nat6Lab::new("proto");
    let frame = out6(&ipv6_packet(ns1(), remote(), 253, &[0xab; 6]));
    let before = lab.counters();
    assert_eq!(lab.run(EGRESS, &frame).0, TC_ACT_SHOT);
    lab.assert_moved(&before, &[(Counter::NatDropUnknownProto, 1)]);
}
