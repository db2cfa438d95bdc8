//! `netlab daemon --metrics`: scraped with curl while traffic flows,
//! validated with `promtool check metrics`, values equal to `netlab stats
//! --json`; bad and taken addresses refused without touching the lab.
//!
//! Lab `tm<k>`, namespaces `tm<k>-*`, subnet 10.115.<k>.0/24. The endpoint
//! listens on 127.0.0.1 (port 0: a free port) in the test's namespace.
//! The NAT66 case: lab `vd5` on 10.164.5.0/24.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use netlab_tests::traffic::{ChildGuard, EchoLoop, wait_until};
use netlab_tests::{INTERNET_ADDRESS, TestLab, describe, run};
use serde_json::Value;

const NET: [u8; 2] = [10, 115];

fn lab(k: u8, count: u32) -> TestLab {
    TestLab::with_net(NET, &format!("m{k}"), k, count, "")
}

/// `netlab daemon --metrics 127.0.0.1:0` as a child; returns it and the
/// address it says it serves.
fn start_daemon_with_metrics(lab: &TestLab) -> (ChildGuard, String) {
    let mut child = lab
        .command(&["daemon", "--interval", "0.2", "--metrics", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start netlab daemon");
    let stdout = child.stdout.take().expect("piped");
    let guard = ChildGuard::new(child, "netlab daemon --metrics");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("metrics at http://").nth(1) {
                let _ = tx.send(rest.trim_end_matches("/metrics").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon never said where its metrics are");
    (guard, addr)
}

fn scrape(addr: &str) -> String {
    let out = run(Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20"])
        .arg(format!("http://{addr}/metrics")));
    assert!(out.status.success(), "curl: {}", describe(&out));
    String::from_utf8(out.stdout).expect("UTF-8 metrics")
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (Debian's prometheus package; `cargo xtask setup` installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}\n--- metrics\n{text}",
        describe(&out)
    );
}

/// `name{labels} value` lines of one metric, labels as written.
fn samples(text: &str, name: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn counter_metric(text: &str, reason: &str) -> f64 {
    samples(text, "netlab_datapath_total")
        .get(&format!("{{reason=\"{reason}\"}}"))
        .copied()
        .unwrap_or_else(|| panic!("no netlab_datapath_total for {reason}:\n{text}"))
}

fn stats_json(lab: &TestLab) -> Value {
    let out = lab.ok(&["stats", "--json", "--all"]);
    serde_json::from_slice(&out.stdout).expect("stats JSON")
}

#[test]
fn metrics_are_valid_prometheus_move_with_traffic_and_match_stats() {
    let lab = lab(5, 2);
    // The test runs its own daemon (to read the address it picked).
    lab.ok(&["up", "--no-daemon"]);
    let (daemon, addr) = start_daemon_with_metrics(&lab);

    // While traffic flows: valid, and the counters move.
    let pings = EchoLoop::ping(&lab.ns(1), INTERNET_ADDRESS, Duration::from_millis(20));
    assert!(
        pings.wait_rounds(5, Duration::from_secs(20)),
        "no pings got through"
    );
    let first = scrape(&addr);
    promtool_check(&first);
    assert!(pings.wait_rounds(5, Duration::from_secs(20)));
    let second = scrape(&addr);
    promtool_check(&second);
    assert!(
        counter_metric(&second, "nat_reversed") > counter_metric(&first, "nat_reversed"),
        "nat_reversed did not move while pings flowed"
    );
    for metric in [
        "netlab_port_rx_packets_total",
        "netlab_map_entries",
        "netlab_nat_flows",
        "netlab_program_runs_total",
        "netlab_program_run_time_seconds_total",
    ] {
        assert!(
            !samples(&second, metric).is_empty(),
            "no {metric}:\n{second}"
        );
    }
    let runs = samples(&second, "netlab_program_runs_total");
    assert!(
        runs.get("{program=\"netlab_uplink_egress\"}")
            .copied()
            .unwrap_or(0.0)
            > 0.0,
        "{runs:?}"
    );
    let flows = samples(&second, "netlab_nat_flows");
    assert!(
        flows.contains_key("{family=\"ipv4\",proto=\"icmp\",state=\"-\"}"),
        "{flows:?}"
    );
    let (rounds, errors) = pings.finish();
    assert!(
        errors.is_empty() && rounds >= 10,
        "{rounds} rounds: {errors:?}"
    );

    // Traffic stopped: a scrape between two equal `stats` readings shows
    // exactly their values.
    let matched = wait_until(Duration::from_secs(30), || {
        let before = stats_json(&lab);
        let text = scrape(&addr);
        let after = stats_json(&lab);
        if before != after {
            return false; // something moved meanwhile; read again
        }
        let counters = after["counters"].as_object().expect("counters");
        let counters_equal = counters
            .iter()
            .all(|(name, v)| Some(counter_metric(&text, name)) == v.as_f64());
        let rx = samples(&text, "netlab_port_rx_packets_total");
        let ports_equal = after["ports"].as_array().expect("ports").iter().all(|p| {
            rx.iter().any(|(labels, v)| {
                labels.contains(&format!("port=\"{}\"", p["port"].as_str().unwrap()))
                    && Some(*v) == p["rx_packets"].as_f64()
            })
        });
        counters_equal && ports_equal
    });
    assert!(matched, "the metrics never matched `stats --json`");

    assert!(daemon.terminate().success());
    lab.ok(&["down"]);
}

#[test]
fn a_taken_or_remote_address_is_refused_and_changes_nothing() {
    let lab = lab(6, 1);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    // `up --metrics` checks the policy before it creates anything.
    let out = lab.netlab(&["up", "--metrics", "0.0.0.0:0"]);
    assert!(
        !out.status.success(),
        "up accepted a non-local metrics address"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--metrics-allow-remote"),
        "{}",
        describe(&out)
    );
    lab.assert_nothing_left("after up refused its metrics address");

    lab.ok(&["up", "--no-daemon"]);
    let out = lab.netlab(&["daemon", "--metrics", &addr]);
    assert!(!out.status.success(), "bound a taken address");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains(&addr),
        "{err}"
    );
    assert_eq!(
        netlab_tests::netlab::daemon::running_pid(&lab.name),
        None,
        "a daemon was left running"
    );

    let out = lab.netlab(&["daemon", "--metrics", "0.0.0.0:0"]);
    assert!(!out.status.success(), "served on a non-local address");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--metrics-allow-remote"), "{err}");

    let out = lab.netlab(&["daemon", "--metrics", "not-an-address"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address"));
    drop(taken);
    lab.ok(&["down"]);
}

/// `up --metrics ADDR`: the daemon `up` starts serves the endpoint.
#[test]
fn up_hands_its_metrics_address_to_the_daemon_it_starts() {
    let lab = lab(7, 1);
    // A free port: bound, then released for the daemon.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    lab.ok(&["up", "--metrics", &addr]);
    let pid = netlab_tests::netlab::daemon::running_pid(&lab.name).expect("up started a daemon");
    let served = wait_until(Duration::from_secs(30), || {
        run(Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "5"])
            .arg(format!("http://{addr}/metrics")))
        .status
        .success()
    });
    assert!(
        served,
        "the daemon up started (pid {pid}) never served {addr}"
    );
    let text = scrape(&addr);
    promtool_check(&text);
    assert!(text.contains("netlab_datapath_total"), "{text}");
    lab.ok(&["down"]);
    assert_eq!(
        netlab_tests::netlab::daemon::running_pid(&lab.name),
        None,
        "down left the daemon running"
    );
}

/// NAT66 flows are counted by family, next to the IPv4 ones, and the new
/// IPv6 counters are exported. Lab `vd5` on 10.164.5.0/24; the NAT66 flows
/// are written into its pinned maps (as the NAT table tests write IPv4
/// ones), seen now so the daemon's sweep leaves them.
#[test]
fn nat66_flows_are_counted_by_family() {
    use netlab_tests::ipv6_maps::insert_nat6_flow;
    use std::net::{Ipv6Addr, SocketAddrV6};

    let lab = TestLab::named("vd5", [10, 164], 5, 1, "");
    lab.ok(&["up", "--no-daemon"]);
    let (daemon, addr) = start_daemon_with_metrics(&lab);
    let src: Ipv6Addr = "fd00:10:164:5::1".parse().unwrap();
    let remote: Ipv6Addr = "2001:db8:203:113::2".parse().unwrap();
    let external: Ipv6Addr = "2001:db8:203:113::1".parse().unwrap();
    let now = netlab::nat::monotonic_now_ns();
    for (proto, sport, xport) in [(17, 5000, 20001), (17, 5001, 20002), (58, 7, 20003)] {
        insert_nat6_flow(
            &lab,
            proto,
            SocketAddrV6::new(src, sport, 0, 0),
            SocketAddrV6::new(remote, if proto == 58 { 0 } else { 53 }, 0, 0),
            SocketAddrV6::new(external, xport, 0, 0),
            now,
        );
    }
    // One IPv4 flow too: a ping through the NAT.
    let ping = netlab_tests::in_netns(
        &lab.ns(1),
        &["ping", "-c", "1", "-W", "2", &INTERNET_ADDRESS.to_string()],
    );
    assert!(ping.status.success(), "{}", describe(&ping));

    let text = scrape(&addr);
    promtool_check(&text);
    let flows = samples(&text, "netlab_nat_flows");
    assert_eq!(
        flows.get("{family=\"ipv6\",proto=\"udp\",state=\"-\"}"),
        Some(&2.0),
        "{flows:?}"
    );
    assert_eq!(
        flows.get("{family=\"ipv6\",proto=\"icmpv6\",state=\"-\"}"),
        Some(&1.0),
        "{flows:?}"
    );
    assert_eq!(
        flows.get("{family=\"ipv4\",proto=\"icmp\",state=\"-\"}"),
        Some(&1.0),
        "{flows:?}"
    );
    for reason in [
        "nd_answered",
        "drop_ra_guard",
        "drop_nd_spoof",
        "drop_ipv6_malformed",
        "nat_drop_ext_headers",
    ] {
        assert!(
            text.contains(&format!("netlab_datapath_total{{reason=\"{reason}\"}}")),
            "{reason} not exported:\n{text}"
        );
    }
    let entries = samples(&text, "netlab_map_entries");
    assert_eq!(
        entries.get("{map=\"nat6_orig\"}"),
        Some(&3.0),
        "{entries:?}"
    );
    assert_eq!(
        entries.get("{map=\"nat6_reply\"}"),
        Some(&3.0),
        "{entries:?}"
    );

    assert!(daemon.terminate().success());
    lab.ok(&["down"]);
}
