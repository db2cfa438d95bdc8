//! Faults: `netlab up`/`down` killed with SIGKILL at random points, two
//! `up`s of one lab at once, and lab parts removed by hand; on both
//! datapaths.
//!
//! Every test owns a lab `tf<k>` on 10.78.<k>.0/24 (sandbox mode: all of it
//! inside the lab's own namespaces), removed on drop. Kill points are drawn
//! from a seeded generator (`NETLAB_FAULTS_SEED`); every assertion message
//! names the run, the datapath and the kill point.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::Duration;

use netlab_tests::fuzz::{Rng, parse_seed};
use netlab_tests::netlab::lab::STEPS;
use netlab_tests::{TestLab, assert_all_ok, describe, in_netns};

const DEFAULT_SEED: u64 = 0x6661_756c_7473; // "faults"
const KILL_RUNS: u64 = 20;

fn seed() -> u64 {
    std::env::var("NETLAB_FAULTS_SEED")
        .ok()
        .and_then(|s| parse_seed(&s))
        .unwrap_or(DEFAULT_SEED)
}

/// Lab `tf<k>` with two endpoint namespaces on 10.78.<k>.0/24.
fn lab(k: u8) -> TestLab {
    TestLab::in_net(&format!("f{k}"), 78, k, 2, "")
}

fn sigkill(child: &mut Child) {
    // SIGKILL by pid: the netlab this test started.
    let _ = child.kill();
    let _ = child.wait();
}

/// Everything of the lab that exists, by kind, for "nothing doubled" and
/// "nothing left" checks: namespaces, and inside the host namespace the
/// links, bridge ports and MASQUERADE rules; the pins.
fn inventory(lab: &TestLab) -> BTreeSet<String> {
    let mut v: BTreeSet<String> = lab.leftovers().into_iter().collect();
    if netlab_tests::netlab::netns::exists(&lab.host_ns()) {
        let links = in_netns(&lab.host_ns(), &["ip", "-o", "link", "show"]);
        for l in String::from_utf8_lossy(&links.stdout).lines() {
            if let Some(name) = l.split(": ").nth(1) {
                v.insert(format!("host link {}", name.split('@').next().unwrap()));
            }
        }
        let rules = in_netns(
            &lab.host_ns(),
            &["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"],
        );
        let masq = String::from_utf8_lossy(&rules.stdout)
            .lines()
            .filter(|l| l.contains("MASQUERADE"))
            .count();
        if masq > 0 {
            v.insert(format!("{masq} MASQUERADE rule(s)"));
        }
    }
    if let Ok(dir) = std::fs::read_dir(lab.pin_dir()) {
        for e in dir.flatten() {
            v.insert(format!("pin {}", e.file_name().to_string_lossy()));
        }
    }
    v
}

/// Brings the lab up from scratch and checks it works, then takes it down.
fn up_check_down(lab: &TestLab, datapath: &str, when: &str) {
    let out = lab.netlab(&["up", "--datapath", datapath]);
    assert!(
        out.status.success(),
        "{when}: up after the fault failed: {}",
        describe(&out)
    );
    let (ok, report) = lab.check();
    assert_all_ok(&report, 2 * 3);
    assert!(ok, "{when}: {report:#}");
    let out = lab.netlab(&["down"]);
    assert!(out.status.success(), "{when}: {}", describe(&out));
    lab.assert_nothing_left(&format!("{when}, then up and down"));
}

/// One kill point: a step of `up` to pause at, or a delay after starting.
#[derive(Debug)]
enum KillPoint {
    Paused(String),
    After(Duration),
}

fn kill_point(rng: &mut Rng, lab: &TestLab, max_delay_ms: usize) -> KillPoint {
    if rng.chance(50) {
        let mut steps: Vec<String> = STEPS.iter().map(|s| s.to_string()).collect();
        steps.push(format!("endpoint:{}", lab.ns(1)));
        steps.push(format!("endpoint:{}", lab.ns(2)));
        KillPoint::Paused(rng.pick(&steps).clone())
    } else {
        KillPoint::After(Duration::from_millis(rng.range(0, max_delay_ms) as u64))
    }
}

