//! Lab lifecycle: rollback on failure at every step, SIGKILL during `up`,
//! validation that creates nothing, names the lab does not own, and the
//! eBPF datapath's `up` (complete, and rolled back after an injected
//! failure at every step).

use netlab_tests::netlab::lab::{FAIL_AT_ENV, STEPS};
use netlab_tests::netlab::netns;
use netlab_tests::{TestLab, assert_all_ok, describe, in_netns, run};
use std::process::Command;

#[test]
fn injected_failure_at_each_step_rolls_back_everything() {
    let lab = TestLab::new("l1", 20);
    let mut steps: Vec<String> = STEPS.iter().map(|s| s.to_string()).collect();
    steps.insert(4, format!("endpoint:{}", lab.ns(2)));
    for step in &steps {
        let out = run(lab
            .command(&["up", "--datapath", "kernel"])
            .env(FAIL_AT_ENV, step));
        assert!(
            !out.status.success(),
            "up with {FAIL_AT_ENV}={step} succeeded: {}",
            describe(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("injected failure after step `{step}`")),
            "{err}"
        );
        lab.assert_nothing_left(&format!("after a failure at {step}"));
    }
    // And after all that, a clean up works.
    lab.ok(&["up", "--datapath", "kernel"]);
    let (ok, report) = lab.check();
    assert!(ok, "{report:#}");
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn sigkill_during_up_then_down_cleans_everything() {
    let lab = TestLab::new("l2", 21);
    for step in ["endpoint:tl2-ns1", "gateway"] {
        let mut child = lab.spawn_paused_up(step, &["--datapath", "kernel"]);
        child.kill().expect("SIGKILL the paused up");
        child.wait().unwrap();

        // Half built: recorded, and partly there.
        assert!(lab.state_file().exists());
        assert!(netns::exists(&lab.host_ns()) && netns::exists(&lab.ns(1)));
        let again = lab.netlab(&["up", "--datapath", "kernel"]);
        assert!(
            !again.status.success(),
            "up on a half-built lab must refuse: {}",
            describe(&again)
        );
        assert!(String::from_utf8_lossy(&again.stderr).contains("half built"));

        lab.ok(&["down"]);
        lab.assert_nothing_left(&format!("after SIGKILL at {step} and down"));
    }
    lab.ok(&["up", "--datapath", "kernel"]);
    let (ok, report) = lab.check();
    assert_all_ok(&report, 12);
    assert!(ok);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn validation_errors_create_nothing() {
    let cases: &[(&str, &str)] = &[
        ("gateway_device = \"a-very-long-bridge\"", "gateway_device"),
        ("gateway = \"10.99.0.5\"", "gateway"),
        ("[nat]\nport_min = 30000\nport_max = 20000", "nat.port_max"),
        ("[nat]\nport_min = 80", "nat.port_min"),
        ("bogus_field = 1", "bogus_field"),
        ("[host]\nuplink = \"has space\"", "host.uplink"),
    ];
    for (i, (extra, field)) in cases.iter().enumerate() {
        let lab = TestLab::with(&format!("v{i}"), 30 + i as u8, 2, extra);
        let out = lab.netlab(&["up", "--datapath", "kernel"]);
        assert!(
            !out.status.success(),
            "{extra:?} accepted: {}",
            describe(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(field),
            "error for {extra:?} does not name {field}: {err}"
        );
        lab.assert_nothing_left(&format!("after rejecting {extra:?}"));
    }
    // Addresses: an explicit namespace list with one outside the subnet.
    let lab = TestLab::with("v9", 39, 0, "");
    std::fs::write(
        &lab.config_path,
        "name = \"tv9\"\nsubnet = \"10.77.39.0/24\"\n[[namespaces]]\nname = \"tv9-ns1\"\naddress = \"10.77.40.1\"\n",
    )
    .unwrap();
    let out = lab.netlab(&["up", "--datapath", "kernel"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("namespaces[0].address") && err.contains("10.77.40.1"),
        "{err}"
    );
    lab.assert_nothing_left("after rejecting an address outside the subnet");
}

#[test]
fn a_namespace_the_lab_does_not_own_is_left_alone() {
    let lab = TestLab::new("l3", 22);
    let foreign = lab.ns(2);
    let add = run(Command::new("ip").args(["netns", "add", &foreign]));
    assert!(add.status.success(), "{}", describe(&add));
    // Mark it, to prove it is the very same namespace afterwards.
    let mark = run(Command::new("ip").args([
        "-n", &foreign, "link", "add", "marker0", "type", "veth", "peer", "name", "marker1",
    ]));
    assert!(mark.status.success(), "{}", describe(&mark));

    let out = lab.netlab(&["up", "--datapath", "kernel"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        err.contains("namespaces[1].name") && err.contains(&foreign),
        "{err}"
    );
    assert!(netns::exists(&foreign));
    let still = in_netns(&foreign, &["ip", "link", "show", "marker0"]);
    assert!(
        still.status.success(),
        "the foreign namespace was replaced: {}",
        describe(&still)
    );
    // Nothing else was created.
    for ns in [lab.host_ns(), lab.inet_ns(), lab.ns(1), lab.ns(3)] {
        assert!(!netns::exists(&ns), "{ns} created despite the conflict");
    }
    assert!(!lab.state_file().exists());
    // down must not take it either.
    lab.ok(&["down"]);
    assert!(netns::exists(&foreign));
    run(Command::new("ip").args(["netns", "del", &foreign]));
}

/// The eBPF datapath's `up` succeeds (a failure fails the test, whatever
/// it says): every goal reachable, no bridge, no iptables rule, the NAT
/// range reserved on the host side; `down` leaves nothing.
#[test]
fn ebpf_up_is_complete_and_down_leaves_nothing() {
    let lab = TestLab::new("l4", 23);
    lab.ok(&["up", "--datapath", "ebpf"]);
    let (ok, report) = lab.check();
    assert_all_ok(&report, 12);
    assert!(ok);
    let links = run(Command::new("ip").args(["-n", &lab.host_ns(), "-d", "link"]));
    let text = String::from_utf8_lossy(&links.stdout);
    assert!(
        !text.contains("bridge forward_delay"),
        "a Linux bridge in the eBPF datapath: {text}"
    );
    assert!(text.contains("vbridge-p"), "{text}");
    let rules = in_netns(
        &lab.host_ns(),
        &["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"],
    );
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains("MASQUERADE"),
        "{}",
        describe(&rules)
    );
    let reserved = in_netns(
        &lab.host_ns(),
        &["cat", "/proc/sys/net/ipv4/ip_local_reserved_ports"],
    );
    assert_eq!(
        String::from_utf8_lossy(&reserved.stdout).trim(),
        "20000-29999",
        "the NAT range is not reserved on the host side"
    );
    lab.ok(&["down"]);
    lab.assert_nothing_left("after the eBPF up/down");
}

/// `NETLAB_FAIL_AT` on the eBPF datapath: a failure after every step rolls
/// back everything, pins and reserved ports included, and a clean `up`
/// works afterwards.
#[test]
fn injected_failure_at_each_step_rolls_back_everything_ebpf() {
    let lab = TestLab::in_net("q1", 118, 1, 2, "");
    let mut steps: Vec<String> = STEPS.iter().map(|s| s.to_string()).collect();
    steps.insert(4, format!("endpoint:{}", lab.ns(2)));
    for step in &steps {
        let out = run(lab
            .command(&["up", "--datapath", "ebpf"])
            .env(FAIL_AT_ENV, step));
        assert!(
            !out.status.success(),
            "up with {FAIL_AT_ENV}={step} succeeded: {}",
            describe(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("injected failure after step `{step}`")),
            "{err}"
        );
        lab.assert_nothing_left(&format!("after a failure at {step} (ebpf)"));
    }
    lab.ok(&["up", "--datapath", "ebpf"]);
    let (ok, report) = lab.check();
    assert_all_ok(&report, 2 * 3);
    assert!(ok, "{report:#}");
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down (ebpf)");
}

#[test]
fn down_of_an_unknown_lab_succeeds() {
    let lab = TestLab::new("l5", 24);
    let out = lab.ok(&["down"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to remove"));
    let st = lab.netlab(&["status"]);
    assert!(!st.status.success());
    assert!(
        String::from_utf8_lossy(&st.stderr).contains("not up"),
        "{}",
        describe(&st)
    );
}

#[test]
fn without_privileges_up_is_refused_before_anything() {
    let lab = TestLab::new("l6", 25);
    // Root without CAP_NET_ADMIN / CAP_SYS_ADMIN (dropped from the bounding
    // set, so the exec'd netlab does not get them).
    let cmd = format!(
        "{} -f {} up --datapath kernel",
        netlab_tests::netlab_bin().display(),
        lab.config_path.display()
    );
    let out =
        run(Command::new("capsh").args(["--drop=cap_net_admin,cap_sys_admin", "--", "-c", &cmd]));
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs root") && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );
    lab.assert_nothing_left("after an unprivileged up");
}
