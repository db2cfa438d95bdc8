//! The eBPF datapath's L2 switch on the full lab built by `netlab up`
//! (issue 3): the check table with no Linux bridge and no firewall rule,
//! ARP answers, the source check against spoofing, TCP and UDP between
//! namespaces, forwarding without any netlab process, and attach/detach
//! under running flows.
//!
//! Every test owns its lab `te<k>`, namespaces `te<k>-*` and subnet
//! 10.80.<k>.0/24; the sandbox's uplink/internet addresses (203.0.113.x)
//! live inside each lab's own namespaces. Nothing here touches the root
//! namespace's network.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::Duration;

use netlab_common::counters::Counter;
use netlab_tests::netlab::datapath::ebpf;
use netlab_tests::netlab::netns;
use netlab_tests::traffic::{
    self, Capture, EchoLoop, TcpEchoServer, UdpEchoServer, contains, iperf3_client, iperf3_server,
    ping_ok, tcp_connect, udp_echo, udp_socket, wait_until,
};
use netlab_tests::{
    INTERNET_ADDRESS, TestLab, assert_all_ok, bpftool_keys, describe, packets, run,
};

/// This file's /16: 10.80.<k>.0/24 per test.
const NET: [u8; 2] = [10, 80];
/// 3 namespaces: 2 peers + gateway + internet each.
const PROBES_3: usize = 3 * 4;

fn lab(k: u8, count: u32) -> TestLab {
    TestLab::with_net(NET, &format!("e{k}"), k, count, "")
}

