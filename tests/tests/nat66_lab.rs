//! NAT66 on the full lab built by `netlab up` (eBPF datapath), against
//! servers in the lab's internet namespace, which has no route back to
//! the lab's IPv6 prefix: only the translation brings replies home.
//!
//! Every test owns its lab `vc<k>`, namespaces `vc<k>-*` and subnet
//! 10.163.<k>.0/24 (IPv6 fd00:10:163:<k>::/64, derived); the uplink
//! (2001:db8:203:113::1) and the internet server (::2) live inside the
//! lab's own sandbox namespaces. Nothing here touches the root namespace.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netlab_common::counters::Counter;
use netlab_tests::traffic::{ChildGuard, wait_until};
use netlab_tests::{TestLab, describe, in_netns};

const UPLINK6: &str = "2001:db8:203:113::1";
const INTERNET6: &str = "2001:db8:203:113::2";
const PORT: u16 = 8066;

fn lab(k: u8, count: u32) -> TestLab {
    TestLab::named(
        &format!("vc{k}"),
        [10, 163],
        k,
        count,
        "datapath = \"ebpf\"",
    )
}

/// A TCP and UDP echo server on `[::]:PORT` in namespace `ns` (python3,
/// killed by its PID on drop) that records the peer address of every
/// connection and datagram.
struct EchoServer6 {
    _child: ChildGuard,
    lines: Arc<Mutex<Vec<String>>>,
}

const SERVER: &str = r#"
import socket, sys, threading
port = int(sys.argv[1])
t = socket.socket(socket.AF_INET6)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("::", port)); t.listen(16)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("::", port))
print("ready", flush=True)
def serve(c, a):
    print("tcp", a[0], flush=True)
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
def tcp():
    while True:
        c, a = t.accept()
        threading.Thread(target=serve, args=(c, a), daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
while True:
    d, a = u.recvfrom(65536)
    print("udp", a[0], len(d), flush=True)
    u.sendto(d, a)
"#;

const CLIENT: &str = r#"
import socket, sys
kind, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = bytes((i * 7) % 251 for i in range(size))
if kind == "tcp":
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.settimeout(2)
    got = b""
    for attempt in range(5):
        s.sendto(data, (host, port))
        try:
            got, _ = s.recvfrom(65536)
            break
        except socket.timeout:
            pass
assert got == data, f"{kind}: {len(got)} of {len(data)} bytes echoed"
print("ok")
"#;

impl EchoServer6 {
    fn start(ns: &str) -> Self {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "python3",
                "-c",
                SERVER,
                &PORT.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the IPv6 echo server");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let server = Self {
            _child: ChildGuard::new(child, "IPv6 echo server"),
            lines,
        };
        assert!(
            wait_until(Duration::from_secs(10), || server
                .lines()
                .iter()
                .any(|l| l == "ready")),
            "the echo server never got ready"
        );
        server
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The peer addresses the server saw (TCP connections, UDP datagrams).
    fn peers(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| {
                let mut w = l.split(' ');
                matches!(w.next(), Some("tcp" | "udp")).then(|| w.next().unwrap().to_owned())
            })
            .collect()
    }
}

/// Runs the echo client in `ns`: `kind` "tcp" or "udp", `size` bytes.
fn echo(ns: &str, kind: &str, host: &str, size: usize) {
    let out = in_netns(
        ns,
        &[
            "python3",
            "-c",
            CLIENT,
            kind,
            host,
            &PORT.to_string(),
            &size.to_string(),
        ],
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{kind} echo of {size} bytes from {ns} to {host}: {}",
        describe(&out)
    );
}

fn ping6(ns: &str, to: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2"];
    args.extend_from_slice(extra);
    args.push(to);
    in_netns(ns, &args)
}

