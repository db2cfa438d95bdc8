//! The switch port program fuzzed against the switch model.

use crate::common::*;

const STREAM_SWITCH: u64 = 2;
/// Learned FDB entries are removed when there are more than this.
const MAX_LEARNED: usize = 64;

struct SwitchLab {
    loaded: Loaded,
    maps: SwitchMaps,
    ports: Vec<SwPort>,
    /// The IPv6 maps as written (the model reads this copy).
    v6: V6Tables,
}

impl SwitchLab {
    /// The port program with its maps in a private pin directory, and the
    /// fuzzer's ports as veth devices of the calling thread's namespace
    /// (which must be private), registered the way the control plane does.
    fn new(name: &str) -> Self {
        // bpf_clone_redirect (flooding) really transmits on the ports.
        assert_private_netns("the switch fuzzer");
        let loaded = Loaded::new("fuzz", name, None, &[PORT_PROGRAM]);
        let mut maps = SwitchMaps::open(loaded.dir()).expect("maps");
        let index = |dev: &str| nix::net::if_::if_nametoindex(dev).expect("ifindex");
        for dev in switch_model::PORTS
            .iter()
            .map(|p| p.dev)
            .chain([switch_model::VBRIDGE_DEV])
        {
            add_veth_port(dev, None);
        }
        let vbridge = index(switch_model::VBRIDGE_DEV);
        let mut ports = Vec::new();
        for p in switch_model::PORTS {
            let ifindex = index(p.dev);
            let port = SwPort {
                ifindex,
                deliver: if p.kind == PORT_KIND_GATEWAY {
                    vbridge
                } else {
                    ifindex
                },
                ..p
            };
            let info = port_info(ifindex, port.deliver, p.kind, p.mac, p.ip.octets(), p.slot);
            maps.write_port(&info).expect("register a port");
            ports.push(port);
        }
        // A build whose port program has no IPv6 rules would switch IPv6
        // unchecked: the kernel's record of its maps must name `ports6`.
        assert!(
            loaded.program_uses_map(PORT_PROGRAM, PORTS6_MAP),
            "the port program of this build has no IPv6 rules (it does not use {PORTS6_MAP})"
        );
        let mut lab = Self {
            loaded,
            maps,
            ports,
            v6: V6Tables::default(),
        };
        lab.v6.gateway_port = lab
            .ports
            .iter()
            .find(|p| p.kind == PORT_KIND_GATEWAY)
            .map(|p| p.ifindex)
            .unwrap();
        // Every port's IPv6 addresses in `endpoints6` (the gateway's with
        // vbridge's MAC), the endpoint ports' in `ports6`.
        for p in lab.ports.clone() {
            let e = Endpoint {
                mac: p.mac,
                _pad: [0; 2],
                port_ifindex: p.ifindex,
            };
            for a in [switch_model6::global6(&p), switch_model6::link_local6(&p)] {
                lab.map6::<[u8; 16], Endpoint>(ENDPOINTS6_MAP)
                    .insert(a.octets(), e, 0)
                    .expect("endpoints6");
                lab.v6.endpoints6.insert(a.octets(), e);
            }
            if p.kind != PORT_KIND_GATEWAY {
                lab.set_port6(&p, true);
            }
        }
        lab
    }

