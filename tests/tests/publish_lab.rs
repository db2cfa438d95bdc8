//! Published ports (issue 10) on real labs, on both datapaths, modelled on
//! CNI portmap's integration test: a server in a namespace, reached through
//! the uplink address from the internet namespace (and, on the kernel
//! baseline, from the host side and by hairpin), the client's address as
//! the service sees it, republishing a UDP port for another namespace, and
//! nothing left behind by unpublish and down.
//!
//! Every test owns its lab `tp<k>` (short name `p<k>`), namespaces
//! `tp<k>-*` and subnet 10.110.<k>.0/24. Traffic stays between the lab's
//! own namespaces.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use netlab_common::counters::Counter;
use netlab_tests::traffic::{
    NsProcess, TcpEchoServer, UdpEchoServer, run_in_ns, tcp_connect, tcp_echo, udp_echo,
    udp_socket, wait_listening, wait_until,
};
use netlab_tests::{INTERNET_ADDRESS, TestLab, UPLINK_ADDRESS, bpftool_keys, describe};

const NET: [u8; 2] = [10, 110];
const TIMEOUT: Duration = Duration::from_secs(3);

fn lab(k: u8, extra: &str) -> TestLab {
    TestLab::with_net(NET, &format!("p{k}"), k, 2, extra)
}

fn publish_table(lab_k: u8, specs: &str) -> String {
    format!("[publish]\ntp{lab_k}-ns1 = [{specs}]\n")
}

/// A TCP round trip from `ns` to `to`; the server's view of the client.
fn tcp_round_trip(ns: &str, to: SocketAddrV4, server: &TcpEchoServer) -> SocketAddrV4 {
    let before = server.peers().len();
    let mut s = tcp_connect(ns, to, TIMEOUT)
        .unwrap_or_else(|e| panic!("{ns} -> {to}: cannot connect: {e}"));
    tcp_echo(&mut s, b"published").unwrap_or_else(|e| panic!("{ns} -> {to}: echo: {e}"));
    assert!(
        wait_until(TIMEOUT, || server.peers().len() > before),
        "{ns} -> {to}: the server saw no connection"
    );
    server.peers()[before]
}

fn ports_json(lab: &TestLab) -> serde_json::Value {
    let out = lab.ok(&["ports", "--json"]);
    serde_json::from_slice(&out.stdout).expect("ports --json")
}

fn netlab_rules(lab: &TestLab) -> Vec<String> {
    lab.host_output(&["iptables-save", "-t", "nat"])
        .lines()
        .filter(|l| l.contains(&format!("netlab:{}", lab.name)))
        .map(str::to_string)
        .collect()
}

fn reserved_ports(lab: &TestLab) -> String {
    lab.host_output(&["cat", "/proc/sys/net/ipv4/ip_local_reserved_ports"])
}

