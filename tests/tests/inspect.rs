//! The inspection commands on real labs: known traffic (a ping between
//! namespaces, one TCP connection through the NAT), then the exact rows
//! `fdb`, `nat list`, `stats` and `map dump` show; bpftool agreeing with
//! `map dump`; `trace` showing one ping's events and switching itself off;
//! pinned maps of another layout refused.
//!
//! Labs `ti<k>` on 10.79.<k>.0/24 with namespaces `ti<k>-ns<N>`; the IPv6
//! cases (`inspect/ipv6.rs`) labs `vd1`, `vd2`, `vd6` on 10.164.<k>.0/24.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use netlab::netns;
use netlab_common::counters::Counter;
use netlab_tests::{TestLab, describe, in_netns};
use serde_json::{Value, json};

// The IPv6 cases, in the directory of the same name (this file stays the
// test target `--test inspect` names).
#[path = "inspect/ipv6.rs"]
mod ipv6;

/// A sandbox lab `ti<k>` with `count` endpoints on 10.79.<k>.0/24.
fn lab(k: u8, count: u32) -> TestLab {
    TestLab::with_net([10, 79], &format!("i{k}"), k, count, "")
}

fn addr(k: u8, host: u8) -> String {
    format!("10.79.{k}.{host}")
}

fn mac(k: u8, host: u8) -> String {
    format!("02:4e:0a:4f:{k:02x}:{host:02x}")
}

fn json_of(lab: &TestLab, args: &[&str]) -> Value {
    let out = lab.ok(args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("netlab {args:?} printed no JSON ({e}): {}", describe(&out)))
}

fn ifindex(lab: &TestLab, dev: &str) -> u32 {
    let dev = dev.to_string();
    netlab::topology::with_netlink(Some(&lab.host_ns()), move |nl| nl.require_link(&dev))
        .expect("ifindex")
}

fn ping(lab: &TestLab, from: u32, to: &str) {
    let out = in_netns(&lab.ns(from), &["ping", "-c", "1", "-W", "2", to]);
    assert!(out.status.success(), "ping {to}: {}", describe(&out));
}

