//! The eBPF source NAT on the full lab built by `netlab up` (issue 4),
//! against servers in the lab's internet namespace (which has no route
//! back to the lab subnet: only the translation brings replies home).
//!
//! Every test owns its lab `tn<k>`, namespaces `tn<k>-*` and subnet
//! 10.80.<k>.0/24; the uplink (203.0.113.1) and the internet server
//! (203.0.113.2) live inside each lab's own sandbox namespaces. Nothing here
//! touches the root namespace's network.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::time::Duration;

use netlab_common::counters::Counter;
use netlab_tests::netlab::nat::{FlowState, NatFlow, Proto};
use netlab_tests::netlab::{netns, state};
use netlab_tests::traffic::{
    Capture, EchoLoop, TcpEchoServer, UdpEchoServer, iperf3_client, iperf3_server, ping_count,
    ping_ok, tcp_connect, tcp_connect_many, tcp_echo, udp_echo, udp_socket, wait_until,
};
use netlab_tests::{INTERNET_ADDRESS, TestLab, UPLINK_ADDRESS, bpftool_keys, describe, run};

/// This file's /16: 10.80.<k>.0/24 per test.
const NET: [u8; 2] = [10, 80];

fn lab(k: u8, count: u32, extra: &str) -> TestLab {
    TestLab::with_net(NET, &format!("n{k}"), k, count, extra)
}

fn inet(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(INTERNET_ADDRESS, port)
}

fn local_v4(stream: &TcpStream) -> SocketAddrV4 {
    match stream.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("IPv6 local address {a}"),
    }
}

/// `bpftool map dump pinned <pins>/nat_orig`, as text.
fn bpftool_nat_orig(lab: &TestLab) -> (Vec<Vec<u8>>, String) {
    bpftool_keys(&lab.pin_dir().join("nat_orig"))
}

/// Keys of `nat_orig` start with the original source address.
fn bpftool_has_source(dump: &(Vec<Vec<u8>>, String), ip: Ipv4Addr) -> bool {
    dump.0.iter().any(|k| k.starts_with(&ip.octets()))
}

fn flows_from(flows: &[NatFlow], ip: Ipv4Addr, proto: Proto) -> Vec<&NatFlow> {
    flows
        .iter()
        .filter(|f| *f.orig_src.ip() == ip && f.proto == proto)
        .collect()
}

/// Asserts a capture saw translated traffic only: no address of the lab
/// subnet, only the uplink's and the internet server's.
fn assert_only_uplink_seen(lab: &TestLab, seen: &netlab_tests::traffic::CaptureSummary) {
    let allowed: BTreeSet<Ipv4Addr> = [UPLINK_ADDRESS, INTERNET_ADDRESS].into();
    let addresses = seen.addresses();
    assert!(
        addresses.is_subset(&allowed),
        "the internet saw {:?} (lab subnet {}): {:?}",
        addresses.difference(&allowed).collect::<Vec<_>>(),
        lab.subnet(),
        seen.ipv4
    );
    assert!(
        seen.from_source(UPLINK_ADDRESS) > 0,
        "nothing captured: {seen:?}"
    );
}

