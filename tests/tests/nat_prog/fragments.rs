//! Fragmented datagrams: later fragments follow their first fragment's
//! translation, both ways.

use crate::lab::*;

/// The bytes at which two frames differ.
fn changed_bytes(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len()).filter(|i| a[*i] != b[*i]).collect()
}

/// Offsets in a frame (Ethernet + 20-byte IPv4 header).
const F_TTL: usize = 14 + 8;
const F_CHECK: [usize; 2] = [14 + 10, 14 + 11];
const F_SADDR: std::ops::Range<usize> = 26..30;
const F_DADDR: std::ops::Range<usize> = 30..34;

/// The translated packets of frames that passed, reassembled and wrapped in
/// a frame, for [`verify_checksums`] over the whole datagram.
fn reassembled_frame(outs: &[Vec<u8>]) -> (Ipv4View, Vec<u8>) {
    let packets: Vec<Vec<u8>> = outs.iter().map(|f| f[14..].to_vec()).collect();
    let whole = reassemble(&packets).unwrap_or_else(|e| panic!("reassembly: {e}"));
    let frame = ethernet(INET_MAC, UPLINK_MAC, ETH_P_IP, &whole);
    (parse_ipv4(&whole).unwrap(), frame)
}

fn frag_entries(lab: &NatLab) -> Vec<(NatFragKey, NatFragEntry)> {
    let map = lab.loaded.ebpf().map(NAT_FRAGS_MAP).expect("nat_frags map");
    let map: aya::maps::HashMap<_, NatFragKey, NatFragEntry> =
        aya::maps::HashMap::try_from(map).unwrap();
    map.iter().map(|r| r.unwrap()).collect()
}