/// A TCP server on the internet namespace's address, port 8080, accepting
/// one connection: returns the client's address as the server saw it.
fn serve_once(lab: &TestLab) -> mpsc::Receiver<std::net::SocketAddr> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (peer_tx, peer_rx) = mpsc::channel();
    let inet = lab.inet_ns();
    std::thread::spawn(move || {
        netns::run_in(Some(&inet), move || {
            let l = TcpListener::bind("203.0.113.2:8080").expect("bind in the internet namespace");
            ready_tx.send(()).unwrap();
            let (mut s, peer) = l.accept().expect("accept");
            peer_tx.send(peer).unwrap();
            let mut buf = [0u8; 64];
            // Echo until the client closes: the client reading its bytes
            // back is how it knows the exchange has crossed the NAT.
            while let Ok(n @ 1..) = s.read(&mut buf) {
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })
        .expect("internet namespace thread");
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server ready");
    peer_rx
}

#[test]
fn rows_after_known_traffic() {
    let k = 1;
    let lab = lab(k, 2);
    lab.ok(&["up"]);
    let host = lab.host_ns();

    // Known traffic: ns1 pings ns2; ns1 opens one TCP connection to the
    // internet server through the NAT (kept open while we look).
    ping(&lab, 1, &addr(k, 2));
    let peer_rx = serve_once(&lab);
    let ns1 = lab.ns(1);
    let mut client = netns::run_in(Some(&ns1), || {
        TcpStream::connect_timeout(&"203.0.113.2:8080".parse().unwrap(), Duration::from_secs(5))
    })
    .unwrap()
    .expect("connect through the NAT");
    client.write_all(b"hello").unwrap();
    let seen_by_server = peer_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("accepted");
    let sport = client.local_addr().unwrap().port();
    // The echo coming back means the handshake's last ACK (which made the
    // entry ESTABLISHED) and our data crossed the egress, and the server's
    // segments the ingress: what the rows below show has happened.
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut echoed = [0u8; 5];
    client
        .read_exact(&mut echoed)
        .expect("the server's echo through the NAT");
    assert_eq!(&echoed, b"hello");

    let (if1, if2, ifgw) = (
        ifindex(&lab, "veth-1-br"),
        ifindex(&lab, "veth-2-br"),
        ifindex(&lab, "vbridge-p"),
    );

    // fdb: the two endpoints and the gateway, static, with their IPv4
    // and IPv6 (global, then the EUI-64 link-local of the MAC) addresses.
    let fdb = json_of(&lab, &["fdb", "--json"]);
    let v6 = |host: u16| {
        let m = netlab::names::mac_for(std::net::Ipv4Addr::new(10, 79, k, host as u8));
        json!([
            std::net::Ipv6Addr::new(0xfd00, 0x10, 0x79, k.into(), 0, 0, 0, host).to_string(),
            netlab::names::link_local_for(m).to_string()
        ])
    };
    assert_eq!(
        fdb,
        json!([
            { "mac": mac(k, 1), "port": "veth-1-br", "port_ifindex": if1, "owner": lab.ns(1), "kind": "endpoint", "type": "static",
              "ipv4": addr(k, 1), "ipv6": v6(1) },
            { "mac": mac(k, 2), "port": "veth-2-br", "port_ifindex": if2, "owner": lab.ns(2), "kind": "endpoint", "type": "static",
              "ipv4": addr(k, 2), "ipv6": v6(2) },
            { "mac": mac(k, 5), "port": "vbridge-p", "port_ifindex": ifgw, "owner": "gateway", "kind": "gateway", "type": "static",
              "ipv4": addr(k, 5), "ipv6": v6(5) },
        ])
    );

    // nat list: exactly the one TCP connection, translated to the port the
    // server saw.
    assert_eq!(seen_by_server.ip().to_string(), "203.0.113.1");
    let nat = json_of(&lab, &["nat", "list", "--json"]);
    let rows = nat.as_array().expect("array");
    assert_eq!(rows.len(), 1, "{nat:#}");
    let row = &rows[0];
    let expected = json!({
        "direction": "out", "proto": "tcp", "state": "ESTABLISHED", "namespace": lab.ns(1),
        "src": addr(k, 1), "sport": sport, "dst": "203.0.113.2", "dport": 8080,
        "translated_src": "203.0.113.1", "translated_sport": seen_by_server.port(),
        "complete": true,
    });
    for (field, want) in expected.as_object().unwrap() {
        assert_eq!(&row[field], want, "field {field} of {row:#}");
    }
    let age = row["age_ms"].as_u64().expect("age_ms");
    let left = row["expires_in_ms"].as_u64().expect("expires_in_ms");
    assert!(age + left <= 432_000_000 && left > 0, "{row:#}");
    let table = String::from_utf8(lab.ok(&["nat", "list"]).stdout).unwrap();
    let translated = format!("203.0.113.1:{}", seen_by_server.port());
    assert!(
        table.contains("ESTABLISHED") && table.contains(&translated),
        "{table}"
    );

    // Filters.
    let only = |args: &[&str]| json_of(&lab, &[&["nat", "list", "--json"], args].concat());
    assert_eq!(only(&["--proto", "tcp"]).as_array().unwrap().len(), 1);
    assert_eq!(only(&["--proto", "udp"]), json!([]));
    assert_eq!(
        only(&["--namespace", &lab.ns(1)]).as_array().unwrap().len(),
        1
    );
    assert_eq!(only(&["--namespace", &lab.ns(2)]), json!([]));
    assert_eq!(
        only(&["--address", "203.0.113.1"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(only(&["--address", &addr(k, 2)]), json!([]));
    let bad = lab.netlab(&["nat", "list", "--namespace", "nowhere"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nowhere") && err.contains(&lab.ns(1)), "{err}");

    // map dump: the NAT's original-direction entry, decoded.
    let dump = json_of(&lab, &["map", "dump", "nat_orig", "--json"]);
    assert_eq!(dump["map"], "nat_orig");
    assert_eq!(dump["type"], "lru_hash");
    let entries = dump["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{dump:#}");
    assert_eq!(
        entries[0]["key"],
        json!({ "proto": "tcp", "saddr": addr(k, 1), "sport": sport, "daddr": "203.0.113.2", "dport": 8080 })
    );
    assert_eq!(entries[0]["value"]["addr"], "203.0.113.1");
    assert_eq!(entries[0]["value"]["port"], seen_by_server.port());
    assert_eq!(entries[0]["value"]["state"], "ESTABLISHED");

    // map dump: the ARP responder's addresses.
    let dump = json_of(&lab, &["map", "dump", "endpoints", "--json"]);
    let rows: Vec<Value> = dump["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["key"]["ipv4"], e["value"]["mac"], e["value"]["port"]]))
        .collect();
    assert_eq!(
        rows,
        vec![
            json!([addr(k, 1), mac(k, 1), "veth-1-br"]),
            json!([addr(k, 2), mac(k, 2), "veth-2-br"]),
            json!([addr(k, 5), mac(k, 5), "vbridge-p"]),
        ]
    );

    // stats: the counters that this traffic fixes exactly, and the ports.
    let stats = json_of(&lab, &["stats", "--json"]);
    let c = &stats["counters"];
    assert_eq!(
        c.as_object().unwrap().len(),
        Counter::COUNT as usize,
        "every counter is listed: {stats:#}"
    );
    assert_eq!(c["nat_created"], 1, "one TCP connection: {stats:#}");
    for zero in [
        "drop_spoofed",
        "drop_runt",
        "drop_unknown_port",
        "drop_redirect_failed",
        "nat_drop_no_port",
        "nat_drop_map_full",
        "nat_drop_unsolicited",
        "nat_frag_translated",
        "nat_frag_untracked",
        "drop_host_access",
    ] {
        assert_eq!(c[zero], 0, "{zero}: {stats:#}");
    }
    assert!(
        c["redirect_peer"].as_u64().unwrap() >= 2,
        "ping + reply: {stats:#}"
    );
    assert!(c["nat_reversed"].as_u64().unwrap() >= 1, "{stats:#}");
    let ports: Vec<Value> = stats["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            json!([
                p["port"], p["owner"], p["role"], p["slot"], p["mac"], p["ipv4"]
            ])
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            json!(["veth-1-br", lab.ns(1), "endpoint", 0, mac(k, 1), addr(k, 1)]),
            json!(["veth-2-br", lab.ns(2), "endpoint", 1, mac(k, 2), addr(k, 2)]),
            json!(["vbridge-p", "gateway", "gateway", 2, mac(k, 5), addr(k, 5)]),
        ]
    );
    let p1 = &stats["ports"][0];
    assert!(
        p1["rx_packets"].as_u64().unwrap() >= 4,
        "ping + TCP: {p1:#}"
    );
    // `stats` and `map dump counters` read the same map.
    let counters = json_of(&lab, &["map", "dump", "counters", "--json"]);
    let created = counters["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"]["counter"] == "nat_created")
        .expect("nat_created");
    assert_eq!(created["value"]["count"], 1);
    assert_eq!(
        created["per_cpu"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["count"].as_u64().unwrap())
            .sum::<u64>(),
        1
    );

    // bpftool reads the same pinned map (with BTF: structured) and agrees.
    let pin = format!("/sys/fs/bpf/netlab/{}/fdb", lab.name);
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned", &pin])
        .output()
        .expect("bpftool");
    assert!(out.status.success(), "{}", describe(&out));
    let bpftool: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    let mut from_bpftool: Vec<Value> = bpftool
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            // -j: raw bytes in "key"/"value", the BTF view in "formatted".
            let e = &e["formatted"];
            let m: Vec<String> = e["key"]["mac"]
                .as_array()
                .expect("structured key (BTF)")
                .iter()
                .map(|b| format!("{:02x}", b.as_u64().unwrap()))
                .collect();
            json!([
                m.join(":"),
                e["value"]["port_ifindex"],
                e["value"]["kind"],
                e["value"]["flags"]
            ])
        })
        .collect();
    from_bpftool.sort_by_key(|v| v[0].as_str().unwrap().to_string());
    let ours = json_of(&lab, &["map", "dump", "fdb", "--json"]);
    let kind = |s: &Value| json!(if s == "endpoint" { 1 } else { 2 });
    let flags = |s: &Value| json!(if s == "static" { 1 } else { 2 });
    let from_netlab: Vec<Value> = ours["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            json!([
                e["key"]["mac"],
                e["value"]["port_ifindex"],
                kind(&e["value"]["kind"]),
                flags(&e["value"]["flags"])
            ])
        })
        .collect();
    assert_eq!(from_bpftool, from_netlab);

    // map list: every map, this build's layout, with BTF.
    let list = json_of(&lab, &["map", "list", "--json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "fdb",
            "ports",
            "flood_ports",
            "port_slots",
            "endpoints",
            "endpoints6",
            "ports6",
            "counters",
            "port_stats",
            "switch_config",
            "host_addrs",
            "host_addrs6",
            "nat_config",
            "nat_orig",
            "nat_reply",
            "nat_frags",
            "nat6_config",
            "nat6_orig",
            "nat6_reply",
            "nat6_frags",
            "nat_publish",
            "nat6_publish",
            "publish_socks6",
            "publish_netns",
            "publish_socks",
            "events",
            // The XDP switch's devmap (filled on `switch = "xdp"` labs only).
            "xdp_ports",
        ]
    );
    for m in list.as_array().unwrap() {
        assert_eq!(m["layout"], "ok", "{m:#}");
        if m["name"] == "events" {
            // A ring buffer has no key or value for BTF to describe.
            assert_eq!(m["type"], "ringbuf", "{m:#}");
            assert_eq!(m["max_entries"], 256 * 1024, "{m:#}");
            continue;
        }
        if m["name"] == "xdp_ports" {
            // A devmap: its values are the kernel's struct bpf_devmap_val,
            // and it is created without BTF.
            assert_eq!(m["type"], "devmap_hash", "{m:#}");
            continue;
        }
        assert_eq!(m["btf"], true, "{m:#}");
    }
    let fdb_row = &list[0];
    assert_eq!(fdb_row["entries"], 3);
    assert_eq!(fdb_row["max_entries"], 1024);
    let row = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("nat_orig")["entries"], 1, "nat_orig: {list:#}");
    // port_slots lists the lab's ports only (empty rows are left out).
    assert_eq!(row("port_slots")["entries"], 3, "port_slots: {list:#}");

    // host_addrs: the host namespace's addresses other than the gateway's
    // (host access is closed by default), with the uplink subnet's broadcast.
    let host_addrs = json_of(&lab, &["map", "dump", "host_addrs", "--json"]);
    let blocked: Vec<Value> = host_addrs["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["key"]["ipv4"], e["value"]["kind"]]))
        .collect();
    assert_eq!(
        blocked,
        vec![
            json!(["127.0.0.1", "address"]),
            json!(["203.0.113.1", "address"]),
            json!(["203.0.113.255", "broadcast"]),
        ],
        "{host_addrs:#}"
    );

    // Unknown map: the error lists the valid names.
    let bad = lab.netlab(&["map", "dump", "nope"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unknown map") && err.contains("fdb, ports, flood_ports"),
        "{err}"
    );

    // status shows the programs with their attach points and ids.
    let status = json_of(&lab, &["status", "--json"]);
    let progs = status["ebpf"]["programs"].as_array().expect("programs");
    let attached: Vec<(String, String, String)> = progs
        .iter()
        .map(|p| {
            assert!(p["id"].as_u64().unwrap() > 0);
            (
                p["program"].as_str().unwrap().into(),
                p["device"].as_str().unwrap().into(),
                p["hook"].as_str().unwrap().into(),
            )
        })
        .collect();
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        attached,
        vec![
            t("netlab_port", "vbridge-p", "tcx ingress"),
            t("netlab_port", "veth-1-br", "tcx ingress"),
            t("netlab_port", "veth-2-br", "tcx ingress"),
            t("netlab_uplink_egress", "uplink", "tcx egress"),
            t("netlab_uplink_ingress", "uplink", "tcx ingress"),
        ]
    );
    // Every map of the table, the XDP switch's devmap included.
    assert_eq!(
        status["ebpf"]["maps"].as_array().unwrap().len(),
        netlab::bpf::maps::ALL_MAPS.len()
    );

    // diagram: DOT from the live state, SVG through Graphviz.
    let dot = String::from_utf8(lab.ok(&["diagram"]).stdout).unwrap();
    for want in [
        "digraph",
        &format!("\"{}/veth-1\"", lab.ns(1)),
        &format!("{}/24", addr(k, 1)),
        "eBPF switch",
        "netlab_uplink_egress tcx egress",
        &format!("\"{host}/uplink\" -> \"{}/inet0\"", lab.inet_ns()),
    ] {
        assert!(dot.contains(want), "{want} missing from\n{dot}");
    }
    // Graphviz is a prerequisite the set-up installs: missing, it fails.
    assert!(
        which_dot(),
        "Graphviz's `dot` is not installed (package graphviz; `cargo xtask setup` installs it)"
    );
    let svg = std::env::temp_dir().join(format!("netlab-test-{}.svg", lab.name));
    lab.ok(&["diagram", "--svg", svg.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    assert!(
        text.contains("<svg") && text.contains("eBPF switch"),
        "{text}"
    );

    // stats --watch --json: one line of rates per interval until SIGINT.
    let mut child = lab
        .command(&["stats", "--watch", "0.2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..2 {
        let line = lines.next().expect("a sample").unwrap();
        let v: Value = serde_json::from_str(&line).expect("JSON line");
        assert!(v["interval_s"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["counters"]["port_rx"].is_number());
    }
    interrupt(&mut child);

    drop(client);
}

fn which_dot() -> bool {
    Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn interrupt(child: &mut std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let _ = child.wait();
}

/// Runs `netlab trace` on `lab`, does `traffic` while it runs, and reads
/// its lines until every one of `wanted` was printed (or a deadline);
/// then Ctrl-C. Returns what it printed, after checking that it streamed
/// the wanted lines while running, stopped cleanly and switched tracing
/// off again.
fn trace_while(lab: &TestLab, traffic: impl FnOnce(), wanted: &[String]) -> String {
    let mut child = lab
        .command(&["trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trace");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("tracing lab"), "{first}");
    let config = json_of(lab, &["map", "dump", "switch_config", "--json"]);
    assert_eq!(config["entries"][0]["value"]["trace"], true);

    // trace's output, line by line, as it comes.
    let (line_tx, line_rx) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });

    traffic();
    let seen_all = |out: &str| wanted.iter().all(|w| out.contains(w.as_str()));
    // Until every wanted line is seen (or a deadline): then Ctrl-C.
    let mut out = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !seen_all(&out) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(_) => break,
        }
    }
    // Streamed: seen while tracing runs, not only when it stops.
    let streamed = seen_all(&out);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    reader.join().unwrap();
    out.extend(line_rx.try_iter().map(|l| l + "\n"));
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "trace exit {status}: {rest}");
    assert!(rest.contains("switched off"), "{rest}");
    for w in wanted {
        assert!(out.contains(w.as_str()), "{w:?} missing from:\n{out}");
    }
    assert!(
        streamed,
        "the traffic's events came only after Ctrl-C, not while tracing:\n{out}"
    );

    // Tracing is off again.
    let config = json_of(lab, &["map", "dump", "switch_config", "--json"]);
    assert_eq!(config["entries"][0]["value"]["trace"], false);
    out
}

