//! The NAT programs (TC egress and ingress) and the uplink XDP filter
//! fuzzed, case by case.

use crate::{common::*, nat_check::*, nat_lab::*, nat6::*};

/// Runs `cases` cases per NAT program; returns the tallies and failures.
pub(crate) fn fuzz_nat(seed: u64, cases: u64) -> (BTreeMap<&'static str, Tally>, Vec<Failure>) {
    let mut lab = NatLab::new("nat");
    // IPv6 frames meet NAT66 (`nat6.rs`): a build without it fails here.
    assert!(
        nat66_in_programs(&lab),
        "the NAT programs of this build do no NAT66 (the egress does not use {NAT6_ORIG_MAP})"
    );
    lab.configure6();
    let mut st6 = Nat6State::default();
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut known = translations(&lab);
    let mut datagrams: Vec<NatFragKey> = Vec::new();
    let mut counters = lab.counters();
    let (mut n_orig, mut n_reply, mut n_frags) = (0i64, 0i64, 0i64);
    let mut done = [0u64; 2];
    let mut index = 0u64;
    // A line every few seconds where there is no terminal (CI logs).
    let progress = netlab_tests::netlab::progress::Progress::new("fuzz uplink", Some(2 * cases));
    while done.iter().any(|d| *d < cases) {
        progress.set_position(done[0] + done[1]);
        let mut rng = Rng::for_case(seed, STREAM_NAT, index);
        let mut dir = if rng.chance(50) {
            Dir::Egress
        } else {
            Dir::Ingress
        };
        if done[dir as usize] >= cases {
            dir = if dir == Dir::Egress {
                Dir::Ingress
            } else {
                Dir::Egress
            };
        }
        let (mut frame, mut origin) = if rng.chance(15) {
            frames::random_frame(&mut rng)
        } else if rng.chance(40) {
            frames6::valid_frame6(&mut rng, dir, &st6.known, &st6.datagrams)
        } else {
            frames::valid_frame(&mut rng, dir, &known, &datagrams)
        };
        if rng.chance(65) && !origin.starts_with("random") {
            let m = mutate::mutate(&mut rng, &mut frame);
            origin = format!("{origin}; {m}");
        }
        if mutate6::is_ipv6(&frame) {
            case6(
                &mut lab,
                &mut st6,
                dir,
                &frame,
                &origin,
                index,
                &mut counters,
                &mut tallies,
                &mut failures,
            );
            done[dir as usize] += 1;
            index += 1;
            continue;
        }
        let program = match dir {
            Dir::Egress => nat::EGRESS_PROGRAM,
            Dir::Ingress => nat::INGRESS_PROGRAM,
        };

        let mut expect = nat_model::expect(dir, &frame);
        let mut found = match expect {
            Expect::Translate { key, .. } => lab.lookup(NAT_ORIG_MAP, &key),
            Expect::Reverse { key, .. } => lab.lookup(NAT_REPLY_MAP, &key),
            Expect::IcmpError { key, .. } => lab.lookup(
                if dir == Dir::Egress {
                    NAT_ORIG_MAP
                } else {
                    NAT_REPLY_MAP
                },
                &key,
            ),
            // What decides a later fragment's fate is its datagram's entry.
            Expect::LaterFragment { key } => lab.frag_lookup(&key).map(|e| NatEntry {
                addr: e.addr,
                ..Default::default()
            }),
            _ => None,
        };
        let mut dnat = Dnat::No;
        if let Expect::Reverse { key, .. } = expect
            && found.is_none()
        {
            match classify_dnat(&lab, &key) {
                Ok((kind, entry)) => (dnat, found) = (kind, entry),
                Err(reason) => expect = Expect::Drop(reason),
            }
        }
        match expect {
            Expect::Reverse { .. } if found.is_none() => expect = Expect::Pass,
            Expect::IcmpError { .. } if found.is_none() => expect = nat_model::not_ours(dir),
            Expect::LaterFragment { .. } if found.is_none() => {
                expect = nat_model::fragment_not_tracked(dir)
            }
            _ => {}
        }
        let frag_key = match expect {
            Expect::Translate { frag, .. } | Expect::Reverse { frag, .. } => frag,
            Expect::LaterFragment { key } => Some(key),
            _ => None,
        };
        let frag_before = frag_key.and_then(|k| lab.frag_lookup(&k));

        if dir == Dir::Ingress {
            // The uplink XDP program sees the frame first (where it is
            // attached): its own model, and the TC ingress's agreement.
            let tally = tallies.entry(UPLINK_XDP).or_default();
            // A frame with the IPv6 EtherType here is too short for the
            // IPv6 header (the rest went to `case6`): with NAT66 the
            // filter may drop it as malformed, as the kernel refuses it
            // to the TC ingress.
            let short_ipv6 = frame.len() >= 14 && frame[12..14] == [0x86, 0xdd];
            let problems = if short_ipv6 {
                crate::nat6_check::check_xdp6(&lab, &frame, &Expect6::Refused, &mut counters, tally)
            } else {
                check_xdp_case(&lab, &frame, &expect, &mut counters, tally)
            };
            tally.cases += 1;
            if !problems.is_empty() {
                tally.failures += 1;
                failures.push(Failure {
                    program: UPLINK_XDP,
                    index,
                    origin: origin.clone(),
                    frame: frame.clone(),
                    problems,
                });
            }
        }
        let result = lab.run(program, &frame);
        let after = lab.counters();
        let orig_now = lab.entries(NAT_ORIG_MAP).len() as i64;
        let reply_now = lab.entries(NAT_REPLY_MAP).len() as i64;
        let frags_now = lab.frag_entries().len() as i64;
        let seen = Observed {
            result,
            counter_delta: after
                .iter()
                .zip(&counters)
                .map(|(a, b)| *a as i64 - *b as i64)
                .collect(),
            orig_delta: orig_now - n_orig,
            reply_delta: reply_now - n_reply,
            frag_delta: frags_now - n_frags,
            frag_before,
            frag_after: frag_key.and_then(|k| lab.frag_lookup(&k)),
        };
        let tally = tallies.entry(program).or_default();
        tally.cases += 1;
        let problems = check_nat_case(&lab, dir, &frame, expect, found, dnat, &seen, tally);
        if !problems.is_empty() {
            tally.failures += 1;
            failures.push(Failure {
                program,
                index,
                origin,
                frame: frame.clone(),
                problems,
            });
        }
        counters = after;
        if (orig_now, reply_now) != (n_orig, n_reply) {
            if orig_now as usize > MAX_FLOWS {
                lab.clear(NAT_ORIG_MAP);
                lab.clear(NAT_REPLY_MAP);
            }
            known = translations(&lab);
            n_orig = lab.entries(NAT_ORIG_MAP).len() as i64;
            n_reply = lab.entries(NAT_REPLY_MAP).len() as i64;
        }
        if frags_now != n_frags {
            if frags_now as usize > MAX_FLOWS {
                lab.clear_frags();
            }
            datagrams = lab.frag_entries().into_iter().map(|(k, _)| k).collect();
            n_frags = datagrams.len() as i64;
        }
        done[dir as usize] += 1;
        index += 1;
    }
    progress.finish_and_clear();
    (tallies, failures)
}