    fn map6<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &str,
    ) -> HashMap<&mut aya::maps::MapData, K, V> {
        HashMap::try_from(self.loaded.ebpf_mut().map_mut(name).expect(name)).expect(name)
    }

    /// Gives port `p` its IPv6 addresses in `ports6`, or takes them away
    /// (a port with none sends no IPv6).
    fn set_port6(&mut self, p: &SwPort, present: bool) {
        if self.v6.ports6.contains_key(&p.ifindex) == present {
            return;
        }
        let mut map = self.map6::<u32, Port6>(PORTS6_MAP);
        if present {
            let addrs = Port6 {
                global: switch_model6::global6(p).octets(),
                link_local: switch_model6::link_local6(p).octets(),
            };
            map.insert(p.ifindex, addrs, 0).expect("ports6");
            self.v6.ports6.insert(p.ifindex, addrs);
        } else {
            map.remove(&p.ifindex).expect("ports6");
            self.v6.ports6.remove(&p.ifindex);
        }
    }

    /// Lists `addrs` in `host_addrs6` (empty: host access allowed).
    fn set_host_addrs6(&mut self, addrs: &[std::net::Ipv6Addr]) {
        let listed = self.v6.host_addrs6.clone();
        let mut map = self.map6::<[u8; 16], u8>(HOST_ADDRS6_MAP);
        for a in &listed {
            map.remove(&a.octets()).expect("host_addrs6");
        }
        for a in addrs {
            map.insert(a.octets(), HOST_ADDR_LOCAL, 0)
                .expect("host_addrs6");
        }
        self.v6.host_addrs6 = addrs.to_vec();
    }

    fn run(&self, ingress: u32, frame: &[u8]) -> Result<(u32, Vec<u8>), String> {
        self.loaded
            .run_tc(PORT_PROGRAM, frame, Some(ingress))
            .map_err(|e| format!("{e:?}"))
    }

    fn counters(&self) -> Vec<u64> {
        self.loaded.counters()
    }

    /// Lists `addrs` in `host_addrs` (empty: host access allowed), as the
    /// control plane does.
    fn set_host_addrs(&self, addrs: &[std::net::Ipv4Addr]) {
        let wanted = addrs
            .iter()
            .map(|a| (u32::from_ne_bytes(a.octets()), HOST_ADDR_LOCAL))
            .collect();
        HostAddrs::open(self.loaded.dir())
            .unwrap()
            .sync(&wanted)
            .unwrap();
    }

    fn fdb(&self) -> BTreeMap<[u8; 6], FdbEntry> {
        self.maps
            .fdb_entries()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.mac, v))
            .collect()
    }

    /// (rx, tx, drops) packets per port slot.
    fn port_stats(&self) -> Vec<(u64, u64, u64)> {
        self.ports
            .iter()
            .map(|p| {
                let s = self.maps.port_stats(p.slot).unwrap();
                (s.rx_packets, s.tx_packets, s.drops)
            })
            .collect()
    }
}

