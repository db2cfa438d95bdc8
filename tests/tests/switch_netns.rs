//! The eBPF switch in real namespaces: a tiny lab built with `ip` (a
//! host-side namespace with the gateway veth pair, endpoint namespaces with
//! veth pairs, and no Linux bridge anywhere), the datapath installed with
//! `datapath::ebpf::install` from a thread inside the host namespace, and
//! real pings.
//!
//! Every test has its own namespaces (`tsw<pid>-<tag>-*`), lab name and
//! subnet (10.88.<k>.0/24), and a guard that deletes them and the pins even
//! when the test fails. Nothing here touches the root namespace's network.

use std::{
    fs::File,
    net::Ipv4Addr,
    path::Path,
    process::{Command, Output},
};

use aya::programs::{
    SchedClassifier, TcAttachType,
    links::{FdLink, PinnedLink},
};
use netlab::{
    bpf::{Error, fs},
    datapath::ebpf,
    plan::{PortPlan, PortRole, SwitchPlan},
};
use netlab_common::counters::Counter;

/// Runs `f` on a new thread inside the named namespace (setns changes only
/// the calling thread's namespace; the thread ends with `f`).
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let handle = File::open(Path::new("/run/netns").join(ns)).expect("netns handle");
                nix::sched::setns(handle, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = run("ip", args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let out = run("ip", &all);
    assert!(out.status.success(), "ip {}", all.join(" "));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Array(vec![]))
}

/// Whether `from` (a namespace) gets an echo reply from `to`. A few tries:
/// the first packet may wait for ARP. Only ever aimed at the test's own
/// namespaces.
fn ping(from: &str, to: Ipv4Addr) -> bool {
    (0..3).any(|_| {
        run(
            "ip",
            &[
                "netns",
                "exec",
                from,
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                &to.to_string(),
            ],
        )
        .status
        .success()
    })
}

fn mac_str(mac: [u8; 6]) -> String {
    netlab::names::format_mac(&mac)
}

/// One endpoint namespace.
#[derive(Clone)]
struct Endpoint {
    ns: String,
    /// Host end of its veth pair, in the host namespace.
    port_dev: String,
    ip: Ipv4Addr,
    mac: [u8; 6],
}

/// A lab built by hand: `<id>-host` with `vbridge`/`vbridge-p`, and
/// endpoint namespaces `<id>-e<N>`. Dropping it uninstalls the datapath and
/// deletes every namespace (which deletes the veths).
struct TestLab {
    lab: String,
    host: String,
    subnet: u8,
    endpoints: Vec<Endpoint>,
    gateway_mac: [u8; 6],
    namespaces: Vec<String>,
}

const GATEWAY_HOST: u8 = 5;

impl TestLab {
    fn new(tag: &str, subnet: u8, endpoints: u8) -> Self {
        let id = format!("tsw{}-{tag}", std::process::id());
        let mut lab = TestLab {
            lab: id.clone(),
            host: format!("{id}-host"),
            subnet,
            endpoints: Vec::new(),
            gateway_mac: [0x02, 0x88, subnet, 0, 0, GATEWAY_HOST],
            namespaces: Vec::new(),
        };
        let _ = ebpf::uninstall(&lab.lab);
        lab.add_namespace(&lab.host.clone());
        let host = lab.host.clone();
        ip(&["-n", &host, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &host,
            "link",
            "add",
            "vbridge",
            "type",
            "veth",
            "peer",
            "name",
            "vbridge-p",
        ]);
        ip(&[
            "-n",
            &host,
            "link",
            "set",
            "vbridge",
            "address",
            &mac_str(lab.gateway_mac),
        ]);
        let gw = format!("{}/24", lab.gateway_ip());
        ip(&["-n", &host, "addr", "add", &gw, "dev", "vbridge"]);
        ip(&["-n", &host, "link", "set", "vbridge", "up"]);
        ip(&["-n", &host, "link", "set", "vbridge-p", "up"]);
        for n in 1..=endpoints {
            lab.add_endpoint(n);
        }
        lab
    }

    fn add_namespace(&mut self, ns: &str) {
        let _ = run("ip", &["netns", "del", ns]);
        ip(&["netns", "add", ns]);
        self.namespaces.push(ns.to_owned());
    }

