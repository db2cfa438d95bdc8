//! The uplink XDP program in real labs: attached in native mode by default,
//! dropping what can only be dropped before the TC ingress sees it (its
//! counters move, the TC program's do not), surviving a re-install,
//! switched off by the lab file, falling back to TC alone when the device
//! refuses native XDP, and gone with `down`.
//!
//! Labs `tx<k>` on 10.113.<k>.0/24, sandbox mode; every packet stays
//! between namespaces the test's labs created.

use std::net::Ipv4Addr;
use std::time::Duration;

use netlab_common::counters::Counter;
use netlab_tests::netlab::datapath::ebpf;
use netlab_tests::packets::{ETH_P_IP, Ip, PROTO_UDP, ethernet, ipv4, udp};
use netlab_tests::traffic::{send_frames, wait_until};
use netlab_tests::{TestLab, assert_all_ok, describe, in_netns};

const EXTERNAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// Probes of `check` on a 2-namespace lab: 2 × (1 other + gateway + internet).
const PROBES_2: usize = 6;

/// The uplink filter, off by default on the sandbox's veth uplink.
const UPLINK_XDP_ON: &str = "[host]\nuplink_xdp = true";

fn lab(k: u8, extra: &str) -> TestLab {
    TestLab::in_net(&format!("x{k}"), 113, k, 2, extra)
}

fn ping(ns: &str, to: &str) -> bool {
    in_netns(ns, &["ping", "-c", "3", "-i", "0.2", "-W", "1", to])
        .status
        .success()
}

