//! Translations of single packets: ports and ids kept or moved, UDP and
//! ICMP checksums, the fast path to a known endpoint, IP options.

use crate::lab::*;

#[test]
fn tcp_keeps_a_free_port_and_a_clashing_flow_gets_another() {
    let lab = NatLab::new("tcp");
    // In range and free: kept, as iptables does.
    let a = translate_ok(&lab, &tcp_out(NS1, 40100, TCP_SYN));
    assert_eq!(a.sport_or_id(), 40100);
    assert_eq!(a.dst, REMOTE);
    assert_eq!(a.dport(), 80);
    // Same source port from another endpoint to the same remote: must differ.
    let b = translate_ok(&lab, &tcp_out(NS2, 40100, TCP_SYN));
    assert_ne!(b.sport_or_id(), 40100);
    assert!((PORT_MIN..=PORT_MAX).contains(&b.sport_or_id()));
    // Out of range: a port from the range.
    let c = translate_ok(&lab, &tcp_out(NS1, 5555, TCP_SYN));
    assert!((PORT_MIN..=PORT_MAX).contains(&c.sport_or_id()));
    assert_ne!(c.sport_or_id(), b.sport_or_id());
    assert_ne!(c.sport_or_id(), 40100);
    assert_eq!(lab.counter(Counter::NatCreated), 3);
    // The same flow again: the same translation.
    let a2 = translate_ok(&lab, &tcp_out(NS1, 40100, TCP_ACK));
    assert_eq!(a2.sport_or_id(), 40100);
    let c2 = translate_ok(&lab, &tcp_out(NS1, 5555, TCP_ACK));
    assert_eq!(c2.sport_or_id(), c.sport_or_id());
    assert_eq!(lab.counter(Counter::NatHit), 2);
    assert_eq!(lab.counter(Counter::NatCreated), 3);

    // The reply to flow c comes back to the translated port: restored.
    let (verdict, out) = lab.run(INGRESS, &tcp_in(c.sport_or_id(), TCP_SYN | TCP_ACK));
    assert_eq!(verdict, TC_ACT_OK, "no endpoint known: to the host stack");
    verify_checksums(&out).unwrap();
    let (_, _, r) = parse_frame(&out).unwrap();
    assert_eq!((r.src, r.dst), (REMOTE, NS1));
    assert_eq!((r.sport_or_id(), r.dport()), (80, 5555));
    assert_eq!(r.ttl, 64, "the host stack decrements the TTL, not us");
    assert_eq!(lab.counter(Counter::NatReversed), 1);

    let flows = lab.flows();
    assert_eq!(flows.len(), 3);
    let fc = flows
        .iter()
        .find(|f| f.orig_src == "192.168.28.1:5555".parse().unwrap())
        .unwrap();
    assert_eq!(fc.proto, Proto::Tcp);
    assert_eq!(fc.translated.port(), c.sport_or_id());
    assert_eq!(*fc.translated.ip(), EXTERNAL);
    assert_eq!(fc.state, FlowState::Established);
    assert!(fc.orig_key.is_some() && fc.reply_key.is_some());
    let fb = flows.iter().find(|f| f.orig_src.ip() == &NS2).unwrap();
    assert_eq!(fb.state, FlowState::SynSent);
}

#[test]
fn udp_checksum_is_fixed_and_zero_stays_zero() {
    let lab = NatLab::new("udp");
    for (sport, with_checksum) in [(3333u16, true), (4444, false)] {
        let frame = out_frame(
            &Ip::new(NS1, REMOTE, PROTO_UDP),
            &udp(
                NS1,
                REMOTE,
                sport,
                53,
                b"odd-length payload!",
                with_checksum,
            ),
        );
        let x = translate_ok(&lab, &frame);
        let xport = x.sport_or_id();
        assert!((PORT_MIN..=PORT_MAX).contains(&xport));
        let check = u16::from_be_bytes([x.payload()[6], x.payload()[7]]);
        if with_checksum {
            assert_ne!(check, 0);
        } else {
            assert_eq!(check, 0, "no checksum must stay no checksum");
        }
        // The answer, with the same checksum choice, comes back restored.
        let reply = in_frame(
            &Ip::new(REMOTE, EXTERNAL, PROTO_UDP),
            &udp(REMOTE, EXTERNAL, 53, xport, b"answer", with_checksum),
        );
        let (verdict, out) = lab.run(INGRESS, &reply);
        assert_eq!(verdict, TC_ACT_OK);
        verify_checksums(&out).unwrap();
        let (_, _, r) = parse_frame(&out).unwrap();
        assert_eq!((r.dst, r.dport()), (NS1, sport));
        let check = u16::from_be_bytes([r.payload()[6], r.payload()[7]]);
        assert_eq!(check == 0, !with_checksum);
    }
    assert_eq!(lab.counter(Counter::NatCreated), 2);
    assert_eq!(lab.counter(Counter::NatReversed), 2);
}

