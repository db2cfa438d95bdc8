//! The extension header walk (bound 4), malformed headers, and fragments
//! (`nat6_frags`), both ways.

use crate::lab::*;

fn udp_chain(first: u8, headers: &[Vec<u8>], sport: u16) -> Vec<u8> {
    ipv6_chain(
        ns1(),
        remote(),
        first,
        headers,
        &udp6(ns1(), remote(), sport, 53, b"behind options"),
    )
}

#[test]
fn a_chain_within_the_bound_is_translated_a_longer_one_dropped() {
    let lab = Nat6Lab::new("chain");
    // Four extension headers: hop-by-hop, destination options, routing
    // (type 0 data is never read), destination options.
    let four = udp_chain(
        NEXTHDR_HOP,
        &[
            ext_header(NEXTHDR_DEST, 1),
            ext_header(NEXTHDR_ROUTING, 2),
            ext_header(NEXTHDR_DEST, 1),
            ext_header(PROTO_UDP, 1),
        ],
        6000,
    );
    let before = lab.counters();
    let x = translate_ok(&lab, &out6(&four));
    assert_eq!(x.proto, PROTO_UDP);
    assert_eq!(x.l4_off, 40 + 8 + 16 + 8 + 8);
    assert!((PORT_MIN..=PORT_MAX).contains(&x.sport_or_id()));
    lab.assert_moved(&before, &[(Counter::NatCreated, 1)]);
    // Its reply, through the same chain, is reversed.
    let back = ipv6_chain(
        remote(),
        external(),
        NEXTHDR_DEST,
        &[ext_header(PROTO_UDP, 3)],
        &udp6(remote(), external(), 53, x.sport_or_id(), b"answer"),
    );
    let (verdict, out) = lab.run(INGRESS, &in6(&back));
    assert_eq!(verdict, TC_ACT_OK);
    let r = verify_checksums6(&out).unwrap();
    assert_eq!((r.dst, r.dport()), (ns1(), 6000));

    // Five: beyond the bound, dropped both ways.
    let five_headers = [
        ext_header(NEXTHDR_DEST, 1),
        ext_header(NEXTHDR_DEST, 1),
        ext_header(NEXTHDR_DEST, 1),
        ext_header(NEXTHDR_DEST, 1),
        ext_header(PROTO_UDP, 1),
    ];
    let five = udp_chain(NEXTHDR_HOP, &five_headers, 6001);
    let before = lab.counters();
    let frame = out6(&five);
    let (verdict, out) = lab.run(EGRESS, &frame);
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(out, frame, "never sent half-translated");
    lab.assert_moved(&before, &[(Counter::NatDropExtHeaders, 1)]);
    let five_in = ipv6_chain(
        remote(),
        external(),
        NEXTHDR_HOP,
        &five_headers,
        &udp6(remote(), external(), 53, x.sport_or_id(), b"answer"),
    );
    let before = lab.counters();
    assert_eq!(lab.run(INGRESS, &in6(&five_in)).0, TC_ACT_SHOT);
    lab.assert_moved(&before, &[(Counter::NatDropExtHeaders, 1)]);
}

#[test]
fn jumbograms_and_bad_lengths_are_dropped() {
    let lab = Nat6Lab::new("malformed");
    let good = udp_chain(NEXTHDR_HOP, &[ext_header(PROTO_UDP, 1)], 7000);
    // Payload length 0 with a hop-by-hop header: a jumbogram (RFC 2675).
    let mut jumbo = good.clone();
    jumbo[4..6].copy_from_slice(&[0, 0]);
    // Payload length beyond the frame.
    let mut long = good.clone();
    long[4..6].copy_from_slice(&((good.len() - 40 + 8) as u16).to_be_bytes());
    // A header chain running past the payload (length 0x20 units).
    let mut past = good.clone();
    past[40 + 1] = 0x20;
    // Truncated: the UDP header cut short (payload length agrees).
    let mut short = ipv6_packet(ns1(), remote(), PROTO_UDP, &[0x17, 0x70, 0, 53]);
    short.truncate(44);
    // Not version 6 behind the IPv6 EtherType.
    let mut v4ish = good.clone();
    v4ish[0] = 0x45;
    for (what, packet, counter) in [
        ("jumbogram", jumbo, Counter::NatDropExtHeaders),
        (
            "payload length beyond the frame",
            long,
            Counter::NatDropMalformed,
        ),
        ("chain past the payload", past, Counter::NatDropMalformed),
        ("truncated UDP header", short, Counter::NatDropMalformed),
        (
            "version 4 in an IPv6 frame",
            v4ish,
            Counter::NatDropMalformed,
        ),
    ] {
        let frame = out6(&packet);
        let before = lab.counters();
        let (verdict, out) = lab.run(EGRESS, &frame);
        assert_eq!(verdict, TC_ACT_SHOT, "{what}");
        assert_eq!(out, frame, "{what}: untouched");
        lab.assert_moved(&before, &[(counter, 1)]);
    }
    let (orig, _) = lab.entries();
    assert!(orig.is_empty(), "nothing translated: {orig:?}");
}

