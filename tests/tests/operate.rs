//! Operating the eBPF datapath as a user does: `up` alone runs the control
//! loop (NAT entries expire), a killed daemon is reported by `status` and
//! brought back by `up`, `down` leaves no daemon; state fixed by hand
//! (`nat flush`, `nat delete`, `fdb add/del`, `map lookup`) on a real lab
//! with real traffic; completions and man page.
//!
//! Labs `to*` on 10.114.<k>.0/24.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, SocketAddrV4},
    process::Command,
    time::Duration,
};

use netlab_common::counters::Counter;
use netlab_tests::{
    INTERNET_ADDRESS, TestLab, describe, in_netns,
    netlab::nat::{NatFlow, Proto},
    packets, run,
    traffic::{EchoLoop, UdpEchoServer, send_frames, udp_echo, udp_socket, wait_until},
};

fn lab(short: &str, k: u8, count: u32, extra: &str) -> TestLab {
    TestLab::in_net(short, 114, k, count, extra)
}

fn status_json(lab: &TestLab) -> serde_json::Value {
    let out = lab.ok(&["status", "--json"]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", describe(&out)))
}

fn daemon_pid(lab: &TestLab) -> Option<u32> {
    status_json(lab)["daemon"]["pid"].as_u64().map(|p| p as u32)
}

fn daemon_state(lab: &TestLab) -> String {
    status_json(lab)["daemon"]["state"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// Whether `pid` runs (a zombie, not yet reaped by whoever adopted the
/// detached daemon, does not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn ping_inet(ns: &str) -> bool {
    in_netns(ns, &["ping", "-c1", "-W2", &INTERNET_ADDRESS.to_string()])
        .status
        .success()
}

fn inet(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(INTERNET_ADDRESS, port)
}

#[test]
fn up_alone_expires_nat_entries_and_down_leaves_no_daemon() {
    let lab = lab("oa", 1, 2, "[nat]\nudp_timeout = 2\nicmp_timeout = 2");
    // -v: the library's log::info! lines reach stderr.
    let up = lab.ok(&["-v", "up"]);
    assert!(
        String::from_utf8_lossy(&up.stdout).contains("netlab daemon started"),
        "{}",
        describe(&up)
    );
    assert!(
        String::from_utf8_lossy(&up.stderr)
            .contains("netlab: info: lab toa: starting its control loop"),
        "-v showed no info line: {}",
        describe(&up)
    );
    assert_eq!(daemon_state(&lab), "running");
    let pid = daemon_pid(&lab).expect("status names the daemon's pid");
    assert!(alive(pid), "daemon {pid} is not running");

    // A flow through the NAT, then nothing: the daemon `up` started
    // removes it after the 2 s ICMP timeout.
    assert!(ping_inet(&lab.ns(1)), "ns1 cannot reach the internet");
    assert!(
        lab.nat_flows().iter().any(|f| f.proto == Proto::Icmp),
        "the ping made no NAT entry"
    );
    assert!(
        wait_until(Duration::from_secs(20), || lab.nat_flows().is_empty()),
        "NAT entries never expired: {:?}",
        lab.nat_flows()
    );
    let st = status_json(&lab);
    assert!(
        st["daemon"]["last_sweep_unix"].as_f64().is_some(),
        "no last sweep in status: {st:#}"
    );
    assert!(
        st["daemon"]["expired_total"].as_u64().unwrap_or(0) >= 1,
        "{st:#}"
    );
    let text = String::from_utf8_lossy(&lab.ok(&["status"]).stdout).into_owned();
    assert!(
        text.contains(&format!("daemon: running (pid {pid}), last swept")),
        "{text}"
    );

    lab.ok(&["down"]);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(pid)),
        "daemon {pid} survived down"
    );
    assert!(!netlab_tests::netlab::daemon::pid_path(&lab.name).exists());
    assert!(!netlab_tests::netlab::daemon::record_path(&lab.name).exists());
    lab.assert_nothing_left("after down");
}