/// Runs the uplink XDP program on `frame` and checks it against
/// `xdp_model`: the verdict, the frame left untouched, exactly its counter
/// moved by one, and (a drop) the TC ingress's expectation `tc` dropping
/// too. Updates `counters` to the values after the run.
pub(crate) fn check_xdp_case(
    lab: &NatLab,
    frame: &[u8],
    tc: &Expect,
    counters: &mut Vec<u64>,
    tally: &mut Tally,
) -> Vec<String> {
    let mut problems = Vec::new();
    let want = xdp_model::expect(frame);
    let result = lab.run_xdp(frame);
    match &result {
        Ok((v, _)) => *tally.verdicts.entry(*v).or_default() += 1,
        Err(_) => tally.refused += 1,
    }
    let after = lab.counters();
    let moved: Vec<(&str, i64)> = Counter::ALL
        .iter()
        .zip(after.iter().zip(counters.iter()))
        .filter(|(_, (a, b))| a != b)
        .map(|(c, (a, b))| (c.name(), *a as i64 - *b as i64))
        .collect();
    *counters = after;
    let (verdict, counter) = match want {
        XdpExpect::Refused => {
            if result.is_ok() {
                problems.push(format!("expected a refused test run, got {result:?}"));
            }
            return problems;
        }
        XdpExpect::Pass => (XDP_PASS, Counter::XdpPass),
        XdpExpect::Drop(reason) => {
            if !xdp_model::tc_agrees(reason, tc) {
                problems.push(format!(
                    "XDP drops for {} but the TC ingress expects {tc:?}",
                    reason.name()
                ));
            }
            (XDP_DROP, reason)
        }
    };
    match result {
        Ok((v, out)) => {
            if v != verdict {
                problems.push(format!("XDP verdict {v}, expected {verdict} ({want:?})"));
            }
            if out != frame {
                problems.push("XDP changed the frame".into());
            }
        }
        Err(e) => problems.push(format!("XDP test run failed: {e}")),
    }
    if moved != [(counter.name(), 1)] {
        problems.push(format!(
            "XDP counters moved {moved:?}, expected {} by 1",
            counter.name()
        ));
    }
    problems
}

