//! Published ports (destination NAT on the uplink ingress).

use crate::lab::*;

fn publish(lab: &NatLab, ports: &[(u16, u8, Ipv4Addr, u16)]) -> usize {
    let ports = netlab_tests::published_ports(ports);
    nat::sync_published(lab.pin_dir(), &ports).expect("sync nat_publish")
}

#[test]
fn a_published_port_is_translated_both_ways_with_correct_checksums() {
    let lab = NatLab::new("dnat");
    assert_eq!(publish(&lab, &[(8080, 6, NS1, 80), (5353, 17, NS2, 53)]), 0);

    // In: the client's SYN to the published port reaches NS1:80, its
    // source untouched (the service sees the real client).
    let syn = in_frame(
        &Ip::new(REMOTE, EXTERNAL, PROTO_TCP),
        &tcp(REMOTE, EXTERNAL, 40123, 8080, TCP_SYN, b""),
    );
    let (verdict, out) = lab.run(INGRESS, &syn);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out).unwrap_or_else(|e| panic!("DNAT in: {e}"));
    let (_, _, ip) = parse_frame(&out).unwrap();
    assert_eq!((ip.src, ip.sport_or_id()), (REMOTE, 40123));
    assert_eq!((ip.dst, ip.dport()), (NS1, 80));

    // Out: the answer leaves with the published address and port.
    let answer = tcp_syn_ack_from(NS1, 80, 40123);
    let x = translate_ok(&lab, &answer);
    assert_eq!((x.sport_or_id(), x.dst, x.dport()), (8080, REMOTE, 40123));

    // An ICMP error about the answer (quoting it as it left) reaches NS1
    // with the quoted packet restored to what NS1 sent.
    let quoted = parse_frame(&ethernet_payload(&lab, &answer))
        .unwrap()
        .2
        .packet;
    let err = in_frame(
        &Ip::new(ROUTER, EXTERNAL, PROTO_ICMP),
        &icmp_error(ICMP_DEST_UNREACH, 4, 1400, &quoted),
    );
    let (verdict, out) = lab.run(INGRESS, &err);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out).unwrap_or_else(|e| panic!("ICMP error: {e}"));
    let (_, _, r) = parse_frame(&out).unwrap();
    assert_eq!(r.dst, NS1);
    let sent = &answer[14..];
    let header_len = parse_ipv4(sent).unwrap().header_len;
    assert_eq!(&r.payload()[8..], &sent[..header_len + 8]);

    // UDP, without a checksum: stays without one, both ways.
    let query = in_frame(
        &Ip::new(REMOTE, EXTERNAL, PROTO_UDP),
        &udp(REMOTE, EXTERNAL, 5000, 5353, b"query", false),
    );
    let (verdict, out) = lab.run(INGRESS, &query);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out).unwrap();
    let (_, _, q) = parse_frame(&out).unwrap();
    assert_eq!((q.dst, q.dport()), (NS2, 53));
    assert_eq!(&q.payload()[6..8], &[0, 0]);
    let reply = out_frame(
        &Ip::new(NS2, REMOTE, PROTO_UDP),
        &udp(NS2, REMOTE, 53, 5000, b"answer", true),
    );
    let x = translate_ok(&lab, &reply);
    assert_eq!(x.sport_or_id(), 5353);

    // Out: NS2 says "port unreachable" about the client's datagram (as it
    // got it): the error leaves from the published address, quoting the
    // datagram as the client sent it.
    let as_received = parse_frame(&out).unwrap().2.packet;
    let unreachable = out_frame(
        &Ip::new(NS2, REMOTE, PROTO_ICMP),
        &icmp_error(ICMP_DEST_UNREACH, 3, 0, &as_received),
    );
    let (verdict, out_err) = lab.run(EGRESS, &unreachable);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out_err).unwrap_or_else(|e| panic!("outbound ICMP error: {e}"));
    let (_, _, e) = parse_frame(&out_err).unwrap();
    assert_eq!((e.src, e.dst), (EXTERNAL, REMOTE));
    let sent = &query[14..];
    let header_len = parse_ipv4(sent).unwrap().header_len;
    assert_eq!(&e.payload()[8..], &sent[..header_len + 8], "quoted as sent");

    assert_eq!(lab.counter(Counter::DnatCreated), 2);
    assert_eq!(lab.counter(Counter::NatCreated), 0, "no SNAT was involved");
    let flows = lab.flows();
    assert_eq!(flows.len(), 2, "{flows:?}");

    // Unpublished: both translations go, and the next packet is the host's.
    assert_eq!(publish(&lab, &[]), 2);
    assert!(lab.flows().is_empty());
    let (verdict, out) = lab.run(INGRESS, &query);
    assert_eq!((verdict, out), (TCX_NEXT, query.clone()));
}

#[test]
fn a_published_port_never_overwrites_a_masqueraded_flow() {
    let lab = NatLab::new("dnatclash");
    publish(&lab, &[(8080, 6, NS1, 80)]);
    // NS1 talks from port 80 to the client's port 40999 (masqueraded)...
    let out = out_frame(
        &Ip::new(NS1, REMOTE, PROTO_TCP),
        &tcp(NS1, REMOTE, 80, 40999, TCP_SYN, b""),
    );
    translate_ok(&lab, &out);
    // ...so a client connection from 40999 to the published port would
    // take over that tuple: dropped and counted instead.
    let syn = in_frame(
        &Ip::new(REMOTE, EXTERNAL, PROTO_TCP),
        &tcp(REMOTE, EXTERNAL, 40999, 8080, TCP_SYN, b""),
    );
    assert_eq!(lab.run(INGRESS, &syn).0, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::DnatDropConflict), 1);
    assert_eq!(lab.counter(Counter::DnatCreated), 0);
}

fn tcp_syn_ack_from(src: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    out_frame(
        &Ip::new(src, REMOTE, PROTO_TCP),
        &tcp(src, REMOTE, sport, dport, TCP_SYN | TCP_ACK, b""),
    )
}

/// What egress makes of `frame` (the frame as it leaves the uplink).
fn ethernet_payload(lab: &NatLab, frame: &[u8]) -> Vec<u8> {
    lab.run(EGRESS, frame).1
}