#[test]
fn a_killed_daemon_is_reported_and_up_brings_it_back() {
    let lab = lab("ob", 2, 1, "");
    lab.ok(&["up", "--no-daemon"]);
    assert_eq!(daemon_state(&lab), "not_started", "--no-daemon started one");

    let again = lab.ok(&["up"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already up"),
        "{}",
        describe(&again)
    );
    assert_eq!(
        daemon_state(&lab),
        "running",
        "up on a running lab starts the daemon"
    );
    let first = daemon_pid(&lab).unwrap();

    // Killed hard, by its PID: status says it died.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL the daemon");
    assert!(
        wait_until(Duration::from_secs(10), || daemon_state(&lab) == "died"),
        "status never reported the dead daemon: {:#}",
        status_json(&lab)
    );
    let text = String::from_utf8_lossy(&lab.ok(&["status"]).stdout).into_owned();
    assert!(
        text.contains(&format!("daemon: DIED (pid {first}")),
        "{text}"
    );

    // `up` brings it back, and the new one sweeps. RUST_LOG wins over -v:
    // errors only, so stderr stays empty.
    let up = run(lab.command(&["-v", "up"]).env("RUST_LOG", "error"));
    assert!(up.status.success(), "{}", describe(&up));
    assert!(
        up.stderr.is_empty(),
        "RUST_LOG=error still logged: {}",
        describe(&up)
    );
    assert!(
        String::from_utf8_lossy(&up.stdout).contains("had died; restarted"),
        "{}",
        describe(&up)
    );
    assert_eq!(daemon_state(&lab), "running");
    let second = daemon_pid(&lab).unwrap();
    assert_ne!(first, second);
    assert!(
        wait_until(Duration::from_secs(10), || {
            status_json(&lab)["daemon"]["last_sweep_unix"]
                .as_f64()
                .is_some()
        }),
        "the restarted daemon never swept"
    );
    // A second `up` leaves the running one alone.
    lab.ok(&["up"]);
    assert_eq!(daemon_pid(&lab), Some(second));

    lab.ok(&["down"]);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(second)),
        "daemon {second} survived down"
    );
    lab.assert_nothing_left("after down");
}

/// A UDP flow from `ns`, bound to `port`, echoed by the internet server.
fn udp_flow(lab: &TestLab, n: u32, port: u16, server: SocketAddrV4) -> std::net::UdpSocket {
    let sock = udp_socket(&lab.ns(n), SocketAddrV4::new(lab.ip(n as u8), port));
    assert!(
        udp_echo(&sock, server, b"operate", Duration::from_secs(3)),
        "no echo for ns{n}:{port}"
    );
    sock
}

fn udp_flows(lab: &TestLab) -> BTreeSet<(Ipv4Addr, u16, u16)> {
    lab.nat_flows()
        .iter()
        .filter(|f: &&NatFlow| f.proto == Proto::Udp)
        .map(|f| (*f.orig_src.ip(), f.orig_src.port(), f.translated.port()))
        .collect()
}