#[test]
fn nat_programs_survive_fuzzed_frames() {
    let (seed, cases) = seed_and_cases();
    let (tallies, failures) = fuzz_nat(seed, cases);
    // The run must have exercised the interesting paths, or it proves little.
    let egress = &tallies[nat::EGRESS_PROGRAM];
    let ingress = &tallies[nat::INGRESS_PROGRAM];
    assert_eq!(
        tallies[UPLINK_XDP].cases, ingress.cases,
        "XDP saw every ingress case"
    );
    if failures.is_empty() && cases >= 1000 {
        assert!(egress.created > 0 && egress.rewritten > egress.created);
        assert!(ingress.rewritten > 0);
        assert!(ingress.verdicts.get(&TC_ACT_REDIRECT).copied().unwrap_or(0) > 0);
        assert!(egress.fragments > 0 && ingress.fragments > 0);
        for t in [egress, ingress] {
            assert!(t.refused > 0 && t.verdicts.get(&TC_ACT_SHOT).copied().unwrap_or(0) > 0);
        }
        let xdp = &tallies[UPLINK_XDP];
        for v in [XDP_DROP, XDP_PASS] {
            assert!(xdp.verdicts.get(&v).copied().unwrap_or(0) > 0, "XDP {v}");
        }
        {
            // NAT66: new flows, replies (some by the fast path), later
            // fragments both ways, drops.
            let (e6, i6) = (&tallies[EGRESS6], &tallies[INGRESS6]);
            assert!(e6.created > 0 && e6.rewritten > e6.created, "NAT66 egress");
            assert!(i6.rewritten > 0, "NAT66 ingress");
            assert!(i6.verdicts.get(&TC_ACT_REDIRECT).copied().unwrap_or(0) > 0);
            assert!(e6.fragments > 0 && i6.fragments > 0, "NAT66 fragments");
            for t in [e6, i6] {
                assert!(t.verdicts.get(&TC_ACT_SHOT).copied().unwrap_or(0) > 0);
            }
        }
    }
    report(seed, cases, &tallies, &failures);
}

/// Found by the fuzzer (seed 0x6e65746c6162, ingress case 3775): the
/// host's own GRE packet with a 4-byte payload was dropped as malformed
/// because ingress read 8 bytes of L4 header for every protocol. Other
/// protocols to the external address are the host's and pass untouched.
#[test]
fn short_packets_of_other_protocols_to_the_host_pass_untouched() {
    use netlab_tests::packets::{ETH_P_IP, Ip, ethernet, ipv4};
    let lab = NatLab::new("foreign");
    for (proto, len) in [(47u8, 4usize), (59, 0), (50, 7), (132, 1)] {
        let frame = ethernet(
            frames::UPLINK_MAC,
            frames::INET_MAC,
            ETH_P_IP,
            &ipv4(
                &Ip::new(frames::REMOTES[0], frames::EXTERNAL, proto),
                &vec![0xab; len],
            ),
        );
        let before = lab.counters()[Counter::NatPassHost as usize];
        let (verdict, out) = lab.run(nat::INGRESS_PROGRAM, &frame).expect("test run");
        assert_eq!((verdict, &out), (TCX_NEXT, &frame), "protocol {proto}");
        assert_eq!(
            lab.counters()[Counter::NatPassHost as usize],
            before + 1,
            "protocol {proto}"
        );
    }
}
