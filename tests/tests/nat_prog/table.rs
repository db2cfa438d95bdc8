//! The translation table as the control plane sees it: expiry, sweeps of
//! large tables, translations kept across a reload.

use crate::lab::*;

#[test]
fn tcp_close_expires_early_and_sweep_removes_both_directions() {
    let lab = NatLab::new("sweep");
    let t = NatTimeouts {
        tcp_established: 1000,
        tcp_closing: 10,
        tcp_syn: 20,
        udp: 30,
        icmp: 30,
    };
    let open = translate_ok(&lab, &tcp_out(NS1, 41000, TCP_SYN)).sport_or_id();
    let closing = translate_ok(&lab, &tcp_out(NS2, 41001, TCP_SYN)).sport_or_id();
    for port in [open, closing] {
        assert_eq!(
            lab.run(INGRESS, &tcp_in(port, TCP_SYN | TCP_ACK)).0,
            TC_ACT_OK
        );
    }
    // The remote closes the second connection.
    assert_eq!(
        lab.run(INGRESS, &tcp_in(closing, TCP_FIN | TCP_ACK)).0,
        TC_ACT_OK
    );
    let flows = lab.flows();
    let state_of = |src: Ipv4Addr| {
        flows
            .iter()
            .find(|f| f.orig_src.ip() == &src)
            .unwrap()
            .state
    };
    assert_eq!(state_of(NS1), FlowState::Established);
    assert_eq!(state_of(NS2), FlowState::Closing);

    let now = nat::monotonic_now_ns();
    let stats = nat::sweep(lab.pin_dir(), &t, now).unwrap();
    assert_eq!((stats.flows, stats.expired), (2, 0), "nothing idle yet");
    let stats = nat::sweep(lab.pin_dir(), &t, now + 11_000_000_000).unwrap();
    assert_eq!((stats.flows, stats.expired), (2, 1));
    let flows = lab.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].orig_src.ip(), &NS1);
    assert!(flows[0].reply_key.is_some(), "the survivor is whole");
    // The closed flow's reply no longer matches: host's (pass), and its
    // port is free again for a new flow.
    let late = tcp_in(closing, TCP_ACK);
    assert_eq!(lab.run(INGRESS, &late), (TCX_NEXT, late.clone()));
    let stats = nat::sweep(lab.pin_dir(), &t, now + 1_001_000_000_000).unwrap();
    assert_eq!(stats.expired, 1);
    assert!(lab.flows().is_empty());
}

/// The UDP flow number `i` of a table filled from userspace: sources
/// 192.168.28.1.. with 10 000 ports each, 40 000 translated ports per remote
/// port, so every original and reply key is unique.
fn synthetic_flow(i: u32, last_seen_ns: u64) -> (NatKey, NatEntry) {
    let key = NatKey {
        saddr: u32::from(Ipv4Addr::new(192, 168, 28, 1 + (i / 10_000) as u8)).to_be(),
        daddr: u32::from(REMOTE).to_be(),
        sport: (10_000 + (i % 10_000) as u16).to_be(),
        dport: (50_000 + (i / 40_000) as u16).to_be(),
        proto: IPPROTO_UDP,
        _pad: [0; 3],
    };
    let entry = NatEntry {
        addr: u32::from(EXTERNAL).to_be(),
        port: (20_000 + (i % 40_000) as u16).to_be(),
        state: NAT_STATE_NONE,
        flags: 0,
        last_seen_ns,
    };
    (key, entry)
}