#[test]
fn nat_flush_by_namespace_removes_exactly_its_flows_and_frees_their_ports() {
    // Two NAT ports: ns1 and ns2 take them, ns3 finds none.
    let lab = lab("oc", 3, 3, "[nat]\nport_min = 20000\nport_max = 20001");
    lab.ok(&["up"]);
    let server = UdpEchoServer::start(&lab.inet_ns(), inet(7001));
    let _s1 = udp_flow(&lab, 1, 5001, server.addr_v4());
    let _s2 = udp_flow(&lab, 2, 5002, server.addr_v4());
    let before = udp_flows(&lab);
    assert_eq!(before.len(), 2, "{before:?}");
    let ns1_port = before
        .iter()
        .find(|(ip, _, _)| *ip == lab.ip(1))
        .map(|f| f.2)
        .expect("ns1's flow");

    let s3 = udp_socket(&lab.ns(3), SocketAddrV4::new(lab.ip(3), 5003));
    let dropped = lab.counter(Counter::NatDropNoPort);
    assert!(
        !udp_echo(&s3, server.addr, b"full", Duration::from_secs(1)),
        "ns3 got through a full range"
    );
    assert!(lab.counter(Counter::NatDropNoPort) > dropped);

    // Bad filters change nothing.
    let bad = lab.netlab(&["nat", "flush", "--namespace", "nope"]);
    assert!(
        !bad.status.success() && bad.status.code() == Some(1),
        "{}",
        describe(&bad)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an endpoint"));
    assert_eq!(udp_flows(&lab), before);

    let out = lab.ok(&["nat", "flush", "--namespace", &lab.ns(1), "--json"]);
    let removed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(removed["removed"], 1, "{removed:#}");
    assert_eq!(removed["flows"][0]["src"], lab.ip(1).to_string());
    let after = udp_flows(&lab);
    let expected: BTreeSet<_> = before
        .iter()
        .filter(|(ip, _, _)| *ip != lab.ip(1))
        .copied()
        .collect();
    assert_eq!(after, expected, "flush --namespace touched other flows");

    // ns1's port is free again: ns3's flow takes it.
    assert!(
        udp_echo(&s3, server.addr, b"now", Duration::from_secs(3)),
        "ns3 still finds no port after the flush"
    );
    let ns3 = udp_flows(&lab)
        .into_iter()
        .find(|(ip, _, _)| *ip == lab.ip(3))
        .expect("ns3's flow");
    assert_eq!(ns3.2, ns1_port, "ns3 did not reuse ns1's port");

    // --proto: icmp leaves the UDP flows alone.
    let out = lab.ok(&["nat", "flush", "--proto", "icmp", "--json"]);
    let removed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(removed["removed"], 0);
    assert_eq!(udp_flows(&lab).len(), 2);
    drop(server);
    lab.ok(&["down"]);
}

#[test]
fn nat_delete_removes_one_flow_in_both_directions() {
    let lab = lab("od", 4, 1, "");
    lab.ok(&["up"]);
    let server = UdpEchoServer::start(&lab.inet_ns(), inet(7002));
    let _a = udp_flow(&lab, 1, 6001, server.addr_v4());
    let _b = udp_flow(&lab, 1, 6002, server.addr_v4());
    assert_eq!(udp_flows(&lab).len(), 2);
    let src = format!("{}:6001", lab.ip(1));
    let dst = server.addr.to_string();

    // Malformed flows: clear errors, nothing removed.
    for bad in [
        vec!["nat", "delete", "udp", &src],
        vec!["nat", "delete", "gre", &src, &dst],
        vec!["nat", "delete", "udp", "10.114.4.1", &dst],
    ] {
        let out = lab.netlab(&bad);
        assert_eq!(
            out.status.code(),
            Some(if bad.len() == 4 { 2 } else { 1 }),
            "{bad:?}: {}",
            describe(&out)
        );
        assert!(!out.stderr.is_empty(), "{bad:?} said nothing");
    }
    assert_eq!(udp_flows(&lab).len(), 2);

    lab.ok(&["nat", "delete", "udp", &src, &dst]);
    let left = udp_flows(&lab);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left.iter().all(|f| f.1 == 6002),
        "the wrong flow went: {left:?}"
    );
    // Both directions: the reply entry is gone too (no half flow left).
    assert!(
        lab.nat_flows()
            .iter()
            .all(|f| f.orig_key.is_some() && f.reply_key.is_some())
    );
    let again = lab.netlab(&["nat", "delete", "udp", &src, &dst]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no NAT flow"),
        "{}",
        describe(&again)
    );
    drop(server);
    lab.ok(&["down"]);
}