#[test]
fn later_fragments_leave_with_their_first_fragments_translation() {
    let lab = NatLab::new("frag");
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    // A UDP datagram and a big ping, as a namespace with MTU 1500 sends them.
    let datagrams = [
        (PROTO_UDP, 0x1111, udp(NS1, REMOTE, 8000, 53, &data, true)),
        (
            PROTO_ICMP,
            0x2222,
            icmp_echo(ICMP_ECHO_REQUEST, 77, 1, &data),
        ),
    ];
    let mut translated_total = 0;
    for (proto, id, segment) in datagrams {
        let mut ip = Ip::new(NS1, REMOTE, proto);
        ip.id = id;
        let frames: Vec<Vec<u8>> = fragments(&ip, &segment, 1500)
            .iter()
            .map(|p| ethernet(INET_MAC, UPLINK_MAC, ETH_P_IP, p))
            .collect();
        assert_eq!(frames.len(), 3);
        let mut outs = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let (verdict, out) = lab.run(EGRESS, frame);
            assert_eq!(verdict, TC_ACT_OK, "proto {proto} fragment {i}");
            verify_ip_header(&out).unwrap();
            let (_, _, x) = parse_frame(&out).unwrap();
            assert_eq!((x.src, x.dst), (EXTERNAL, REMOTE), "fragment {i}");
            if i > 0 {
                // Only the source address and the header checksum change:
                // the data (part of the L4 checksum's) stays as it was.
                let allowed: Vec<usize> = F_SADDR.chain(F_CHECK).collect();
                let stray: Vec<usize> = changed_bytes(frame, &out)
                    .into_iter()
                    .filter(|b| !allowed.contains(b))
                    .collect();
                assert!(stray.is_empty(), "fragment {i} changed at {stray:?}");
            }
            outs.push(out);
        }
        // The L4 checksum, fixed in the first fragment, is right for the
        // whole translated datagram.
        let (whole, frame) = reassembled_frame(&outs);
        verify_checksums(&frame).unwrap_or_else(|e| panic!("proto {proto}: {e}"));
        let flows = lab.flows();
        let flow = flows
            .iter()
            .find(|f| f.proto == Proto::from_number(proto))
            .unwrap();
        assert_eq!(whole.sport_or_id(), flow.translated.port());
        assert_eq!(whole.payload().len(), segment.len());
        translated_total += 2;
        assert_eq!(lab.counter(Counter::NatFragTranslated), translated_total);
    }
    assert_eq!(lab.counter(Counter::NatCreated), 2);
    assert_eq!(lab.counter(Counter::NatDropFragment), 0);

    // The map tells each datagram's identity and the source it gets.
    let mut entries = frag_entries(&lab);
    entries.sort_by_key(|(k, _)| u16::from_be(k.id));
    let raw = |a: Ipv4Addr| u32::from_ne_bytes(a.octets());
    assert_eq!(entries.len(), 2, "{entries:?}");
    for ((k, v), (proto, id)) in entries
        .iter()
        .zip([(PROTO_UDP, 0x1111), (PROTO_ICMP, 0x2222)])
    {
        assert_eq!(
            *k,
            NatFragKey {
                saddr: raw(NS1),
                daddr: raw(REMOTE),
                id: u16::to_be(id),
                proto,
                dir: NAT_FRAG_OUT
            }
        );
        assert_eq!(v.addr, raw(EXTERNAL));
    }

    // A later fragment whose first was not seen (another datagram id, or
    // reordered) must not leave with the lab's address: dropped, counted.
    let mut ip = Ip::new(NS1, REMOTE, PROTO_UDP);
    ip.id = 0x3333;
    let orphan_frags = fragments(&ip, &udp(NS1, REMOTE, 8000, 53, &data, true), 1500);
    let orphans: Vec<Vec<u8>> = orphan_frags
        .iter()
        .map(|p| ethernet(INET_MAC, UPLINK_MAC, ETH_P_IP, p))
        .collect();
    assert_eq!(lab.run(EGRESS, &orphans[2]).0, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::NatDropFragment), 1);
    // Its first fragment arrives late: from then on the rest is translated.
    assert_eq!(lab.run(EGRESS, &orphans[0]).0, TC_ACT_OK);
    let (verdict, out) = lab.run(EGRESS, &orphans[1]);
    assert_eq!(verdict, TC_ACT_OK);
    assert_eq!(parse_frame(&out).unwrap().2.src, EXTERNAL);
    // Another lab source with the same IP id is another datagram.
    let mut other = orphan_frags[1].clone();
    other[12..16].copy_from_slice(&NS2.octets());
    let c = checksum(&{
        let mut h = other[..20].to_vec();
        h[10..12].copy_from_slice(&[0, 0]);
        h
    });
    other[10..12].copy_from_slice(&c.to_be_bytes());
    let other = ethernet(INET_MAC, UPLINK_MAC, ETH_P_IP, &other);
    assert_eq!(lab.run(EGRESS, &other).0, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::NatDropFragment), 2);

    // The sweep forgets datagrams after the reassembly timeout; a straggler
    // then is dropped, never sent untranslated.
    let now = nat::monotonic_now_ns();
    // (Flow timeouts far above the fragments' 30 s.)
    let t = NatTimeouts {
        udp: 1000,
        icmp: 1000,
        ..NatTimeouts::default()
    };
    assert_eq!(
        nat::sweep(lab.pin_dir(), &t, now)
            .unwrap()
            .fragments_expired,
        0
    );
    let later = now + nat::FRAG_TIMEOUT.as_nanos() as u64 + 1;
    let stats = nat::sweep(lab.pin_dir(), &t, later).unwrap();
    assert_eq!(stats.fragments_expired, 3);
    assert_eq!(
        stats.expired, 0,
        "the flows themselves are not idle that long"
    );
    assert!(frag_entries(&lab).is_empty());
    assert_eq!(lab.run(EGRESS, &orphans[2]).0, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::NatDropFragment), 3);
}