/// What `ip -d link show uplink` in the host namespace says about XDP:
/// "xdp" (native), "xdpgeneric", or None.
fn uplink_xdp_mode(lab: &TestLab) -> Option<String> {
    let out = in_netns(&lab.host_ns(), &["ip", "-d", "link", "show", "uplink"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let flags = text.lines().next().unwrap_or_default().to_string();
    ["xdpgeneric", "xdpoffload", "xdp"]
        .into_iter()
        .find(|m| flags.split_whitespace().any(|w| w == *m))
        .map(str::to_string)
}

/// The (hook, link id) of the uplink XDP program in `status --json`.
fn status_xdp(lab: &TestLab) -> Option<(String, u64)> {
    let out = lab.ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    status["ebpf"]["programs"]
        .as_array()
        .expect("programs")
        .iter()
        .find(|p| p["program"] == "netlab_uplink_xdp")
        .map(|p| {
            (
                p["hook"].as_str().unwrap_or_default().to_string(),
                p["link_id"].as_u64().unwrap_or_default(),
            )
        })
}

/// Gives the internet namespace a route to the lab (the sandbox has none).
fn route_to_lab(lab: &TestLab) {
    let route = in_netns(
        &lab.inet_ns(),
        &["ip", "route", "add", &lab.subnet(), "via", "203.0.113.1"],
    );
    assert!(route.status.success(), "{}", describe(&route));
}

/// A running `netlab monitor --json`, killed (by its PID) on drop.
struct Monitor {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Monitor {
    /// Starts it and waits until its event gate is open.
    fn start(lab: &TestLab) -> Self {
        use std::io::BufRead;
        let mut child = lab
            .command(&["monitor", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start netlab monitor");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let open = || {
            ebpf::config(&lab.name)
                .map(|c| c.trace & netlab_common::switch::TRACE_EVENTS != 0)
                .unwrap_or(false)
        };
        assert!(
            wait_until(Duration::from_secs(20), open),
            "the monitor never opened its gate"
        );
        Monitor { child, lines }
    }

    /// The first event `want` accepts, within `timeout`.
    fn wait_for(
        &self,
        timeout: Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) if want(&v) => return v,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no such event within {timeout:?}");
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn counter(lab: &TestLab, c: Counter) -> u64 {
    ebpf::counter(&lab.name, c).unwrap()
}

/// A UDP frame from the internet side to the uplink (raw, so it can carry
/// any source).
fn inbound_udp(lab: &TestLab, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let uplink_mac = mac_of(&lab.host_ns(), "uplink");
    let inet_mac = mac_of(&lab.inet_ns(), "inet0");
    let l4 = udp(src, dst, 5353, 7, b"from outside", true);
    ethernet(
        uplink_mac,
        inet_mac,
        ETH_P_IP,
        &ipv4(&Ip::new(src, dst, PROTO_UDP), &l4),
    )
}

fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
    let out = in_netns(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("MAC byte"))
        .collect();
    bytes.try_into().expect("6 bytes")
}

/// The default eBPF lab: XDP native on the uplink; unsolicited pings, a
/// lab source and a truncated header from the internet are dropped at XDP
/// (its counters move, the TC ingress's do not); the lab's own traffic
/// still crosses; `up` again re-adopts the same link; `down` leaves
/// nothing.
#[test]
fn uplink_xdp_drops_unsolicited_traffic_before_tc() {
    let lab = lab(1, UPLINK_XDP_ON);
    lab.ok(&["up", "--datapath", "ebpf"]);
    assert_eq!(uplink_xdp_mode(&lab).as_deref(), Some("xdp"));
    let (hook, link_id) = status_xdp(&lab).expect("status lists the uplink XDP program");
    assert_eq!(hook, "xdp native");
    let (ok, report) = lab.check();
    assert_all_ok(&report, PROBES_2);
    assert!(ok);

    route_to_lab(&lab);
    let tc_before = [
        Counter::NatDropUnsolicited,
        Counter::NatDropLabSource,
        Counter::NatDropMalformed,
    ]
    .map(|c| counter(&lab, c));
    let xdp_before = counter(&lab, Counter::XdpDropUnsolicited);
    let monitor = Monitor::start(&lab);
    assert!(
        !ping(&lab.inet_ns(), &lab.address(1)),
        "the internet reached a lab namespace unsolicited"
    );
    // The drop is in the event stream too, named after the XDP program.
    let event = monitor.wait_for(Duration::from_secs(20), |v| {
        v["reason"] == "xdp_drop_unsolicited"
    });
    assert_eq!(event["program"], "uplink_xdp", "{event}");
    assert_eq!(event["dst"], lab.address(1), "{event}");
    drop(monitor);
    let xdp_after = counter(&lab, Counter::XdpDropUnsolicited);
    assert!(
        xdp_after >= xdp_before + 3,
        "XDP unsolicited drops {xdp_before} -> {xdp_after}"
    );

    let lab_source = inbound_udp(&lab, lab.ip(1), EXTERNAL);
    let mut truncated = inbound_udp(&lab, REMOTE, EXTERNAL);
    truncated.truncate(14 + 20 + 4);
    let before = [Counter::XdpDropLabSource, Counter::XdpDropMalformed].map(|c| counter(&lab, c));
    send_frames(&lab.inet_ns(), "inet0", &[lab_source, truncated]);
    assert!(
        wait_until(Duration::from_secs(5), || {
            [Counter::XdpDropLabSource, Counter::XdpDropMalformed]
                .map(|c| counter(&lab, c))
                .iter()
                .zip(&before)
                .all(|(a, b)| *a == b + 1)
        }),
        "XDP lab-source / malformed drops did not move by one each"
    );
    let tc_after = [
        Counter::NatDropUnsolicited,
        Counter::NatDropLabSource,
        Counter::NatDropMalformed,
    ]
    .map(|c| counter(&lab, c));
    assert_eq!(tc_before, tc_after, "the TC ingress saw what XDP dropped");

    // Replies pass XDP and are translated by TC.
    let passed = counter(&lab, Counter::XdpPass);
    assert!(ping(&lab.ns(1), "203.0.113.2"), "the lab's own ping");
    assert!(counter(&lab, Counter::XdpPass) >= passed + 3);
    assert!(counter(&lab, Counter::NatReversed) >= 3);

    // A second `up` (the control plane restarting) keeps the pinned link.
    lab.ok(&["up"]);
    assert_eq!(status_xdp(&lab).map(|s| s.1), Some(link_id));
    assert_eq!(uplink_xdp_mode(&lab).as_deref(), Some("xdp"));

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
    assert!(!lab.pin_dir().exists());
}

/// A sandbox lab by default (`[host] uplink_xdp` false on a veth uplink):
/// nothing on the uplink's XDP hook, and the TC ingress drops the same
/// traffic on its own.
#[test]
fn uplink_xdp_off_leaves_the_tc_ingress_to_drop() {
    let lab = lab(2, "");
    lab.ok(&["up", "--datapath", "ebpf"]);
    assert_eq!(uplink_xdp_mode(&lab), None);
    assert_eq!(status_xdp(&lab), None);
    route_to_lab(&lab);
    let before = counter(&lab, Counter::NatDropUnsolicited);
    assert!(!ping(&lab.inet_ns(), &lab.address(1)));
    assert!(counter(&lab, Counter::NatDropUnsolicited) >= before + 3);
    assert_eq!(counter(&lab, Counter::XdpDropUnsolicited), 0);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

/// A device that refuses native XDP (here a veth whose peer's MTU, 9000,
/// is above veth's XDP limit): `up` says so in one line, attaches nothing
/// to XDP, and the lab works with the TC ingress filtering alone. The
/// install is triggered by the repair of a removed port link on a running
/// lab, after the XDP link was removed and the peer's MTU raised (the
/// kernel refuses that MTU while XDP is attached).
#[test]
fn uplink_xdp_falls_back_to_tc_when_the_device_refuses() {
    let lab = lab(3, UPLINK_XDP_ON);
    lab.ok(&["up", "--datapath", "ebpf"]);
    assert_eq!(uplink_xdp_mode(&lab).as_deref(), Some("xdp"));
    std::fs::remove_file(lab.pin_dir().join("link_uplink_xdp")).expect("unpin the XDP link");
    assert!(
        wait_until(Duration::from_secs(10), || uplink_xdp_mode(&lab).is_none()),
        "XDP still attached after its pin was removed"
    );
    let mtu = in_netns(
        &lab.inet_ns(),
        &["ip", "link", "set", "dev", "inet0", "mtu", "9000"],
    );
    assert!(mtu.status.success(), "{}", describe(&mtu));
    std::fs::remove_file(lab.pin_dir().join("link_port_veth-1-br")).expect("unpin a port link");

    let out = lab.ok(&["up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no XDP on the uplink"))
        .collect();
    assert_eq!(notices.len(), 1, "one notice expected: {stderr}");
    assert!(notices[0].contains("MTU"), "{}", notices[0]);
    assert_eq!(uplink_xdp_mode(&lab), None, "half attached");
    assert_eq!(status_xdp(&lab), None);
    assert!(!lab.pin_dir().join("link_uplink_xdp").exists());

    let (ok, report) = lab.check();
    assert_all_ok(&report, PROBES_2);
    assert!(ok);
    route_to_lab(&lab);
    let before = counter(&lab, Counter::NatDropUnsolicited);
    assert!(!ping(&lab.inet_ns(), &lab.address(1)));
    assert!(counter(&lab, Counter::NatDropUnsolicited) >= before + 3);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

/// Probes of `check` on a 3-namespace lab: 3 × (2 others + gateway + internet).
const PROBES_3: usize = 12;

/// GRO (and with it veth NAPI) on `dev` in `ns`, as ethtool reports it.
fn gro_on(ns: &str, dev: &str) -> bool {
    let out = in_netns(ns, &["ethtool", "-k", dev]);
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).contains("generic-receive-offload: on")
}

/// `switch = "xdp"`: the XDP switch on every port in native mode (the TC
/// port program behind it), GRO on where its redirects arrive, the whole
/// check table passing, namespace-to-namespace traffic switched in XDP
/// (the TC port program sees exactly what XDP passed it), a spoofed source
/// dropped in XDP; `down` leaves nothing.
#[test]
fn xdp_switch_passes_the_check_table() {
    let lab = TestLab::in_net(
        "x4",
        113,
        4,
        3,
        &format!("switch = \"xdp\"\n{UPLINK_XDP_ON}"),
    );
    lab.ok(&["up", "--datapath", "ebpf"]);
    let out = lab.ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let mut xdp_ports: Vec<String> = status["ebpf"]["programs"]
        .as_array()
        .expect("programs")
        .iter()
        .filter(|p| p["program"] == "netlab_xdp_port" && p["hook"] == "xdp native")
        .map(|p| p["device"].as_str().unwrap_or_default().to_string())
        .collect();
    xdp_ports.sort();
    assert_eq!(
        xdp_ports,
        ["vbridge-p", "veth-1-br", "veth-2-br", "veth-3-br"],
        "XDP switch ports"
    );
    for n in 1..=3 {
        assert!(
            gro_on(&lab.ns(n), &format!("veth-{n}")),
            "GRO off on veth-{n}"
        );
    }
    assert!(gro_on(&lab.host_ns(), "vbridge"), "GRO off on vbridge");

    let (ok, report) = lab.check();
    assert_all_ok(&report, PROBES_3);
    assert!(ok);

    let snapshot = || {
        [
            Counter::XdpPortRedirect,
            Counter::PortRx,
            Counter::XdpPortToTc,
        ]
        .map(|c| counter(&lab, c))
    };
    let before = snapshot();
    assert!(ping(&lab.ns(1), &lab.address(2)));
    assert!(
        wait_until(Duration::from_secs(5), || {
            let now = snapshot();
            now[1] - before[1] == now[2] - before[2]
        }),
        "the TC port program saw frames the XDP switch did not pass it"
    );
    let after = snapshot();
    assert!(
        after[0] >= before[0] + 6,
        "XDP redirects {} -> {}",
        before[0],
        after[0]
    );

    // ns1 claiming ns2's MAC: dropped by the XDP switch.
    let spoofed_before = counter(&lab, Counter::DropSpoofed);
    let ns2_mac = lab.mac(2);
    let frame = ethernet(
        lab.mac(3),
        ns2_mac,
        ETH_P_IP,
        &ipv4(
            &Ip::new(lab.ip(2), lab.ip(3), PROTO_UDP),
            &udp(lab.ip(2), lab.ip(3), 1000, 7, b"spoof", true),
        ),
    );
    send_frames(&lab.ns(1), "veth-1", &[frame]);
    assert!(
        wait_until(Duration::from_secs(5), || counter(
            &lab,
            Counter::DropSpoofed
        ) == spoofed_before + 1),
        "spoofed frame not counted"
    );

    // A namespace attached later joins the XDP switch's devmap (GRO and
    // checksums set in it) and is reached from the XDP ports; its own
    // frames take the TC program until the lab is installed again.
    let new_ns = lab.ns(4);
    lab.ok(&["attach", &new_ns, &lab.address(9)]);
    assert!(gro_on(&new_ns, "veth-4"), "GRO off on the attached veth-4");
    let redirected = counter(&lab, Counter::XdpPortRedirect);
    assert!(
        ping(&lab.ns(1), &lab.address(9)),
        "ns1 to the attached namespace"
    );
    assert!(counter(&lab, Counter::XdpPortRedirect) >= redirected + 3);
    let (ok, report) = lab.check();
    assert_all_ok(&report, 4 * 5);
    assert!(ok);

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
    assert!(!lab.pin_dir().exists());
}