#[test]
fn every_namespace_reaches_the_internet_at_once_as_the_uplink() {
    let lab = lab(21, 3, "");
    lab.ok(&["up"]);
    let capture = Capture::start(&lab.inet_ns(), "inet0", |_| false);
    let servers: Vec<_> = (1..=3u16)
        .map(|n| iperf3_server(&lab.inet_ns(), INTERNET_ADDRESS, 5200 + n))
        .collect();
    let udp_server = UdpEchoServer::start(&lab.inet_ns(), inet(7000));

    // From every namespace at once: pings, an iperf3 TCP transfer and a
    // UDP exchange, all to the internet server.
    std::thread::scope(|s| {
        for n in 1..=3u32 {
            let (lab, udp_server) = (&lab, &udp_server);
            s.spawn(move || {
                let ns = lab.ns(n);
                let ping = s.spawn({
                    let ns = ns.clone();
                    move || ping_count(&ns, INTERNET_ADDRESS, 20, "0.05")
                });
                let udp = s.spawn({
                    let ns = ns.clone();
                    move || {
                        let sock = udp_socket(&ns, SocketAddrV4::new(lab.ip(n as u8), 0));
                        (0..50u32)
                            .filter(|i| {
                                let msg = format!("{ns} datagram {i}").into_bytes();
                                // Under a full-speed iperf3 a datagram can be
                                // dropped by a busy queue: retry, then count.
                                (0..3).any(|_| {
                                    udp_echo(&sock, udp_server.addr, &msg, Duration::from_secs(2))
                                })
                            })
                            .count()
                    }
                });
                let tcp = iperf3_client(&ns, INTERNET_ADDRESS, 5200 + n as u16, 2, false);
                let bytes = tcp["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
                assert!(bytes > 0, "iperf3 from {ns} moved nothing: {tcp:#}");
                let (sent, got) = ping.join().unwrap();
                // Loss under load is the queues', not a translation failure;
                // a broken NAT gets no reply at all.
                eprintln!("{ns}: {got} of {sent} pings answered under load");
                assert!(got > 0, "{ns}: no ping reply of {sent}");
                assert_eq!(udp.join().unwrap(), 50, "{ns}: UDP echoes missing");
            });
        }
    });
    drop(servers);
    let seen = capture.finish();
    assert_only_uplink_seen(&lab, &seen);

    // The internet saw the uplink's address with a distinct port per
    // namespace's socket.
    let peers = udp_server.peers();
    assert!(peers.iter().all(|p| *p.ip() == UPLINK_ADDRESS), "{peers:?}");
    let ports: BTreeSet<u16> = peers.iter().map(|p| p.port()).collect();
    assert_eq!(ports.len(), 3, "{peers:?}");

    // The translations are in the pinned maps, for every namespace and
    // protocol, all to the uplink's address.
    let flows = lab.nat_flows();
    for n in 1..=3u8 {
        for proto in [Proto::Icmp, Proto::Tcp, Proto::Udp] {
            let f = flows_from(&flows, lab.ip(n), proto);
            assert!(
                !f.is_empty(),
                "no {proto} flow from {}: {flows:#?}",
                lab.ip(n)
            );
            assert!(
                f.iter().all(|f| *f.translated.ip() == UPLINK_ADDRESS),
                "{f:#?}"
            );
        }
    }
    let dump = bpftool_nat_orig(&lab);
    for n in 1..=3u8 {
        assert!(
            bpftool_has_source(&dump, lab.ip(n)),
            "bpftool shows no entry of {}: {}",
            lab.ip(n),
            dump.1
        );
    }
    assert!(lab.counter(Counter::NatCreated) > 0 && lab.counter(Counter::NatReversed) > 0);
    lab.assert_no_firewall_rules("while NAT carries every namespace's traffic");
    drop(udp_server);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn hundreds_of_concurrent_connections_get_distinct_ports() {
    let lab = lab(22, 3, "");
    lab.ok(&["up"]);
    let server = TcpEchoServer::start(&lab.inet_ns(), inet(7000));
    const PER_NS: usize = 100;

    // 100 connections from each namespace, all open at the same time.
    let streams: Vec<(u32, Vec<TcpStream>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=3u32)
            .map(|n| {
                let (lab, server) = (&lab, &server);
                s.spawn(move || {
                    let ns = lab.ns(n);
                    let streams: Vec<TcpStream> =
                        tcp_connect_many(&ns, server.addr, PER_NS, Duration::from_secs(20))
                            .into_iter()
                            .enumerate()
                            .map(|(i, r)| r.unwrap_or_else(|e| panic!("{ns} connection {i}: {e}")))
                            .collect();
                    (n, streams)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = 3 * PER_NS;
    // Every one of them works.
    for (n, list) in &streams {
        for (i, stream) in list.iter().enumerate() {
            let mut stream = stream.try_clone().unwrap();
            tcp_echo(&mut stream, format!("ns{n} #{i}").as_bytes())
                .unwrap_or_else(|e| panic!("ns{n} connection {i}: {e}"));
        }
    }

    // The server saw them all from the uplink's address, on distinct ports
    // inside the NAT range.
    assert!(wait_until(Duration::from_secs(20), || server.peers().len() >= total));
    let peers = server.peers();
    assert_eq!(peers.len(), total);
    assert!(peers.iter().all(|p| *p.ip() == UPLINK_ADDRESS), "{peers:?}");
    let ports: BTreeSet<u16> = peers.iter().map(|p| p.port()).collect();
    assert_eq!(ports.len(), total, "translated ports collide");
    assert!(
        ports.iter().all(|p| (20000..=29999).contains(p)),
        "{ports:?}"
    );

    // The NAT table, read while they are open, agrees connection by
    // connection: each client socket maps to a port the server saw.
    let flows = lab.nat_flows();
    let by_orig: BTreeMap<SocketAddrV4, &NatFlow> = flows
        .iter()
        .filter(|f| f.proto == Proto::Tcp && f.remote == server.addr_v4())
        .map(|f| (f.orig_src, f))
        .collect();
    assert_eq!(by_orig.len(), total, "{flows:#?}");
    let mut translated = BTreeSet::new();
    for (_, list) in &streams {
        for stream in list {
            let flow = by_orig
                .get(&local_v4(stream))
                .unwrap_or_else(|| panic!("no NAT entry for {}", local_v4(stream)));
            assert_eq!(flow.state, FlowState::Established, "{flow:?}");
            assert_eq!(*flow.translated.ip(), UPLINK_ADDRESS);
            assert!(ports.contains(&flow.translated.port()), "{flow:?}");
            translated.insert(flow.translated.port());
        }
    }
    assert_eq!(translated, ports);
    drop(streams);
    lab.ok(&["down"]);
}

#[test]
fn an_exhausted_port_range_drops_and_counts_the_overflow_only() {
    let lab = lab(
        23,
        3,
        "[nat]\nport_min = 20000\nport_max = 20009\ntcp_closing_timeout = 2",
    );
    lab.ok(&["up"]);
    let daemon = lab.start_daemon("0.2");
    let server = TcpEchoServer::start(&lab.inet_ns(), inet(7000));
    let udp_server = UdpEchoServer::start(&lab.inet_ns(), inet(7001));

    // Ten ports, ten connections to one server port: the range is full.
    let mut streams: Vec<TcpStream> = Vec::new();
    for (n, count) in [(1u32, 4usize), (2, 3), (3, 3)] {
        for r in tcp_connect_many(&lab.ns(n), server.addr, count, Duration::from_secs(10)) {
            streams.push(r.unwrap_or_else(|e| panic!("connection from ns{n}: {e}")));
        }
    }
    assert!(wait_until(Duration::from_secs(10), || server.peers().len() == 10));
    let ports: BTreeSet<u16> = server.peers().iter().map(|p| p.port()).collect();
    assert_eq!(
        ports,
        (20000..=20009).collect(),
        "the whole range, once each"
    );

    // The overflow: new connections to the same server port find no port.
    // Their SYNs are dropped and counted, never sent untranslated.
    let capture = Capture::start(&lab.inet_ns(), "inet0", |_| false);
    let before = lab.counter(Counter::NatDropNoPort);
    let overflow: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = [1u32, 2, 3]
            .into_iter()
            .map(|n| {
                let ns = lab.ns(n);
                let addr = server.addr;
                s.spawn(move || tcp_connect(&ns, addr, Duration::from_secs(3)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in overflow.iter().enumerate() {
        assert!(r.is_err(), "overflow connection {i} got through: {r:?}");
    }
    let dropped = lab.counter(Counter::NatDropNoPort) - before;
    assert!(
        dropped >= 3,
        "NatDropNoPort grew by {dropped} for 3 overflow connections"
    );
    assert_eq!(
        server.peers().len(),
        10,
        "an overflow connection reached the server"
    );

    // The ten existing flows keep working, and so does traffic to another
    // remote port (its own tuple space) and pings.
    for (i, stream) in streams.iter_mut().enumerate() {
        tcp_echo(stream, format!("still here {i}").as_bytes())
            .unwrap_or_else(|e| panic!("existing flow {i} broke: {e}"));
    }
    let sock = udp_socket(&lab.ns(2), SocketAddrV4::new(lab.ip(2), 0));
    assert!(udp_echo(
        &sock,
        udp_server.addr,
        b"other port",
        Duration::from_secs(5)
    ));
    assert!(ping_ok(&lab.ns(3), INTERNET_ADDRESS));
    let seen = capture.finish();
    assert_only_uplink_seen(&lab, &seen);

    let tcp_flows = lab
        .nat_flows()
        .into_iter()
        .filter(|f| f.proto == Proto::Tcp && f.remote == server.addr_v4())
        .count();
    assert_eq!(tcp_flows, 10);

    // A port comes back once its flow closed and expired: a new
    // connection then gets exactly that port.
    let closed = streams.pop().unwrap();
    let freed = lab
        .nat_flows()
        .into_iter()
        .find(|f| f.orig_src == local_v4(&closed))
        .expect("the closing flow's entry")
        .translated
        .port();
    drop(closed);
    let mut again = None;
    let reused = wait_until(Duration::from_secs(30), || {
        again = tcp_connect(&lab.ns(1), server.addr, Duration::from_secs(1)).ok();
        again.is_some()
    });
    assert!(reused, "no port came back after the flow closed");
    assert_eq!(server.peers().last().unwrap().port(), freed);
    tcp_echo(again.as_mut().unwrap(), b"new").unwrap();
    for (i, stream) in streams.iter_mut().enumerate() {
        tcp_echo(stream, b"and still here")
            .unwrap_or_else(|e| panic!("existing flow {i} broke: {e}"));
    }
    assert!(daemon.terminate().success());
    drop(streams);
    lab.ok(&["down"]);
}

#[test]
fn the_daemon_expires_idle_entries_by_protocol() {
    let lab = lab(
        24,
        3,
        "[nat]\nudp_timeout = 2\nicmp_timeout = 2\ntcp_closing_timeout = 2",
    );
    lab.ok(&["up"]);
    let daemon = lab.start_daemon("0.2");
    let udp_server = UdpEchoServer::start(&lab.inet_ns(), inet(7000));
    let tcp_server = TcpEchoServer::start(&lab.inet_ns(), inet(7001));
    let (ip1, ip2, ip3) = (lab.ip(1), lab.ip(2), lab.ip(3));

    // ns1: pings and UDP; ns2: UDP and a TCP connection it closes; ns3: a
    // TCP connection that stays open and idle.
    let (sent, got) = ping_count(&lab.ns(1), INTERNET_ADDRESS, 3, "0.2");
    assert_eq!(sent, got);
    for n in [1u8, 2] {
        let sock = udp_socket(&lab.ns(u32::from(n)), SocketAddrV4::new(lab.ip(n), 0));
        assert!(udp_echo(
            &sock,
            udp_server.addr,
            b"hello",
            Duration::from_secs(5)
        ));
    }
    let mut closed = tcp_connect(&lab.ns(2), tcp_server.addr, Duration::from_secs(10)).unwrap();
    tcp_echo(&mut closed, b"bye").unwrap();
    drop(closed);
    let mut idle = tcp_connect(&lab.ns(3), tcp_server.addr, Duration::from_secs(10)).unwrap();
    tcp_echo(&mut idle, b"stay").unwrap();

    // Present right after the traffic, also for bpftool.
    let flows = lab.nat_flows();
    assert!(
        !flows_from(&flows, ip1, Proto::Icmp).is_empty(),
        "{flows:#?}"
    );
    assert!(
        !flows_from(&flows, ip1, Proto::Udp).is_empty(),
        "{flows:#?}"
    );
    assert!(
        !flows_from(&flows, ip2, Proto::Udp).is_empty(),
        "{flows:#?}"
    );
    assert!(
        !flows_from(&flows, ip2, Proto::Tcp).is_empty(),
        "{flows:#?}"
    );
    assert!(
        !flows_from(&flows, ip3, Proto::Tcp).is_empty(),
        "{flows:#?}"
    );
    let dump = bpftool_nat_orig(&lab);
    assert!(bpftool_has_source(&dump, ip1), "{}", dump.1);

    // The daemon removes the ICMP, UDP and closed TCP flows once their
    // (2 s) timeouts pass; the idle established TCP flow (5 days) stays.
    let gone = wait_until(Duration::from_secs(30), || {
        let flows = lab.nat_flows();
        flows.iter().all(|f| *f.orig_src.ip() == ip3)
    });
    let flows = lab.nat_flows();
    assert!(gone, "idle flows not expired: {flows:#?}");
    let kept = flows_from(&flows, ip3, Proto::Tcp);
    assert_eq!(kept.len(), 1, "{flows:#?}");
    assert_eq!(kept[0].state, FlowState::Established);
    let dump = bpftool_nat_orig(&lab);
    assert!(
        !bpftool_has_source(&dump, ip1) && !bpftool_has_source(&dump, ip2),
        "{}",
        dump.1
    );
    assert!(bpftool_has_source(&dump, ip3), "{}", dump.1);

    // The kept connection still works, and expired ones are simply new
    // flows next time.
    tcp_echo(&mut idle, b"still here").unwrap();
    let sock = udp_socket(&lab.ns(1), SocketAddrV4::new(ip1, 0));
    assert!(udp_echo(
        &sock,
        udp_server.addr,
        b"again",
        Duration::from_secs(5)
    ));
    assert!(!flows_from(&lab.nat_flows(), ip1, Proto::Udp).is_empty());

    assert!(daemon.terminate().success(), "the daemon failed");
    drop((idle, udp_server, tcp_server));
    lab.ok(&["down"]);
}

#[test]
fn a_long_lived_connection_survives_control_plane_restarts() {
    let lab = lab(25, 3, "");
    lab.ok(&["up"]);
    let daemon = lab.start_daemon("0.2");
    let tcp_server = TcpEchoServer::start(&lab.inet_ns(), inet(7000));
    let udp_server = UdpEchoServer::start(&lab.inet_ns(), inet(7001));
    let ms = Duration::from_millis;
    let stream = tcp_connect(&lab.ns(1), tcp_server.addr, Duration::from_secs(10)).unwrap();
    let orig = local_v4(&stream);
    let flows = [
        ("TCP ns1 -> internet", EchoLoop::tcp(stream, ms(20))),
        (
            "UDP ns2 -> internet",
            EchoLoop::udp(
                udp_socket(&lab.ns(2), SocketAddrV4::new(lab.ip(2), 0)),
                udp_server.addr,
                ms(20),
            ),
        ),
    ];
    let progress = |when: &str| {
        for (name, flow) in &flows {
            assert!(
                flow.wait_rounds(5, Duration::from_secs(20)),
                "{name} stalled {when}"
            );
        }
    };
    progress("at start");
    let translation = |lab: &TestLab| {
        lab.nat_flows()
            .into_iter()
            .find(|f| f.proto == Proto::Tcp && f.orig_src == orig)
            .map(|f| f.translated)
    };
    let before = translation(&lab).expect("the connection's NAT entry");

    // The daemon dies hard.
    daemon.kill();
    progress("after the daemon was SIGKILLed");

    // `netlab up` on the running lab.
    let again = lab.ok(&["up"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already up"),
        "{}",
        describe(&again)
    );
    progress("after netlab up again");

    // A control plane that re-installs the datapath in place: programs
    // reloaded and swapped into the pinned links, pinned maps adopted.
    let st = state::peek(&lab.name).unwrap().expect("lab state");
    let plan = st.plan.switch_plan();
    netns::run_in(plan.host_netns.as_deref(), || {
        netlab_tests::netlab::datapath::ebpf::install(&plan)
    })
    .unwrap()
    .expect("re-install on the running lab");
    progress("after the datapath was re-installed");

    // A new daemon (over the dead one's pid file), then a clean stop.
    let daemon = lab.start_daemon("0.2");
    progress("after the daemon restarted");
    assert!(daemon.terminate().success());
    progress("after the daemon stopped");

    assert_eq!(translation(&lab), Some(before), "the translation changed");
    lab.assert_no_firewall_rules("while NAT carries the flows");
    for (name, flow) in flows {
        let (rounds, failures) = flow.finish();
        assert!(
            failures.is_empty(),
            "{name} ({rounds} rounds) broke: {failures:?}"
        );
    }
    assert_eq!(
        tcp_server.peers(),
        [before],
        "the connection was re-established"
    );
    drop((tcp_server, udp_server));
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn errors_come_back_translated_and_the_host_is_left_alone() {
    let lab = lab(26, 3, "");
    lab.ok(&["up"]);
    let (ns1, ns2, ns3) = (lab.ns(1), lab.ns(2), lab.ns(3));
    let udp_server = UdpEchoServer::start(&lab.inet_ns(), inet(7000));
    let capture = Capture::start(&lab.inet_ns(), "inet0", |_| false);

    // ICMP port unreachable and TCP RST from the internet reach the lab
    // socket that caused them (the internet has no route to the lab: only
    // a translated error can get back).
    let refused = netlab_tests::traffic::in_ns(&ns1, || {
        let sock = std::net::UdpSocket::bind((lab.ip(1), 0)).unwrap();
        sock.connect(inet(9)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.send(b"anyone?").unwrap();
        sock.recv(&mut [0u8; 16]).map_err(|e| e.kind())
    });
    assert_eq!(refused, Err(std::io::ErrorKind::ConnectionRefused));
    assert!(lab.counter(Counter::NatIcmpError) > 0);
    let rst = tcp_connect(&ns2, inet(9), Duration::from_secs(5)).map_err(|e| e.kind());
    assert_eq!(rst.err(), Some(std::io::ErrorKind::ConnectionRefused));

    // The original source port is kept when it is in the range and free;
    // a second flow wanting the same one gets another.
    let mut seen_ports = Vec::new();
    for (ns, host, port) in [(&ns1, 1u8, 25000u16), (&ns2, 2, 25000), (&ns3, 3, 25001)] {
        let sock = udp_socket(ns, SocketAddrV4::new(lab.ip(host), port));
        assert!(udp_echo(
            &sock,
            udp_server.addr,
            b"keep",
            Duration::from_secs(5)
        ));
        seen_ports.push(udp_server.peers().last().unwrap().port());
    }
    assert_eq!(seen_ports[0], 25000, "{seen_ports:?}");
    assert_ne!(seen_ports[1], 25000, "{seen_ports:?}");
    assert!((20000..=29999).contains(&seen_ports[1]), "{seen_ports:?}");
    assert_eq!(seen_ports[2], 25001, "{seen_ports:?}");

    // The host's own traffic on the uplink passes untranslated.
    let passed = lab.counter(Counter::NatPassHost);
    let host_sock = udp_socket(&lab.host_ns(), SocketAddrV4::new(UPLINK_ADDRESS, 40000));
    assert!(udp_echo(
        &host_sock,
        udp_server.addr,
        b"host",
        Duration::from_secs(5)
    ));
    assert_eq!(
        udp_server.peers().last(),
        Some(&SocketAddrV4::new(UPLINK_ADDRESS, 40000))
    );
    assert!(lab.counter(Counter::NatPassHost) > passed);
    assert!(
        lab.nat_flows()
            .iter()
            .all(|f| f.orig_src != SocketAddrV4::new(UPLINK_ADDRESS, 40000)),
        "the host's flow was translated"
    );

    // A datagram larger than the MTU leaves the namespace fragmented. Its
    // later fragments leave with the first fragment's translation (see
    // `datagrams_larger_than_the_mtu_cross_the_nat`), never with the lab's
    // address (the capture checks that at the end).
    let frags = lab.counter(Counter::NatDropFragment);
    let big = udp_socket(&ns1, SocketAddrV4::new(lab.ip(1), 0));
    let payload = vec![7u8; 3000];
    big.send_to(&payload, udp_server.addr).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || udp_server
            .received()
            .contains(&payload)),
        "a 3000-byte datagram never reached the internet (fragments dropped: {})",
        lab.counter(Counter::NatDropFragment) - frags
    );
    assert_eq!(lab.counter(Counter::NatDropFragment), frags);

    // Unsolicited packets to the lab from outside are dropped: give the
    // internet a route to the lab and aim at a namespace directly.
    let sink = udp_socket(&ns3, SocketAddrV4::new(lab.ip(3), 7000));
    let route = run(Command::new("ip").args([
        "-n",
        &lab.inet_ns(),
        "route",
        "add",
        &lab.subnet(),
        "via",
        &UPLINK_ADDRESS.to_string(),
    ]));
    assert!(route.status.success(), "{}", describe(&route));
    // Dropped at the uplink's XDP hook (on by default) or, without it, by
    // its TC ingress: xdp_lab.rs tells the two apart.
    let dropped =
        || lab.counter(Counter::NatDropUnsolicited) + lab.counter(Counter::XdpDropUnsolicited);
    let unsolicited = dropped();
    let outside = udp_socket(&lab.inet_ns(), inet(0));
    for _ in 0..5 {
        outside
            .send_to(b"let me in", SocketAddrV4::new(lab.ip(3), 7000))
            .unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || {
        dropped() >= unsolicited + 5
    }));
    // A barrier instead of a pause: ns3 opens a flow to the sender, whose
    // answer (let in by the NAT) then follows the unsolicited datagrams
    // to the same socket. Whatever of those got through is read before it.
    let outside_addr = match outside.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("IPv6 address {a}"),
    };
    sink.send_to(b"open", outside_addr).unwrap();
    outside
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let (_, translated) = outside.recv_from(&mut buf).expect("ns3's datagram");
    outside.send_to(b"barrier", translated).unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut before_barrier = Vec::new();
    loop {
        let (n, _) = sink.recv_from(&mut buf).expect("the barrier datagram");
        if &buf[..n] == b"barrier" {
            break;
        }
        before_barrier.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(
        before_barrier.is_empty(),
        "unsolicited datagrams reached ns3: {before_barrier:?}"
    );

    let seen = capture.finish();
    let lab_net = |ip: &Ipv4Addr| ip.octets()[..3] == lab.ip(0).octets()[..3];
    let leaked: Vec<_> = seen.ipv4.keys().filter(|(src, _)| lab_net(src)).collect();
    assert!(leaked.is_empty(), "lab sources on the internet: {leaked:?}");
    drop((udp_server, sink));
    lab.ok(&["down"]);
}

#[test]
fn the_daemon_follows_a_new_uplink_address() {
    let lab = lab(27, 2, "");
    lab.ok(&["up"]);
    let daemon = lab.start_daemon("0.2");
    let udp_server = UdpEchoServer::start(&lab.inet_ns(), inet(7000));
    let sock = udp_socket(&lab.ns(1), SocketAddrV4::new(lab.ip(1), 0));
    assert!(udp_echo(
        &sock,
        udp_server.addr,
        b"before",
        Duration::from_secs(5)
    ));
    assert_eq!(*udp_server.peers()[0].ip(), UPLINK_ADDRESS);

    // The host's uplink gets another address (as after a DHCP renewal).
    let new = Ipv4Addr::new(203, 0, 113, 7);
    let host = lab.host_ns();
    for args in [
        vec!["addr", "flush", "dev", "uplink"],
        vec!["addr", "add", "203.0.113.7/24", "dev", "uplink"],
        vec!["route", "replace", "default", "via", "203.0.113.2"],
    ] {
        let out = run(Command::new("ip").arg("-n").arg(&host).args(&args));
        assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
    }
    // New flows leave with the new address, without a restart.
    let mut n = 0;
    let followed = wait_until(Duration::from_secs(20), || {
        n += 1;
        let sock = udp_socket(&lab.ns(2), SocketAddrV4::new(lab.ip(2), 0));
        udp_echo(
            &sock,
            udp_server.addr,
            format!("after {n}").as_bytes(),
            Duration::from_millis(500),
        ) && *udp_server.peers().last().unwrap().ip() == new
    });
    assert!(followed, "peers: {:?}", udp_server.peers());
    let flows = lab.nat_flows();
    assert!(
        flows.iter().all(|f| *f.translated.ip() == new),
        "{flows:#?}"
    );
    assert!(daemon.terminate().success());
    drop(udp_server);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

/// Datagrams larger than the MTU are fragmented at their source (the lab
/// namespace on the way out, the internet server for the reply); only the
/// first fragment carries the ports. The NAT records each fragmented
/// datagram's translation when it sees the first fragment (`nat_frags`) and
/// gives the later fragments the same address, both ways: a 3000-byte UDP
/// echo and a 3000-byte ping make the round trip, and the internet sees
/// every fragment from the uplink's address only. TCP (segments, not
/// fragments) is unaffected.
#[test]
fn datagrams_larger_than_the_mtu_cross_the_nat() {
    let lab = lab(28, 1, "");
    lab.ok(&["up"]);
    let is_fragment = |f: &[u8]| {
        f.len() >= 34
            && u16::from_be_bytes([f[12], f[13]]) == 0x0800
            && u16::from_be_bytes([f[20], f[21]]) & 0x3fff != 0
    };
    let capture = Capture::start(&lab.inet_ns(), "inet0", is_fragment);
    let server = UdpEchoServer::start(&lab.inet_ns(), inet(7000));
    let sock = udp_socket(&lab.ns(1), SocketAddrV4::new(lab.ip(1), 0));
    // Small first: the flow's translation exists, only size differs below.
    assert!(udp_echo(
        &sock,
        server.addr,
        b"small",
        Duration::from_secs(5)
    ));
    let dropped = lab.counter(Counter::NatDropFragment);
    let big = netlab_tests::traffic::pattern(28, 3000);
    assert!(
        udp_echo(&sock, server.addr, &big, Duration::from_secs(5)),
        "a 3000-byte datagram did not make the round trip (fragments dropped: {}, \
         translated: {}, untracked to the host: {})",
        lab.counter(Counter::NatDropFragment),
        lab.counter(Counter::NatFragTranslated),
        lab.counter(Counter::NatFragUntracked)
    );
    // A fresh flow whose very first datagram is fragmented.
    let fresh = udp_socket(&lab.ns(1), SocketAddrV4::new(lab.ip(1), 0));
    let big2 = netlab_tests::traffic::pattern(29, 5000);
    assert!(udp_echo(&fresh, server.addr, &big2, Duration::from_secs(5)));
    // ICMP echo too: ping's payload is fragmented both ways.
    let ping = netlab_tests::traffic::run_in_ns(
        &lab.ns(1),
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            "-s",
            "3000",
            &INTERNET_ADDRESS.to_string(),
        ],
        Duration::from_secs(10),
    );
    assert!(ping.status.success(), "big ping: {}", describe(&ping));
    // Out: 2 later fragments per 3000-byte datagram (UDP, ICMP), 3 for
    // 5000 bytes; in: as many. Nothing was dropped.
    let translated = lab.counter(Counter::NatFragTranslated);
    assert!(translated >= 14, "later fragments translated: {translated}");
    assert_eq!(lab.counter(Counter::NatDropFragment), dropped);

    // TCP is unaffected: segments fit the MTU, nothing is fragmented.
    let tcp_server = TcpEchoServer::start(&lab.inet_ns(), inet(7001));
    let mut stream = tcp_connect(&lab.ns(1), tcp_server.addr, Duration::from_secs(5)).unwrap();
    tcp_echo(&mut stream, &netlab_tests::traffic::pattern(30, 200_000)).unwrap();
    drop(stream);
    assert_eq!(lab.counter(Counter::NatFragTranslated), translated);

    let seen = capture.finish();
    assert_only_uplink_seen(&lab, &seen);
    assert!(
        seen.kept.len() >= 14,
        "the internet saw {} fragments",
        seen.kept.len()
    );
    drop(server);
    drop(tcp_server);
    lab.ok(&["down"]);
}
