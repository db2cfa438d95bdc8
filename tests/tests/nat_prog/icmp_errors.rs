//! ICMP errors about translated flows, both ways: the quoted packet is
//! translated with the outer one, every checksum right.

use crate::lab::*;

#[test]
fn icmp_errors_quoting_tcp_udp_and_echo_are_translated() {
    let lab = NatLab::new("icmperr");
    let originals: Vec<(&str, Vec<u8>)> = vec![
        (
            "tcp",
            ipv4(
                &Ip::new(NS1, REMOTE, PROTO_TCP),
                &tcp(NS1, REMOTE, 1111, 443, TCP_SYN, b"hello"),
            ),
        ),
        (
            "udp",
            ipv4(
                &Ip::new(NS1, REMOTE, PROTO_UDP),
                &udp(NS1, REMOTE, 2222, 53, b"query", true),
            ),
        ),
        (
            "udp0",
            ipv4(
                &Ip::new(NS1, REMOTE, PROTO_UDP),
                &udp(NS1, REMOTE, 2223, 53, b"query", false),
            ),
        ),
        (
            "echo",
            ipv4(
                &Ip::new(NS1, REMOTE, PROTO_ICMP),
                &icmp_echo(ICMP_ECHO_REQUEST, 99, 3, b"abcdefgh"),
            ),
        ),
    ];
    let mut expected_errors = 0;
    for (what, original) in &originals {
        let (verdict, out) = lab.run(EGRESS, &ethernet(INET_MAC, UPLINK_MAC, ETH_P_IP, original));
        assert_eq!(verdict, TC_ACT_OK, "{what}");
        let translated = parse_frame(&out).unwrap().2.packet;
        let orig_view = parse_ipv4(original).unwrap();
        let quoted_len = orig_view.header_len + 8;
        for (kind, code, rest, from) in [
            (ICMP_DEST_UNREACH, 3, 0, REMOTE), // port unreachable, from the peer
            (ICMP_DEST_UNREACH, 4, 1400, ROUTER), // fragmentation needed, from a router
            (ICMP_TIME_EXCEEDED, 0, 0, ROUTER),
        ] {
            let err = in_frame(
                &Ip::new(from, EXTERNAL, PROTO_ICMP),
                &icmp_error(kind, code, rest, &translated),
            );
            let (verdict, out) = lab.run(INGRESS, &err);
            assert_eq!(verdict, TC_ACT_OK, "{what} {kind}/{code}");
            verify_checksums(&out).unwrap_or_else(|e| panic!("{what} {kind}/{code}: {e}"));
            let (_, _, r) = parse_frame(&out).unwrap();
            assert_eq!(
                (r.src, r.dst),
                (from, NS1),
                "{what}: outer destination restored"
            );
            let icmp = r.payload();
            assert_eq!((icmp[0], icmp[1]), (kind, code));
            assert_eq!(u32::from_be_bytes(icmp[4..8].try_into().unwrap()), rest);
            // The quoted header is exactly what the endpoint sent: address,
            // port/id, IP checksum and (UDP, ICMP) L4 checksum restored.
            assert_eq!(
                &icmp[8..],
                &original[..quoted_len],
                "{what} {kind}/{code}: quoted packet restored"
            );
            expected_errors += 1;
        }
    }
    assert_eq!(lab.counter(Counter::NatIcmpError), expected_errors);

    // An error quoting a flow we never translated is the host's: untouched.
    let foreign = ipv4(
        &Ip::new(EXTERNAL, REMOTE, PROTO_UDP),
        &udp(EXTERNAL, REMOTE, 50000, 53, b"x", true),
    );
    let err = in_frame(
        &Ip::new(REMOTE, EXTERNAL, PROTO_ICMP),
        &icmp_error(ICMP_DEST_UNREACH, 3, 0, &foreign),
    );
    assert_eq!(lab.run(INGRESS, &err), (TCX_NEXT, err.clone()));
}

#[test]
fn outbound_icmp_error_from_the_lab_is_translated() {
    // A lab namespace reports "port unreachable" for a reply it got: the
    // error must leave with the external address, quoting the flow as the
    // remote knows it.
    let lab = NatLab::new("icmpout");
    let x = translate_ok(
        &lab,
        &out_frame(
            &Ip::new(NS1, REMOTE, PROTO_UDP),
            &udp(NS1, REMOTE, 6000, 53, b"q", true),
        ),
    );
    let xport = x.sport_or_id();
    let remote_view = ipv4(
        &Ip::new(REMOTE, EXTERNAL, PROTO_UDP),
        &udp(REMOTE, EXTERNAL, 53, xport, b"late answer", true),
    );
    let lab_view = ipv4(
        &Ip::new(REMOTE, NS1, PROTO_UDP),
        &udp(REMOTE, NS1, 53, 6000, b"late answer", true),
    );
    let err = out_frame(
        &Ip::new(NS1, REMOTE, PROTO_ICMP),
        &icmp_error(ICMP_DEST_UNREACH, 3, 0, &lab_view),
    );
    let (verdict, out) = lab.run(EGRESS, &err);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out).unwrap();
    let (_, _, r) = parse_frame(&out).unwrap();
    assert_eq!((r.src, r.dst), (EXTERNAL, REMOTE));
    assert_eq!(&r.payload()[8..], &remote_view[..28]);

    // An error about nothing we know must not leave with a lab address.
    let stray = ipv4(
        &Ip::new(REMOTE, NS1, PROTO_UDP),
        &udp(REMOTE, NS1, 53, 7777, b"?", true),
    );
    let err = out_frame(
        &Ip::new(NS1, REMOTE, PROTO_ICMP),
        &icmp_error(ICMP_DEST_UNREACH, 3, 0, &stray),
    );
    assert_eq!(lab.run(EGRESS, &err).0, TC_ACT_SHOT);
}
