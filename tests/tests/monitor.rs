//! `netlab monitor` on real labs: the events the programs (and the daemon's
//! sweep) emit, caused by the test, read from `monitor --json`.
//!
//! Every test owns its lab `tm<k>`, namespaces `tm<k>-*` and subnet
//! 10.115.<k>.0/24; traffic stays between the lab's own namespaces.
//! The IPv6 cases: labs `vd3`, `vd4` on 10.164.<k>.0/24.

use std::io::{BufRead, BufReader};
use std::net::SocketAddrV4;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netlab_common::counters::Counter;
use netlab_tests::packets::{ETH_P_IP, Ip, ethernet, ipv4, ipv4_udp};
use netlab_tests::traffic::{
    ChildGuard, UdpEchoServer, send_frames, udp_echo, udp_socket, wait_until,
};
use netlab_tests::{INTERNET_ADDRESS, TestLab, describe};
use serde_json::Value;

const NET: [u8; 2] = [10, 115];

fn lab(k: u8, count: u32, extra: &str) -> TestLab {
    TestLab::with_net(NET, &format!("m{k}"), k, count, extra)
}

/// A running `netlab monitor --json ARGS`, killed by its PID when dropped.
struct Monitor {
    child: Option<ChildGuard>,
    lines: mpsc::Receiver<Value>,
    /// Every line read so far, for failure messages.
    seen: Vec<Value>,
}

impl Monitor {
    /// Starts the monitor and waits for its ready line (stderr).
    fn start(lab: &TestLab, args: &[&str]) -> Self {
        let mut cmd = lab.command(&["monitor", "--json"]);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start netlab monitor");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let guard = ChildGuard::new(child, "netlab monitor");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("monitor printed a non-JSON line ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = ready_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stderr_seen = Vec::new();
        loop {
            match ready_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("listening to lab") => break,
                Ok(l) => stderr_seen.push(l),
                Err(_) => panic!("netlab monitor never said it was listening: {stderr_seen:?}"),
            }
        }
        Monitor {
            child: Some(guard),
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to `timeout`) for a line that satisfies `pred`.
    fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no {what} event within {timeout:?}; saw: {:#?}", self.seen),
            }
        }
    }

    /// Every line that arrives within `quiet` of the previous one.
    fn drain(&mut self, quiet: Duration) {
        while let Ok(v) = self.lines.recv_timeout(quiet) {
            self.seen.push(v);
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").pid() as i32
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal");
    }

    fn kill(mut self) {
        self.child.take().expect("running").kill();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        self.child.take().expect("running").terminate()
    }
}

fn is(v: &Value, event: &str) -> bool {
    v["event"] == event
}

fn events_gate_open(lab: &TestLab) -> bool {
    netlab_tests::netlab::datapath::ebpf::config(&lab.name)
        .map(|c| c.trace & netlab_common::switch::TRACE_EVENTS != 0)
        .unwrap_or(false)
}

/// A UDP frame from endpoint `n`'s own MAC with a source address that is
/// not its own: the switch drops it as spoofed.
fn spoofed_frame(lab: &TestLab, n: u8, fake: u8) -> Vec<u8> {
    ipv4_udp(
        lab.mac(5),
        lab.mac(n),
        lab.ip(fake).octets(),
        lab.ip(5).octets(),
        b"not me",
    )
}