/// Checks one case of the port program; returns the problems found.
#[allow(clippy::too_many_arguments)]
fn check_switch_case(
    sw: &SwitchLab,
    case: &SwCase,
    expect: SwExpect,
    result: &Result<(u32, Vec<u8>), String>,
    counter_delta: &[i64],
    fdb_before: &BTreeMap<[u8; 6], FdbEntry>,
    fdb_after: &BTreeMap<[u8; 6], FdbEntry>,
    stats_delta: &[(i64, i64, i64)],
    tally: &mut Tally,
) -> Vec<String> {
    let mut p = Vec::new();
    let frame = &case.frame;
    let (verdict, out) = match (result, expect.outcome) {
        (Err(e), SwOutcome::Refused) => {
            if !e.contains("Invalid argument") {
                p.push(format!("test run refused with an unexpected error: {e}"));
            }
            tally.refused += 1;
            return p;
        }
        (Err(e), o) => return vec![format!("test run failed ({e}); expected {o:?}")],
        (Ok(_), SwOutcome::Refused) => {
            return vec!["the kernel ran a frame the model expects it to refuse".into()];
        }
        (Ok((v, out)), _) => (*v, out.as_slice()),
    };
    *tally.verdicts.entry(verdict).or_default() += 1;
    if ![TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT].contains(&verdict) {
        p.push(format!("undocumented verdict {verdict}"));
    }
    let want_verdict = match expect.outcome {
        SwOutcome::NotAPort => TC_ACT_OK,
        SwOutcome::Drop(_) | SwOutcome::Flood { .. } => TC_ACT_SHOT,
        _ => TC_ACT_REDIRECT,
    };
    if verdict != want_verdict {
        p.push(format!("verdict {verdict}, expected {want_verdict}"));
    }
    match expect.outcome {
        SwOutcome::ArpAnswered { owner } => {
            tally.rewritten += 1;
            let reply = switch_model::arp_reply(frame, sw.ports[owner].mac);
            if out != reply.as_slice() {
                p.push(format!(
                    "ARP answer differs from the owner's reply: {}",
                    hex(out)
                ));
            }
        }
        SwOutcome::NdAnswered { mac, router } => {
            tally.rewritten += 1;
            let na = switch_model6::nd_answer(frame, mac, router);
            if out != na.as_slice() {
                p.push(format!(
                    "ND answer differs from the owner's advertisement {}: {}",
                    hex(&na),
                    hex(out)
                ));
            }
            // The answer's own packet (the frame's padding is kept).
            let end = (54 + u16::from_be_bytes([out[18], out[19]]) as usize).min(out.len());
            if let Err(e) = packets::check_ipv6(&out[14..end]) {
                p.push(format!("ND answer: {e}"));
            }
        }
        _ if verdict != TC_ACT_SHOT && out != frame.as_slice() => {
            p.push("a switched frame was changed".into());
        }
        _ => {}
    }

    // Counters: exactly the expected ones moved, by the expected amounts.
    let mut want = vec![0i64; Counter::ALL.len()];
    let reached_port = expect.outcome != SwOutcome::NotAPort;
    want[Counter::PortRx as usize] = 1;
    if let Some(c) = switch_model::outcome_counter(&sw.ports, expect.outcome) {
        want[c as usize] += 1;
    }
    if expect.other_ethertype {
        want[Counter::OtherEtherType as usize] += 1;
    }
    if let SwOutcome::Flood { copies, .. } = expect.outcome {
        want[Counter::FloodCopies as usize] += copies as i64;
    }
    let src: [u8; 6] = frame[6..12].try_into().unwrap();
    let mut want_fdb = fdb_before.clone();
    if expect.learns {
        let port = sw.ports.iter().find(|p| p.ifindex == case.ingress).unwrap();
        match fdb_before.get(&src) {
            Some(e) if e.flags & FDB_FLAG_STATIC != 0 || e.port_ifindex == case.ingress => {}
            Some(e) => {
                want[Counter::Learned as usize] += 1;
                want_fdb.insert(
                    src,
                    FdbEntry {
                        port_ifindex: case.ingress,
                        kind: port.kind,
                        slot: port.slot as u16,
                        ..*e
                    },
                );
            }
            None => {
                want[Counter::Learned as usize] += 1;
                want_fdb.insert(
                    src,
                    FdbEntry {
                        port_ifindex: case.ingress,
                        kind: port.kind,
                        flags: FDB_FLAG_LEARNED,
                        slot: port.slot as u16,
                    },
                );
                tally.created += 1;
            }
        }
    }
    if counter_delta != want.as_slice() {
        let diff: Vec<String> = Counter::ALL
            .iter()
            .filter(|c| counter_delta[**c as usize] != want[**c as usize])
            .map(|c| {
                format!(
                    "{} moved {} (expected {})",
                    c.name(),
                    counter_delta[*c as usize],
                    want[*c as usize]
                )
            })
            .collect();
        p.push(format!("counters: {}", diff.join(", ")));
    }
    if fdb_after != &want_fdb {
        p.push(format!(
            "FDB changed unexpectedly: {} entries before, {} after, {} expected",
            fdb_before.len(),
            fdb_after.len(),
            want_fdb.len()
        ));
    }

    // Per-port statistics add up with the outcome.
    let mut want_stats = vec![(0i64, 0i64, 0i64); sw.ports.len()];
    if reached_port {
        let ingress = sw
            .ports
            .iter()
            .position(|p| p.ifindex == case.ingress)
            .unwrap();
        want_stats[ingress].0 = 1;
        match expect.outcome {
            SwOutcome::Drop(_) => want_stats[ingress].2 = 1,
            SwOutcome::ArpAnswered { .. } | SwOutcome::NdAnswered { .. } => {
                want_stats[ingress].1 = 1
            }
            SwOutcome::Unicast { to } => want_stats[to].1 = 1,
            SwOutcome::Flood { host, .. } => {
                for (i, s) in want_stats.iter_mut().enumerate() {
                    if i != ingress && (host || sw.ports[i].kind != PORT_KIND_GATEWAY) {
                        s.1 = 1;
                    }
                }
            }
            _ => {}
        }
    }
    if stats_delta != want_stats.as_slice() {
        p.push(format!(
            "port statistics moved {stats_delta:?}, expected {want_stats:?}"
        ));
    }
    p
}

