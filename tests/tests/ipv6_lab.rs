//! IPv6 on real labs, kernel datapath (the baseline: the bridge carries
//! IPv6, `ip6tables -t nat ... MASQUERADE` for the lab's prefix): the
//! whole reachability matrix, what `up`, `status` and `down` do with the
//! IPv6 parts, a `check` that fails where IPv6 is broken on purpose, and
//! `subnet6 = "none"`. The matrix itself is `netlab_tests::ipv6`, shared
//! with the eBPF datapath's tests.
//!
//! Labs `va1`.. on 10.161.<k>.0/24 (IPv6 fd00:10:161:<k>::/64).

use netlab_tests::describe;
use netlab_tests::ipv6::{assert_ipv6_matrix, ipv6_addresses, lab6};
use netlab_tests::traffic::ping_ok;

const NET: [u8; 2] = [10, 161];

/// Every lab namespace (sandbox ones first).
fn namespaces(lab: &netlab_tests::TestLab) -> Vec<String> {
    let mut v = vec![lab.host_ns(), lab.inet_ns()];
    v.extend((1..=lab.namespace_count).map(|i| lab.ns(i)));
    v
}

/// The ip6tables nat rules of the lab's host namespace.
fn nat66_rules(lab: &netlab_tests::TestLab) -> Vec<String> {
    let out = netlab_tests::in_netns(&lab.host_ns(), &["ip6tables", "-w", "-t", "nat", "-S"]);
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("-A "))
        .map(str::to_string)
        .collect()
}

