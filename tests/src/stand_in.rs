//! A namespace that stands in for a user's machine, for the root-mode
//! tests: `r17-simhost<N>` has an uplink `eth0` (198.51.100.2/24, default
//! route via .1) to `r17-up<N>`, which plays the upstream network
//! (198.51.100.1, `up0`, and no route back to any lab subnet: a reply
//! reaches a lab namespace only if netlab masqueraded the request).
//!
//! netlab runs inside it as a user would on their machine: `ip netns exec
//! r17-simhost<N> netlab -f lab.toml up`, with `[host] mode = "root"` and
//! `uplink = "eth0"`. The lab is `r<N>` on 10.117.<N>.0/24 with endpoint
//! namespaces `r<N>-ns1`, `r<N>-ns2`. Everything is removed on drop, also
//! when the test fails.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use netlab::netns;

use crate::{describe, netlab_bin, run};

/// The stand-in machine's uplink device.
pub const UPLINK: &str = "eth0";
/// The stand-in machine's address on it.
pub const HOST_ADDRESS: &str = "198.51.100.2";
/// The upstream router / "internet" peer.
pub const UPSTREAM_ADDRESS: &str = "198.51.100.1";
/// [`StandIn::with_ipv6`]: the machine's global IPv6 address on its
/// uplink, and the upstream's (documentation space, RFC 3849).
pub const HOST_ADDRESS6: &str = "2001:db8:5100::2";
pub const UPSTREAM_ADDRESS6: &str = "2001:db8:5100::1";

pub struct StandIn {
    pub n: u8,
    /// `r17-simhost<N>`: the machine netlab runs on.
    pub host: String,
    /// `r17-up<N>`: the network beyond its uplink.
    pub upstream: String,
    /// The lab's name, `r<N>`.
    pub lab: String,
    pub config_path: PathBuf,
}

/// `ip -n NS ARGS...`, asserting success.
fn ip(ns: &str, args: &[&str]) {
    let out = run(Command::new("ip").args(["-n", ns]).args(args));
    assert!(
        out.status.success(),
        "ip -n {ns} {args:?}: {}",
        describe(&out)
    );
}

impl StandIn {
    /// Builds the stand-in machine and its upstream, and writes the lab
    /// file (`datapath`, root mode on `eth0`, two endpoints).
    pub fn new(n: u8, datapath: &str) -> Self {
        let s = Self {
            n,
            host: format!("r17-simhost{n}"),
            upstream: format!("r17-up{n}"),
            lab: format!("r{n}"),
            config_path: std::env::temp_dir().join(format!("netlab-test-r{n}.toml")),
        };
        // A run that died may have left all this behind.
        s.cleanup();
        std::fs::write(
            &s.config_path,
            format!(
                "name = \"{lab}\"\ndatapath = \"{datapath}\"\nsubnet = \"10.117.{n}.0/24\"\n\
                 namespace_count = 2\nnamespace_prefix = \"{lab}-ns\"\n\n\
                 [host]\nmode = \"root\"\nuplink = \"{UPLINK}\"\n",
                lab = s.lab
            ),
        )
        .expect("write the lab file");
        for ns in [&s.host, &s.upstream] {
            netns::create(ns).unwrap_or_else(|e| panic!("create {ns}: {e}"));
            ip(ns, &["link", "set", "lo", "up"]);
        }
        ip(
            &s.host,
            &[
                "link",
                "add",
                UPLINK,
                "type",
                "veth",
                "peer",
                "name",
                "up0",
                "netns",
                &s.upstream,
            ],
        );
        ip(
            &s.host,
            &["addr", "add", &format!("{HOST_ADDRESS}/24"), "dev", UPLINK],
        );
        ip(&s.host, &["link", "set", UPLINK, "up"]);
        ip(
            &s.host,
            &["route", "add", "default", "via", UPSTREAM_ADDRESS],
        );
        ip(
            &s.upstream,
            &[
                "addr",
                "add",
                &format!("{UPSTREAM_ADDRESS}/24"),
                "dev",
                "up0",
            ],
        );
        ip(&s.upstream, &["link", "set", "up0", "up"]);
        // IPv6 duplicate address detection marks eth0's link-local address
        // `tentative` for a moment: wait, so `ip addr` snapshots compare.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let out = run(Command::new("ip").args(["-n", &s.host, "addr", "show", "tentative"]));
            if out.status.success() && out.stdout.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "duplicate address detection on {} did not finish: {}",
                s.host,
                describe(&out)
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        s
    }