#[test]
fn ebpf_published_ports_reach_the_namespace_with_the_clients_address() {
    let k = 1;
    let lab = lab(k, &publish_table(k, "\"8080:7000\", \"5353:5300/udp\""));
    lab.ok(&["up"]);
    lab.assert_no_firewall_rules("published ports on the eBPF datapath");
    let (ns1, ns2, inet) = (lab.ns(1), lab.ns(2), lab.inet_ns());
    let ip1: Ipv4Addr = lab.address(1).parse().unwrap();
    let ip2: Ipv4Addr = lab.address(2).parse().unwrap();

    // Reachable directly, and through the uplink from the internet, where
    // the service sees the internet client's own address.
    let tcp = TcpEchoServer::start(&ns1, SocketAddrV4::new(ip1, 7000));
    tcp_round_trip(&ns2, SocketAddrV4::new(ip1, 7000), &tcp);
    let seen = tcp_round_trip(&inet, SocketAddrV4::new(UPLINK_ADDRESS, 8080), &tcp);
    assert_eq!(*seen.ip(), INTERNET_ADDRESS, "the service saw {seen}");

    let udp1 = UdpEchoServer::start(&ns1, SocketAddrV4::new(ip1, 5300));
    let client = udp_socket(&inet, SocketAddrV4::new(INTERNET_ADDRESS, 0));
    let published = SocketAddrV4::new(UPLINK_ADDRESS, 5353);
    assert!(
        udp_echo(&client, published, b"one", TIMEOUT),
        "UDP through 5353"
    );
    assert_eq!(*udp1.peers()[0].ip(), INTERNET_ADDRESS);
    assert!(lab.counter(Counter::DnatCreated) >= 2);
    // nat list shows the published flow, inbound, from the namespace's
    // port to the client, translated to the published address and port.
    let nat: serde_json::Value =
        serde_json::from_slice(&lab.ok(&["nat", "list", "--json"]).stdout).unwrap();
    let udp_row = nat
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["proto"] == "udp")
        .unwrap_or_else(|| panic!("no UDP row: {nat:#}"));
    assert_eq!(udp_row["direction"], "in", "{udp_row:#}");
    assert_eq!(udp_row["namespace"], ns1.as_str());
    assert_eq!(udp_row["dst"], INTERNET_ADDRESS.to_string());
    assert_eq!(udp_row["translated_src"], UPLINK_ADDRESS.to_string());
    assert_eq!(udp_row["translated_sport"], 5353);
    let rows = ports_json(&lab);
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");

    // Bad input is refused naming it, and changes nothing.
    for (spec, why) in [
        ("8080:80", "collides with"),
        ("0:80", "port 0"),
        ("25000:80", "NAT's port range"),
        ("10.9.9.9:8081:80", "not an address of the host side"),
        ("8000-8009:80", "same length"),
    ] {
        let out = lab.netlab(&["publish", &ns2, spec]);
        assert!(!out.status.success(), "{spec} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{spec}: {err}");
    }
    let out = lab.netlab(&["publish", "nobody", "8081:80"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an endpoint"));
    assert_eq!(ports_json(&lab), rows, "a refused publish changed the list");

    // The port is reserved on the host side.
    let reserved = reserved_ports(&lab);
    assert!(
        reserved.contains("5353") && reserved.contains("8080"),
        "{reserved}"
    );

    // Republished for another namespace, the same client socket (same
    // tuple) reaches the new namespace: the old translation went with the
    // old publication.
    let udp2 = UdpEchoServer::start(&ns2, SocketAddrV4::new(ip2, 5300));
    lab.ok(&["unpublish", &ns1, "5353:5300/udp"]);
    lab.ok(&["publish", &ns2, "5353:5300/udp"]);
    let before = udp1.peers().len();
    assert!(
        udp_echo(&client, published, b"two", TIMEOUT),
        "UDP after republish"
    );
    assert_eq!(udp1.peers().len(), before, "the old namespace still got it");
    assert_eq!(*udp2.peers()[0].ip(), INTERNET_ADDRESS);

    // Unpublishing everything leaves no map entry and no translation.
    lab.ok(&["unpublish", &ns1, "8080:7000"]);
    lab.ok(&["unpublish", &ns2, "5353:5300/udp"]);
    let (keys, text) = bpftool_keys(&lab.pin_dir().join("nat_publish"));
    assert!(keys.is_empty(), "nat_publish after unpublish: {text}");
    let dnat = lab.ok(&["map", "dump", "nat_reply", "--json"]);
    assert!(
        !String::from_utf8_lossy(&dnat.stdout).contains("\"dnat\""),
        "DNAT translations left: {}",
        describe(&dnat)
    );
    assert!(
        !udp_echo(&client, published, b"three", Duration::from_millis(500)),
        "an unpublished port still answers"
    );
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn kernel_published_ports_use_portmap_rules_from_everywhere() {
    let k = 2;
    let lab = lab(k, &publish_table(k, "\"8080:7000\""));
    lab.ok(&["up", "--datapath", "kernel"]);
    let (ns1, ns2, inet, host) = (lab.ns(1), lab.ns(2), lab.inet_ns(), lab.host_ns());
    let ip1: Ipv4Addr = lab.address(1).parse().unwrap();
    let gateway: Ipv4Addr = lab.address(5).parse().unwrap();
    let tcp = TcpEchoServer::start(&ns1, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7000));
    let uplink = SocketAddrV4::new(UPLINK_ADDRESS, 8080);

    let seen = tcp_round_trip(&inet, uplink, &tcp);
    assert_eq!(
        *seen.ip(),
        INTERNET_ADDRESS,
        "internet client seen as {seen}"
    );
    // The host side itself, at its uplink address and at 127.0.0.1
    // (route_localnet + masquerade): the service sees the gateway.
    let seen = tcp_round_trip(&host, uplink, &tcp);
    assert_eq!(
        *seen.ip(),
        UPLINK_ADDRESS,
        "host at the uplink address seen as {seen}"
    );
    let seen = tcp_round_trip(&host, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080), &tcp);
    assert_eq!(*seen.ip(), gateway, "host at 127.0.0.1 seen as {seen}");
    // Hairpin from another namespace: masqueraded to the gateway.
    let seen = tcp_round_trip(&ns2, uplink, &tcp);
    assert_eq!(*seen.ip(), gateway, "hairpin from {ns2} seen as {seen}");
    // The baseline's documented gap: a namespace cannot reach its own
    // published port (the bridge sends nothing back out the port a frame
    // came in on; CNI's bridge plugin has `hairpinMode` for that).
    assert!(
        tcp_connect(
            &ns1,
            SocketAddrV4::new(UPLINK_ADDRESS, 8080),
            Duration::from_secs(1)
        )
        .is_err(),
        "{ns1} reached its own published port at {ip1} on the kernel bridge"
    );

    assert_eq!(netlab_rules(&lab).len(), 4, "{:?}", netlab_rules(&lab));
    lab.ok(&["publish", &ns2, "9090:7000"]);
    assert_eq!(netlab_rules(&lab).len(), 8);
    lab.ok(&["unpublish", &ns2, "9090:7000"]);
    assert_eq!(netlab_rules(&lab).len(), 4);
    // Detaching a namespace removes its publications (and their rules).
    lab.ok(&["detach", &ns1]);
    assert!(netlab_rules(&lab).is_empty(), "{:?}", netlab_rules(&lab));
    assert_eq!(ports_json(&lab).as_array().unwrap().len(), 0);
    assert!(!reserved_ports(&lab).contains("8080"));
    drop(tcp);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn ebpf_published_ports_answer_the_host_side_and_hairpin() {
    let k = 3;
    let lab = lab(k, &publish_table(k, "\"8080:7000\", \"5353:5300/udp\""));
    lab.ok(&["up"]);
    let (ns1, ns2, host) = (lab.ns(1), lab.ns(2), lab.host_ns());
    let ip1: Ipv4Addr = lab.address(1).parse().unwrap();
    let ip2: Ipv4Addr = lab.address(2).parse().unwrap();
    let gateway: Ipv4Addr = lab.address(5).parse().unwrap();
    let tcp = TcpEchoServer::start(&ns1, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7000));
    let udp = UdpEchoServer::start(&ns1, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5300));
    let uplink = SocketAddrV4::new(UPLINK_ADDRESS, 8080);

    // The host side, at its uplink address and at 127.0.0.1: through the
    // gateway, so the service sees the gateway address.
    for to in [uplink, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080)] {
        let seen = tcp_round_trip(&host, to, &tcp);
        assert_eq!(*seen.ip(), gateway, "host side -> {to} seen as {seen}");
    }
    // Hairpin from another namespace (at the uplink and at the gateway
    // address): straight over the switch, the client's own address.
    for to in [uplink, SocketAddrV4::new(gateway, 8080)] {
        let seen = tcp_round_trip(&ns2, to, &tcp);
        assert_eq!(*seen.ip(), ip2, "{ns2} -> {to} seen as {seen}");
    }
    // The namespace to its own published port: its own address.
    let seen = tcp_round_trip(&ns1, uplink, &tcp);
    assert_eq!(*seen.ip(), ip1, "{ns1} -> itself seen as {seen}");
    // A namespace attached later is one of the lab's sockets' namespaces too.
    let ns3 = lab.ns(3);
    let ip3: Ipv4Addr = lab.address(3).parse().unwrap();
    lab.ok(&["attach", &ns3, &ip3.to_string()]);
    let seen = tcp_round_trip(&ns3, uplink, &tcp);
    assert_eq!(*seen.ip(), ip3, "attached {ns3} -> uplink seen as {seen}");

    // UDP, unconnected: the answers come back from the published address.
    let published = SocketAddrV4::new(UPLINK_ADDRESS, 5353);
    for ns in [&host, &ns2] {
        let client = udp_socket(ns, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        assert!(
            udp_echo(&client, published, b"hello", TIMEOUT),
            "UDP from {ns} to {published}"
        );
    }
    assert!(
        udp.peers().iter().any(|p| *p.ip() == ip2),
        "{:?}",
        udp.peers()
    );
    assert!(lab.counter(Counter::SockPublished) >= 8);
    assert!(lab.counter(Counter::SockRestored) >= 2);
    lab.assert_no_firewall_rules("host-side and hairpin access on the eBPF datapath");

    // Unpublished: the host side gets the host's own answer again.
    lab.ok(&["unpublish", &ns1, "8080:7000"]);
    assert!(
        tcp_connect(&host, uplink, TIMEOUT).is_err(),
        "an unpublished port still connects"
    );
    drop((tcp, udp));
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn ebpf_established_published_connections_survive_up_and_other_changes() {
    let k = 4;
    let lab = lab(k, &publish_table(k, "\"8080:7000\""));
    lab.ok(&["up"]);
    let (ns1, ns2, inet) = (lab.ns(1), lab.ns(2), lab.inet_ns());
    let _tcp = TcpEchoServer::start(&ns1, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7000));
    let mut stream = tcp_connect(&inet, SocketAddrV4::new(UPLINK_ADDRESS, 8080), TIMEOUT)
        .expect("connect through the published port");
    tcp_echo(&mut stream, b"before").expect("echo before");

    // `up` on the running lab reloads the programs and re-adopts the maps.
    lab.ok(&["up"]);
    tcp_echo(&mut stream, b"after up").expect("echo after up");
    // Publishing and unpublishing another port leaves this flow alone.
    lab.ok(&["publish", &ns2, "9090:7000", "9091:7001/udp"]);
    lab.ok(&["unpublish", &ns2, "9090:7000"]);
    tcp_echo(&mut stream, b"after another port").expect("echo after another port");
    // The control loop sweeping (and restarting) keeps it too.
    let daemon = lab.start_daemon("0.2");
    daemon.kill();
    let daemon = lab.start_daemon("0.2");
    tcp_echo(&mut stream, b"after daemon restart").expect("echo after daemon restart");
    daemon.kill();
    drop(stream);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

/// What the "done when" says, as a new user would try it:
/// `publish = ["8080:80"]` on a namespace, `python3 -m http.server 80` in
/// it, `curl` from the internet namespace and from the host side.
fn curl_reaches_a_published_http_server(k: u8, datapath: &str) {
    let lab = lab(
        k,
        &format!(
            "datapath = \"{datapath}\"\n{}",
            publish_table(k, "\"8080:80\"")
        ),
    );
    lab.ok(&["up"]);
    let (ns1, inet, host) = (lab.ns(1), lab.inet_ns(), lab.host_ns());
    let dir = std::env::temp_dir().join(format!("netlab-test-{}-www", lab.name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "published page\n").unwrap();
    let _server = NsProcess::spawn(
        &ns1,
        &[
            "/usr/bin/python3",
            "-m",
            "http.server",
            "80",
            "--directory",
            dir.to_str().unwrap(),
        ],
    );
    wait_listening(&ns1, 80);
    for (ns, url) in [
        (&inet, format!("http://{UPLINK_ADDRESS}:8080/")),
        (&host, format!("http://{UPLINK_ADDRESS}:8080/")),
        (&host, "http://127.0.0.1:8080/".to_string()),
    ] {
        let out = run_in_ns(
            ns,
            &["curl", "-s", "-m", "5", &url],
            Duration::from_secs(10),
        );
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout) == "published page\n",
            "{datapath}: curl {url} from {ns}: {}",
            describe(&out)
        );
    }
    let ports = String::from_utf8(lab.ok(&["ports"]).stdout).unwrap();
    assert!(
        ports.contains("0.0.0.0:8080") && ports.contains(&ns1),
        "{ports}"
    );
    if datapath == "ebpf" {
        lab.assert_no_firewall_rules("curl through a published port");
        let nat = String::from_utf8(lab.ok(&["nat", "list"]).stdout).unwrap();
        assert!(nat.contains(&format!("{UPLINK_ADDRESS}:8080")), "{nat}");
    } else {
        assert_eq!(netlab_rules(&lab).len(), 4);
    }
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn curl_reaches_a_published_http_server_on_ebpf() {
    curl_reaches_a_published_http_server(5, "ebpf");
}

#[test]
fn curl_reaches_a_published_http_server_on_kernel() {
    curl_reaches_a_published_http_server(6, "kernel");
}
