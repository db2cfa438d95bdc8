//! Shared helpers for the integration tests.
//!
//! Every test builds its own lab: its own lab name (`t<short>`), namespace
//! names (`t<short>-ns1`, `t<short>-host`, `t<short>-inet`) and subnet
//! (10.77.<k>.0/24), always in sandbox mode, so tests run in parallel and
//! never touch the machine's own network. [`TestLab`] removes everything on
//! drop, also when the test fails.
//!
//! The tests drive the `netlab` binary: `$NETLAB_BIN`, else
//! `<workspace>/target/debug/netlab` (build it first with
//! `AYA_BUILD_SKIP=1 cargo build -p netlab`, or plain `cargo build -p
//! netlab` for the eBPF datapath).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use netlab;

/// The netlab binary under test.
pub fn netlab_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NETLAB_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/netlab");
    assert!(
        bin.exists(),
        "{} not found: build it with `AYA_BUILD_SKIP=1 cargo build -p netlab` or set NETLAB_BIN",
        bin.display()
    );
    bin
}

/// stdout + stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command, returning its output (panics if it cannot start).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// `ip netns exec NS ARGS...`, output.
pub fn in_netns(ns: &str, args: &[&str]) -> Output {
    run(Command::new("ip").args(["netns", "exec", ns]).args(args))
}

/// A lab owned by one test.
pub struct TestLab {
    pub name: String,
    /// The k of 10.77.k.0/24.
    pub k: u8,
    /// The first two octets of the lab subnet: 10.77 unless built with
    /// [`TestLab::with_net`].
    pub net: [u8; 2],
    pub namespace_count: u32,
    pub config_path: PathBuf,
}

impl TestLab {
    /// A sandbox lab `t<short>` with `count` namespaces `t<short>-nsN` on
    /// 10.77.<k>.0/24 (gateway .5), and `extra` appended to the lab file.
    pub fn with(short: &str, k: u8, count: u32, extra: &str) -> Self {
        Self::with_net([10, 77], short, k, count, extra)
    }

    /// As [`TestLab::with`], on `<net[0]>.<net[1]>.<k>.0/24`: test files
    /// that own another /16 (10.80 for the eBPF lab tests) use this.
    pub fn with_net(net: [u8; 2], short: &str, k: u8, count: u32, extra: &str) -> Self {
        Self::named(&format!("t{short}"), net, k, count, extra)
    }

    /// A lab named exactly `name` on `<net>.<k>.0/24` (for tests whose
    /// labs carry their own prefix, e.g. the IPv6 lanes' `va...`).
    pub fn named(name: &str, net: [u8; 2], k: u8, count: u32, extra: &str) -> Self {
        let name = name.to_string();
        let [a, b] = net;
        let toml = format!(
            "name = \"{name}\"\nsubnet = \"{a}.{b}.{k}.0/24\"\nnamespace_count = {count}\nnamespace_prefix = \"{name}-ns\"\n{extra}\n"
        );
        let config_path = std::env::temp_dir().join(format!("netlab-test-{name}.toml"));
        std::fs::write(&config_path, toml).expect("write the lab file");
        let lab = Self {
            name,
            k,
            net,
            namespace_count: count,
            config_path,
        };
        // A previous run that died may have left this lab behind.
        lab.cleanup();
        lab
    }

    /// [`TestLab::with`] on 10.<net>.<k>.0/24 (test files that own another
    /// range of subnets).
    pub fn in_net(short: &str, net: u8, k: u8, count: u32, extra: &str) -> Self {
        Self::with_net([10, net], short, k, count, extra)
    }

    pub fn new(short: &str, k: u8) -> Self {
        Self::with(short, k, 3, "")
    }

    pub fn host_ns(&self) -> String {
        format!("{}-host", self.name)
    }

    pub fn inet_ns(&self) -> String {
        format!("{}-inet", self.name)
    }

    /// Endpoint namespace N (1-based).
    pub fn ns(&self, n: u32) -> String {
        format!("{}-ns{n}", self.name)
    }

    pub fn subnet(&self) -> String {
        let [a, b] = self.net;
        format!("{a}.{b}.{}.0/24", self.k)
    }

    pub fn address(&self, host: u8) -> String {
        let [a, b] = self.net;
        format!("{a}.{b}.{}.{host}", self.k)
    }

    /// Every namespace name this lab may create (plus a few attach names).
    pub fn all_namespaces(&self) -> Vec<String> {
        let mut v = vec![self.host_ns(), self.inet_ns()];
        v.extend((1..=self.namespace_count + 5).map(|n| self.ns(n)));
        v
    }

    pub fn state_file(&self) -> PathBuf {
        PathBuf::from(format!("/run/netlab/{}.json", self.name))
    }