/// The two frames of one ping from endpoint 1 to endpoint 2 (`ethertype`
/// as trace prints it), as trace lines.
fn echo_lines(lab: &TestLab, macs: [String; 2], ethertype: &str) -> Vec<String> {
    vec![
        format!(
            "port veth-1-br ({}): {} > {} type {ethertype}: unicast to port veth-2-br ({})",
            lab.ns(1),
            macs[0],
            macs[1],
            lab.ns(2)
        ),
        format!(
            "port veth-2-br ({}): {} > {} type {ethertype}: unicast to port veth-1-br ({})",
            lab.ns(2),
            macs[1],
            macs[0],
            lab.ns(1)
        ),
    ]
}

#[test]
fn trace_shows_one_ping_and_switches_itself_off() {
    let k = 2;
    let lab = lab(k, 2);
    lab.ok(&["up"]);
    // Resolve ARP first so the traced ping is just the echo and its reply.
    ping(&lab, 1, &addr(k, 2));
    trace_while(
        &lab,
        || ping(&lab, 1, &addr(k, 2)),
        &echo_lines(&lab, [mac(k, 1), mac(k, 2)], "0x0800 IPv4"),
    );
}

#[test]
fn a_lab_that_is_not_up_says_how_to_bring_it_up() {
    for args in [
        &["fdb"][..],
        &["map", "list"],
        &["nat", "list", "--json"],
        &["stats"],
        &["trace"],
        &["diagram"],
    ] {
        let out = Command::new(netlab_tests::netlab_bin())
            .args(["--lab", "ti9nope"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("lab ti9nope is not up") && err.contains("netlab --lab ti9nope up"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn maps_of_another_layout_are_refused() {
    use netlab::bpf::{
        Error,
        maps::{ALL_MAPS, check_pinned_layouts},
    };
    let _ = netlab::bpf::fs::ensure_bpffs();
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/netlab-test-inspect-{}",
        std::process::id()
    ));
    struct Gone(std::path::PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let create = |name: &str, key: &str, value: &str| {
        let _ = std::fs::remove_file(dir.join(name));
        let out = Command::new("bpftool")
            .args(["map", "create"])
            .arg(dir.join(name))
            .args([
                "type", "hash", "key", key, "value", value, "entries", "1024", "name", name,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    };

    // Same sizes, but no BTF: what netlab pinned before its maps carried it.
    create("fdb", "8", "8");
    let err = check_pinned_layouts(&dir, ALL_MAPS).unwrap_err();
    assert!(matches!(err, Error::IncompatibleMap { .. }), "{err}");
    assert!(err.to_string().contains("without BTF"), "{err}");

    // Other sizes.
    create("fdb", "6", "8");
    let err = check_pinned_layouts(&dir, ALL_MAPS).unwrap_err();
    assert!(err.to_string().contains("key/value size 6/8"), "{err}");
}