#[test]
fn nat_flush_while_traffic_flows_costs_at_most_the_datagram_in_flight() {
    let lab = lab("og", 7, 2, "");
    lab.ok(&["up"]);
    let server = UdpEchoServer::start(&lab.inet_ns(), inet(7003));
    let flows: Vec<EchoLoop> = (1..=2)
        .map(|n| {
            let sock = udp_socket(&lab.ns(n), SocketAddrV4::new(lab.ip(n as u8), 7100));
            EchoLoop::udp(sock, server.addr, Duration::from_millis(5))
        })
        .collect();
    for f in &flows {
        assert!(
            f.wait_rounds(5, Duration::from_secs(10)),
            "no traffic at start"
        );
    }
    // Four flushes: all, ns2's, ns1's, all. Each flow is flushed three
    // times.
    let mut flushed = [0usize; 2];
    for (i, only) in [None, Some(2u32), Some(1), None].into_iter().enumerate() {
        let mut args = vec!["nat".to_string(), "flush".to_string()];
        if let Some(n) = only {
            args.extend(["--namespace".to_string(), lab.ns(n)]);
        }
        for (k, count) in flushed.iter_mut().enumerate() {
            if only.is_none_or(|n| n as usize == k + 1) {
                *count += 1;
            }
        }
        lab.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // Each flow carries on: the next datagram makes a new translation.
        for (n, f) in flows.iter().enumerate() {
            assert!(
                f.wait_rounds(3, Duration::from_secs(10)),
                "ns{} stalled after flush {i}",
                n + 1
            );
        }
    }
    for (n, f) in flows.into_iter().enumerate() {
        let (rounds, failures) = f.finish();
        // A flush may drop the reply of the one datagram in flight (its
        // translation is gone when it comes back), nothing more. (The loop
        // gives up after 5 failures, above this bound.)
        assert!(
            failures.len() <= flushed[n],
            "ns{}: {} of {rounds} rounds failed after {} flushes: {failures:?}",
            n + 1,
            failures.len(),
            flushed[n]
        );
    }
    // The table is whole: no half flow left behind.
    let table = lab.nat_flows();
    assert!(
        table
            .iter()
            .all(|f| f.orig_key.is_some() && f.reply_key.is_some()),
        "{table:?}"
    );
    drop(server);
    lab.ok(&["down"]);
}

