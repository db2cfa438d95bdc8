//! The kernel datapath (Linux bridge + iptables MASQUERADE) in a sandbox:
//! the walkthrough's goals, idempotent `up`, clean `down`, attach/detach.

use netlab_tests::{TestLab, assert_all_ok, describe, in_netns, run};
use std::process::Command;

/// 3 namespaces: 2 peers + gateway + internet each.
const PROBES_3: usize = 3 * 4;

#[test]
fn kernel_lab_reaches_every_goal_and_down_removes_it() {
    let lab = TestLab::new("k1", 10);
    lab.ok(&["up", "--datapath", "kernel"]);

    let (ok, report) = lab.check();
    assert_all_ok(&report, PROBES_3);
    assert!(ok, "check exit code must be 0 when every probe passes");

    // vbridge is a Linux bridge with the gateway address and MAC 02:4e:<ip>.
    let link =
        run(Command::new("ip").args(["-n", &lab.host_ns(), "-d", "link", "show", "vbridge"]));
    let text = String::from_utf8_lossy(&link.stdout);
    assert!(
        text.contains("bridge forward_delay"),
        "vbridge is not a bridge: {text}"
    );
    assert!(
        text.contains(&format!("02:4e:0a:4d:{:02x}:05", lab.k)),
        "{text}"
    );
    let addr =
        run(Command::new("ip").args(["-n", &lab.host_ns(), "-br", "addr", "show", "vbridge"]));
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&format!("{}/24", lab.address(5))));
    for n in 1..=3u32 {
        let port = run(Command::new("ip").args([
            "-n",
            &lab.host_ns(),
            "-d",
            "link",
            "show",
            &format!("veth-{n}-br"),
        ]));
        assert!(
            String::from_utf8_lossy(&port.stdout).contains("master vbridge"),
            "{}",
            describe(&port)
        );
        let inside =
            run(Command::new("ip").args(["-n", &lab.ns(n), "link", "show", &format!("veth-{n}")]));
        assert!(
            String::from_utf8_lossy(&inside.stdout)
                .contains(&format!("02:4e:0a:4d:{:02x}:{n:02x}", lab.k)),
            "{}",
            describe(&inside)
        );
    }
    // The MASQUERADE rule, in the host namespace only.
    let rule = in_netns(
        &lab.host_ns(),
        &[
            "iptables",
            "-w",
            "-t",
            "nat",
            "-C",
            "POSTROUTING",
            "-s",
            &lab.subnet(),
            "-j",
            "MASQUERADE",
        ],
    );
    assert!(
        rule.status.success(),
        "MASQUERADE rule missing: {}",
        describe(&rule)
    );
    let fwd = in_netns(&lab.host_ns(), &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&fwd.stdout).trim(), "1");

    // up again: a no-op that says so, state untouched.
    let before = std::fs::read(lab.state_file()).unwrap();
    let again = lab.ok(&["up", "--datapath", "kernel"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already up"),
        "{}",
        describe(&again)
    );
    assert_eq!(before, std::fs::read(lab.state_file()).unwrap());

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
    // down again: nothing there, still success.
    lab.ok(&["down"]);
}

#[test]
fn internet_replies_need_the_masquerade() {
    let lab = TestLab::new("k2", 11);
    lab.ok(&["up", "--datapath", "kernel"]);
    let (ok, report) = lab.check();
    assert!(ok, "{report:#}");

    // Without the rule, the internet namespace has no route back to the
    // lab subnet: the internet column must fail, and check must say so.
    let del = in_netns(
        &lab.host_ns(),
        &[
            "iptables",
            "-w",
            "-t",
            "nat",
            "-D",
            "POSTROUTING",
            "-s",
            &lab.subnet(),
            "-j",
            "MASQUERADE",
        ],
    );
    assert!(del.status.success(), "{}", describe(&del));
    let (ok, report) = lab.check();
    assert!(!ok, "check passed without MASQUERADE: {report:#}");
    for p in report["probes"].as_array().unwrap() {
        // Only IPv4 to the internet needed that rule (IPv6 has its own).
        let expected = if p["to"] == "internet" && p["family"] == "ipv4" {
            "fail"
        } else {
            "ok"
        };
        assert_eq!(p["result"], expected, "{p:#}");
    }
    let text = lab.netlab(&["check"]);
    assert!(!text.status.success());
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("FAIL"),
        "{}",
        describe(&text)
    );

    // down copes with the rule already gone.
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn attach_and_detach_an_endpoint() {
    let lab = TestLab::with("k3", 12, 2, "datapath = \"kernel\"");
    lab.ok(&["up"]);
    let ns9 = lab.ns(6);
    let out = lab.ok(&["attach", &ns9, &lab.address(9)]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("veth-3"),
        "{}",
        describe(&out)
    );
    // 3 namespaces now, every goal reachable from and to the new one.
    let (ok, report) = lab.check();
    assert_all_ok(&report, PROBES_3);
    assert!(ok);

    // Bad attach requests change nothing.
    let dup = lab.netlab(&["attach", &lab.ns(7), &lab.address(1)]);
    assert!(!dup.status.success());
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already used"),
        "{}",
        describe(&dup)
    );
    assert!(!netlab_tests::netlab::netns::exists(&lab.ns(7)));
    let outside = lab.netlab(&["attach", &lab.ns(7), "10.99.0.1"]);
    assert!(!outside.status.success());
    assert!(String::from_utf8_lossy(&outside.stderr).contains("outside the lab subnet"));

    lab.ok(&["detach", &ns9]);
    assert!(!netlab_tests::netlab::netns::exists(&ns9));
    let (ok, report) = lab.check();
    assert_all_ok(&report, 2 * 3);
    assert!(ok);
    let missing = lab.netlab(&["detach", &ns9]);
    assert!(!missing.status.success());

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn status_shows_the_topology() {
    let lab = TestLab::with("k4", 13, 2, "datapath = \"kernel\"");
    lab.ok(&["up"]);
    let out = lab.ok(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["datapath"], "kernel");
    assert_eq!(st["complete"], true);
    let nss = st["namespaces"].as_array().unwrap();
    let names: Vec<&str> = nss.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, [lab.host_ns(), lab.inet_ns(), lab.ns(1), lab.ns(2)]);
    let host_links = nss[0]["links"].as_array().unwrap();
    let vbridge = host_links
        .iter()
        .find(|l| l["name"] == "vbridge")
        .expect("vbridge listed");
    assert_eq!(vbridge["kind"], "bridge");
    assert_eq!(vbridge["addresses"][0], format!("{}/24", lab.address(5)));
    assert!(vbridge["ifindex"].as_u64().unwrap() > 1);
    let routes = nss[2]["routes"].as_array().unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r["destination"] == "default" && r["gateway"] == lab.address(5)),
        "{routes:?}"
    );
    // exec: inside the namespace, with its own /sys (like `ip netns exec`).
    let ex = lab.ok(&["exec", &lab.ns(2), "--", "ls", "/sys/class/net"]);
    let listed = String::from_utf8_lossy(&ex.stdout);
    assert!(
        listed.contains("veth-2") && !listed.contains("veth-1"),
        "{}",
        describe(&ex)
    );
    let ex = lab.ok(&[
        "exec",
        &lab.ns(1),
        "--",
        "ip",
        "-br",
        "addr",
        "show",
        "veth-1",
    ]);
    assert!(String::from_utf8_lossy(&ex.stdout).contains(&lab.address(1)));
    let text = lab.ok(&["status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("veth-1-br"));
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}