#[test]
fn every_namespace_reaches_the_internet_over_ipv6_as_the_uplink() {
    let lab = lab(1, 2);
    lab.ok(&["up"]);
    let server = EchoServer6::start(&lab.inet_ns());
    let created = lab.counter(Counter::NatCreated);
    for n in 1..=2 {
        let ns = lab.ns(n);
        let out = ping6(&ns, INTERNET6, &[]);
        assert!(
            out.status.success(),
            "ping -6 from {ns}: {}",
            describe(&out)
        );
        echo(&ns, "tcp", INTERNET6, 200_000);
        echo(&ns, "udp", INTERNET6, 200);
        // Larger than the MTU: fragments both ways (nat6_frags).
        echo(&ns, "udp", INTERNET6, 3000);
    }
    let peers = server.peers();
    assert!(peers.len() >= 6, "the server saw {peers:?}");
    assert!(
        peers.iter().all(|p| p == UPLINK6),
        "the internet must see only the uplink's address: {peers:?}"
    );
    // Echo, TCP, UDP from each namespace: translations of NAT66's own.
    assert!(lab.counter(Counter::NatCreated) >= created + 6);
    assert!(lab.counter(Counter::NatReversed) > 0);
    assert!(
        lab.counter(Counter::NatFragTranslated) > 0,
        "the 3000-byte datagrams went in fragments"
    );
    // What `netlab stats --json` shows of it, and `nat list` keeps to
    // IPv4 (this lab sent no IPv4 through the NAT).
    let out = lab.ok(&["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &stats["counters"];
    assert!(c["nat_created"].as_u64().unwrap() >= 6, "{stats:#}");
    assert!(c["nat_frag_translated"].as_u64().unwrap() > 0, "{stats:#}");
    assert_eq!(c["nat_drop_malformed"], 0, "{stats:#}");
    assert_eq!(c["nat_drop_ext_headers"], 0, "{stats:#}");
    // The translations are in the pinned NAT66 tables.
    let dir = lab.pin_dir();
    let orig = netlab::nat::sweep6(&dir, &netlab::plan::NatTimeouts::default(), 0).unwrap();
    assert!(orig.flows >= 6, "nat6 flows: {orig:?}");
    assert_eq!(orig.expired, 0, "nothing is old at time 0");
    // `nat flush` clears them; a new ping makes a new one, which the
    // sweep expires once it is older than the ICMP timeout.
    let out = lab.ok(&["nat", "flush", "--json"]);
    let removed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(removed["removed6"].as_u64().unwrap() >= 6, "{removed:#}");
    let timeouts = netlab::plan::NatTimeouts::default();
    assert_eq!(netlab::nat::sweep6(&dir, &timeouts, 0).unwrap().flows, 0);
    let out = ping6(&lab.ns(1), INTERNET6, &[]);
    assert!(
        out.status.success(),
        "ping -6 after the flush: {}",
        describe(&out)
    );
    let later = netlab::nat::monotonic_now_ns() + (timeouts.icmp + 1) * 1_000_000_000;
    let swept = netlab::nat::sweep6(&dir, &timeouts, later).unwrap();
    assert_eq!((swept.flows, swept.expired), (1, 1), "{swept:?}");
    assert_eq!(
        netlab::nat::sweep6(&dir, &timeouts, later).unwrap().flows,
        0
    );
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

/// A namespace beyond the internet namespace, reached over a link of MTU
/// 1280 (the internet namespace routes): a router beyond the uplink that
/// sends Packet Too Big. Deleted on drop (its veth pair with it).
struct FarSide {
    ns: String,
}

const FAR6: &str = "2001:db8:fa::2";

impl FarSide {
    fn new(lab: &TestLab) -> Self {
        let far = Self {
            ns: format!("{}-far", lab.name),
        };
        let _ = Command::new("ip").args(["netns", "del", &far.ns]).output();
        let inet = lab.inet_ns();
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &far.ns],
            vec![
                "ip", "link", "add", "pmtu-a", "netns", &inet, "type", "veth", "peer", "name",
                "pmtu-b", "netns", &far.ns,
            ],
            vec![
                "ip", "-n", &inet, "link", "set", "pmtu-a", "mtu", "1280", "up",
            ],
            vec!["ip", "-n", &far.ns, "link", "set", "pmtu-b", "up"],
            vec!["ip", "-n", &far.ns, "link", "set", "lo", "up"],
            vec![
                "ip",
                "-n",
                &inet,
                "addr",
                "add",
                "2001:db8:fa::1/64",
                "dev",
                "pmtu-a",
                "nodad",
            ],
            vec![
                "ip",
                "-n",
                &far.ns,
                "addr",
                "add",
                "2001:db8:fa::2/64",
                "dev",
                "pmtu-b",
                "nodad",
            ],
            // The far side sends at most 1280 but advertises an MSS for
            // 1500: the namespace's segments are too big for the 1280
            // link, and only a translated Packet Too Big gets them through.
            vec![
                "ip",
                "-n",
                &far.ns,
                "-6",
                "route",
                "add",
                "default",
                "via",
                "2001:db8:fa::1",
                "mtu",
                "1280",
                "advmss",
                "1440",
            ],
            vec![
                "ip",
                "netns",
                "exec",
                &inet,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.forwarding=1",
            ],
        ];
        for step in steps {
            let out = netlab_tests::run(Command::new(step[0]).args(&step[1..]));
            assert!(out.status.success(), "{step:?}: {}", describe(&out));
        }
        far
    }
}

impl Drop for FarSide {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

#[test]
fn packet_too_big_from_beyond_the_uplink_reaches_the_namespace() {
    let lab = lab(2, 1);
    lab.ok(&["up"]);
    let far = FarSide::new(&lab);
    let server = EchoServer6::start(&far.ns);
    let ns = lab.ns(1);
    let errors = lab.counter(Counter::NatIcmpError);
    let route = || in_netns(&ns, &["ip", "-6", "route", "get", FAR6]);
    assert!(
        !String::from_utf8_lossy(&route().stdout).contains("mtu"),
        "no path MTU known yet: {}",
        describe(&route())
    );
    // A TCP upload whose full-size segments are too big for the 1280
    // link: the router there answers Packet Too Big, which must reach the
    // namespace translated, or the transfer stalls.
    echo(&ns, "tcp", FAR6, 300_000);
    let out = route();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("mtu 1280"),
        "the namespace learnt the path MTU: {}",
        describe(&out)
    );
    assert!(lab.counter(Counter::NatIcmpError) > errors);
    // And a ping too large for the path now fails at once, locally.
    let out = ping6(&ns, FAR6, &["-s", "1400", "-M", "do"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        server.peers().iter().all(|p| p == UPLINK6),
        "{:?}",
        server.peers()
    );
    drop(server);
    drop(far);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}