    /// Gives the machine a global IPv6 address on its uplink (and an IPv6
    /// default route via the upstream, which has no route back to any lab
    /// prefix). Without this the machine has link-local IPv6 only.
    pub fn with_ipv6(self) -> Self {
        let host6 = format!("{HOST_ADDRESS6}/64");
        let up6 = format!("{UPSTREAM_ADDRESS6}/64");
        ip(
            &self.host,
            &["-6", "addr", "add", &host6, "dev", UPLINK, "nodad"],
        );
        ip(
            &self.upstream,
            &["-6", "addr", "add", &up6, "dev", "up0", "nodad"],
        );
        ip(
            &self.host,
            &["-6", "route", "add", "default", "via", UPSTREAM_ADDRESS6],
        );
        self
    }

    /// Endpoint namespace `r<N>-ns<i>`.
    pub fn endpoint(&self, i: u32) -> String {
        format!("{}-ns{i}", self.lab)
    }

    pub fn subnet(&self) -> String {
        format!("10.117.{}.0/24", self.n)
    }

    /// `ip netns exec <host> netlab -f <lab file> ARGS...`: netlab run on
    /// the stand-in machine.
    pub fn netlab(&self, args: &[&str]) -> Output {
        run(&mut self.netlab_command(args))
    }

    /// The command of [`StandIn::netlab`], not started.
    pub fn netlab_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host])
            .arg(netlab_bin())
            .arg("-f")
            .arg(&self.config_path)
            .args(args)
            .env("NO_COLOR", "1");
        cmd
    }

    /// As [`StandIn::netlab`], asserting success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.netlab(args);
        assert!(out.status.success(), "netlab {args:?}: {}", describe(&out));
        out
    }

    /// `netlab --lab r<N> ARGS...` run from the test's own namespace (not
    /// the lab's host side).
    pub fn netlab_from_outside(&self, args: &[&str]) -> Output {
        run(Command::new(netlab_bin())
            .args(["--lab", &self.lab])
            .args(args)
            .env("NO_COLOR", "1"))
    }

    /// `ip netns exec NS ARGS...` (output, not asserted).
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        crate::in_netns(ns, args)
    }

    /// One ping from endpoint `i` to the upstream peer.
    pub fn ping_upstream(&self, i: u32) -> bool {
        self.exec(
            &self.endpoint(i),
            &["ping", "-c", "1", "-W", "1", UPSTREAM_ADDRESS],
        )
        .status
        .success()
    }

    /// What `down` must leave as `up` found it, as text to compare: links,
    /// addresses, routes (both families), the forwarding (IPv6 per device
    /// too) and reserved-ports sysctls, the firewall (iptables and
    /// ip6tables), and the uplink's tcx chains (program ids in order).
    /// (`bpftool link show` lists the links of every namespace on the
    /// machine, other tests' included; the uplink's chains are the part
    /// that belongs to this machine.)
    pub fn snapshot(&self) -> String {
        let script = "ip -d link; ip addr; ip route; ip -6 route; \
                      sysctl -a 2>/dev/null | grep -E 'ip_forward|reserved_ports|forwarding'; \
                      iptables-save | sed '/^#/d'; ip6tables-save | sed '/^#/d'; \
                      nft list ruleset";
        let out = self.exec(&self.host, &["sh", "-c", script]);
        assert!(out.status.success(), "snapshot: {}", describe(&out));
        format!(
            "{}\ntcx ingress {:?}\ntcx egress {:?}\n",
            String::from_utf8_lossy(&out.stdout),
            self.tcx_chain(aya::programs::TcAttachType::Ingress),
            self.tcx_chain(aya::programs::TcAttachType::Egress)
        )
    }

    /// The program ids on the uplink's tcx hook, in chain order.
    pub fn tcx_chain(&self, hook: aya::programs::TcAttachType) -> Vec<u32> {
        netns::run_in(Some(&self.host), || {
            aya::programs::SchedClassifier::query_tcx(UPLINK, hook)
                .map(|(_, progs)| progs.iter().map(|p| p.id()).collect::<Vec<_>>())
        })
        .expect("enter the stand-in namespace")
        .expect("query the uplink's tcx chain")
    }

    /// Removes the lab (from outside: netlab enters the host side by its
    /// name, or cleans up what is left when it is gone), then the
    /// namespaces and the lab file.
    pub fn cleanup(&self) {
        let _ = Command::new(netlab_bin())
            .args(["--lab", &self.lab, "down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for i in 1..=4 {
            let _ = netns::delete(&self.endpoint(i));
        }
        let _ = netns::delete(&self.host);
        let _ = netns::delete(&self.upstream);
        let _ = std::fs::remove_file(&self.config_path);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.cleanup();
    }
}
