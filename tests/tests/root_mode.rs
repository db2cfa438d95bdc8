//! Root mode, as a user runs it on their own machine: netlab started inside
//! the machine's namespace (`[host] mode = "root"`, the uplink one of its
//! devices). Each test plays the machine with a namespace of its own
//! (tests/src/stand_in.rs: `r17-simhost<N>`, uplink `eth0` to an upstream
//! namespace `r17-up<N>`), so nothing here touches the real machine.
//!
//! What is checked, on both datapaths where it applies: the check table
//! passes and the namespaces reach the upstream network through the
//! masquerade; `down` leaves the machine exactly as `up` found it (links,
//! addresses, routes, sysctls, firewall, the uplink's tcx chains); other
//! programs on the uplink's tcx hooks and other iptables rules keep
//! working and survive `down`; the daemon follows an address change of
//! the uplink; commands find the lab from another namespace, and `down`
//! cleans up when the machine's namespace is gone; IPv6: without a global
//! address on the uplink `up` and `status` say IPv6 cannot leave, with one
//! the kernel datapath masquerades the lab's IPv6 as it.

use std::time::{Duration, Instant};

use aya::programs::TcAttachType;
use netlab_tests::stand_in::{HOST_ADDRESS, StandIn, UPLINK, UPSTREAM_ADDRESS};
use netlab_tests::tcx_counter::{Hook, Place, TcxCounter};
use netlab_tests::{describe, netlab::netns};

/// Waits for `cond` (polled), failing with `what` after `secs` seconds.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `netlab check --json` on the stand-in machine: every probe ok (or n/a:
/// root mode names no internet server), and the count of ok probes (with
/// two endpoints: 4 over IPv4 and 4 over IPv6, to each other and the
/// gateway).
fn check_passes(m: &StandIn) -> usize {
    let out = m.netlab(&["check", "--json"]);
    assert!(out.status.success(), "check failed: {}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check --json");
    let probes = report["probes"].as_array().expect("probes");
    for p in probes {
        assert!(
            matches!(p["result"].as_str(), Some("ok" | "not_applicable")),
            "probe {p}"
        );
    }
    probes.iter().filter(|p| p["result"] == "ok").count()
}

/// One sysctl of the stand-in machine.
fn sysctl(m: &StandIn, key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    netns::run_in(Some(&m.host), || std::fs::read_to_string(&path))
        .unwrap()
        .unwrap()
        .trim()
        .to_string()
}

/// The walkthrough on the stand-in machine: up, check, traffic to the
/// upstream network, down; the machine as it was before.
fn walkthrough(n: u8, datapath: &str) {
    let m = StandIn::new(n, datapath);
    let before = m.snapshot();
    assert_eq!(sysctl(&m, "net.ipv4.ip_forward"), "0");

    let up = m.ok(&["up"]);
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(text.contains("host side: this network namespace"), "{text}");
    // The machine has no global IPv6 address: the lab's IPv6 stays inside.
    let no_egress = format!("IPv6 egress unavailable: {UPLINK} has no global IPv6 address");
    assert!(text.contains(&no_egress), "{text}");
    let status = m.ok(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(&no_egress),
        "{}",
        describe(&status)
    );
    // Two endpoints: each reaches the other and the gateway, over IPv4
    // and over IPv6.
    assert_eq!(check_passes(&m), 8);
    // The upstream has no route to the lab subnet: the replies come back
    // only because the request left masqueraded as the machine's address.
    assert!(m.ping_upstream(1) && m.ping_upstream(2));
    assert_eq!(sysctl(&m, "net.ipv4.ip_forward"), "1");
    let gateway = m.exec(&m.host, &["ip", "addr", "show", "vbridge"]);
    assert!(
        String::from_utf8_lossy(&gateway.stdout).contains(&format!("10.117.{n}.5/24")),
        "{}",
        describe(&gateway)
    );
    // The state file says where the host side is.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("/run/netlab/{}.json", m.lab)).unwrap())
            .unwrap();
    assert_eq!(state["host"]["name"], m.host.as_str());

    let down = m.ok(&["down"]);
    assert!(String::from_utf8_lossy(&down.stdout).contains("removed"));
    assert_eq!(
        m.snapshot(),
        before,
        "down did not leave the machine as it found it"
    );
    for i in 1..=2 {
        assert!(!netns::exists(&m.endpoint(i)));
    }
    assert!(!std::path::Path::new(&format!("/sys/fs/bpf/netlab/{}", m.lab)).exists());
}