/// `ip -j -d -n NS link show` as JSON.
fn links(ns: &str) -> Vec<serde_json::Value> {
    let out = run(Command::new("ip").args(["-j", "-d", "-n", ns, "link", "show"]));
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("ip -j link")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `ip -j -n NS neigh show dev DEV`: (address, MAC) of every entry with a MAC.
fn neighbours(ns: &str, dev: &str) -> Vec<(Ipv4Addr, String)> {
    let out = run(Command::new("ip").args(["-j", "-n", ns, "-4", "neigh", "show", "dev", dev]));
    assert!(out.status.success(), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| {
            Some((
                n["dst"].as_str()?.parse().ok()?,
                n["lladdr"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn fmt_mac(mac: &[u8; 6]) -> String {
    netlab_tests::netlab::names::format_mac(mac)
}

/// bpftool's hex rendering of bytes ("02 4e 0a 50 01 01").
#[test]
fn check_table_passes_with_no_bridge_and_no_firewall_rule() {
    let lab = lab(1, 3);
    // No --datapath: the eBPF datapath is the default.
    let up = lab.ok(&["up"]);
    assert!(
        String::from_utf8_lossy(&up.stdout).contains("eBPF"),
        "{}",
        describe(&up)
    );

    let (ok, report) = lab.check();
    assert_all_ok(&report, PROBES_3);
    assert!(ok, "check must exit 0 when every probe passes");

    // No Linux bridge, and no device enslaved to one, anywhere in the lab.
    let mut namespaces = vec![lab.host_ns(), lab.inet_ns()];
    namespaces.extend((1..=3).map(|n| lab.ns(n)));
    for ns in &namespaces {
        for link in links(ns) {
            let info = &link["linkinfo"];
            assert_ne!(info["info_kind"], "bridge", "a bridge in {ns}: {link:#}");
            assert_ne!(
                info["info_slave_kind"], "bridge",
                "a bridge port in {ns}: {link:#}"
            );
            assert!(link.get("master").is_none(), "enslaved in {ns}: {link:#}");
        }
    }
    // vbridge holds the gateway address, as with the kernel datapath, but
    // is a veth whose peer is the gateway's switch port.
    let host_links = links(&lab.host_ns());
    let vbridge = host_links
        .iter()
        .find(|l| l["ifname"] == "vbridge")
        .expect("vbridge exists");
    assert_eq!(vbridge["linkinfo"]["info_kind"], "veth", "{vbridge:#}");
    assert_eq!(vbridge["address"], fmt_mac(&lab.mac(5)));
    let addr = lab.host_output(&["ip", "-br", "addr", "show", "vbridge"]);
    assert!(addr.contains(&format!("{}/24", lab.address(5))), "{addr}");

    lab.assert_no_firewall_rules("with every check cell passing");

    // ARP: every namespace resolved its peers and the gateway to the MACs
    // netlab gave them (02:4e:<ip>), answered by the switch's responder.
    for n in 1..=3u8 {
        let seen = neighbours(&lab.ns(u32::from(n)), &format!("veth-{n}"));
        let wanted: Vec<u8> = [1u8, 2, 3, 5].into_iter().filter(|h| *h != n).collect();
        for host in wanted {
            let entry = seen.iter().find(|(ip, _)| *ip == lab.ip(host));
            assert_eq!(
                entry.map(|(_, mac)| mac.as_str()),
                Some(fmt_mac(&lab.mac(host)).as_str()),
                "ARP table of {}: {seen:?}",
                lab.ns(u32::from(n))
            );
        }
        assert!(
            seen.iter()
                .all(|(ip, mac)| *mac == fmt_mac(&netlab_tests::netlab::names::mac_for(*ip))),
            "a wrong MAC in {}: {seen:?}",
            lab.ns(u32::from(n))
        );
    }
    // And the host side resolved the endpoints it answered.
    let host_seen = neighbours(&lab.host_ns(), "vbridge");
    for host in 1..=3u8 {
        let entry = host_seen.iter().find(|(ip, _)| *ip == lab.ip(host));
        assert_eq!(
            entry.map(|(_, mac)| mac.as_str()),
            Some(fmt_mac(&lab.mac(host)).as_str()),
            "ARP table of {}: {host_seen:?}",
            lab.host_ns()
        );
    }
    assert!(lab.counter(Counter::ArpAnswered) > 0);
    assert!(lab.counter(Counter::RedirectPeer) > 0);
    assert!(lab.counter(Counter::ToHost) > 0);

    // The FDB is readable with bpftool: one static entry per endpoint and
    // one for the gateway, each a MAC netlab assigned.
    let fdb = ebpf::fdb(&lab.name).expect("fdb");
    let macs: BTreeSet<[u8; 6]> = fdb.iter().map(|(mac, _)| *mac).collect();
    let expected: BTreeSet<[u8; 6]> = [1, 2, 3, 5].into_iter().map(|h| lab.mac(h)).collect();
    assert!(expected.is_subset(&macs), "{fdb:?}");
    let (keys, text) = bpftool_keys(&lab.pin_dir().join("fdb"));
    for mac in &expected {
        assert!(
            keys.iter().any(|k| k.starts_with(mac)),
            "bpftool fdb dump lacks {mac:02x?}: {text}"
        );
    }

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
    assert!(!lab.pin_dir().exists(), "pins left after down");
}

#[test]
fn a_namespace_spoofing_another_reaches_no_one() {
    let lab = lab(2, 3);
    lab.ok(&["up"]);
    let (ns1, ns2, ns3) = (lab.ns(1), lab.ns(2), lab.ns(3));
    let (gw_mac, mac1, mac2, mac3) = (lab.mac(5), lab.mac(1), lab.mac(2), lab.mac(3));
    let (ip1, ip2, ip3) = (lab.ip(1), lab.ip(2), lab.ip(3));

    // Receivers: ns1, the host (gateway address) and the internet server.
    let at_ns1 = UdpEchoServer::sink(&ns1, SocketAddrV4::new(ip1, 7000));
    let at_host = UdpEchoServer::sink(&lab.host_ns(), SocketAddrV4::new(lab.ip(5), 7000));
    let at_inet = UdpEchoServer::sink(&lab.inet_ns(), SocketAddrV4::new(INTERNET_ADDRESS, 7000));
    let targets = [
        ("ns1", mac1, ip1, &at_ns1),
        ("the gateway", gw_mac, lab.ip(5), &at_host),
        ("the internet", gw_mac, INTERNET_ADDRESS, &at_inet),
    ];
    let got = |sink: &UdpEchoServer, marker: &[u8]| sink.received().iter().any(|p| p == marker);

    // Control: ns3 under its own identity reaches all three, so silence
    // below means the frames were stopped, not that the path is broken.
    for (name, dst_mac, dst_ip, sink) in targets {
        let marker = format!("REAL-{name}").into_bytes();
        traffic::send_frames(
            &ns3,
            "veth-3",
            &[packets::udp_probe(mac3, ip3, dst_mac, dst_ip, &marker)],
        );
        assert!(
            wait_until(Duration::from_secs(10), || got(sink, &marker)),
            "ns3 with its own address did not reach {name}"
        );
    }

    // ns2 watches for anything claiming to be someone else.
    let spoof_arp = move |f: &[u8]| {
        f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[22..28] == mac3 && f[28..32] == ip1.octets()
    };
    let watch_ns2 = Capture::start(&ns2, "veth-2", move |f| {
        contains(f, b"SPOOF") || spoof_arp(f)
    });

    let before = lab.counter(Counter::DropSpoofed);
    let identities: [(&str, [u8; 6], Ipv4Addr); 4] = [
        ("ns2's address", mac3, ip2),
        ("ns2's MAC", mac2, ip3),
        ("ns2's MAC and address", mac2, ip2),
        (
            "an unknown MAC and address",
            [0x02, 0x4e, 10, 80, 2, 99],
            Ipv4Addr::new(10, 80, 2, 99),
        ),
    ];
    let mut frames = Vec::new();
    for (who, src_mac, src_ip) in identities {
        for (name, dst_mac, dst_ip, _) in targets {
            let marker = format!("SPOOF {who} to {name}").into_bytes();
            frames.push(packets::udp_probe(
                src_mac, src_ip, dst_mac, dst_ip, &marker,
            ));
        }
    }
    // Gratuitous ARP from ns3 claiming ns1's address, and a broadcast
    // carrying a spoofed source.
    let garp = packets::ethernet(
        packets::BROADCAST,
        mac3,
        packets::ETH_P_ARP,
        &packets::arp_body(
            packets::ARP_REPLY,
            mac3,
            ip1.octets(),
            packets::BROADCAST,
            ip1.octets(),
        ),
    );
    frames.push(garp);
    frames.push(packets::udp_probe(
        mac3,
        ip2,
        packets::BROADCAST,
        Ipv4Addr::BROADCAST,
        b"SPOOF broadcast",
    ));
    let spoofed_frames = frames.len() as u64;
    // Barriers: after the spoofed frames, on the same socket, one datagram
    // under ns3's own identity to every receiver (and to ns2). Once each
    // has arrived, any spoofed frame let through ahead of it has too.
    let sink_ns2 = UdpEchoServer::sink(&ns2, SocketAddrV4::new(ip2, 7000));
    let barrier_targets = targets
        .iter()
        .map(|(name, dst_mac, dst_ip, sink)| (*name, *dst_mac, *dst_ip, *sink))
        .chain([("ns2", mac2, ip2, &sink_ns2)]);
    let mut barriers = Vec::new();
    for (name, dst_mac, dst_ip, sink) in barrier_targets {
        let marker = format!("BARRIER-{name}").into_bytes();
        frames.push(packets::udp_probe(mac3, ip3, dst_mac, dst_ip, &marker));
        barriers.push((name, sink, marker));
    }
    traffic::send_frames(&ns3, "veth-3", &frames);

    // Absence is checked behind the barriers, not after a pause.
    for (name, sink, marker) in &barriers {
        assert!(
            wait_until(Duration::from_secs(10), || got(sink, marker)),
            "the barrier datagram never reached {name}"
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            lab.counter(Counter::DropSpoofed) - before >= spoofed_frames
        }),
        "DropSpoofed grew by {} for {spoofed_frames} spoofed frames",
        lab.counter(Counter::DropSpoofed) - before
    );
    for (name, _, _, sink) in targets {
        let spoofed: Vec<String> = sink
            .received()
            .iter()
            .filter(|p| p.starts_with(b"SPOOF"))
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert!(
            spoofed.is_empty(),
            "{name} received spoofed datagrams: {spoofed:?}"
        );
    }
    let at_ns2 = watch_ns2.finish();
    assert!(
        at_ns2.kept.is_empty(),
        "ns2 saw spoofed frames: {:02x?}",
        at_ns2.kept
    );
    assert!(
        sink_ns2.received().iter().all(|p| !p.starts_with(b"SPOOF")),
        "ns2 received spoofed datagrams"
    );

    // The impersonated namespace is unharmed: its FDB entry still points
    // to its own port, it is still reachable, and ns1 still knows its MAC.
    let ports = ebpf::ports(&lab.name).unwrap();
    let fdb = ebpf::fdb(&lab.name).unwrap();
    let port2 = ports.iter().find(|p| p.ipv4 == ip2).expect("ns2's port");
    let entry = fdb
        .iter()
        .find(|(m, _)| *m == mac2)
        .expect("ns2's FDB entry");
    assert_eq!(entry.1.port_ifindex, port2.ifindex, "{fdb:?}");
    assert!(ping_ok(&ns1, ip2) && ping_ok(&ns2, ip1));
    let arp1 = neighbours(&ns1, "veth-1");
    assert!(
        arp1.iter()
            .all(|(ip, mac)| *ip != ip1 && (*ip != ip2 || *mac == fmt_mac(&mac2))),
        "{arp1:?}"
    );
    // And ns3 under its own identity still reaches everyone.
    for (name, dst_mac, dst_ip, sink) in targets {
        let marker = format!("REAL again-{name}").into_bytes();
        traffic::send_frames(
            &ns3,
            "veth-3",
            &[packets::udp_probe(mac3, ip3, dst_mac, dst_ip, &marker)],
        );
        assert!(
            wait_until(Duration::from_secs(10), || got(sink, &marker)),
            "ns3 lost its own path to {name}"
        );
    }
    drop((at_ns1, at_host, at_inet));
    lab.ok(&["down"]);
}

#[test]
fn tcp_and_udp_flow_between_namespaces() {
    let lab = lab(3, 3);
    lab.ok(&["up"]);
    let (ns1, ns2, ns3) = (lab.ns(1), lab.ns(2), lab.ns(3));
    let (ip1, ip2, ip3) = (lab.ip(1), lab.ip(2), lab.ip(3));

    // iperf3 TCP ns1 -> ns2 and UDP ns3 -> ns1, 2 s each, at the same time.
    let tcp_server = iperf3_server(&ns2, ip2, 5201);
    let udp_server = iperf3_server(&ns1, ip1, 5202);
    let (tcp, udp) = std::thread::scope(|s| {
        let tcp = s.spawn(|| iperf3_client(&ns1, ip2, 5201, 2, false));
        let udp = s.spawn(|| iperf3_client(&ns3, ip1, 5202, 2, true));
        (tcp.join().unwrap(), udp.join().unwrap())
    });
    drop((tcp_server, udp_server));
    let tcp_bytes = tcp["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(tcp_bytes > 0, "iperf3 TCP moved nothing: {tcp:#}");
    let sum = &udp["end"]["sum"];
    let (packets, lost) = (
        sum["packets"].as_u64().unwrap_or(0),
        sum["lost_packets"].as_u64().unwrap_or(u64::MAX),
    );
    assert!(
        packets > 0 && lost < packets,
        "iperf3 UDP: nothing arrived: {sum:#}"
    );

    // Byte-exact TCP: 4 MiB of a known pattern ns2 -> ns3 and back.
    let echo = TcpEchoServer::start(&ns3, SocketAddrV4::new(ip3, 7000));
    let mut stream =
        tcp_connect(&ns2, echo.addr, Duration::from_secs(10)).expect("connect ns2 -> ns3");
    for (i, chunk) in traffic::pattern(3, 4 << 20).chunks(64 * 1024).enumerate() {
        traffic::tcp_echo(&mut stream, chunk).unwrap_or_else(|e| panic!("chunk {i}: {e}"));
    }
    assert_eq!(
        echo.peers(),
        [stream
            .local_addr()
            .map(|a| match a {
                std::net::SocketAddr::V4(a) => a,
                _ => unreachable!(),
            })
            .unwrap()],
        "ns3 must see ns2's own address (no NAT between namespaces)"
    );
    assert_eq!(echo.peers()[0].ip(), &ip2);

    // Byte-exact UDP: 200 datagrams of every size up to a full frame,
    // ns1 -> ns3 and back, one at a time.
    let uecho = UdpEchoServer::start(&ns3, SocketAddrV4::new(ip3, 7001));
    let sock = udp_socket(&ns1, SocketAddrV4::new(ip1, 0));
    for i in 0..200u64 {
        let size = 1 + (i as usize * 37) % 1472;
        let msg = traffic::pattern(i + 11, size);
        assert!(
            udp_echo(&sock, uecho.addr, &msg, Duration::from_secs(5)),
            "datagram {i} ({size} bytes) not echoed"
        );
    }
    assert!(uecho.peers().iter().all(|p| *p.ip() == ip1));
    drop((echo, uecho, stream));
    lab.ok(&["down"]);
}

#[test]
fn forwarding_needs_no_netlab_process_only_the_pins() {
    let lab = lab(4, 3);
    let (ns1, ns2, ns3) = (lab.ns(1), lab.ns(2), lab.ns(3));
    let (ip1, ip2, ip3) = (lab.ip(1), lab.ip(2), lab.ip(3));
    let all_paths = |lab: &TestLab| {
        for (from, to) in [
            (&ns1, ip2),
            (&ns2, ip3),
            (&ns3, ip1),
            (&ns1, lab.ip(5)),
            (&ns2, INTERNET_ADDRESS),
        ] {
            assert!(ping_ok(from, to), "{from} -> {to} failed");
        }
    };

    // The netlab that loaded the programs (and holds every fd) is stopped
    // right after installing the datapath, then SIGKILLed.
    let mut up = lab.spawn_paused_up("datapath", &[]);
    up.kill().expect("SIGKILL netlab up");
    up.wait().unwrap();
    all_paths(&lab);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down of a lab whose up was killed");
    assert!(!lab.pin_dir().exists());

    // A complete lab, with its daemon SIGKILLed: nothing changes.
    lab.ok(&["up"]);
    let daemon = lab.start_daemon("0.2");
    daemon.kill();
    let (ok, report) = lab.check();
    assert_all_ok(&report, PROBES_3);
    assert!(ok);

    // No process holds the links now: their pins are what keep them. Take
    // ns1's port pin away and ns1 is cut off, while the others still talk.
    let pin = lab.pin_dir().join("link_port_veth-1-br");
    assert!(pin.exists(), "{} not pinned", pin.display());
    std::fs::remove_file(&pin).expect("unpin ns1's port link");
    assert!(
        wait_until(Duration::from_secs(10), || !ping_ok(&ns2, ip1)),
        "ns1 still reachable without its port program"
    );
    assert!(!ping_ok(&ns1, lab.ip(5)));
    assert!(ping_ok(&ns2, ip3) && ping_ok(&ns3, lab.ip(5)));

    // down copes with the missing pin and removes everything else.
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
    assert!(!lab.pin_dir().exists());
}

#[test]
fn attach_and_detach_leave_running_flows_alone() {
    let lab = lab(5, 2);
    lab.ok(&["up"]);
    let (ns1, ns2) = (lab.ns(1), lab.ns(2));
    let (ip1, ip2) = (lab.ip(1), lab.ip(2));

    // Flows that must not lose a beat: TCP ns1 -> ns2, UDP ns2 -> ns1,
    // pings ns1 -> ns2, and TCP ns2 -> internet through the NAT.
    let tcp_server = TcpEchoServer::start(&ns2, SocketAddrV4::new(ip2, 7100));
    let udp_server = UdpEchoServer::start(&ns1, SocketAddrV4::new(ip1, 7101));
    let inet_server =
        TcpEchoServer::start(&lab.inet_ns(), SocketAddrV4::new(INTERNET_ADDRESS, 7102));
    let ms = Duration::from_millis;
    let flows = [
        (
            "TCP ns1 -> ns2",
            EchoLoop::tcp(
                tcp_connect(&ns1, tcp_server.addr, Duration::from_secs(10)).unwrap(),
                ms(10),
            ),
        ),
        (
            "UDP ns2 -> ns1",
            EchoLoop::udp(
                udp_socket(&ns2, SocketAddrV4::new(ip2, 0)),
                udp_server.addr,
                ms(10),
            ),
        ),
        ("ping ns1 -> ns2", EchoLoop::ping(&ns1, ip2, ms(20))),
        (
            "TCP ns2 -> internet",
            EchoLoop::tcp(
                tcp_connect(&ns2, inet_server.addr, Duration::from_secs(10)).unwrap(),
                ms(10),
            ),
        ),
    ];
    let progress = |when: &str| {
        for (name, flow) in &flows {
            assert!(
                flow.wait_rounds(3, Duration::from_secs(20)),
                "{name} stalled {when}"
            );
        }
    };
    progress("at start");

    let new_ns = lab.ns(3);
    for (round, host) in [(1, 9u8), (2, 10u8)] {
        let out = lab.ok(&["attach", &new_ns, &lab.address(host)]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("veth-3"),
            "{}",
            describe(&out)
        );
        progress(&format!("after attach #{round}"));
        // The new namespace is a full member: every check cell passes.
        let (ok, report) = lab.check();
        assert_all_ok(&report, PROBES_3);
        assert!(ok);
        let ports = ebpf::ports(&lab.name).unwrap();
        assert!(ports.iter().any(|p| p.ipv4 == lab.ip(host)), "{ports:?}");

        lab.ok(&["detach", &new_ns]);
        progress(&format!("after detach #{round}"));
        assert!(!netns::exists(&new_ns));
        let ports = ebpf::ports(&lab.name).unwrap();
        assert_eq!(ports.len(), 3, "ns1, ns2 and the gateway remain: {ports:?}");
        assert!(ports.iter().all(|p| p.ipv4 != lab.ip(host)));
        let fdb = ebpf::fdb(&lab.name).unwrap();
        assert!(fdb.iter().all(|(mac, _)| *mac != lab.mac(host)), "{fdb:?}");
        assert!(!lab.pin_dir().join("link_port_veth-3-br").exists());
    }
    let (ok, report) = lab.check();
    assert_all_ok(&report, 2 * 3);
    assert!(ok);

    for (name, flow) in flows {
        let (rounds, failures) = flow.finish();
        assert!(
            failures.is_empty(),
            "{name} ({rounds} rounds) was disturbed: {failures:?}"
        );
    }
    assert_eq!(tcp_server.peers().len(), 1, "the TCP flow reconnected");
    assert_eq!(inet_server.peers().len(), 1, "the NAT flow reconnected");
    drop((tcp_server, udp_server, inet_server));
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}