/// `up` killed at random points (paused at a step, or after a random
/// delay), `down` killed now and then too: `down` afterwards leaves
/// nothing, and `up` afterwards builds a working lab.
fn sigkill_runs(lab: &TestLab, datapath: &str, stream: u64, max_delay_ms: usize) {
    let seed = seed();
    let mut survived = 0;
    for run_no in 0..KILL_RUNS {
        let mut rng = Rng::for_case(seed, stream, run_no);
        let point = kill_point(&mut rng, lab, max_delay_ms);
        let when = format!("{datapath} run {run_no} (seed {seed:#x}), up killed at {point:?}");
        match &point {
            KillPoint::Paused(step) => {
                let mut child = lab.spawn_paused_up(step, &["--datapath", datapath]);
                sigkill(&mut child);
            }
            KillPoint::After(delay) => {
                let mut child = lab
                    .command(&["up", "--datapath", datapath])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start up");
                std::thread::sleep(*delay);
                sigkill(&mut child);
            }
        }
        // Sometimes `down` is killed as well before the one that finishes.
        if rng.chance(30) {
            let mut child = lab
                .command(&["down"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start down");
            std::thread::sleep(Duration::from_millis(rng.range(0, 100) as u64));
            sigkill(&mut child);
        }
        let out = lab.netlab(&["down"]);
        assert!(
            out.status.success(),
            "{when}: down failed: {}",
            describe(&out)
        );
        let left = inventory(lab);
        assert!(left.is_empty(), "{when}: down left {left:?}");
        up_check_down(lab, datapath, &when);
        survived += 1;
    }
    println!("{datapath}: {survived} SIGKILLs of up survived (seed {seed:#x})");
}

#[test]
fn sigkill_during_kernel_up_at_random_points() {
    sigkill_runs(&lab(1), "kernel", 1, 150);
}

#[test]
fn sigkill_during_ebpf_up_at_random_points() {
    sigkill_runs(&lab(2), "ebpf", 2, 450);
}

/// While one `up` holds the lab (paused half way), a second one says the
/// lab is busy, names the holder, and changes nothing.
fn second_up_is_busy(lab: &TestLab, datapath: &str) {
    let mut first = lab.spawn_paused_up("endpoints", &["--datapath", datapath]);
    let state_before = std::fs::read(lab.state_file()).expect("state file of the first up");
    let before = inventory(lab);
    let second = lab.netlab(&["up", "--datapath", datapath]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{}", describe(&second));
    assert!(
        err.contains("busy") && err.contains(&format!("pid {}", first.id())),
        "{datapath}: {err}"
    );
    assert_eq!(
        std::fs::read(lab.state_file()).unwrap(),
        state_before,
        "{datapath}: the busy up touched the state file"
    );
    assert_eq!(
        inventory(lab),
        before,
        "{datapath}: the busy up changed the lab"
    );
    sigkill(&mut first);
    lab.ok(&["down"]);
    lab.assert_nothing_left(&format!("{datapath}: after the busy test"));
}

#[test]
fn a_second_up_while_one_runs_says_busy_kernel() {
    second_up_is_busy(&lab(3), "kernel");
}

#[test]
fn a_second_up_while_one_runs_says_busy_ebpf() {
    second_up_is_busy(&lab(4), "ebpf");
}

/// Two `up`s started together: one builds the lab, the other says busy or
/// finds it up; the lab works and nothing exists twice.
fn racing_ups(lab: &TestLab, datapath: &str) {
    for round in 0..5 {
        let start = || {
            lab.command(&["up", "--datapath", datapath])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start up")
        };
        let (a, b) = (start(), start());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let created = outs
            .iter()
            .filter(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("is up (")
            })
            .count();
        let other_ok = outs.iter().all(|o| {
            let (out, err) = (
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
            );
            out.contains("is up (") || out.contains("already up") || err.contains("busy")
        });
        assert!(
            created == 1 && other_ok,
            "{datapath} round {round}: {}\n{}",
            describe(&outs[0]),
            describe(&outs[1])
        );
        let (ok, report) = lab.check();
        assert!(ok, "{datapath} round {round}: {report:#}");
        // Nothing doubled: one MASQUERADE rule (kernel), one link pin per
        // port and hook (eBPF), and no object recorded twice.
        let inv = inventory(lab);
        if datapath == "kernel" {
            assert!(inv.contains("1 MASQUERADE rule(s)"), "{inv:?}");
        } else {
            let links = inv.iter().filter(|e| e.starts_with("pin link_")).count();
            // 3 ports, 2 uplink directions (the uplink's XDP filter is off
            // on the sandbox's veth uplink), the socket hooks of published
            // ports (IPv4 and IPv6).
            let hooks = netlab::nat::SOCK_HOOKS.len();
            assert_eq!(links, 3 + 2 + hooks, "{datapath} round {round}: {inv:?}");
            assert!(!inv.iter().any(|e| e.contains("MASQUERADE")), "{inv:?}");
        }
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(lab.state_file()).unwrap()).unwrap();
        let objects = state["objects"].as_array().unwrap();
        let unique: BTreeSet<String> = objects.iter().map(|o| o.to_string()).collect();
        assert_eq!(unique.len(), objects.len(), "recorded twice: {objects:#?}");
        lab.ok(&["down"]);
        lab.assert_nothing_left(&format!("{datapath} round {round}"));
    }
}

#[test]
fn racing_ups_build_one_lab_kernel() {
    racing_ups(&lab(5), "kernel");
}

#[test]
fn racing_ups_build_one_lab_ebpf() {
    racing_ups(&lab(6), "ebpf");
}

/// `status --json`'s missing parts as "kind name [netns]" strings.
fn missing_parts(lab: &TestLab) -> BTreeSet<String> {
    let out = lab.ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    status["missing"]
        .as_array()
        .expect("missing parts")
        .iter()
        .map(|m| {
            format!(
                "{} {}{}",
                m["kind"].as_str().unwrap(),
                m["name"].as_str().unwrap(),
                m["netns"]
                    .as_str()
                    .map(|n| format!(" [{n}]"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Waits (bounded) until link `dev` is gone from namespace `ns`.
fn wait_until_gone(ns: &str, dev: &str) {
    for _ in 0..200 {
        if !in_netns(ns, &["ip", "link", "show", dev]).status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{dev} in {ns} never went away");
}

fn sh(args: &[&str]) {
    let out = netlab_tests::run(std::process::Command::new(args[0]).args(&args[1..]));
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
}

/// Parts removed by hand: `status` reports exactly them, `up` rebuilds
/// them and the lab works again; a lost host namespace cannot be rebuilt
/// in place, which `up` says, and `down` + `up` recover; `down` cleans up
/// a damaged lab.
fn removed_parts(lab: &TestLab, datapath: &str) {
    lab.ok(&["up", "--datapath", datapath]);
    assert!(missing_parts(lab).is_empty(), "a fresh lab misses nothing");
    let host = lab.host_ns();
    let pins = lab.pin_dir();
    sh(&["ip", "netns", "del", &lab.ns(1)]);
    sh(&["ip", "-n", &host, "link", "del", "veth-2-br"]);
    // The kernel dismantles a deleted namespace in the background: its
    // veth pairs (and so their host-side ends) go a moment later.
    wait_until_gone(&host, "veth-1-br");
    let mut expected: BTreeSet<String> = [
        format!("namespace {}", lab.ns(1)),
        format!("link veth-1-br [{host}]"),
        format!("link veth-2-br [{host}]"),
        format!("link veth-2 [{}]", lab.ns(2)),
    ]
    .into();
    if datapath == "kernel" {
        sh(&[
            "ip",
            "netns",
            "exec",
            &host,
            "iptables",
            "-w",
            "-t",
            "nat",
            "-F",
            "POSTROUTING",
        ]);
        expected.insert(format!("masquerade {} [{host}]", lab.subnet()));
    } else {
        for pin in ["fdb", "link_port_vbridge-p"] {
            std::fs::remove_file(pins.join(pin)).expect("remove a pin");
            expected.insert(format!("pin {}", pins.join(pin).display()));
        }
    }
    assert_eq!(missing_parts(lab), expected, "{datapath}: status");
    let text = lab.ok(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("MISSING (") && text.contains(&lab.ns(1)),
        "{text}"
    );

    let out = lab.ok(&["up", "--datapath", datapath]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("repaired"), "{datapath}: {said}");
    assert!(
        missing_parts(lab).is_empty(),
        "{datapath}: still missing after up"
    );
    let (ok, report) = lab.check();
    assert_all_ok(&report, 2 * 3);
    assert!(ok);

    // The host side carries everything: not repairable in place.
    sh(&["ip", "netns", "del", &host]);
    let parts = missing_parts(lab);
    assert!(parts.contains(&format!("namespace {host}")), "{parts:?}");
    let out = lab.netlab(&["up", "--datapath", datapath]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{datapath}: {}", describe(&out));
    assert!(
        err.contains("cannot be rebuilt in place")
            && err.contains(&format!("namespace {host}"))
            && err.contains("netlab down"),
        "{datapath}: {err}"
    );
    assert!(
        !err.contains("was removed"),
        "a refused repair removed nothing: {err}"
    );
    lab.ok(&["down"]);
    lab.assert_nothing_left(&format!("{datapath}: down of a damaged lab"));
    up_check_down(lab, datapath, &format!("{datapath}: after the damage"));
}

#[test]
fn parts_removed_by_hand_are_reported_and_repaired_kernel() {
    removed_parts(&lab(7), "kernel");
}

#[test]
fn parts_removed_by_hand_are_reported_and_repaired_ebpf() {
    removed_parts(&lab(8), "ebpf");
}
