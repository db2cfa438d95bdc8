//! IPv6 on a real lab, for the integration tests of either datapath: the
//! addresses a lab gets by the lab file's rule (computed here from the
//! rule, not asked of netlab), and the whole reachability matrix over
//! IPv6 — ping, TCP, UDP and a fragmented UDP datagram from every
//! namespace to every other, to the gateway and to the internet server,
//! with the internet server's view of who talked to it.
//!
//! Written once for both datapaths: a test names the datapath and its own
//! lab (name, subnet); [`assert_ipv6_matrix`] does the rest.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use crate::TestLab;
use crate::traffic::{
    TcpEchoServer, UdpEchoServer, pattern, ping_ok, tcp_connect, tcp_echo, udp_echo, udp_socket,
};

/// The sandbox uplink's default IPv6 address (host side): the only
/// source the internet namespace may see from the lab.
pub const UPLINK6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 1);
/// The sandbox's internet server, IPv6.
pub const INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 2);

/// Ports the matrix's echo servers listen on.
const TCP_PORT: u16 = 7601;
const UDP_PORT: u16 = 7602;
/// Larger than every MTU in the lab (1500): the sender fragments it.
const BIG_DATAGRAM: usize = 4000;

/// A lab named `name` on `<net>.<k>.0/24` with `count` namespaces on
/// `datapath` ("kernel" | "ebpf"), IPv6 at its default (derived) prefix.
pub fn lab6(name: &str, net: [u8; 2], k: u8, count: u32, datapath: &str, extra: &str) -> TestLab {
    TestLab::named(
        name,
        net,
        k,
        count,
        &format!("datapath = \"{datapath}\"\n{extra}"),
    )
}

impl TestLab {
    /// The IPv6 address of lab host `host` by the lab file's rule: the
    /// default `subnet6` is `fd00:` followed by the IPv4 subnet's first
    /// three octets written as hex groups with the same digits, and the
    /// host keeps its IPv4 offset (10.161.3.5 → fd00:10:161:3::5).
    pub fn ip6(&self, host: u8) -> Ipv6Addr {
        let [a, b] = self.net;
        format!("fd00:{a}:{b}:{}::{host:x}", self.k)
            .parse()
            .expect("a valid IPv6 address")
    }

    /// The lab's default IPv6 prefix, as `ip` prints it.
    pub fn subnet6(&self) -> String {
        let [a, b] = self.net;
        format!("fd00:{a}:{b}:{}::/64", self.k)
    }
}

/// One target of the matrix: where its servers run and its address.
struct Target {
    label: String,
    ns: String,
    addr: Ipv6Addr,
    /// The internet server: its peers must all be the uplink's address.
    internet: bool,
}

fn targets(lab: &TestLab) -> Vec<Target> {
    let mut v: Vec<Target> = (1..=lab.namespace_count)
        .map(|i| Target {
            label: lab.ns(i),
            ns: lab.ns(i),
            addr: lab.ip6(i as u8),
            internet: false,
        })
        .collect();
    v.push(Target {
        label: "gateway".into(),
        ns: lab.host_ns(),
        addr: lab.ip6(5),
        internet: false,
    });
    v.push(Target {
        label: "internet".into(),
        ns: lab.inet_ns(),
        addr: INTERNET6,
        internet: true,
    });
    v
}