    /// Where the eBPF datapath pins its maps, programs and links.
    pub fn pin_dir(&self) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/netlab/{}", self.name))
    }

    /// What of this lab exists right now: namespaces, state and lock files.
    pub fn leftovers(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .all_namespaces()
            .into_iter()
            .filter(|n| netlab::netns::exists(n))
            .map(|n| format!("namespace {n}"))
            .collect();
        if self.state_file().exists() {
            v.push(format!("state file {}", self.state_file().display()));
        }
        let lock = self.state_file().with_extension("lock");
        if lock.exists() {
            v.push(format!("lock file {}", lock.display()));
        }
        if self.pin_dir().exists() {
            v.push(format!("pin directory {}", self.pin_dir().display()));
        }
        for file in [
            netlab::daemon::pid_path(&self.name),
            netlab::daemon::log_path(&self.name),
        ] {
            if file.exists() {
                v.push(format!("daemon file {}", file.display()));
            }
        }
        for (pid, cmdline) in self.netlab_processes() {
            v.push(format!("process {pid}: {cmdline}"));
        }
        v
    }

    /// Every running process of the netlab under test that works on this
    /// lab (a `daemon`, a stuck `up` ...): its command line names the lab
    /// (`--lab NAME`) or this test's lab file. Read from /proc, so a daemon
    /// whose pid file is gone is found too.
    pub fn netlab_processes(&self) -> Vec<(u32, String)> {
        let config = self.config_path.to_string_lossy().into_owned();
        let bin = std::fs::canonicalize(netlab_bin()).unwrap_or_else(|_| netlab_bin());
        let mut found = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            // The binary under test only: other checkouts' tests on this
            // machine may run labs of the same name with their own build.
            let is_netlab = args
                .first()
                .and_then(|a| std::fs::canonicalize(a).ok())
                .is_some_and(|a| a == bin);
            let names_lab = args.windows(2).any(|w| {
                (w[0] == "--lab" && w[1] == self.name) || (w[0] == "-f" && w[1] == config)
            });
            if is_netlab && names_lab {
                found.push((pid, args.join(" ")));
            }
        }
        found
    }

    pub fn assert_nothing_left(&self, when: &str) {
        let left = self.leftovers();
        assert!(left.is_empty(), "{when}: left behind: {left:?}");
    }

    /// `netlab -f <lab file> ARGS...` as a Command (not started).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(netlab_bin());
        c.arg("-f").arg(&self.config_path).args(args);
        c.env_remove(netlab::lab::FAIL_AT_ENV)
            .env_remove(netlab::lab::PAUSE_AT_ENV);
        c.env("NO_COLOR", "1");
        c
    }

    pub fn netlab(&self, args: &[&str]) -> Output {
        run(&mut self.command(args))
    }

    /// Runs netlab and asserts success.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.netlab(args);
        assert!(
            out.status.success(),
            "netlab {args:?} failed: {}",
            describe(&out)
        );
        out
    }

    /// Runs `netlab check --json` and returns (exit success, report).
    pub fn check(&self) -> (bool, serde_json::Value) {
        let out = self.netlab(&["check", "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("check --json printed no JSON ({e}): {}", describe(&out)));
        (out.status.success(), report)
    }

    /// Starts `netlab up` paused after `step` (NETLAB_PAUSE_AT) and waits
    /// until it says so. The caller kills it.
    pub fn spawn_paused_up(&self, step: &str, extra_args: &[&str]) -> Child {
        let mut cmd = self.command(&["up"]);
        cmd.args(extra_args)
            .env(netlab::lab::PAUSE_AT_ENV, step)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start netlab up");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let paused = line.contains("paused after");
                let _ = tx.send(line);
                if paused {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) if line.contains("paused after") => return child,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("netlab up never paused after {step}; stderr: {seen:?}");
                }
            }
        }
    }

    /// Removes the lab whatever its state: `netlab down`, then anything it
    /// may have missed (namespaces by name, the state file).
    pub fn cleanup(&self) {
        let _ = Command::new(netlab_bin())
            .args(["--lab", &self.name, "down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for n in self.all_namespaces() {
            let _ = netlab::netns::delete(&n);
        }
        let _ = std::fs::remove_file(self.state_file());
        let _ = std::fs::remove_dir_all(self.pin_dir());
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        self.cleanup();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// Asserts that a `check --json` report has `expected_probes` IPv4
/// probes and every one of them got a reply; and that every IPv6 probe
/// (the lab's IPv6 rows, when it has IPv6) got one too, except the
/// internet cell where the lab's IPv6 cannot leave (n/a: the eBPF
/// datapath without NAT66, root mode without a global IPv6 address).
pub fn assert_all_ok(report: &serde_json::Value, expected_probes: usize) {
    let probes = report["probes"].as_array().expect("probes");
    let (v4, v6): (Vec<_>, Vec<_>) = probes.iter().partition(|p| p["family"] == "ipv4");
    assert_eq!(v4.len(), expected_probes, "{report:#}");
    for p in v4 {
        assert_eq!(p["result"], "ok", "probe failed: {p:#}\nreport: {report:#}");
    }
    for p in v6 {
        let egress_na = p["to"] == "internet" && p["result"] == "not_applicable";
        assert!(
            p["result"] == "ok" || egress_na,
            "IPv6 probe failed: {p:#}\nreport: {report:#}"
        );
    }
}

pub mod fuzz;
pub mod packets;
pub mod podman;

pub mod cni;

pub mod traffic;

pub mod private_netns;

pub mod soak;

pub mod harness;
pub mod ipv6;
pub mod stand_in;
pub mod tcx_counter;
pub mod test_run;

/// The sandbox's default uplink address (host side) and internet server.
pub const UPLINK_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(203, 0, 113, 1);
pub const INTERNET_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(203, 0, 113, 2);

impl TestLab {
    /// Host `host` of the lab subnet, typed.
    pub fn ip(&self, host: u8) -> std::net::Ipv4Addr {
        let [a, b] = self.net;
        std::net::Ipv4Addr::new(a, b, self.k, host)
    }

    /// The MAC netlab gives the holder of lab address `host` (02:4e:<ip>).
    pub fn mac(&self, host: u8) -> [u8; 6] {
        netlab::names::mac_for(self.ip(host))
    }

    /// One datapath counter, summed over CPUs.
    pub fn counter(&self, c: netlab_common::counters::Counter) -> u64 {
        netlab::datapath::ebpf::counter(&self.name, c)
            .unwrap_or_else(|e| panic!("counter {} of lab {}: {e}", c.name(), self.name))
    }

    /// The lab's NAT translations, read from the pinned maps.
    pub fn nat_flows(&self) -> Vec<netlab::nat::NatFlow> {
        netlab::nat::NatTable::open(&self.pin_dir())
            .and_then(|t| t.flows())
            .unwrap_or_else(|e| panic!("NAT table of lab {}: {e}", self.name))
    }

    /// Starts `netlab daemon --interval SECS` in the foreground as a child
    /// of the test (killed by its PID when dropped) and waits until it has
    /// written its pid file. The background daemon `netlab up` started for
    /// this lab, if any, is stopped first (by its recorded PID), so the
    /// test's own daemon is the lab's only one.
    pub fn start_daemon(&self, interval: &str) -> traffic::ChildGuard {
        netlab::daemon::stop(&self.name).expect("stop the lab's background daemon");
        let child = self
            .command(&["daemon", "--interval", interval])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start netlab daemon");
        let pid = child.id() as i32;
        let guard = traffic::ChildGuard::new(child, "netlab daemon");
        let lab = self.name.clone();
        let ok = traffic::wait_until(Duration::from_secs(20), || {
            netlab::daemon::running_pid(&lab) == Some(pid)
        });
        assert!(ok, "netlab daemon (pid {pid}) never wrote its pid file");
        guard
    }

    /// `ip netns exec <host namespace> ARGS`, stdout as text (must succeed).
    pub fn host_output(&self, args: &[&str]) -> String {
        let out = in_netns(&self.host_ns(), args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts that the host namespace has no iptables rule and no
    /// nftables ruleset (the eBPF datapath needs neither).
    pub fn assert_no_firewall_rules(&self, when: &str) {
        let saved = self.host_output(&["iptables-save"]);
        let rules: Vec<&str> = saved.lines().filter(|l| l.starts_with("-A")).collect();
        assert!(
            rules.is_empty(),
            "{when}: iptables rules in {}: {saved}",
            self.host_ns()
        );
        let nft = self.host_output(&["nft", "list", "ruleset"]);
        assert!(
            nft.trim().is_empty(),
            "{when}: nftables ruleset in {}: {nft}",
            self.host_ns()
        );
    }
}

/// The keys of a pinned map as `bpftool -j map dump pinned PATH` shows
/// them, as raw bytes (its `key` arrays are the same with and without BTF;
/// the BTF-decoded view is under `formatted`). Also returns the JSON text,
/// for assertion messages.
pub fn bpftool_keys(path: &Path) -> (Vec<Vec<u8>>, String) {
    let out = Command::new("bpftool")
        .args(["-j", "map", "dump", "pinned"])
        .arg(path)
        .output()
        .expect("run bpftool");
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let entries: serde_json::Value = serde_json::from_str(&text).expect("bpftool JSON");
    let keys = entries
        .as_array()
        .expect("an array of entries")
        .iter()
        .map(|e| {
            e["key"]
                .as_array()
                .expect("raw key bytes")
                .iter()
                .map(|b| {
                    let b = b.as_str().expect("0x.. byte");
                    u8::from_str_radix(b.trim_start_matches("0x"), 16).expect("hex byte")
                })
                .collect()
        })
        .collect();
    (keys, text)
}

/// Published ports on every host address, as the program tests load them
/// into `nat_publish`: (host port, protocol, namespace address, port).
pub fn published_ports(
    ports: &[(u16, u8, std::net::Ipv4Addr, u16)],
) -> Vec<netlab::plan::PublishedPort> {
    ports
        .iter()
        .map(
            |&(host_port, protocol, address, port)| netlab::plan::PublishedPort {
                host_address: None,
                host_port,
                protocol,
                address,
                port,
            },
        )
        .collect()
}
