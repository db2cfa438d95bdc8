//! ICMPv6 errors about translated flows, both ways, with the quoted
//! packet's addresses, ports and checksums; Packet Too Big back to the
//! namespace (PMTU discovery).

use crate::lab::*;

/// The four error types with a code and the 4-byte field each carries.
const ERRORS: [(u8, u8, u32); 4] = [
    (ICMP6_DEST_UNREACH, 4, 0),
    (ICMP6_PACKET_TOO_BIG, 0, 1280),
    (ICMP6_TIME_EXCEEDED, 0, 0),
    (ICMP6_PARAM_PROB, 0, 6),
];

/// Translates one packet of each protocol out of the lab and returns the
/// translated packets (as they left): UDP, TCP, echo.
fn translated_flows(lab: &Nat6Lab) -> Vec<Vec<u8>> {
    let packets = [
        ipv6_packet(
            ns1(),
            remote(),
            PROTO_UDP,
            &udp6(ns1(), remote(), 5353, 53, b"query"),
        ),
        ipv6_packet(
            ns1(),
            remote(),
            PROTO_TCP,
            &tcp6(ns1(), remote(), 33000, 443, TCP_SYN, b""),
        ),
        ipv6_packet(
            ns1(),
            remote(),
            PROTO_ICMPV6,
            &icmp6_echo(ns1(), remote(), ICMP6_ECHO_REQUEST, 77, 1, b"ping"),
        ),
    ];
    packets
        .iter()
        .map(|p| {
            translate_ok(lab, &out6(p));
            let (_, out) = lab.run(EGRESS, &out6(p));
            out[14..].to_vec()
        })
        .collect()
}

#[test]
fn inbound_errors_of_every_type_reach_the_namespace_translated() {
    let lab = Nat6Lab::new("err-in");
    let sent = translated_flows(&lab);
    let originals = [(5353u16, PROTO_UDP), (33000, PROTO_TCP), (77, PROTO_ICMPV6)];
    for (kind, code, rest) in ERRORS {
        for (quoted, (orig_port, proto)) in sent.iter().zip(originals) {
            let q = parse_ipv6(quoted).unwrap();
            assert_eq!(q.src, external());
            let err = icmp6_error(router(), external(), kind, code, rest, quoted);
            let frame = in6(&ipv6_packet(router(), external(), PROTO_ICMPV6, &err));
            let before = lab.counters();
            let (verdict, out) = lab.run(INGRESS, &frame);
            assert_eq!(verdict, TC_ACT_OK, "type {kind} quoting proto {proto}");
            assert_eq!(out.len(), frame.len());
            // Outer and quoted checksums (the quoted L4 one included).
            let v = verify_checksums6(&out)
                .unwrap_or_else(|e| panic!("type {kind} quoting proto {proto}: {e}"));
            assert_eq!((v.src, v.dst), (router(), ns1()));
            let l4 = v.l4();
            assert_eq!((l4[0], l4[1]), (kind, code));
            assert_eq!(
                u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                rest,
                "the MTU/pointer kept"
            );
            let inner = parse_ipv6(&l4[8..]).unwrap();
            assert_eq!(
                (inner.src, inner.dst),
                (ns1(), remote()),
                "quoted addresses"
            );
            assert_eq!(inner.proto, proto);
            assert_eq!(inner.sport_or_id(), orig_port, "quoted port/id restored");
            lab.assert_moved(&before, &[(Counter::NatIcmpError, 1)]);
        }
    }
}