#[test]
fn later_fragments_of_a_reply_reach_the_first_fragments_destination() {
    let lab = NatLab::new("fragin");
    let x = translate_ok(
        &lab,
        &out_frame(
            &Ip::new(NS1, REMOTE, PROTO_UDP),
            &udp(NS1, REMOTE, 8000, 53, b"query", true),
        ),
    );
    let xport = x.sport_or_id();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 241) as u8).collect();
    let reply_frames = |id: u16, ttl: u8| -> Vec<Vec<u8>> {
        let mut ip = Ip::new(REMOTE, EXTERNAL, PROTO_UDP);
        ip.id = id;
        ip.ttl = ttl;
        fragments(&ip, &udp(REMOTE, EXTERNAL, 53, xport, &data, true), 1500)
            .iter()
            .map(|p| ethernet(UPLINK_MAC, INET_MAC, ETH_P_IP, p))
            .collect()
    };

    // Endpoint unknown to the fast path: every fragment to the host stack,
    // all with the original destination.
    let frames = reply_frames(0x4444, 64);
    let mut outs = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let (verdict, out) = lab.run(INGRESS, frame);
        assert_eq!(verdict, TC_ACT_OK, "fragment {i}");
        verify_ip_header(&out).unwrap();
        assert_eq!(parse_frame(&out).unwrap().2.dst, NS1, "fragment {i}");
        if i > 0 {
            let allowed: Vec<usize> = F_DADDR.chain(F_CHECK).collect();
            let stray: Vec<usize> = changed_bytes(frame, &out)
                .into_iter()
                .filter(|b| !allowed.contains(b))
                .collect();
            assert!(stray.is_empty(), "fragment {i} changed at {stray:?}");
        }
        outs.push(out);
    }
    let (whole, frame) = reassembled_frame(&outs);
    verify_checksums(&frame).unwrap();
    assert_eq!((whole.dst, whole.dport()), (NS1, 8000));
    assert_eq!(lab.counter(Counter::NatReversed), 1);
    assert_eq!(lab.counter(Counter::NatFragTranslated), 2);
    let entries = frag_entries(&lab);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0.dir, NAT_FRAG_IN);
    assert_eq!(entries[0].0.saddr, u32::from_ne_bytes(REMOTE.octets()));
    assert_eq!(entries[0].0.daddr, u32::from_ne_bytes(EXTERNAL.octets()));
    assert_eq!(entries[0].1.addr, u32::from_ne_bytes(NS1.octets()));

    // Endpoint known: every fragment takes the fast path, each routed
    // (TTL - 1, MACs) and redirected like the first.
    lab.switch_maps()
        .set_endpoint(ipv4_key(NS1), NS1_MAC, 4242)
        .unwrap();
    let frames = reply_frames(0x5555, 64);
    let mut outs = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let (verdict, out) = lab.run(INGRESS, frame);
        assert_eq!(verdict, TC_ACT_REDIRECT, "fragment {i}");
        verify_ip_header(&out).unwrap();
        let (dst_mac, src_mac, r) = parse_frame(&out).unwrap();
        assert_eq!((dst_mac, src_mac), (NS1_MAC, GATEWAY_MAC), "fragment {i}");
        assert_eq!((r.dst, r.ttl), (NS1, 63), "fragment {i}");
        if i > 0 {
            let allowed: Vec<usize> = (0..12)
                .chain(F_DADDR)
                .chain(F_CHECK)
                .chain([F_TTL])
                .collect();
            let stray: Vec<usize> = changed_bytes(frame, &out)
                .into_iter()
                .filter(|b| !allowed.contains(b))
                .collect();
            assert!(stray.is_empty(), "fragment {i} changed at {stray:?}");
        }
        outs.push(out);
    }
    verify_checksums(&reassembled_frame(&outs).1).unwrap();
    assert_eq!(lab.counter(Counter::NatFastPath), 3);
    assert_eq!(lab.counter(Counter::NatFragTranslated), 4);

    // A dying later fragment is restored but left to the host stack (which
    // answers time exceeded), like a dying first fragment.
    let dying = reply_frames(0x6666, 1);
    assert_eq!(lab.run(INGRESS, &dying[0]).0, TC_ACT_OK);
    let (verdict, out) = lab.run(INGRESS, &dying[1]);
    assert_eq!(verdict, TC_ACT_OK);
    verify_ip_header(&out).unwrap();
    assert_eq!(parse_frame(&out).unwrap().2.dst, NS1);
    assert_eq!(lab.counter(Counter::NatFastPath), 3);

    // A later fragment of a datagram whose first fragment was not
    // translated (the host's own, or still to come): the host's, untouched,
    // counted as untracked.
    let pass_host = lab.counter(Counter::NatPassHost);
    let stranger = reply_frames(0x7777, 64);
    assert_eq!(
        lab.run(INGRESS, &stranger[2]),
        (TCX_NEXT, stranger[2].clone())
    );
    assert_eq!(lab.counter(Counter::NatFragUntracked), 1);
    assert_eq!(lab.counter(Counter::NatPassHost), pass_host);
    // A datagram to the host that is not a reply: neither fragment touched.
    let mut ip = Ip::new(REMOTE, EXTERNAL, PROTO_UDP);
    ip.id = 0x8888;
    let host_frags: Vec<Vec<u8>> =
        fragments(&ip, &udp(REMOTE, EXTERNAL, 53, 33000, &data, true), 1500)
            .iter()
            .map(|p| ethernet(UPLINK_MAC, INET_MAC, ETH_P_IP, p))
            .collect();
    for f in &host_frags {
        assert_eq!(lab.run(INGRESS, f), (TCX_NEXT, f.clone()));
    }
    assert_eq!(lab.counter(Counter::NatPassHost), pass_host + 1);
    assert_eq!(lab.counter(Counter::NatFragUntracked), 3);
}