/// Runs `cases` frames through the port program. Returns the tally, the
/// failures and the counters at the end (a run must reach each rule, or
/// it proves nothing about it).
fn fuzz_switch(seed: u64, cases: u64) -> (Tally, Vec<Failure>, Vec<u64>) {
    let mut sw = SwitchLab::new("port");
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    let mut counters = sw.counters();
    let mut learning = false;
    let mut host_addrs: &[std::net::Ipv4Addr] = &[];
    let progress = netlab_tests::netlab::progress::Progress::new("fuzz port", Some(cases));
    for index in 0..cases {
        progress.set_position(index);
        let mut rng = Rng::for_case(seed, STREAM_SWITCH, index);
        let learn_now = rng.chance(30);
        if learn_now != learning {
            learning = learn_now;
            sw.maps
                .set_config(SwitchConfig {
                    trace: 0,
                    learning: learning as u32,
                })
                .unwrap();
        }
        // Host access: mostly closed (the default), sometimes allowed.
        let want_addrs: &[std::net::Ipv4Addr] = if rng.chance(20) {
            &[]
        } else {
            &switch_model::HOST_ADDRS
        };
        if want_addrs != host_addrs {
            host_addrs = want_addrs;
            sw.set_host_addrs(host_addrs);
            let v6: &[std::net::Ipv6Addr] = if host_addrs.is_empty() {
                &[]
            } else {
                &switch_model6::HOST_ADDRS6
            };
            sw.set_host_addrs6(v6);
        }
        // The third endpoint has IPv6 addresses most of the time.
        let third = sw.ports[2];
        sw.set_port6(&third, rng.chance(70));
        let case = switch_model::switch_case(&mut rng, &sw.ports);
        let fdb_before = sw.fdb();
        let expect = switch_model::expect(
            &sw.ports,
            case.ingress,
            &case.frame,
            learning,
            &|mac| fdb_before.get(&mac).copied(),
            host_addrs,
            &sw.v6,
        );
        let stats_before = sw.port_stats();
        let result = sw.run(case.ingress, &case.frame);
        let after = sw.counters();
        let fdb_after = sw.fdb();
        let stats_after = sw.port_stats();
        let counter_delta: Vec<i64> = after
            .iter()
            .zip(&counters)
            .map(|(a, b)| *a as i64 - *b as i64)
            .collect();
        let stats_delta: Vec<(i64, i64, i64)> = stats_after
            .iter()
            .zip(&stats_before)
            .map(|(a, b)| {
                (
                    a.0 as i64 - b.0 as i64,
                    a.1 as i64 - b.1 as i64,
                    a.2 as i64 - b.2 as i64,
                )
            })
            .collect();
        tally.cases += 1;
        let problems = check_switch_case(
            &sw,
            &case,
            expect,
            &result,
            &counter_delta,
            &fdb_before,
            &fdb_after,
            &stats_delta,
            &mut tally,
        );
        if !problems.is_empty() {
            tally.failures += 1;
            failures.push(Failure {
                program: netlab::bpf::loader::PORT_PROGRAM,
                index,
                origin: format!(
                    "{} (ingress ifindex {}, learning {learning})",
                    case.origin, case.ingress
                ),
                frame: case.frame.clone(),
                problems,
            });
        }
        counters = after;
        let learned: Vec<[u8; 6]> = fdb_after
            .iter()
            .filter(|(_, e)| e.flags & FDB_FLAG_STATIC == 0)
            .map(|(k, _)| *k)
            .collect();
        if learned.len() > MAX_LEARNED {
            for mac in learned {
                sw.maps.fdb.remove(&FdbKey::new(mac)).unwrap();
            }
        }
    }
    let end = sw.counters();
    progress.finish_and_clear();
    (tally, failures, end)
}

#[test]
fn port_program_survives_fuzzed_frames() {
    let (seed, cases) = seed_and_cases();
    let (tally, failures, end) = in_private_netns(move || fuzz_switch(seed, cases));
    if failures.is_empty() && cases >= 1000 {
        // The run must have reached every outcome, or it proves little.
        for v in [TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT] {
            assert!(tally.verdicts.get(&v).copied().unwrap_or(0) > 0, "{v}");
        }
        assert!(tally.refused > 0 && tally.rewritten > 0 && tally.created > 0);
        for c in [
            Counter::DropHostAccess,
            Counter::NdAnswered,
            Counter::DropRaGuard,
            Counter::DropNdSpoof,
            Counter::DropIpv6Malformed,
        ] {
            assert!(end[c as usize] > 0, "no frame met the {} rule", c.name());
        }
    }
    let mut tallies = BTreeMap::new();
    tallies.insert(netlab::bpf::loader::PORT_PROGRAM, tally);
    report(seed, cases, &tallies, &failures);
}