#[test]
fn icmp_echo_id_is_translated_and_the_reply_restored() {
    let lab = NatLab::new("icmp");
    let req = out_frame(
        &Ip::new(NS1, REMOTE, PROTO_ICMP),
        &icmp_echo(ICMP_ECHO_REQUEST, 7, 1, b"ping!"),
    );
    let x = translate_ok(&lab, &req);
    let xid = x.sport_or_id();
    assert!(
        (PORT_MIN..=PORT_MAX).contains(&xid),
        "id 7 is outside the range"
    );
    let reply = in_frame(
        &Ip::new(REMOTE, EXTERNAL, PROTO_ICMP),
        &icmp_echo(ICMP_ECHO_REPLY, xid, 1, b"ping!"),
    );
    let (verdict, out) = lab.run(INGRESS, &reply);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out).unwrap();
    let (_, _, r) = parse_frame(&out).unwrap();
    assert_eq!((r.dst, r.sport_or_id()), (NS1, 7));
    // An echo request *to* the external address is the host's: untouched.
    let ping_host = in_frame(
        &Ip::new(REMOTE, EXTERNAL, PROTO_ICMP),
        &icmp_echo(ICMP_ECHO_REQUEST, xid, 1, b"x"),
    );
    let (verdict, out) = lab.run(INGRESS, &ping_host);
    assert_eq!((verdict, out), (TCX_NEXT, ping_host));
    let flows = lab.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].proto, Proto::Icmp);
    assert_eq!(flows[0].orig_src.port(), 7);
    assert_eq!(flows[0].translated.port(), xid);
}

#[test]
fn fast_path_redirects_to_a_known_endpoint() {
    let lab = NatLab::new("fast");
    let x = translate_ok(&lab, &tcp_out(NS1, 40200, TCP_SYN));
    let reply = tcp_in(x.sport_or_id(), TCP_SYN | TCP_ACK);
    // Unknown endpoint: host stack.
    assert_eq!(lab.run(INGRESS, &reply).0, TC_ACT_OK);
    assert_eq!(lab.counter(Counter::NatFastPath), 0);

    lab.switch_maps()
        .set_endpoint(ipv4_key(NS1), NS1_MAC, 4242)
        .unwrap();
    let (verdict, out) = lab.run(INGRESS, &reply);
    assert_eq!(verdict, TC_ACT_REDIRECT);
    verify_checksums(&out).unwrap();
    let (dst_mac, src_mac, r) = parse_frame(&out).unwrap();
    assert_eq!(dst_mac, NS1_MAC);
    assert_eq!(src_mac, GATEWAY_MAC);
    assert_eq!(r.ttl, 63, "we routed it: TTL decremented");
    assert_eq!((r.dst, r.dport()), (NS1, 40200));
    assert_eq!(lab.counter(Counter::NatFastPath), 1);

    // TTL 1 cannot be forwarded: the host stack answers time exceeded.
    let mut ip = Ip::new(REMOTE, EXTERNAL, PROTO_TCP);
    ip.ttl = 1;
    let dying = in_frame(&ip, &tcp(REMOTE, EXTERNAL, 80, 40200, TCP_ACK, b""));
    let (verdict, out) = lab.run(INGRESS, &dying);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out).unwrap();
    assert_eq!(parse_frame(&out).unwrap().2.ttl, 1);

    // The endpoint leaves: back to the host stack.
    lab.switch_maps().remove_endpoint(ipv4_key(NS1)).unwrap();
    lab.switch_maps().remove_endpoint(ipv4_key(NS1)).unwrap();
    assert_eq!(lab.run(INGRESS, &reply).0, TC_ACT_OK);

    // `endpoints` is the switch's table and lists the gateway too: a reply
    // to the gateway's own address (its MAC is the gateway's) is the host
    // stack's, never redirected to its port.
    let gw = translate_ok(&lab, &tcp_out(NS2, 40201, TCP_SYN));
    lab.switch_maps()
        .set_endpoint(ipv4_key(NS2), GATEWAY_MAC, 4243)
        .unwrap();
    let (verdict, out) = lab.run(INGRESS, &tcp_in(gw.sport_or_id(), TCP_SYN | TCP_ACK));
    assert_eq!(verdict, TC_ACT_OK);
    assert_eq!(parse_frame(&out).unwrap().2.dst, NS2, "reverse-translated");
    assert_eq!(lab.counter(Counter::NatFastPath), 1, "no fast path");
}

#[test]
fn ip_options_are_skipped() {
    let lab = NatLab::new("ipopts");
    for options in [vec![0x94, 0x04, 0, 0], vec![0x01; 8], vec![0x01; 40]] {
        let mut ip = Ip::new(NS1, REMOTE, PROTO_TCP);
        ip.options = options.clone();
        let frame = out_frame(
            &ip,
            &tcp(
                NS1,
                REMOTE,
                7000 + options.len() as u16,
                80,
                TCP_SYN,
                b"opt",
            ),
        );
        let x = translate_ok(&lab, &frame);
        assert_eq!(x.header_len, 20 + options.len());
        let xport = x.sport_or_id();
        assert!((PORT_MIN..=PORT_MAX).contains(&xport));
        let mut rip = Ip::new(REMOTE, EXTERNAL, PROTO_TCP);
        rip.options = options.clone();
        let (verdict, out) = lab.run(
            INGRESS,
            &in_frame(&rip, &tcp(REMOTE, EXTERNAL, 80, xport, TCP_ACK, b"")),
        );
        assert_eq!(verdict, TC_ACT_OK);
        verify_checksums(&out).unwrap();
        let (_, _, r) = parse_frame(&out).unwrap();
        assert_eq!((r.dst, r.dport()), (NS1, 7000 + options.len() as u16));
    }
    // IHL below 5 is malformed.
    let mut bad = tcp_out(NS1, 7100, TCP_SYN);
    bad[14] = 0x44;
    assert_eq!(lab.run(EGRESS, &bad).0, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::NatDropMalformed), 1);
}