#[test]
fn walkthrough_on_a_machine_ebpf_leaves_it_as_found() {
    walkthrough(1, "ebpf");
}

#[test]
fn walkthrough_on_a_machine_kernel_leaves_it_as_found() {
    walkthrough(2, "kernel");
}

/// Root mode with IPv6 on the kernel datapath: the machine's uplink has a
/// global IPv6 address, so the lab's IPv6 leaves masqueraded as that
/// address (the upstream has no route back to the lab's prefix and sees
/// only the machine); forwarding is switched on for the lab's device and
/// the uplink only, never `conf.all.forwarding`; `down` leaves the
/// machine as it was (ip6tables, per-device sysctls included).
#[test]
fn ipv6_leaves_as_the_uplinks_global_address_kernel() {
    use netlab_tests::stand_in::{HOST_ADDRESS6, UPSTREAM_ADDRESS6};
    use netlab_tests::traffic::{TcpEchoServer, ping_ok, tcp_connect, tcp_echo};
    let m = StandIn::new(10, "kernel").with_ipv6();
    let before = m.snapshot();

    // A subnet6 on the uplink's own IPv6 prefix is refused, naming it,
    // before anything is made.
    let file = std::fs::read_to_string(&m.config_path).unwrap();
    std::fs::write(
        &m.config_path,
        format!("subnet6 = \"2001:db8:5100::/64\"\n{file}"),
    )
    .unwrap();
    let refused = m.netlab(&["up"]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!(
            "overlaps the uplink {UPLINK}'s IPv6 prefix 2001:db8:5100::/64"
        )),
        "{}",
        describe(&refused)
    );
    assert_eq!(m.snapshot(), before, "a refused up changed the machine");
    std::fs::write(&m.config_path, file).unwrap();

    let up = m.ok(&["up"]);
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(!text.contains("IPv6 egress unavailable"), "{text}");
    assert_eq!(check_passes(&m), 8);
    assert_eq!(
        sysctl(&m, &format!("net.ipv6.conf.{UPLINK}.force_forwarding")),
        "1"
    );
    assert_eq!(sysctl(&m, "net.ipv6.conf.vbridge.force_forwarding"), "1");
    assert_eq!(sysctl(&m, "net.ipv6.conf.all.forwarding"), "0");

    let upstream: std::net::Ipv6Addr = UPSTREAM_ADDRESS6.parse().unwrap();
    let server = TcpEchoServer::start(
        &m.upstream,
        std::net::SocketAddrV6::new(upstream, 7611, 0, 0),
    );
    for i in 1..=2 {
        assert!(ping_ok(&m.endpoint(i), upstream), "ns{i}: ping -6 upstream");
        let mut s = tcp_connect(
            &m.endpoint(i),
            std::net::SocketAddrV6::new(upstream, 7611, 0, 0),
            Duration::from_secs(5),
        )
        .expect("TCP over IPv6 to the upstream");
        tcp_echo(&mut s, b"root mode ipv6").expect("echo");
    }
    let peers = server.peers_any();
    assert_eq!(peers.len(), 2, "{peers:?}");
    for p in peers {
        assert_eq!(p.ip().to_string(), HOST_ADDRESS6, "the upstream saw {p}");
    }
    drop(server);

    m.ok(&["down"]);
    assert_eq!(
        m.snapshot(),
        before,
        "down did not leave the machine as it found it"
    );
}

