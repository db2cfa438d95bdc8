//! Published ports over IPv6 (issue 11) on real labs: the IPv6 side of a
//! publication, on both datapaths, as `publish_lab.rs` checks the IPv4
//! one. A server in a namespace reached at `[uplink IPv6]:port` from the
//! internet namespace (the service sees the client's real address), by
//! hairpin from another namespace, from the host side; a publication on
//! one IPv6 address only; `netlab publish`/`unpublish` at run time; the
//! rules (kernel) and map entries (eBPF) gone after unpublish and down;
//! bad input refused with the field named and nothing changed.
//!
//! Every test owns its lab `ve<k>` (namespaces `ve<k>-*`), IPv4 subnet
//! 10.165.<k>.0/24 and so IPv6 prefix fd00:10:165:<k>::/64 (the lab
//! file's default). Traffic stays between the lab's own namespaces.

use std::io::{Read, Write};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use netlab_tests::TestLab;
use netlab_tests::traffic::{NsProcess, in_ns, run_in_ns, wait_listening, wait_until};

const TIMEOUT: Duration = Duration::from_secs(3);
const UPLINK6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 1);
const INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 2);

/// Lab `ve<k>` with two namespaces on 10.165.<k>.0/24, `extra` appended
/// to the lab file.
fn lab(k: u8, extra: &str) -> TestLab {
    TestLab::named(&format!("ve{k}"), [10, 165], k, 2, extra)
}

/// The lab's IPv6 address for host number `host` (the IPv4 offset).
fn addr6(lab: &TestLab, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x10, 0x165, u16::from(lab.k), 0, 0, 0, host)
}

/// A `[publish]` table for `ve<k>-ns1`.
fn publish_table(k: u8, specs: &str) -> String {
    format!("[publish]\nve{k}-ns1 = [{specs}]\n")
}