    fn gateway_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 88, self.subnet, GATEWAY_HOST)
    }

    /// Creates endpoint namespace N (address .N, default via the gateway).
    fn add_endpoint(&mut self, n: u8) -> Endpoint {
        let ep = Endpoint {
            ns: format!("{}-e{n}", self.lab),
            port_dev: format!("veth{n}-br"),
            ip: Ipv4Addr::new(10, 88, self.subnet, n),
            mac: [0x02, 0x88, self.subnet, 0, 0, n],
        };
        self.add_namespace(&ep.ns);
        let host = self.host.clone();
        ip(&[
            "-n",
            &host,
            "link",
            "add",
            &ep.port_dev,
            "type",
            "veth",
            "peer",
            "name",
            "veth0",
            "netns",
            &ep.ns,
        ]);
        ip(&[
            "-n",
            &ep.ns,
            "link",
            "set",
            "veth0",
            "address",
            &mac_str(ep.mac),
        ]);
        ip(&[
            "-n",
            &ep.ns,
            "addr",
            "add",
            &format!("{}/24", ep.ip),
            "dev",
            "veth0",
        ]);
        // These ports have no IPv6 address (`ipv6: None`), so the switch
        // drops any IPv6 from them as spoofed: give the namespace none, as
        // netlab does for a lab with `subnet6 = "none"`, so its router
        // solicitations and MLD reports do not show in `drop_spoofed`.
        ip(&["-n", &ep.ns, "link", "set", "veth0", "addrgenmode", "none"]);
        ip(&["-n", &ep.ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ep.ns, "link", "set", "veth0", "up"]);
        let gw = self.gateway_ip().to_string();
        ip(&["-n", &ep.ns, "route", "add", "default", "via", &gw]);
        ip(&["-n", &host, "link", "set", &ep.port_dev, "up"]);
        self.endpoints.push(ep.clone());
        ep
    }

    fn port(ep: &Endpoint) -> PortPlan {
        PortPlan {
            port_dev: ep.port_dev.clone(),
            role: PortRole::Endpoint,
            mac: ep.mac,
            ipv4: ep.ip,
            ipv6: None,
            namespace: Some(ep.ns.clone()),
            deliver_dev: None,
            peer_dev: None,
        }
    }

    fn plan(&self) -> SwitchPlan {
        let mut ports: Vec<PortPlan> = self.endpoints.iter().map(Self::port).collect();
        ports.push(PortPlan {
            port_dev: "vbridge-p".into(),
            role: PortRole::Gateway,
            mac: self.gateway_mac,
            ipv4: self.gateway_ip(),
            ipv6: None,
            namespace: None,
            deliver_dev: Some("vbridge".into()),
            peer_dev: None,
        });
        SwitchPlan {
            lab: self.lab.clone(),
            host_netns: Some(self.host.clone()),
            ports,
            nat: None,
            allow_host_access: false,
            uplink_xdp: true,
            switch_xdp: false,
            published: Vec::new(),
        }
    }

    fn install(&self) -> Result<(), Error> {
        let plan = self.plan();
        in_netns(&self.host, || ebpf::install(&plan))
    }

    fn counter(&self, counter: Counter) -> u64 {
        ebpf::counter(&self.lab, counter).expect("counter")
    }

    fn pin_dir(&self) -> std::path::PathBuf {
        fs::lab_dir(&self.lab)
    }

    /// The neighbour entry `ns` has for `ip`: its MAC, if resolved.
    fn neighbour(ns: &str, ip: Ipv4Addr) -> Option<String> {
        let json = ip_json(&["-n", ns, "neigh", "show", &ip.to_string()]);
        json.as_array()?
            .iter()
            .find_map(|n| n["lladdr"].as_str().map(str::to_owned))
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if let Err(e) = ebpf::uninstall(&self.lab) {
            eprintln!("cleanup: {e}");
        }
        for ns in self.namespaces.iter().rev() {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Program ids attached to the tcx ingress of `dev` in the host namespace.
fn tcx_programs(lab: &TestLab, dev: &str) -> Vec<u32> {
    in_netns(&lab.host, || {
        SchedClassifier::query_tcx(dev, TcAttachType::Ingress)
            .map(|(_, progs)| progs.iter().map(|p| p.id()).collect())
            .unwrap_or_default()
    })
}

/// Whether `dev` has no tcx ingress program left, waiting up to 3 s: when
/// the last pin of a link goes, the kernel releases the link (and detaches
/// the program) a moment later, from its deferred work, not within the
/// unlink call.
fn tcx_detached(lab: &TestLab, dev: &str) -> bool {
    netlab_tests::traffic::wait_until(std::time::Duration::from_secs(3), || {
        tcx_programs(lab, dev).is_empty()
    })
}

/// (link id, program id) of a pinned link.
fn pinned_link(path: &Path) -> (u32, u32) {
    let link: FdLink = PinnedLink::from_pin(path).expect("link pin").into();
    let info = link.info().expect("link info");
    (info.id(), info.program_id())
}

#[test]
fn namespaces_talk_through_the_ebpf_switch_without_a_bridge() {
    let lab = TestLab::new("talk", 1, 3);
    lab.install().expect("install");
    let [e1, e2, e3] = [&lab.endpoints[0], &lab.endpoints[1], &lab.endpoints[2]];
    let gw = lab.gateway_ip();

    // install() returned: its Ebpf handle and every fd are gone, only the
    // pins keep the program, maps and links alive.
    assert!(ping(&e1.ns, e2.ip), "ns1 -> ns2");
    assert!(ping(&e2.ns, e3.ip), "ns2 -> ns3");
    assert!(ping(&e3.ns, gw), "ns3 -> gateway");
    assert!(ping(&lab.host, e1.ip), "host -> ns1");

    let bridges = ip_json(&["-n", &lab.host, "link", "show", "type", "bridge"]);
    assert_eq!(
        bridges.as_array().map(Vec::len),
        Some(0),
        "no Linux bridge: {bridges}"
    );

    // The ARP caches hold the real MACs, answered by the program.
    assert_eq!(TestLab::neighbour(&e1.ns, e2.ip), Some(mac_str(e2.mac)));
    assert_eq!(
        TestLab::neighbour(&e3.ns, gw),
        Some(mac_str(lab.gateway_mac))
    );
    assert_eq!(TestLab::neighbour(&lab.host, e1.ip), Some(mac_str(e1.mac)));
    assert!(lab.counter(Counter::ArpAnswered) >= 4);
    assert!(lab.counter(Counter::RedirectPeer) > 0);
    assert!(lab.counter(Counter::ToHost) > 0);
    assert_eq!(lab.counter(Counter::DropSpoofed), 0);

    // A request for an address nobody has is flooded to the other ports.
    let ports = ebpf::ports(&lab.lab).unwrap();
    assert_eq!(ports.len(), 4);
    let e2_port = ports.iter().find(|p| p.mac == e2.mac).unwrap();
    let (flooded, copies, e2_tx) = (
        lab.counter(Counter::Flooded),
        lab.counter(Counter::FloodCopies),
        e2_port.stats.tx_packets,
    );
    assert!(!ping(&e1.ns, Ipv4Addr::new(10, 88, lab.subnet, 77)));
    assert!(lab.counter(Counter::Flooded) > flooded);
    assert!(
        lab.counter(Counter::FloodCopies) >= copies + 3,
        "ns2, ns3 and the host"
    );
    let e2_after = ebpf::ports(&lab.lab).unwrap();
    let e2_after = e2_after.iter().find(|p| p.mac == e2.mac).unwrap();
    assert!(e2_after.stats.tx_packets > e2_tx);

    // Every port has a pinned link running the pinned program.
    let dir = lab.pin_dir();
    let prog_id = SchedClassifier::from_pin(fs::prog_pin(&dir))
        .unwrap()
        .info()
        .unwrap()
        .id();
    for dev in ["veth1-br", "veth2-br", "veth3-br", "vbridge-p"] {
        let (_, linked) = pinned_link(&fs::link_pin(&dir, dev));
        assert_eq!(linked, prog_id, "{dev}");
        assert_eq!(tcx_programs(&lab, dev), vec![prog_id], "{dev}");
    }

    // install again: same links and maps, the new program swapped in.
    let (link_before, _) = pinned_link(&fs::link_pin(&dir, "veth1-br"));
    let answered = lab.counter(Counter::ArpAnswered);
    lab.install().expect("re-install");
    let (link_after, prog_after) = pinned_link(&fs::link_pin(&dir, "veth1-br"));
    assert_eq!(link_after, link_before, "the link is kept");
    assert_ne!(prog_after, prog_id, "the program inside it is replaced");
    assert_eq!(
        tcx_programs(&lab, "veth1-br"),
        vec![prog_after],
        "exactly one program"
    );
    assert!(
        lab.counter(Counter::ArpAnswered) >= answered,
        "counters survive"
    );
    assert!(ping(&e1.ns, e3.ip), "still forwarding after re-install");

    // uninstall removes every pin and the switch with it.
    ebpf::uninstall(&lab.lab).expect("uninstall");
    assert!(!dir.exists(), "pin directory removed");
    assert!(tcx_detached(&lab, "veth1-br"), "link detached");
    assert!(!ebpf::is_installed(&lab.lab));
    run("ip", &["-n", &e1.ns, "neigh", "flush", "all"]);
    assert!(
        !ping(&e1.ns, e2.ip),
        "nothing switches without the datapath"
    );
    ebpf::uninstall(&lab.lab).expect("uninstall twice is fine");
}

#[test]
fn a_namespace_spoofing_another_reaches_nobody() {
    let lab = TestLab::new("spoof", 2, 3);
    lab.install().expect("install");
    let [e1, e2, e3] = [&lab.endpoints[0], &lab.endpoints[1], &lab.endpoints[2]];
    let gw = lab.gateway_ip();
    assert!(ping(&e3.ns, gw));
    assert_eq!(lab.counter(Counter::DropSpoofed), 0);

    // ns3 takes ns2's address.
    ip(&["-n", &e3.ns, "addr", "flush", "dev", "veth0"]);
    ip(&[
        "-n",
        &e3.ns,
        "addr",
        "add",
        &format!("{}/24", e2.ip),
        "dev",
        "veth0",
    ]);
    ip(&[
        "-n",
        &e3.ns,
        "route",
        "add",
        "default",
        "via",
        &gw.to_string(),
    ]);
    assert!(!ping(&e3.ns, gw), "spoofed IP reaches the gateway");
    assert!(!ping(&e3.ns, e1.ip), "spoofed IP reaches ns1");
    let after_ip = lab.counter(Counter::DropSpoofed);
    assert!(after_ip > 0);

    // The real owner is unaffected; the host's cache was not poisoned.
    assert!(ping(&e2.ns, gw));
    assert!(ping(&lab.host, e2.ip));
    assert_eq!(TestLab::neighbour(&lab.host, e2.ip), Some(mac_str(e2.mac)));

    // ns3 back on its own address but with ns1's MAC.
    ip(&["-n", &e3.ns, "addr", "flush", "dev", "veth0"]);
    ip(&[
        "-n",
        &e3.ns,
        "addr",
        "add",
        &format!("{}/24", e3.ip),
        "dev",
        "veth0",
    ]);
    ip(&["-n", &e3.ns, "link", "set", "veth0", "down"]);
    ip(&[
        "-n",
        &e3.ns,
        "link",
        "set",
        "veth0",
        "address",
        &mac_str(e1.mac),
    ]);
    ip(&["-n", &e3.ns, "link", "set", "veth0", "up"]);
    ip(&[
        "-n",
        &e3.ns,
        "route",
        "replace",
        "default",
        "via",
        &gw.to_string(),
    ]);
    assert!(!ping(&e3.ns, gw), "spoofed MAC reaches the gateway");
    assert!(!ping(&e3.ns, e2.ip), "spoofed MAC reaches ns2");
    assert!(lab.counter(Counter::DropSpoofed) > after_ip);
    assert!(ping(&e1.ns, e2.ip), "the MAC's owner still works");
}

/// Sends one raw frame out of `dev` from inside namespace `ns`.
fn send_raw(ns: &str, dev: &str, frame: &[u8]) {
    in_netns(ns, || {
        let ifindex = nix::net::if_::if_nametoindex(dev).expect("ifindex");
        // SAFETY: plain socket calls with a correctly sized sockaddr_ll.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "packet socket");
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = ifindex as i32;
            addr.sll_halen = 6;
            let sent = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            );
            libc::close(fd);
            assert_eq!(sent, frame.len() as isize, "sendto");
        }
    });
}