#[test]
fn ebpf_reserves_the_nat_ports_next_to_the_users_own_and_restores_them() {
    let m = StandIn::new(3, "ebpf");
    let key = "net.ipv4.ip_local_reserved_ports";
    netns::run_in(Some(&m.host), || {
        std::fs::write(
            "/proc/sys/net/ipv4/ip_local_reserved_ports",
            "8080,9000-9010\n",
        )
    })
    .unwrap()
    .unwrap();
    netns::run_in(Some(&m.host), || {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1\n")
    })
    .unwrap()
    .unwrap();
    let before = m.snapshot();
    m.ok(&["up"]);
    assert_eq!(sysctl(&m, key), "8080,9000-9010,20000-29999");
    // ip_forward was already on: not changed, so not recorded either.
    let state = std::fs::read_to_string(format!("/run/netlab/{}.json", m.lab)).unwrap();
    assert!(!state.contains("net.ipv4.ip_forward"), "{state}");
    assert!(
        state.contains(r#""old_value": "8080,9000-9010""#),
        "{state}"
    );
    m.ok(&["down"]);
    assert_eq!(sysctl(&m, key), "8080,9000-9010");
    assert_eq!(m.snapshot(), before);
}

#[test]
fn commands_from_another_namespace_work_in_the_labs_and_down_survives_its_loss() {
    let m = StandIn::new(4, "ebpf");
    m.ok(&["up"]);
    // From the test's own namespace: netlab enters the lab's host side by
    // its `ip netns` name and shows its devices, not this namespace's.
    let out = m.netlab_from_outside(&["status"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("network namespace {}", m.host)),
        "{text}"
    );
    assert!(text.contains(HOST_ADDRESS), "{text}");
    let out = m.netlab_from_outside(&["fdb"]);
    assert!(out.status.success(), "{}", describe(&out));
    // attach and detach too: the new endpoint's port is made on the
    // machine, not here.
    let out = m.netlab_from_outside(&["attach", &m.endpoint(3), "10.117.4.3"]);
    assert!(out.status.success(), "{}", describe(&out));
    let port = m.exec(&m.host, &["ip", "link", "show", "veth-3-br"]);
    assert!(port.status.success(), "{}", describe(&port));
    assert!(m.ping_upstream(3));
    let out = m.netlab_from_outside(&["detach", &m.endpoint(3)]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!netns::exists(&m.endpoint(3)));
    assert!(
        !m.exec(&m.host, &["ip", "link", "show", "veth-3-br"])
            .status
            .success()
    );

    // The machine goes away (with its devices); its lab's endpoint
    // namespaces and pins stay until `down`, which must not look for the
    // machine's devices in the namespace it is run from.
    netns::delete(&m.host).unwrap();
    let out = m.netlab_from_outside(&["status"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is gone"),
        "{}",
        describe(&out)
    );
    let out = m.netlab_from_outside(&["down"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!netns::exists(&m.endpoint(1)) && !netns::exists(&m.endpoint(2)));
    assert!(!std::path::Path::new(&format!("/run/netlab/{}.json", m.lab)).exists());
    assert!(!std::path::Path::new(&format!("/sys/fs/bpf/netlab/{}", m.lab)).exists());
}

#[test]
fn foreign_tcx_programs_on_the_uplink_keep_working_and_stay() {
    let m = StandIn::new(5, "ebpf");
    let attach = |hook, place| {
        netns::run_in(Some(&m.host), || TcxCounter::attach(UPLINK, hook, place))
            .unwrap()
            .expect("attach the foreign program")
    };
    // One already there before netlab (first in the chain) ...
    let first = attach(Hook::Ingress, Place::First);
    let before = m.snapshot();
    m.ok(&["up"]);
    // ... and one attached while the lab runs, after netlab's programs.
    let after_in = attach(Hook::Ingress, Place::Last);
    let after_out = attach(Hook::Egress, Place::Last);
    let ingress = m.tcx_chain(TcAttachType::Ingress);
    assert_eq!(ingress.len(), 3, "{ingress:?}");
    assert_eq!((ingress[0], ingress[2]), (first.prog_id, after_in.prog_id));

    // The machine's own traffic (the upstream pings the machine) is not
    // the lab's: netlab hands it on (TCX_NEXT), so the programs after it
    // see it too.
    let counts = || (first.count(), after_in.count(), after_out.count());
    let (a, b, c) = counts();
    let ping = m.exec(
        &m.upstream,
        &["ping", "-c", "3", "-i", "0.2", "-W", "1", HOST_ADDRESS],
    );
    assert!(ping.status.success(), "{}", describe(&ping));
    let (a2, b2, c2) = counts();
    assert!(a2 >= a + 3 && b2 >= b + 3 && c2 >= c + 3, "{:?}", counts());
    // The lab's traffic is translated as before.
    assert_eq!(check_passes(&m), 8);
    assert!(m.ping_upstream(1));

    m.ok(&["down"]);
    // Only netlab's programs left the chain.
    assert_eq!(
        m.tcx_chain(TcAttachType::Ingress),
        vec![first.prog_id, after_in.prog_id]
    );
    assert_eq!(m.tcx_chain(TcAttachType::Egress), vec![after_out.prog_id]);
    let (a, b, _) = counts();
    let ping = m.exec(
        &m.upstream,
        &["ping", "-c", "2", "-i", "0.2", "-W", "1", HOST_ADDRESS],
    );
    assert!(ping.status.success(), "{}", describe(&ping));
    assert!(first.count() >= a + 2 && after_in.count() >= b + 2);
    drop((after_in, after_out));
    assert_eq!(m.snapshot(), before);
}

#[test]
fn foreign_iptables_rules_survive_the_kernel_datapaths_down() {
    let m = StandIn::new(6, "kernel");
    let rules: &[&[&str]] = &[
        &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "10.117.66.0/24",
            "-j",
            "MASQUERADE",
        ],
        &["-A", "FORWARD", "-s", "10.117.67.0/24", "-j", "DROP"],
        &[
            "-A", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT",
        ],
    ];
    for r in rules {
        let out = m.exec(&m.host, &[&["iptables", "-w"], *r].concat());
        assert!(out.status.success(), "{}", describe(&out));
    }
    let save = || {
        let out = m.exec(&m.host, &["iptables-save"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before_rules = save();
    let before = m.snapshot();

    m.ok(&["up"]);
    let during = save();
    let added: Vec<&String> = during
        .iter()
        .filter(|l| !before_rules.contains(l))
        .collect();
    let masquerade = format!("-A POSTROUTING -s {} -j MASQUERADE", m.subnet());
    assert_eq!(added, vec![&masquerade], "exactly the walkthrough's rule");
    assert!(before_rules.iter().all(|l| during.contains(l)));
    assert_eq!(check_passes(&m), 8);
    assert!(m.ping_upstream(2));

    m.ok(&["down"]);
    assert_eq!(save(), before_rules);
    assert_eq!(m.snapshot(), before);
}

#[test]
fn the_daemon_follows_the_uplinks_new_address() {
    let m = StandIn::new(7, "ebpf");
    m.ok(&["up"]);
    m.ok(&["daemon", "--background"]);
    let external = || {
        let out = m.netlab(&["map", "dump", "nat_config", "--json"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for(10, "the daemon's first look at the uplink", || {
        external().contains(HOST_ADDRESS)
    });
    // A flow through the NAT, then the address changes under it (a DHCP
    // renew handing out another address).
    let flow = m.exec(
        &m.endpoint(1),
        &["ping", "-c", "2", "-i", "0.2", "-W", "1", UPSTREAM_ADDRESS],
    );
    assert!(flow.status.success(), "{}", describe(&flow));
    let new = "198.51.100.3";
    let (old_cidr, new_cidr) = (format!("{HOST_ADDRESS}/24"), format!("{new}/24"));
    for args in [
        ["ip", "addr", "del", &old_cidr, "dev", UPLINK],
        ["ip", "addr", "add", &new_cidr, "dev", UPLINK],
        ["ip", "route", "add", "default", "via", UPSTREAM_ADDRESS],
    ] {
        let out = m.exec(&m.host, &args);
        assert!(out.status.success(), "{}", describe(&out));
    }
    wait_for(10, "the daemon to move the NAT to the new address", || {
        let text = external();
        text.contains(new) && !text.contains(HOST_ADDRESS)
    });
    // The replies find the new address: the masquerade uses it.
    assert!(m.ping_upstream(1) && m.ping_upstream(2));
    let log = std::fs::read_to_string(format!("/run/netlab/{}.daemon.log", m.lab)).unwrap();
    assert!(
        log.contains(&format!("{HOST_ADDRESS} -> {new}")),
        "daemon log: {log}"
    );
    m.ok(&["down"]);
}

/// A second lab on the same machine (`r<N+10>`, one endpoint, its own
/// host-side device names and NAT range), removed on drop.
struct SecondLab<'a> {
    m: &'a StandIn,
    name: String,
    config: std::path::PathBuf,
}

impl<'a> SecondLab<'a> {
    fn new(m: &'a StandIn, datapath: &str) -> Self {
        let k = m.n + 10;
        let name = format!("r{k}");
        let config = std::env::temp_dir().join(format!("netlab-test-{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "name = \"{name}\"\ndatapath = \"{datapath}\"\nsubnet = \"10.117.{k}.0/24\"\n\
                 gateway_device = \"vbr{k}\"\ngateway_port = \"vbr{k}-p\"\n\n\
                 [host]\nmode = \"root\"\nuplink = \"{UPLINK}\"\n\n\
                 [nat]\nport_min = 30000\nport_max = 30999\n\n\
                 [[namespaces]]\nname = \"{name}-ns1\"\npeer = \"{name}-1-br\"\n"
            ),
        )
        .unwrap();
        Self { m, name, config }
    }

    fn netlab(&self, args: &[&str]) -> std::process::Output {
        netlab_tests::run(
            std::process::Command::new("ip")
                .args(["netns", "exec", &self.m.host])
                .arg(netlab_tests::netlab_bin())
                .arg("-f")
                .arg(&self.config)
                .args(args)
                .env("NO_COLOR", "1"),
        )
    }

    fn ok(&self, args: &[&str]) {
        let out = self.netlab(args);
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            self.name,
            describe(&out)
        );
    }

    fn works(&self) -> bool {
        let check = self.netlab(&["check"]);
        let ping = self.m.exec(
            &format!("{}-ns1", self.name),
            &["ping", "-c", "1", "-W", "1", UPSTREAM_ADDRESS],
        );
        check.status.success() && ping.status.success()
    }
}

impl Drop for SecondLab<'_> {
    fn drop(&mut self) {
        let _ = netlab_tests::run(
            std::process::Command::new(netlab_tests::netlab_bin())
                .args(["--lab", &self.name, "down"]),
        );
        let _ = netns::delete(&format!("{}-ns1", self.name));
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Two labs on one machine: the first one down must not switch off what
/// the second relies on (forwarding, its reserved ports, the nat table),
/// and the last one down leaves the machine as the first one found it.
fn two_labs(n: u8, datapath: &str) {
    let m = StandIn::new(n, datapath);
    let before = m.snapshot();
    m.ok(&["up"]);
    let second = SecondLab::new(&m, datapath);
    second.ok(&["up"]);
    assert_eq!(check_passes(&m), 8);
    assert!(second.works());

    m.ok(&["down"]);
    assert!(second.works(), "the first lab's down broke the second");
    assert_eq!(sysctl(&m, "net.ipv4.ip_forward"), "1");
    if datapath == "ebpf" {
        // The second lab's NAT range is still reserved (the first one's
        // stays too, until the last lab restores the value it found).
        let reserved = sysctl(&m, "net.ipv4.ip_local_reserved_ports");
        assert!(
            netlab_tests::netlab::publish::host::reserves(
                &reserved,
                netlab_tests::netlab::plan::PortRange {
                    first: 30000,
                    last: 30999
                }
            ),
            "{reserved}"
        );
    }
    second.ok(&["down"]);
    assert_eq!(m.snapshot(), before);
}

#[test]
fn two_ebpf_labs_on_one_machine_keep_each_other_working() {
    two_labs(8, "ebpf");
}

#[test]
fn two_kernel_labs_on_one_machine_keep_each_other_working() {
    two_labs(9, "kernel");
}