fn fdb_types(lab: &TestLab) -> Vec<(String, String)> {
    let out = lab.ok(&["fdb", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["mac"].as_str().unwrap().to_string(),
                r["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn fdb_del_removes_a_learned_entry_and_refuses_a_static_one() {
    let lab = lab("oe", 5, 2, "");
    lab.ok(&["up"]);
    // A MAC the control plane does not know, learned from a frame that
    // enters the gateway port (sent from the host side's vbridge).
    netlab_tests::netlab::datapath::ebpf::set_learning(&lab.name, true).expect("learning on");
    let stranger = [0x02, 0xaa, 0x0e, 0x00, 0x00, 0x01];
    let frame = packets::ethernet([0xff; 6], stranger, 0x88b5, &[0u8; 46]);
    send_frames(&lab.host_ns(), "vbridge", &[frame]);
    let learned = "02:aa:0e:00:00:01".to_string();
    assert!(
        wait_until(Duration::from_secs(10), || fdb_types(&lab)
            .contains(&(learned.clone(), "learned".into()))),
        "never learned {learned}: {:?}",
        fdb_types(&lab)
    );
    lab.ok(&["fdb", "del", &learned]);
    assert!(!fdb_types(&lab).iter().any(|(m, _)| *m == learned));

    // ns1's static entry: refused, still there, ns1 still reachable.
    let ns1_mac = netlab_tests::netlab::names::format_mac(&lab.mac(1));
    let out = lab.netlab(&["fdb", "del", &ns1_mac]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("static entry"),
        "{}",
        describe(&out)
    );
    assert!(fdb_types(&lab).contains(&(ns1_mac.clone(), "static".into())));
    let out = lab.netlab(&["fdb", "add", &ns1_mac, "veth-2-br"]);
    assert!(
        !out.status.success(),
        "overwrote a static entry: {}",
        describe(&out)
    );
    let ping = in_netns(&lab.ns(2), &["ping", "-c1", "-W2", &lab.ip(1).to_string()]);
    assert!(ping.status.success(), "{}", describe(&ping));

    // A hand-made entry: added on a switch port, not on anything else.
    let manual = "02:aa:0e:00:00:02";
    let out = lab.netlab(&["fdb", "add", manual, "uplink"]);
    assert!(!out.status.success(), "{}", describe(&out));
    lab.ok(&["fdb", "add", manual, "veth-1-br"]);
    assert!(fdb_types(&lab).contains(&(manual.to_string(), "manual".into())));
    lab.ok(&["fdb", "del", manual]);
    assert!(!fdb_types(&lab).iter().any(|(m, _)| m == manual));
    lab.ok(&["down"]);
}

#[test]
fn map_lookup_decodes_an_entry_and_refuses_malformed_keys() {
    let lab = lab("of", 6, 1, "");
    lab.ok(&["up", "--no-daemon"]);
    let ns1_mac = netlab_tests::netlab::names::format_mac(&lab.mac(1));
    let out = lab.ok(&["map", "lookup", "fdb", &ns1_mac, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entry"]["value"]["port"], "veth-1-br", "{v:#}");
    assert_eq!(v["entry"]["value"]["flags"], "static", "{v:#}");
    let out = lab.ok(&[
        "map",
        "lookup",
        "endpoints",
        &lab.ip(1).to_string(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entry"]["value"]["mac"], ns1_mac.as_str(), "{v:#}");

    for (args, says) in [
        (vec!["fdb", "02:4e:zz:00:00:01"], "not a MAC address"),
        (vec!["fdb", "hex:0102"], "bytes"),
        (vec!["nat_orig", "udp", "10.114.6.1:5000"], "three words"),
        (vec!["host_addrs", "300.1.1.1"], "not an IPv4 address"),
        (vec!["no_such_map", "1"], "unknown map"),
        (vec!["fdb", "02:00:00:00:00:09"], "no entry"),
    ] {
        let mut full = vec!["map", "lookup"];
        full.extend(&args);
        let out = lab.netlab(&full);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: expected {says:?}: {err}");
    }
    lab.ok(&["down"]);
}

#[test]
fn completions_and_man_page_are_valid() {
    let dir = std::env::temp_dir().join(format!("netlab-operate-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let netlab = netlab_tests::netlab_bin();
    for (shell, check) in [("bash", Some("bash")), ("zsh", Some("zsh")), ("fish", None)] {
        let out = run(Command::new(&netlab).args(["completions", shell]));
        assert!(out.status.success(), "{}", describe(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("netlab") && script.contains("completions"),
            "{shell}: {script}"
        );
        let path = dir.join(format!("netlab.{shell}"));
        std::fs::write(&path, &out.stdout).unwrap();
        if let Some(sh) = check {
            let syntax = run(Command::new(sh).arg("-n").arg(&path));
            assert!(syntax.status.success(), "{shell} -n: {}", describe(&syntax));
        }
    }
    let out = run(Command::new(&netlab).arg("man"));
    assert!(out.status.success(), "{}", describe(&out));
    let page = dir.join("netlab.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = run(Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat"));
    assert!(rendered.status.success(), "{}", describe(&rendered));
    let text = String::from_utf8_lossy(&rendered.stdout);
    for word in ["SYNOPSIS", "completions", "status"] {
        assert!(text.contains(word), "man page lacks {word}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stats_explain_states_every_counter_once_and_needs_no_lab() {
    let netlab = netlab_tests::netlab_bin();
    let out = run(Command::new(&netlab).args(["stats", "--explain", "--json"]));
    assert!(out.status.success(), "{}", describe(&out));
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("a JSON object");
    let names: Vec<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
    let mut listed: Vec<&str> = json.keys().map(String::as_str).collect();
    listed.sort_unstable();
    let mut expected = names.clone();
    expected.sort_unstable();
    assert_eq!(listed, expected, "one entry per counter");
    for (name, meaning) in &json {
        let meaning = meaning.as_str().unwrap_or_default();
        assert!(meaning.len() > 10, "{name}: no meaning: {meaning:?}");
    }
    // The text form starts one line with each name, in counter order.
    let out = run(Command::new(&netlab).args(["stats", "--explain"]));
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let firsts: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(firsts, names);
}

#[test]
fn a_reader_that_goes_away_ends_netlab_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // `netlab stats --explain | head -0`: the pipe's reader is gone before
    // netlab writes; it must end by SIGPIPE as Unix tools do, not panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(netlab_tests::netlab_bin())
        .args(["stats", "--explain"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}