#[test]
fn truncated_ipv4_on_a_real_port_is_dropped() {
    use netlab_tests::packets;
    let lab = TestLab::new("trunc", 3, 2);
    lab.install().expect("install");
    let [e1, e2] = [&lab.endpoints[0], &lab.endpoints[1]];

    // A frame that claims IPv4 but carries 10 bytes of it.
    let full = packets::ipv4_udp(e2.mac, e1.mac, e1.ip.octets(), e2.ip.octets(), b"x");
    let before = lab.counter(Counter::DropTruncated);
    send_raw(&e1.ns, "veth0", &full[..24]);
    assert_eq!(lab.counter(Counter::DropTruncated), before + 1);

    // The same frame whole goes through (ns2 may answer with an ICMP port
    // unreachable, which is switched too: at least one redirect).
    let redirected = lab.counter(Counter::RedirectPeer);
    send_raw(&e1.ns, "veth0", &full);
    assert!(lab.counter(Counter::RedirectPeer) > redirected);
    assert_eq!(lab.counter(Counter::DropTruncated), before + 1);
    assert!(ping(&e1.ns, e2.ip));
}

#[test]
fn ports_join_and_leave_a_running_switch() {
    let mut lab = TestLab::new("ports", 4, 2);
    lab.install().expect("install");
    let (e1, e2) = (lab.endpoints[0].clone(), lab.endpoints[1].clone());
    assert!(ping(&e1.ns, e2.ip));

    // A third namespace joins.
    let e3 = lab.add_endpoint(3);
    assert!(!ping(&e3.ns, e1.ip), "not switched before add_port");
    let plan = TestLab::port(&e3);
    in_netns(&lab.host, || ebpf::add_port(&lab.lab, &plan)).expect("add_port");
    assert!(ping(&e3.ns, e1.ip), "ns3 -> ns1 after add_port");
    assert!(ping(&e3.ns, lab.gateway_ip()));
    in_netns(&lab.host, || ebpf::add_port(&lab.lab, &plan)).expect("add_port twice");
    assert_eq!(ebpf::ports(&lab.lab).unwrap().len(), 4);

    // A port claiming ns1's address is refused and changes nothing.
    let mut clash = TestLab::port(&e3);
    clash.ipv4 = e1.ip;
    let err = in_netns(&lab.host, || ebpf::add_port(&lab.lab, &clash)).unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(ping(&e1.ns, e3.ip));

    // ns2 leaves: its link and entries go, the others keep talking.
    let dir = lab.pin_dir();
    let p2 = TestLab::port(&e2);
    in_netns(&lab.host, || ebpf::remove_port(&lab.lab, &p2)).expect("remove_port");
    assert!(!fs::link_pin(&dir, &e2.port_dev).exists());
    assert!(tcx_detached(&lab, &e2.port_dev), "ns2's link detached");
    assert_eq!(ebpf::ports(&lab.lab).unwrap().len(), 3);
    assert!(
        ebpf::fdb(&lab.lab)
            .unwrap()
            .iter()
            .all(|(mac, _)| *mac != e2.mac)
    );
    assert!(ping(&e1.ns, e3.ip), "ns1 <-> ns3 undisturbed");
    assert!(!ping(&e1.ns, e2.ip), "ns2 is gone from the switch");
    in_netns(&lab.host, || ebpf::remove_port(&lab.lab, &p2)).expect("removing twice is fine");
}