#[test]
fn monitor_json_shows_a_spoof_drop_a_nat_creation_an_exhausted_range_and_an_expiry() {
    // One NAT port: the second flow to the same server finds none. The
    // uplink XDP filter is off: the unsolicited packet below is to reach
    // the TC ingress and its event (the XDP filter's event is checked in
    // xdp_lab.rs).
    let lab = lab(
        1,
        2,
        "[host]\nuplink_xdp = false\n[nat]\nport_min = 20000\nport_max = 20000\nudp_timeout = 2",
    );
    lab.ok(&["up"]);
    let daemon = lab.start_daemon("0.2");
    let server = UdpEchoServer::start(&lab.inet_ns(), SocketAddrV4::new(INTERNET_ADDRESS, 7001));
    let mut monitor = Monitor::start(&lab, &[]);
    assert!(
        events_gate_open(&lab),
        "monitor runs but the gate is closed"
    );
    let status: Value = serde_json::from_slice(&lab.ok(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["ebpf"]["events"], true, "status: {}", status["ebpf"]);

    // A namespace impersonating another address.
    send_frames(&lab.ns(1), "veth-1", &[spoofed_frame(&lab, 1, 77)]);
    let drop = monitor.wait_for("spoof drop", Duration::from_secs(20), |v| {
        is(v, "drop") && v["reason"] == "drop_spoofed"
    });
    assert_eq!(drop["type"], "drop");
    assert_eq!(drop["program"], "port");
    assert_eq!(drop["port"], "veth-1-br");
    assert_eq!(drop["namespace"], lab.ns(1));
    assert_eq!(drop["src"], lab.ip(77).to_string());
    assert_eq!(drop["proto"], "udp");
    assert_eq!(drop["sport"], 40000);
    assert!(
        drop["time"].as_str().is_some_and(|t| t.len() > 20),
        "{drop}"
    );

    // The NAT programs' drops name their direction: a protocol the NAT
    // does not translate, leaving; a packet for the lab nobody asked for,
    // arriving (the internet namespace gets a route to the lab for it).
    let ip = ipv4(&Ip::new(lab.ip(1), INTERNET_ADDRESS, 253), b"abcd");
    send_frames(
        &lab.ns(1),
        "veth-1",
        &[ethernet(lab.mac(5), lab.mac(1), ETH_P_IP, &ip)],
    );
    let out = monitor.wait_for("egress drop", Duration::from_secs(20), |v| {
        v["reason"] == "nat_drop_unknown_proto"
    });
    assert_eq!(out["program"], "nat_egress");
    assert_eq!(out["proto"], "proto-253");
    assert_eq!(out["namespace"], lab.ns(1));
    let inet = lab.inet_ns();
    let route = netlab_tests::in_netns(
        &inet,
        &["ip", "route", "add", &lab.subnet(), "via", "203.0.113.1"],
    );
    assert!(route.status.success(), "{}", describe(&route));
    let _ = netlab_tests::in_netns(
        &inet,
        &["ping", "-c", "1", "-W", "1", &lab.ip(2).to_string()],
    );
    let inbound = monitor.wait_for("ingress drop", Duration::from_secs(20), |v| {
        v["reason"] == "nat_drop_unsolicited"
    });
    assert_eq!(inbound["program"], "nat_ingress");
    assert_eq!(inbound["port"], "uplink");
    assert_eq!(inbound["dst"], lab.ip(2).to_string());
    assert_eq!(inbound["namespace"], lab.ns(2));

    // A flow through the NAT gets the one port.
    let sock = udp_socket(&lab.ns(1), SocketAddrV4::new(lab.ip(1), 0));
    let local = sock.local_addr().unwrap().port();
    assert!(udp_echo(&sock, server.addr, b"hi", Duration::from_secs(5)));
    let created = monitor.wait_for("NAT creation", Duration::from_secs(20), |v| {
        is(v, "nat_created") && v["src"] == lab.ip(1).to_string()
    });
    assert_eq!(created["type"], "nat");
    assert_eq!(created["proto"], "udp");
    assert_eq!(created["sport"], local);
    assert_eq!(created["dst"], INTERNET_ADDRESS.to_string());
    assert_eq!(created["dport"], 7001);
    assert_eq!(created["translated_src"], "203.0.113.1");
    assert_eq!(created["translated_sport"], 20000);
    assert_eq!(created["namespace"], lab.ns(1));

    // Another namespace to the same server: no port left.
    let other = udp_socket(&lab.ns(2), SocketAddrV4::new(lab.ip(2), 0));
    assert!(!udp_echo(
        &other,
        server.addr,
        b"no",
        Duration::from_millis(500)
    ));
    let exhausted = monitor.wait_for("exhausted range", Duration::from_secs(20), |v| {
        is(v, "nat_exhausted")
    });
    assert_eq!(exhausted["reason"], "nat_drop_no_port");
    assert_eq!(exhausted["src"], lab.ip(2).to_string());
    assert_eq!(exhausted["namespace"], lab.ns(2));

    // The daemon expires the first flow after udp_timeout.
    let expired = monitor.wait_for("expiry", Duration::from_secs(30), |v| {
        is(v, "nat_expired") && v["src"] == lab.ip(1).to_string()
    });
    assert_eq!(expired["program"], "control");
    assert_eq!(expired["sport"], local);
    assert_eq!(expired["translated_sport"], 20000);

    assert!(monitor.terminate().success());
    assert!(!events_gate_open(&lab), "the monitor left the gate open");
    assert!(daemon.terminate().success());
    lab.ok(&["down"]);
}

#[test]
fn filters_show_only_what_was_asked() {
    let lab = lab(2, 2, "");
    lab.ok(&["up"]);
    let mut monitor = Monitor::start(&lab, &["--type", "drop", "--namespace", &lab.ns(2)]);
    // A drop from ns1 (filtered out), then one from ns2 (shown).
    send_frames(&lab.ns(1), "veth-1", &[spoofed_frame(&lab, 1, 77)]);
    send_frames(&lab.ns(2), "veth-2", &[spoofed_frame(&lab, 2, 78)]);
    let shown = monitor.wait_for("ns2's drop", Duration::from_secs(20), |v| is(v, "drop"));
    assert_eq!(shown["namespace"], lab.ns(2));
    // Pings make ARP answers and nothing else the filter lets through.
    assert!(netlab_tests::traffic::ping_ok(&lab.ns(1), lab.ip(2)));
    monitor.drain(Duration::from_millis(500));
    for v in &monitor.seen {
        assert_eq!(v["type"], "drop", "a filtered-out type was shown: {v}");
        assert_eq!(
            v["namespace"],
            lab.ns(2),
            "another namespace was shown: {v}"
        );
    }
    assert!(monitor.terminate().success());

    // Bad filters are refused before anything is switched on.
    for (args, needle) in [
        (vec!["--port", "nope"], "--port nope"),
        (vec!["--proto", "xyz"], "--proto"),
        (vec!["--namespace", "ghost"], "--namespace ghost"),
    ] {
        let out = lab.netlab(&[&["monitor"], &args[..]].concat());
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!events_gate_open(&lab));
    lab.ok(&["down"]);

    // A lab that is down: a clear error.
    let out = lab.netlab(&["monitor"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not up"),
        "{}",
        describe(&out)
    );
}

#[test]
fn lost_events_are_counted_and_reported() {
    let lab = lab(3, 1, "");
    lab.ok(&["up"]);
    let mut monitor = Monitor::start(&lab, &["--type", "drop"]);
    let before = lab.counter(Counter::EventsLost);
    let spoofed_before = lab.counter(Counter::DropSpoofed);
    // The monitor stops reading; more drops than the ring buffer holds.
    monitor.signal(nix::sys::signal::Signal::SIGSTOP);
    const SENT: usize = 6000;
    let frames = vec![spoofed_frame(&lab, 1, 77); SENT];
    send_frames(&lab.ns(1), "veth-1", &frames);
    let lost = lab.counter(Counter::EventsLost) - before;
    monitor.signal(nix::sys::signal::Signal::SIGCONT);
    let spoofed = lab.counter(Counter::DropSpoofed) - spoofed_before;
    assert!(
        spoofed > 4096,
        "only {spoofed} of {SENT} frames reached the switch"
    );
    assert!(
        lost > 0,
        "{spoofed} events into a 4096-event buffer lost none"
    );

    let line = monitor.wait_for("lost", Duration::from_secs(20), |v| v["type"] == "lost");
    let reported = line["lost_total"].as_u64().expect("lost_total");
    assert!(
        reported >= lost,
        "reported {reported}, the counter says {lost}"
    );
    monitor.drain(Duration::from_millis(500));
    let shown = monitor
        .seen
        .iter()
        .filter(|v| is(v, "drop") && v["src"] == lab.ip(77).to_string())
        .count() as u64;
    assert!(shown > 0, "nothing of the burst was shown");
    assert!(
        shown + reported >= spoofed,
        "{shown} shown + {reported} lost < {spoofed} dropped: events went missing silently"
    );
    assert!(monitor.terminate().success());
    lab.ok(&["down"]);
}

#[test]
fn one_monitor_per_lab_and_a_killed_one_is_cleaned_up() {
    let lab = lab(4, 1, "[nat]\nudp_timeout = 2");
    lab.ok(&["up"]);
    let first = Monitor::start(&lab, &[]);
    let out = lab.netlab(&["monitor"]);
    assert!(!out.status.success(), "a second monitor started");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another `netlab monitor`"),
        "{}",
        describe(&out)
    );
    // `netlab trace` reads the same ring buffer: refused as well, and the
    // monitor's gate stays as it was.
    let out = lab.netlab(&["trace"]);
    assert!(!out.status.success(), "trace started beside a monitor");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("or `netlab trace` is reading"),
        "{}",
        describe(&out)
    );
    assert!(events_gate_open(&lab), "the refused trace closed the gate");

    // SIGKILL: no chance to close the gate; the daemon notices.
    first.kill();
    assert!(events_gate_open(&lab), "the gate should still be open");
    let daemon = lab.start_daemon("0.2");
    assert!(
        wait_until(Duration::from_secs(20), || !events_gate_open(&lab)),
        "the daemon never closed the gate of the killed monitor"
    );
    // And a new monitor can start.
    let mut again = Monitor::start(&lab, &["--type", "drop"]);
    send_frames(&lab.ns(1), "veth-1", &[spoofed_frame(&lab, 1, 99)]);
    again.wait_for("drop after restart", Duration::from_secs(20), |v| {
        is(v, "drop") && v["src"] == lab.ip(99).to_string()
    });
    assert!(again.terminate().success());
    assert!(daemon.terminate().success());
    lab.ok(&["down"]);
}