/// What went wrong between one namespace and one target, if anything:
/// ping, a TCP echo, a small and a fragmented UDP echo.
fn probe(src: &str, to: &Target) -> Vec<String> {
    let mut wrong = Vec::new();
    let what = |w: &str| format!("{src} -> {} [{}]: {w}", to.label, to.addr);
    if !ping_ok(src, to.addr) {
        wrong.push(what("no reply to ping -6"));
    }
    let tcp = SocketAddrV6::new(to.addr, TCP_PORT, 0, 0);
    match tcp_connect(src, tcp, Duration::from_secs(5)) {
        Ok(mut s) => {
            if let Err(e) = tcp_echo(&mut s, &pattern(7, 3000)) {
                wrong.push(what(&format!("TCP echo: {e}")));
            }
        }
        Err(e) => wrong.push(what(&format!("TCP connect: {e}"))),
    }
    let sock = udp_socket(src, SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0));
    let udp = SocketAddrV6::new(to.addr, UDP_PORT, 0, 0);
    if !udp_echo(&sock, udp, b"ipv6 udp", Duration::from_secs(3)) {
        wrong.push(what("no UDP echo"));
    }
    if !udp_echo(
        &sock,
        udp,
        &pattern(9, BIG_DATAGRAM),
        Duration::from_secs(3),
    ) {
        wrong.push(what(&format!(
            "no echo of a {BIG_DATAGRAM}-byte UDP datagram (fragmented)"
        )));
    }
    wrong
}

/// Asserts, on a lab that is up, that every namespace reaches every
/// other, the gateway and the internet server over IPv6 (ping, TCP, UDP,
/// a UDP datagram larger than the MTU), that the internet server saw only
/// the uplink's IPv6 address as the source, that the internet namespace
/// has no route back to the lab's prefix, and that `netlab check` passes
/// every IPv6 probe.
pub fn assert_ipv6_matrix(lab: &TestLab) {
    let targets = targets(lab);
    let servers: Vec<(TcpEchoServer, UdpEchoServer)> = targets
        .iter()
        .map(|t| {
            (
                TcpEchoServer::start(&t.ns, SocketAddrV6::new(t.addr, TCP_PORT, 0, 0)),
                UdpEchoServer::start(&t.ns, SocketAddrV6::new(t.addr, UDP_PORT, 0, 0)),
            )
        })
        .collect();
    let mut wrong = Vec::new();
    for i in 1..=lab.namespace_count {
        let src = lab.ns(i);
        for t in targets.iter().filter(|t| t.ns != src) {
            wrong.extend(probe(&src, t));
        }
    }
    // The internet saw the uplink's address only, and every namespace's
    // TCP connection and datagrams arrived (one TCP peer per namespace).
    for (t, (tcp, udp)) in targets.iter().zip(&servers).filter(|(t, _)| t.internet) {
        let peers: Vec<SocketAddr> = tcp.peers_any().into_iter().chain(udp.peers_any()).collect();
        if tcp.peers_any().len() != lab.namespace_count as usize {
            wrong.push(format!("{}: TCP peers {:?}", t.label, tcp.peers_any()));
        }
        for p in peers.iter().filter(|p| p.ip() != UPLINK6) {
            wrong.push(format!(
                "{} saw {p} as a source: only the uplink's {UPLINK6} may reach it",
                t.label
            ));
        }
    }
    let route = crate::in_netns(
        &lab.inet_ns(),
        &["ip", "-6", "route", "get", &lab.ip6(1).to_string()],
    );
    if route.status.success() {
        wrong.push(format!(
            "the internet namespace has a route to the lab: {}",
            String::from_utf8_lossy(&route.stdout)
        ));
    }
    let (_, report) = lab.check();
    let v6: Vec<&serde_json::Value> = report["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .filter(|p| p["family"] == "ipv6")
        .collect();
    let n = lab.namespace_count as usize;
    if v6.len() != n * (n - 1) + 2 * n {
        wrong.push(format!("check has {} IPv6 probes: {report:#}", v6.len()));
    }
    for p in v6.iter().filter(|p| p["result"] != "ok") {
        wrong.push(format!("check: {p}"));
    }
    assert!(
        wrong.is_empty(),
        "IPv6 on lab {}:\n{}",
        lab.name,
        wrong.join("\n")
    );
}

/// The IPv6 addresses (any scope) inside namespace `ns`, as `ip -6 addr`
/// lists them.
pub fn ipv6_addresses(ns: &str) -> Vec<String> {
    let out = crate::in_netns(ns, &["ip", "-6", "-o", "addr", "show"]);
    assert!(out.status.success(), "{}", crate::describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet6")?;
            w.next().map(str::to_string)
        })
        .collect()
}