#[test]
fn bad_plans_are_refused_before_anything_is_created() {
    let lab = TestLab::new("bad", 5, 1);
    let dir = lab.pin_dir();

    // Not from inside the host namespace.
    let err = ebpf::install(&lab.plan()).unwrap_err();
    assert!(matches!(err, Error::WrongNamespace { .. }), "{err}");
    assert!(!dir.exists());

    // A device that does not exist.
    let mut plan = lab.plan();
    plan.ports[0].port_dev = "veth9-br".into();
    let err = in_netns(&lab.host, || ebpf::install(&plan)).unwrap_err();
    assert!(matches!(err, Error::NoDevice { .. }), "{err}");
    assert!(err.to_string().contains("veth9-br"));
    assert!(!dir.exists());

    // Two ports with one address.
    let mut plan = lab.plan();
    plan.ports[1].ipv4 = plan.ports[0].ipv4;
    let err = in_netns(&lab.host, || ebpf::install(&plan)).unwrap_err();
    assert!(matches!(err, Error::InvalidPlan(_)), "{err}");
    assert!(!dir.exists());

    // Operations on a lab that is not installed say so.
    assert!(matches!(
        ebpf::set_trace(&lab.lab, true),
        Err(Error::NotInstalled { .. })
    ));

    // The good plan works, and the trace switch flips at run time.
    lab.install().expect("install");
    assert_eq!(ebpf::config(&lab.lab).unwrap().trace, 0);
    ebpf::set_trace(&lab.lab, true).unwrap();
    assert_eq!(ebpf::config(&lab.lab).unwrap().trace, 1);
    assert!(
        ping(&lab.endpoints[0].ns, lab.gateway_ip()),
        "tracing does not disturb"
    );
    ebpf::set_trace(&lab.lab, false).unwrap();
}