#[test]
fn kernel_lab_reaches_everything_over_ipv6() {
    let lab = lab6("va1", NET, 1, 3, "kernel", "");
    let up = lab.ok(&["up"]);
    let text = String::from_utf8_lossy(&up.stdout);
    for shown in [
        lab.ip6(1).to_string(),
        lab.ip6(5).to_string(),
        "2001:db8:203:113::2/64".into(),
    ] {
        assert!(text.contains(&shown), "up does not show {shown}: {text}");
    }
    assert!(!text.contains("IPv6 egress unavailable"), "{text}");
    assert_eq!(
        nat66_rules(&lab),
        [format!("-A POSTROUTING -s {} -j MASQUERADE", lab.subnet6())]
    );
    // Link-locals are the EUI-64 ones of the MACs netlab sets, usable at
    // once (no tentative addresses: DAD is off).
    let ns1 = ipv6_addresses(&lab.ns(1));
    let link_local = netlab_tests::netlab::names::link_local_for(lab.mac(1));
    assert!(
        ns1.contains(&format!("{}/64", lab.ip6(1))) && ns1.contains(&format!("{link_local}/64")),
        "{ns1:?}"
    );

    assert_ipv6_matrix(&lab);

    // attach: the new namespace's IPv6 address follows from its IPv4 one.
    let ns6 = lab.ns(6);
    lab.ok(&["attach", &ns6, &lab.ip(6).to_string()]);
    assert!(
        ipv6_addresses(&ns6).contains(&format!("{}/64", lab.ip6(6))),
        "{:?}",
        ipv6_addresses(&ns6)
    );
    for to in [lab.ip6(1), lab.ip6(5), netlab_tests::ipv6::INTERNET6] {
        assert!(ping_ok(&ns6, to), "{ns6} -> {to}");
    }
    assert!(ping_ok(&lab.ns(1), lab.ip6(6)));
    lab.ok(&["detach", &ns6]);

    // A second up changes nothing.
    let before = std::fs::read_to_string(lab.state_file()).unwrap();
    let again = lab.ok(&["up"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already up"),
        "{}",
        describe(&again)
    );
    assert_eq!(std::fs::read_to_string(lab.state_file()).unwrap(), before);
    assert_eq!(nat66_rules(&lab).len(), 1);

    let status = lab.ok(&["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!(
            "IPv6: subnet {}, gateway {}",
            lab.subnet6(),
            lab.ip6(5)
        )),
        "{status}"
    );

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

/// The check must be able to fail: with IPv6 off on ns2's veth and the
/// IPv6 MASQUERADE rule deleted, exactly the IPv6 probes that need them
/// fail, IPv4 stays green; `up` puts the rule back (repair) and the
/// internet rows pass again.
#[test]
fn check_fails_exactly_where_ipv6_is_broken_and_up_repairs_the_rule() {
    let lab = lab6("va2", NET, 2, 3, "kernel", "");
    lab.ok(&["up"]);
    let (ok, report) = lab.check();
    assert!(ok, "{report:#}");

    let rule = format!("POSTROUTING -s {} -j MASQUERADE", lab.subnet6());
    let args: Vec<&str> = ["ip6tables", "-w", "-t", "nat", "-D"]
        .into_iter()
        .chain(rule.split(' '))
        .collect();
    let del = netlab_tests::in_netns(&lab.host_ns(), &args);
    assert!(del.status.success(), "{}", describe(&del));
    // IPv6 off on ns2's interface (IPv4 stays): with only its global
    // address deleted it would still talk from its link-local address.
    let off = netlab_tests::in_netns(
        &lab.ns(2),
        &["sysctl", "-w", "net.ipv6.conf.veth-2.disable_ipv6=1"],
    );
    assert!(off.status.success(), "{}", describe(&off));

    let (ok, report) = lab.check();
    assert!(!ok, "check passed with IPv6 broken: {report:#}");
    let ns2 = lab.ns(2);
    for p in report["probes"].as_array().unwrap() {
        let broken = p["family"] == "ipv6"
            && (p["to"] == "internet" || p["to"] == ns2.as_str() || p["from"] == ns2.as_str());
        let expected = if broken { "fail" } else { "ok" };
        assert_eq!(p["result"], expected, "{p:#}\n{report:#}");
    }
    let table = lab.netlab(&["check"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(!table.status.success());
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("{} (IPv6)", lab.ns(1))) && l.contains("FAIL")),
        "{text}"
    );

    // status names the missing IPv6 rule; up puts it back.
    let status = lab.ok(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout)
            .contains(&format!("MASQUERADE rule for {}", lab.subnet6())),
        "{}",
        describe(&status)
    );
    let up = lab.ok(&["up"]);
    assert!(
        String::from_utf8_lossy(&up.stdout)
            .contains(&format!("MASQUERADE rule for {}", lab.subnet6())),
        "{}",
        describe(&up)
    );
    let (_, report) = lab.check();
    for p in report["probes"].as_array().unwrap() {
        if p["family"] == "ipv6" && p["to"] == "internet" && p["from"] != ns2.as_str() {
            assert_eq!(p["result"], "ok", "{p:#}");
        }
    }

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn subnet6_none_gives_a_lab_without_any_ipv6_address() {
    let lab = lab6("va3", NET, 3, 2, "kernel", "subnet6 = \"none\"");
    let up = lab.ok(&["up"]);
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(
        !text.contains("fd00:") && !text.contains("2001:db8"),
        "{text}"
    );
    for ns in namespaces(&lab) {
        let addrs = ipv6_addresses(&ns);
        assert!(addrs.is_empty(), "{ns} has IPv6 addresses: {addrs:?}");
        let routes = netlab_tests::in_netns(&ns, &["ip", "-6", "route", "show"]);
        assert!(
            routes.stdout.is_empty(),
            "{ns} has IPv6 routes: {}",
            describe(&routes)
        );
    }
    assert!(nat66_rules(&lab).is_empty());
    let (ok, report) = lab.check();
    assert!(ok, "{report:#}");
    let probes = report["probes"].as_array().unwrap();
    assert!(probes.iter().all(|p| p["family"] == "ipv4"), "{report:#}");
    assert_eq!(probes.len(), 2 * (1 + 2));
    // IPv4 works as ever.
    netlab_tests::assert_all_ok(&report, 6);
    let status = lab.ok(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("IPv6: off"),
        "{}",
        describe(&status)
    );
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

/// Bad IPv6 input is refused before anything is made, naming the field.
#[test]
fn bad_ipv6_input_is_refused_and_creates_nothing() {
    let cases: &[(&str, &str)] = &[
        ("subnet6 = \"fd00:161:4::/48\"", "subnet6"),
        ("subnet6 = \"fe80::/64\"", "subnet6"),
        ("subnet6 = \"::ffff:10.161.4.0/120\"", "subnet6"),
        ("subnet6 = \"2001:db8:203:113::/64\"", "subnet6"),
        ("gateway6 = \"fd00:1::5\"", "gateway6"),
        (
            "[host]\ninternet_address6 = \"2001:db8:1::2/64\"",
            "host.internet_address6",
        ),
    ];
    for (extra, field) in cases {
        let lab = lab6("va4", NET, 4, 2, "kernel", extra);
        let out = lab.netlab(&["up"]);
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
}