/// A TCP (IPv6, dual-stack) echo server in a namespace that records the
/// peer of every connection it accepts: the address the service sees.
struct Server6 {
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server6 {
    fn start(ns: &str, port: u16) -> Self {
        let bind = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        let listener = in_ns(ns, || TcpListener::bind(bind))
            .unwrap_or_else(|e| panic!("cannot listen on {bind} in {ns}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, peers) = (stop.clone(), peers.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((mut s, peer)) => {
                            peers.lock().unwrap().push(peer);
                            let stop = stop.clone();
                            // Echo until the client closes (or the test
                            // ends): a connection can outlive changes.
                            std::thread::spawn(move || {
                                let _ = s.set_nonblocking(false);
                                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                                let mut buf = [0u8; 256];
                                while !stop.load(Ordering::SeqCst) {
                                    match s.read(&mut buf) {
                                        Ok(0) => return,
                                        Ok(n) => {
                                            if s.write_all(&buf[..n]).is_err() {
                                                return;
                                            }
                                        }
                                        Err(e)
                                            if matches!(
                                                e.kind(),
                                                std::io::ErrorKind::WouldBlock
                                                    | std::io::ErrorKind::TimedOut
                                            ) => {}
                                        Err(_) => return,
                                    }
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Self {
            stop,
            peers,
            thread: Some(thread),
        }
    }

    fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for Server6 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// A UDP (IPv6) echo server in a namespace recording every datagram's
/// source.
struct Udp6Server {
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl Udp6Server {
    fn start(ns: &str, port: u16) -> Self {
        let bind = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        let sock = in_ns(ns, || UdpSocket::bind(bind))
            .unwrap_or_else(|e| panic!("cannot bind UDP {bind} in {ns}: {e}"));
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, peers) = (stop.clone(), peers.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        peers.lock().unwrap().push(from);
                        let _ = sock.send_to(&buf[..n], from);
                    }
                }
            })
        };
        Self {
            stop,
            peers,
            thread: Some(thread),
        }
    }

    fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for Udp6Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// A TCP round trip from `ns` to `to` (an error if it fails).
fn try_round_trip(ns: &str, to: SocketAddr) -> std::io::Result<()> {
    let mut s = in_ns(ns, || TcpStream::connect_timeout(&to, TIMEOUT))?;
    echo(&mut s, b"published6")
}

/// `payload` sent on `s` and its echo read back.
fn echo(s: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    s.set_read_timeout(Some(TIMEOUT))?;
    s.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back)?;
    if back != payload {
        return Err(std::io::Error::other("the echo differs"));
    }
    Ok(())
}

/// A TCP round trip from `ns` to `to`; the server's view of the client.
fn round_trip(ns: &str, to: SocketAddr, server: &Server6) -> SocketAddr {
    let before = server.peers().len();
    try_round_trip(ns, to).unwrap_or_else(|e| panic!("{ns} -> {to}: {e}"));
    assert!(
        wait_until(TIMEOUT, || server.peers().len() > before),
        "{ns} -> {to}: the server saw no connection"
    );
    server.peers()[before]
}

/// A UDP datagram from `ns` to `to` and its echo, which must come back
/// from `to` itself (the published address, not the namespace's).
fn udp6_echo(ns: &str, to: SocketAddrV6) -> bool {
    let sock = in_ns(ns, || {
        UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
    })
    .expect("bind a UDP client");
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    if sock.send_to(b"hello6", to).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => from == SocketAddr::V6(to) && &buf[..n] == b"hello6",
        Err(_) => false,
    }
}

fn v6(addr: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(addr, port, 0, 0))
}

/// The lab's ip6tables rules (tagged `netlab:<lab>`) in the host side.
fn netlab_rules6(lab: &TestLab) -> Vec<String> {
    lab.host_output(&["ip6tables-save", "-t", "nat"])
        .lines()
        .filter(|l| l.contains(&format!("netlab:{}", lab.name)))
        .map(str::to_string)
        .collect()
}

/// `curl -6` from `ns` to `url`: the HTTP status, or "000" when nothing
/// answered.
fn curl6(ns: &str, url: &str) -> String {
    let out = run_in_ns(
        ns,
        &[
            "curl",
            "-6",
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ],
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn kernel_ipv6_published_ports_use_ip6tables_twins() {
    let k = 1;
    let extra = publish_table(
        k,
        "\"8080:7000\", \"[2001:db8:203:113::1]:8081:7001\", \"5353:5300/udp\"",
    );
    let lab = lab(k, &format!("datapath = \"kernel\"\n{extra}"));
    lab.ok(&["up"]);
    let (ns1, ns2, inet, host) = (lab.ns(1), lab.ns(2), lab.inet_ns(), lab.host_ns());
    let (gateway6, ns1_6) = (addr6(&lab, 5), addr6(&lab, 1));
    let tcp = Server6::start(&ns1, 7000);
    let tcp_one = Server6::start(&ns1, 7001);
    let udp = Udp6Server::start(&ns1, 5300);

    // From the internet namespace: the service sees the client's address.
    let seen = round_trip(&inet, v6(UPLINK6, 8080), &tcp);
    assert_eq!(seen.ip(), INTERNET6, "the service saw {seen}");
    // Published on the one IPv6 address only: its IPv4 side is not.
    let seen = round_trip(&inet, v6(UPLINK6, 8081), &tcp_one);
    assert_eq!(seen.ip(), INTERNET6, "the service saw {seen}");
    let uplink4 = SocketAddr::from((netlab_tests::UPLINK_ADDRESS, 8081));
    assert!(
        try_round_trip(&inet, uplink4).is_err(),
        "[2001:db8:203:113::1]:8081 was published on {uplink4} too"
    );
    // Hairpin from another namespace: masqueraded to the gateway, as the
    // IPv4 portmap rules do.
    let seen = round_trip(&ns2, v6(UPLINK6, 8080), &tcp);
    assert_eq!(seen.ip(), gateway6, "hairpin seen as {seen}");
    // The namespace to its own published port: as for IPv4, the bridge
    // port has no hairpin mode, so no connection (recorded as it is).
    assert!(
        try_round_trip(&ns1, v6(UPLINK6, 8080)).is_err(),
        "the kernel baseline's self-hairpin worked over IPv6"
    );
    // The host side at its uplink address: its own connection, DNATed in
    // OUTPUT; it leaves with the address it chose for the uplink.
    let seen = round_trip(&host, v6(UPLINK6, 8080), &tcp);
    assert_eq!(seen.ip(), UPLINK6, "host side seen as {seen}");
    // [::1] cannot be DNATed off the host (no route_localnet in IPv6):
    // the rules leave it alone, so the client is refused, not hung.
    assert!(try_round_trip(&host, v6(Ipv6Addr::LOCALHOST, 8080)).is_err());
    // UDP: the answer comes from the published address.
    assert!(udp6_echo(&inet, SocketAddrV6::new(UPLINK6, 5353, 0, 0)));
    assert!(
        udp.peers().iter().any(|p| p.ip() == INTERNET6),
        "{:?}",
        udp.peers()
    );
    // `curl -6` to a python http.server, as a user would.
    let _http = NsProcess::spawn(
        &ns2,
        &["python3", "-m", "http.server", "--bind", "::", "7080"],
    );
    wait_listening(&ns2, 7080);
    lab.ok(&["publish", &ns2, "8088:7080"]);
    assert_eq!(curl6(&inet, "http://[2001:db8:203:113::1]:8088/"), "200");

    // 4 published ports, 3 ip6tables rules each (no localhost masquerade).
    let rules = netlab_rules6(&lab);
    assert_eq!(rules.len(), 12, "{rules:#?}");
    assert!(
        rules
            .iter()
            .any(|r| r.contains(&format!("--to-destination [{ns1_6}]:7000"))),
        "{rules:#?}"
    );
    // A host-side IPv6 listener holds its port: refused, naming it.
    let _listener = in_ns(&host, || {
        TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 9191)))
    })
    .expect("a host-side listener");
    let out = lab.netlab(&["publish", &ns2, "[2001:db8:203:113::1]:9191:80"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "publish over a listener accepted");
    assert!(err.contains("already listens on [::]:9191/tcp"), "{err}");

    lab.ok(&["unpublish", &ns1, "[2001:db8:203:113::1]:8081:7001"]);
    let rules = netlab_rules6(&lab);
    assert_eq!(rules.len(), 9, "{rules:#?}");
    assert!(
        !rules.iter().any(|r| r.contains("--dport 8081")),
        "{rules:#?}"
    );
    assert!(try_round_trip(&inet, v6(UPLINK6, 8081)).is_err());
    drop((tcp, tcp_one, udp));
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn bad_ipv6_publications_are_refused_with_the_field_named() {
    // A lab without IPv6 refuses an IPv6 host address at `up`, before
    // creating anything.
    let k = 2;
    let extra = publish_table(k, "\"[2001:db8:203:113::1]:8080:80\"");
    let no6 = lab(k, &format!("subnet6 = \"none\"\n{extra}"));
    let out = no6.netlab(&["up"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up accepted it: {err}");
    assert!(
        err.contains(&format!("publish.{}-ns1[0]", no6.name)) && err.contains("no IPv6 address"),
        "{err}"
    );
    no6.assert_nothing_left("after a refused up");
    drop(no6);

    // Running, without IPv6: `publish` refuses it too, nothing changes.
    let no6 = lab(k, "subnet6 = \"none\"\ndatapath = \"kernel\"");
    no6.ok(&["up"]);
    no6.ok(&["publish", &no6.ns(1), "8080:80"]);
    let before = no6.ok(&["ports", "--json"]).stdout;
    let out = no6.netlab(&["publish", &no6.ns(1), "[2001:db8:203:113::1]:9090:80"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("publish [2001:db8:203:113::1]:9090:80/tcp") && err.contains("no IPv6"),
        "{err}"
    );
    // A wildcard publication has no IPv6 side there: no ip6tables rule.
    assert!(netlab_rules6(&no6).is_empty(), "{:?}", netlab_rules6(&no6));
    // Malformed brackets: the CLI names the value and the reason.
    for (spec, why) in [
        ("[2001:db8:203:113::1:9090:80", "no closing ]"),
        ("2001:db8:203:113::1:9090:80", "brackets"),
        ("[203.0.113.1]:9090:80", "not an IPv6 address"),
    ] {
        let out = no6.netlab(&["publish", &no6.ns(1), spec]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{spec} accepted");
        assert!(err.contains(spec) && err.contains(why), "{spec}: {err}");
    }
    assert_eq!(no6.ok(&["ports", "--json"]).stdout, before, "ports changed");
    no6.ok(&["down"]);
    no6.assert_nothing_left("after down");
}

/// A UDP client socket bound in `ns`, kept across exchanges (same tuple).
fn udp6_client(ns: &str) -> UdpSocket {
    let sock = in_ns(ns, || {
        UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)))
    })
    .expect("bind a UDP client");
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock
}

/// One datagram on `sock` to `to`; whether its echo came back from `to`.
fn udp6_exchange(sock: &UdpSocket, to: SocketAddrV6, payload: &[u8]) -> bool {
    if sock.send_to(payload, to).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => from == SocketAddr::V6(to) && buf[..n] == *payload,
        Err(_) => false,
    }
}

/// The `nat6_reply` keys (client tuple as it arrives) whose destination
/// is `daddr:dport`: the live translations of that published port.
fn translations_to(lab: &TestLab, daddr: Ipv6Addr, dport: u16) -> usize {
    let (keys, _) = netlab_tests::bpftool_keys(&lab.pin_dir().join("nat6_reply"));
    keys.iter()
        .filter(|k| k[16..32] == daddr.octets() && k[34..36] == dport.to_be_bytes())
        .count()
}

#[test]
fn ebpf_ipv6_published_ports_from_everywhere() {
    let k = 3;
    let extra = publish_table(
        k,
        "\"8080:7000\", \"[2001:db8:203:113::1]:8081:7001\", \"5353:5300/udp\"",
    );
    let lab = lab(k, &extra);
    lab.ok(&["up"]);
    lab.assert_no_firewall_rules("IPv6 published ports on the eBPF datapath");
    let (ns1, ns2, inet, host) = (lab.ns(1), lab.ns(2), lab.inet_ns(), lab.host_ns());
    let (ns1_6, ns2_6, gateway6) = (addr6(&lab, 1), addr6(&lab, 2), addr6(&lab, 5));
    let published = netlab::nat::published6(&lab.pin_dir()).expect("nat6_publish");
    assert_eq!(published.len(), 3, "{published:?}");
    assert!(
        published
            .iter()
            .any(|p| p.host_port == 8080 && p.host_address.is_none() && p.address == ns1_6),
        "{published:?}"
    );
    let dump = lab.ok(&["map", "dump", "nat6_publish", "--json"]);
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains(&format!("\"{ns1_6}\"")) && dump.contains("\"2001:db8:203:113::1\""),
        "{dump}"
    );
    let tcp = Server6::start(&ns1, 7000);
    let tcp_one = Server6::start(&ns1, 7001);
    let udp1 = Udp6Server::start(&ns1, 5300);

    // From the internet namespace, through the uplink's DNAT66: the
    // service sees the client's own address.
    let seen = round_trip(&inet, v6(UPLINK6, 8080), &tcp);
    assert_eq!(seen.ip(), INTERNET6, "the service saw {seen}");
    let seen = round_trip(&inet, v6(UPLINK6, 8081), &tcp_one);
    assert_eq!(seen.ip(), INTERNET6, "the service saw {seen}");
    assert!(
        try_round_trip(
            &inet,
            SocketAddr::from((netlab_tests::UPLINK_ADDRESS, 8081))
        )
        .is_err(),
        "[2001:db8:203:113::1]:8081 was published on IPv4 too"
    );
    assert!(lab.counter(netlab_common::counters::Counter::DnatCreated) >= 2);
    assert!(translations_to(&lab, UPLINK6, 8080) >= 1);
    // The lab's own sockets (connect6): hairpin keeps the client's
    // address, the namespace reaches its own port as itself, the host side
    // (uplink address and [::1]) comes through the gateway.
    let seen = round_trip(&ns2, v6(UPLINK6, 8080), &tcp);
    assert_eq!(seen.ip(), ns2_6, "hairpin seen as {seen}");
    let seen = round_trip(&ns1, v6(UPLINK6, 8080), &tcp);
    assert_eq!(seen.ip(), ns1_6, "the namespace to itself seen as {seen}");
    for to in [v6(UPLINK6, 8080), v6(Ipv6Addr::LOCALHOST, 8080)] {
        let seen = round_trip(&host, to, &tcp);
        assert_eq!(seen.ip(), gateway6, "host side -> {to} seen as {seen}");
    }
    // UDP: from the internet, and unconnected from the host side
    // (sendmsg6/recvmsg6): the answer comes back from the published
    // address.
    let published_udp = SocketAddrV6::new(UPLINK6, 5353, 0, 0);
    let client = udp6_client(&inet);
    assert!(
        udp6_exchange(&client, published_udp, b"one"),
        "UDP from the internet"
    );
    assert!(
        udp6_exchange(&udp6_client(&host), published_udp, b"host"),
        "UDP from the host side"
    );
    assert!(
        udp1.peers().iter().any(|p| p.ip() == INTERNET6),
        "{:?}",
        udp1.peers()
    );
    assert!(lab.counter(netlab_common::counters::Counter::SockRestored) >= 1);

    // An established connection through DNAT66 survives `up` on the
    // running lab (programs reloaded, maps adopted) and the publishing
    // and unpublishing of another port.
    let mut stream = in_ns(&inet, || {
        TcpStream::connect_timeout(&v6(UPLINK6, 8080), TIMEOUT)
    })
    .expect("connect through the published port");
    echo(&mut stream, b"before").expect("echo before");
    lab.ok(&["up"]);
    echo(&mut stream, b"after up").expect("echo after up");
    lab.ok(&["publish", &ns2, "9090:7000"]);
    lab.ok(&["unpublish", &ns2, "9090:7000"]);
    echo(&mut stream, b"after another port").expect("echo after another port");
    drop(stream);

    // Republished for another namespace at run time, the same client
    // socket reaches the new one: the old translation went with the old
    // publication.
    let udp2 = Udp6Server::start(&ns2, 5300);
    lab.ok(&["unpublish", &ns1, "5353:5300/udp"]);
    lab.ok(&["publish", &ns2, "5353:5300/udp"]);
    let before = udp1.peers().len();
    assert!(
        udp6_exchange(&client, published_udp, b"two"),
        "UDP after republish"
    );
    assert_eq!(udp1.peers().len(), before, "the old namespace still got it");
    assert!(
        udp2.peers().iter().any(|p| p.ip() == INTERNET6),
        "{:?}",
        udp2.peers()
    );

    // Unpublished: no map entry, no translation, no answer.
    lab.ok(&["unpublish", &ns1, "8080:7000"]);
    assert_eq!(translations_to(&lab, UPLINK6, 8080), 0);
    assert!(try_round_trip(&inet, v6(UPLINK6, 8080)).is_err());
    assert!(try_round_trip(&ns2, v6(UPLINK6, 8080)).is_err());
    lab.ok(&["unpublish", &ns1, "[2001:db8:203:113::1]:8081:7001"]);
    lab.ok(&["unpublish", &ns2, "5353:5300/udp"]);
    let (keys, text) = netlab_tests::bpftool_keys(&lab.pin_dir().join("nat6_publish"));
    assert!(keys.is_empty(), "nat6_publish after unpublish: {text}");
    drop((tcp, tcp_one, udp1, udp2));
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}