/// An IPv6 drop names its IPv6 addresses and ports, and the daemon's
/// sweep reports a NAT66 expiry through the injector (an IPv6 record) with
/// the flow's IPv6 tuple and translation. Lab `vd3` on 10.164.3.0/24 (its
/// IPv6 prefix, when it has one, fd00:10:164:3::/64).
#[test]
fn ipv6_drops_and_nat66_expiries_carry_ipv6_addresses() {
    use netlab_tests::packets::{ETH_P_IPV6, ethernet, ipv6_packet};
    use std::net::{Ipv6Addr, SocketAddrV6};

    let k = 3;
    let lab = TestLab::named("vd3", [10, 164], k, 2, "[nat]\nudp_timeout = 2");
    lab.ok(&["up"]);
    let daemon = lab.start_daemon("0.2");
    let mut monitor = Monitor::start(&lab, &[]);
    let a6 = |host: u16| Ipv6Addr::new(0xfd00, 0x10, 0x164, k.into(), 0, 0, 0, host);

    // A UDP datagram over IPv6 from ns1 with a MAC that is not its own.
    let mut udp = Vec::new();
    udp.extend(40000u16.to_be_bytes());
    udp.extend(7000u16.to_be_bytes());
    udp.extend(14u16.to_be_bytes());
    udp.extend([0, 0]);
    udp.extend(b"not me");
    let frame = ethernet(
        lab.mac(2),
        lab.mac(77),
        ETH_P_IPV6,
        &ipv6_packet(a6(77), a6(2), 17, &udp),
    );
    send_frames(&lab.ns(1), "veth-1", &[frame]);
    let drop = monitor.wait_for("IPv6 spoof drop", Duration::from_secs(20), |v| {
        is(v, "drop") && v["ethertype"] == "0x86dd"
    });
    assert_eq!(drop["reason"], "drop_spoofed", "{drop}");
    assert_eq!(drop["port"], "veth-1-br");
    assert_eq!(drop["namespace"], lab.ns(1));
    assert_eq!(drop["src"], a6(77).to_string());
    assert_eq!(drop["dst"], a6(2).to_string());
    assert_eq!(drop["proto"], "udp");
    assert_eq!(
        (drop["sport"].clone(), drop["dport"].clone()),
        (40000.into(), 7000.into())
    );

    // A NAT66 flow idle for longer than udp_timeout: the daemon's next
    // sweep removes it and reports it.
    let remote: Ipv6Addr = "2001:db8:203:113::2".parse().unwrap();
    let external: Ipv6Addr = "2001:db8:203:113::1".parse().unwrap();
    netlab_tests::ipv6_maps::insert_nat6_flow(
        &lab,
        17,
        SocketAddrV6::new(a6(1), 5000, 0, 0),
        SocketAddrV6::new(remote, 53, 0, 0),
        SocketAddrV6::new(external, 20001, 0, 0),
        netlab::nat::monotonic_now_ns() - 10_000_000_000,
    );
    let expired = monitor.wait_for("NAT66 expiry", Duration::from_secs(30), |v| {
        is(v, "nat_expired") && v["src"] == a6(1).to_string()
    });
    assert_eq!(expired["type"], "nat");
    assert_eq!(expired["program"], "control");
    assert_eq!(expired["ethertype"], "0x86dd");
    assert_eq!(expired["proto"], "udp");
    assert_eq!(expired["sport"], 5000);
    assert_eq!(expired["dst"], remote.to_string());
    assert_eq!(expired["dport"], 53);
    assert_eq!(expired["translated_src"], external.to_string());
    assert_eq!(expired["translated_sport"], 20001);
    let flows = lab.ok(&["nat", "list", "--json"]);
    let flows: Value = serde_json::from_slice(&flows.stdout).unwrap();
    assert!(
        !flows
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["family"] == "ipv6"),
        "the sweep left the NAT66 flow: {flows:#}"
    );

    assert!(monitor.terminate().success());
    assert!(daemon.terminate().success());
    lab.ok(&["down"]);
}