/// A UDP datagram from `src` to `dst` in two fragments (first with the
/// UDP header, later without), identification `id`.
fn fragmented(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, id: u32) -> [Vec<u8>; 2] {
    let data: Vec<u8> = (0..100u32).map(|i| i as u8).collect();
    let datagram = udp6(src, dst, sport, dport, &data);
    let (first, rest) = datagram.split_at(56);
    [
        ipv6_chain(
            src,
            dst,
            NEXTHDR_FRAGMENT,
            &[frag_header(PROTO_UDP, 0, true, id)],
            first,
        ),
        ipv6_chain(
            src,
            dst,
            NEXTHDR_FRAGMENT,
            &[frag_header(PROTO_UDP, 56, false, id)],
            rest,
        ),
    ]
}

#[test]
fn fragments_follow_their_first_both_ways() {
    let lab = Nat6Lab::new("frags");
    // Out: a datagram larger than the MTU leaves the namespace fragmented.
    let [first, later] = fragmented(ns1(), remote(), 8000, 53, 0xabcd);
    let before = lab.counters();
    let f = translate_ok(&lab, &out6(&first));
    assert_eq!(f.frag, Some((0, true, 0xabcd)));
    let xport = f.sport_or_id();
    let (verdict, out) = lab.run(EGRESS, &out6(&later));
    assert_eq!(verdict, TC_ACT_OK);
    let l = parse_ipv6(&out[14..]).unwrap();
    assert_eq!(
        l.src,
        external(),
        "the later fragment gets the first's source"
    );
    assert_eq!(l.frag, Some((56, false, 0xabcd)));
    lab.assert_moved(
        &before,
        &[(Counter::NatCreated, 1), (Counter::NatFragTranslated, 1)],
    );
    // The whole datagram's checksum holds: reassembled, the UDP sum over
    // the new pseudo-header is right.
    let mut whole = f.l4().to_vec();
    whole.extend_from_slice(l.l4());
    assert_eq!(
        !ones_sum(
            &whole,
            pseudo_sum6(external(), remote(), PROTO_UDP, whole.len())
        ),
        0,
        "reassembled datagram checksum"
    );

    // In: the reply in fragments, the first restores, the later follows.
    let [rfirst, rlater] = fragmented(remote(), external(), 53, xport, 0x1234);
    let before = lab.counters();
    let (verdict, out) = lab.run(INGRESS, &in6(&rfirst));
    assert_eq!(verdict, TC_ACT_OK);
    let rf = parse_ipv6(&out[14..]).unwrap();
    assert_eq!((rf.dst, rf.dport()), (ns1(), 8000));
    let (verdict, out) = lab.run(INGRESS, &in6(&rlater));
    assert_eq!(verdict, TC_ACT_OK);
    assert_eq!(parse_ipv6(&out[14..]).unwrap().dst, ns1());
    lab.assert_moved(
        &before,
        &[(Counter::NatReversed, 1), (Counter::NatFragTranslated, 1)],
    );
}

#[test]
fn a_later_fragment_without_its_first() {
    let lab = Nat6Lab::new("orphans");
    // Out: dropped (a lab address must never leave).
    let [_, later] = fragmented(ns1(), remote(), 8100, 53, 0x77);
    let frame = out6(&later);
    let before = lab.counters();
    let (verdict, out) = lab.run(EGRESS, &frame);
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(out, frame);
    lab.assert_moved(&before, &[(Counter::NatDropFragment, 1)]);
    // In: the host's (it may be its own datagram's).
    let [_, later_in] = fragmented(remote(), external(), 53, 41000, 0x78);
    let frame = in6(&later_in);
    let before = lab.counters();
    let (verdict, out) = lab.run(INGRESS, &frame);
    assert_eq!(verdict, TCX_NEXT);
    assert_eq!(out, frame);
    lab.assert_moved(&before, &[(Counter::NatFragUntracked, 1)]);
}