#[test]
fn a_table_of_50000_flows_is_read_whole_and_swept_exactly() {
    const FLOWS: u32 = 50_000;
    // Room to spare: the LRU maps must not evict anything of this test's.
    let mut lab = NatLab::with_plan(
        "bulk",
        &NatPlan {
            max_entries: 131_072,
            ..plan(PORT_MIN, PORT_MAX)
        },
    );
    let t = NatTimeouts::default();
    let now = nat::monotonic_now_ns();
    let s = 1_000_000_000;
    // Even flows idle for twice the UDP timeout, odd ones seen a second ago.
    let seen = |i: u32| {
        if i.is_multiple_of(2) {
            now - 2 * t.udp * s
        } else {
            now - s
        }
    };
    let mut expected = std::collections::BTreeMap::new();
    for (name, reply) in [(NAT_ORIG_MAP, false), (NAT_REPLY_MAP, true)] {
        let mut map: BpfHashMap<_, NatKey, NatEntry> =
            BpfHashMap::try_from(lab.ebpf().map_mut(name).unwrap()).unwrap();
        for i in 0..FLOWS {
            let (okey, oval) = synthetic_flow(i, seen(i));
            if reply {
                let rval = NatEntry {
                    addr: okey.saddr,
                    port: okey.sport,
                    ..oval
                };
                map.insert(okey.reply_key(&oval), rval, 0).unwrap();
            } else {
                map.insert(okey, oval, 0).unwrap();
                let orig_src = std::net::SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(okey.saddr)),
                    u16::from_be(okey.sport),
                );
                let remote = std::net::SocketAddrV4::new(REMOTE, u16::from_be(okey.dport));
                let translated = std::net::SocketAddrV4::new(EXTERNAL, u16::from_be(oval.port));
                expected.insert((orig_src, remote), (translated, seen(i)));
            }
        }
    }
    assert_eq!(
        expected.len(),
        FLOWS as usize,
        "the test's flows are distinct"
    );

    let read = |lab: &NatLab| {
        lab.flows()
            .into_iter()
            .map(|f| {
                assert_eq!(f.proto, Proto::Udp);
                assert!(
                    f.orig_key.is_some() && f.reply_key.is_some(),
                    "{f:?} is whole"
                );
                ((f.orig_src, f.remote), (f.translated, f.last_seen_ns))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    // The kernel's batch lookup itself (not the per-key fallback) is used.
    let Some(aya::maps::Map::LruHashMap(orig)) = lab.ebpf().map(NAT_ORIG_MAP) else {
        panic!("nat_orig is an LRU hash map");
    };
    let batch = netlab::bpf::sys::lookup_batch(
        std::os::fd::AsFd::as_fd(orig.fd()),
        size_of::<NatKey>(),
        size_of::<NatEntry>(),
        131_072,
    )
    .unwrap()
    .expect("this kernel has BPF_MAP_LOOKUP_BATCH");
    assert_eq!(batch.len(), FLOWS as usize);

    let flows = lab.flows();
    assert_eq!(flows.len(), FLOWS as usize, "every flow once");
    assert_eq!(read(&lab), expected, "exactly the flows written");

    let stats = nat::sweep(lab.pin_dir(), &t, now).unwrap();
    assert_eq!(
        (stats.flows, stats.expired, stats.refreshed),
        (FLOWS as usize, FLOWS as usize / 2, 0)
    );
    expected.retain(|_, (_, seen)| *seen == now - s);
    assert_eq!(read(&lab), expected, "exactly the fresh half is left");
    // Both directions of the expired half are gone from the maps themselves.
    for name in [NAT_ORIG_MAP, NAT_REPLY_MAP] {
        let map: BpfHashMap<_, NatKey, NatEntry> =
            BpfHashMap::try_from(lab.ebpf().map(name).unwrap()).unwrap();
        assert_eq!(map.keys().count(), FLOWS as usize / 2, "{name}");
    }
}

#[test]
fn a_reloaded_program_keeps_the_pinned_translations() {
    let mut lab = NatLab::new("reload");
    let before = translate_ok(&lab, &tcp_out(NS1, 2000, TCP_SYN)).sport_or_id();
    lab.load(&plan(PORT_MIN, PORT_MAX));
    let after = translate_ok(&lab, &tcp_out(NS1, 2000, TCP_ACK)).sport_or_id();
    assert_eq!(before, after);
    assert_eq!(lab.flows().len(), 1);
}