/// Real IPv6 traffic in a lab with IPv6 (lab `vd4`, 10.164.4.0/24, its
/// prefix fd00:10:164:4::/64): the switch answering ns1's neighbour
/// solicitation for ns2, dropping a rogue router advertisement from ns1,
/// and NAT66 translating ns1's ping to the internet server, each an event
/// with its IPv6 addresses.
#[test]
fn ipv6_traffic_gives_nd_ra_guard_and_nat66_events() {
    use netlab_tests::packets::router_advert;
    use std::net::Ipv6Addr;

    let k = 4;
    let lab = TestLab::named("vd4", [10, 164], k, 2, "");
    lab.ok(&["up"]);
    let mut monitor = Monitor::start(&lab, &[]);
    let a6 = |host: u16| Ipv6Addr::new(0xfd00, 0x10, 0x164, k.into(), 0, 0, 0, host);
    let ping6 = |to: &str| {
        let ok = wait_until(Duration::from_secs(10), || {
            netlab_tests::in_netns(&lab.ns(1), &["ping", "-6", "-c", "1", "-W", "1", to])
                .status
                .success()
        });
        assert!(ok, "ping -6 {to} from {} never answered", lab.ns(1));
    };
    let mac = |host: u8| netlab::names::format_mac(&lab.mac(host));

    ping6(&a6(2).to_string());
    let nd = monitor.wait_for("ND answer", Duration::from_secs(20), |v| {
        is(v, "nd_answered") && v["dst"] == a6(2).to_string()
    });
    assert_eq!(nd["type"], "nd");
    assert_eq!(nd["port"], "veth-1-br");
    assert_eq!(nd["namespace"], lab.ns(1));
    assert_eq!(nd["src_mac"], mac(1));
    assert_eq!(nd["dst_mac"], mac(2), "answered with ns2's MAC: {nd}");
    assert!(
        nd["src"] == a6(1).to_string()
            || nd["src"] == netlab::names::link_local_for(lab.mac(1)).to_string(),
        "the asker is one of ns1's addresses: {nd}"
    );

    let ll1 = netlab::names::link_local_for(lab.mac(1));
    send_frames(
        &lab.ns(1),
        "veth-1",
        &[router_advert(
            lab.mac(1),
            ll1,
            "2001:db8:bad::".parse().unwrap(),
        )],
    );
    let ra = monitor.wait_for("RA guard drop", Duration::from_secs(20), |v| {
        is(v, "drop") && v["reason"] == "drop_ra_guard"
    });
    assert_eq!(ra["src"], ll1.to_string());
    assert_eq!(ra["dst"], "ff02::1");
    assert_eq!(ra["proto"], "icmpv6");
    assert_eq!(ra["icmp_type"], 134);
    assert_eq!(ra["sport"], Value::Null, "an RA has no echo id: {ra}");
    assert_eq!(ra["namespace"], lab.ns(1));

    let internet6 = "2001:db8:203:113::2";
    ping6(internet6);
    let created = monitor.wait_for("NAT66 creation", Duration::from_secs(20), |v| {
        is(v, "nat_created") && v["dst"] == internet6
    });
    assert_eq!(created["program"], "nat_egress");
    assert_eq!(created["ethertype"], "0x86dd");
    assert_eq!(created["proto"], "icmpv6");
    assert_eq!(created["src"], a6(1).to_string());
    assert_eq!(created["translated_src"], "2001:db8:203:113::1");
    assert_eq!(created["namespace"], lab.ns(1));

    assert!(monitor.terminate().success());
    lab.ok(&["down"]);
}