#[test]
fn outbound_errors_of_every_type_leave_translated() {
    let lab = Nat6Lab::new("err-out");
    let sent = translated_flows(&lab);
    let udp = parse_ipv6(&sent[0]).unwrap();
    let xport = udp.sport_or_id();
    // The reply the namespace got (reverse-translated), then its error
    // about it: the namespace's address and port are quoted.
    let reply = ipv6_packet(
        remote(),
        ns1(),
        PROTO_UDP,
        &udp6(remote(), ns1(), 53, 5353, b"answer"),
    );
    for (kind, code, rest) in ERRORS {
        let err = icmp6_error(ns1(), remote(), kind, code, rest, &reply);
        let frame = out6(&ipv6_packet(ns1(), remote(), PROTO_ICMPV6, &err));
        let before = lab.counters();
        let (verdict, out) = lab.run(EGRESS, &frame);
        assert_eq!(verdict, TC_ACT_OK, "type {kind}");
        let v = verify_checksums6(&out).unwrap_or_else(|e| panic!("type {kind}: {e}"));
        assert_eq!((v.src, v.dst), (external(), remote()));
        let inner = parse_ipv6(&v.l4()[8..]).unwrap();
        assert_eq!((inner.src, inner.dst), (remote(), external()));
        assert_eq!((inner.sport_or_id(), inner.dport()), (53, xport));
        lab.assert_moved(&before, &[(Counter::NatIcmpError, 1)]);
    }
    // An error about something that is no translation's: it must not
    // leave with the lab's address.
    let stranger = ipv6_packet(
        remote(),
        ns1(),
        PROTO_UDP,
        &udp6(remote(), ns1(), 53, 9999, b"?"),
    );
    let err = icmp6_error(ns1(), remote(), ICMP6_DEST_UNREACH, 4, 0, &stranger);
    let frame = out6(&ipv6_packet(ns1(), remote(), PROTO_ICMPV6, &err));
    let before = lab.counters();
    assert_eq!(lab.run(EGRESS, &frame).0, TC_ACT_SHOT);
    lab.assert_moved(&before, &[(Counter::NatDropUnknownProto, 1)]);
}

#[test]
fn packet_too_big_is_carried_back_to_the_namespace_on_the_fast_path() {
    let lab = Nat6Lab::new("ptb");
    lab.set_endpoint6(ns1(), NS1_MAC, 4242);
    let big = ipv6_packet(
        ns1(),
        remote(),
        PROTO_TCP,
        &tcp6(ns1(), remote(), 34000, 443, TCP_ACK, &[0x5a; 1400]),
    );
    let x = translate_ok(&lab, &out6(&big));
    // A router beyond the uplink quotes as much as fits in 1280 bytes.
    let quoted = &x.packet[..1280 - 48];
    let err = icmp6_error(router(), external(), ICMP6_PACKET_TOO_BIG, 0, 1280, quoted);
    let frame = in6(&ipv6_packet(router(), external(), PROTO_ICMPV6, &err));
    let before = lab.counters();
    let (verdict, out) = lab.run(INGRESS, &frame);
    assert_eq!(verdict, TC_ACT_REDIRECT, "straight into the namespace");
    assert_eq!(&out[..6], &NS1_MAC);
    let v = verify_checksums6(&out).unwrap();
    assert_eq!((v.dst, v.hop_limit), (ns1(), 63));
    assert_eq!(u32::from_be_bytes(v.l4()[4..8].try_into().unwrap()), 1280);
    let inner = &v.l4()[8..];
    assert_eq!(&inner[8..24], &ns1().octets(), "quoted source restored");
    assert_eq!(u16::from_be_bytes([inner[40], inner[41]]), 34000);
    lab.assert_moved(
        &before,
        &[(Counter::NatIcmpError, 1), (Counter::NatFastPath, 1)],
    );
}

#[test]
fn an_error_quoting_no_translation_is_the_hosts() {
    let lab = Nat6Lab::new("err-host");
    let hosts = ipv6_packet(
        external(),
        remote(),
        PROTO_UDP,
        &udp6(external(), remote(), 41000, 53, b"host's own"),
    );
    let err = icmp6_error(router(), external(), ICMP6_DEST_UNREACH, 4, 0, &hosts);
    let frame = in6(&ipv6_packet(router(), external(), PROTO_ICMPV6, &err));
    let before = lab.counters();
    let (verdict, out) = lab.run(INGRESS, &frame);
    assert_eq!(verdict, TCX_NEXT);
    assert_eq!(out, frame);
    lab.assert_moved(&before, &[(Counter::NatPassHost, 1)]);
}
