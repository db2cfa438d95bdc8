//! A harness for the CNI plugin that invokes `netlab-cni` exactly as libcni
//! does: `CNI_*` variables in a clean environment, the network
//! configuration on stdin, the result or error JSON read from stdout.
//!
//! [`CniLab`] is a lab named `c12<short>` on 10.112.<k>.0/24 (the CNI
//! tests' own range) whose lab file lives under /tmp/netlab-c12-*;
//! [`Sandbox`] is a network namespace playing a container's, made the way
//! runtimes make theirs (a bind-mounted file the lab does not own). Both
//! remove everything on drop, also when the test fails.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::{describe, netlab_bin, run};

/// Every spec version the plugin speaks: each case runs for each.
pub const VERSIONS: &[&str] = &["0.4.0", "1.0.0", "1.1.0"];

/// The plugin binary: `$NETLAB_CNI_BIN`, else next to the netlab binary.
pub fn cni_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NETLAB_CNI_BIN") {
        return PathBuf::from(p);
    }
    let bin = netlab_bin().with_file_name("netlab-cni");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p netlab --bins`",
        bin.display()
    );
    bin
}

/// One plugin run: exit status, stdout parsed as JSON (None when empty).
pub struct Invocation {
    pub output: Output,
    pub json: Option<Value>,
}

impl Invocation {
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    /// Asserts success and returns the JSON printed (Null when none).
    pub fn expect_ok(&self, what: &str) -> Value {
        assert!(self.ok(), "{what} failed: {}", describe(&self.output));
        self.json.clone().unwrap_or(Value::Null)
    }

    /// Asserts a CNI error with `code` (exit non-zero, `{cniVersion, code,
    /// msg, details}` on stdout) and returns it.
    pub fn expect_error(&self, what: &str, code: u64) -> Value {
        assert!(
            !self.ok(),
            "{what} succeeded, expected error {code}: {}",
            describe(&self.output)
        );
        let err = self
            .json
            .clone()
            .unwrap_or_else(|| panic!("{what}: no error JSON: {}", describe(&self.output)));
        assert_eq!(err["code"], code, "{what}: {err}");
        for key in ["cniVersion", "msg", "details"] {
            assert!(err[key].is_string(), "{what}: error lacks {key}: {err}");
        }
        err
    }
}

/// Runs the plugin with exactly `env` (plus PATH) and `stdin`.
pub fn invoke(env: &[(&str, &str)], stdin: &str) -> Invocation {
    let mut cmd = Command::new(cni_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start netlab-cni");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes())
        .expect("write the configuration");
    let output = child.wait_with_output().expect("wait for netlab-cni");
    let text = String::from_utf8_lossy(&output.stdout);
    let json = (!text.trim().is_empty()).then(|| {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", describe(&output)))
    });
    Invocation { output, json }
}

/// A lab for CNI tests: `c12<short>`, 10.112.<k>.0/24, gateway .5, one lab
/// namespace `c12<short>-n1` (.1); not brought up: the plugin's ADD does.
pub struct CniLab {
    pub name: String,
    pub k: u8,
    pub dir: PathBuf,
    pub lab_file: PathBuf,
}

impl CniLab {
    pub fn new(short: &str, k: u8) -> Self {
        Self::with_subnet(short, k, &format!("10.112.{k}.0/24"))
    }

    /// With another subnet (inside 10.112.<k>.0/24), e.g. a /29.
    pub fn with_subnet(short: &str, k: u8, subnet: &str) -> Self {
        Self::with_file(short, k, subnet, "")
    }

    /// With `extra` lines in the lab file (e.g. `datapath = "kernel"`).
    pub fn with_file(short: &str, k: u8, subnet: &str, extra: &str) -> Self {
        let name = format!("c12{short}");
        let dir = PathBuf::from(format!("/tmp/netlab-c12-{short}"));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let lab_file = dir.join("lab.toml");
        std::fs::write(
            &lab_file,
            format!(
                "subnet = \"{subnet}\"\nnamespace_count = 1\nnamespace_prefix = \"{name}-n\"\n{extra}\n"
            ),
        )
        .expect("write the lab file");
        let lab = Self {
            name,
            k,
            dir,
            lab_file,
        };
        lab.teardown();
        lab
    }

    pub fn address(&self, host: u8) -> String {
        format!("10.112.{}.{host}", self.k)
    }

    pub fn gateway(&self) -> String {
        self.address(5)
    }

    pub fn host_ns(&self) -> String {
        format!("{}-host", self.name)
    }

    pub fn inet_ns(&self) -> String {
        format!("{}-inet", self.name)
    }

    pub fn lab_ns(&self) -> String {
        format!("{}-n1", self.name)
    }

    /// The plugin configuration for `version`, with `extra` keys merged in.
    pub fn conf(&self, version: &str, extra: Value) -> String {
        let mut c = json!({
            "cniVersion": version,
            "name": self.name,
            "type": "netlab-cni",
            "labFile": self.lab_file,
        });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c.to_string()
    }

    /// `netlab --lab NAME ARGS` (not asserted).
    pub fn netlab(&self, args: &[&str]) -> Output {
        run(Command::new(netlab_bin())
            .args(["--lab", &self.name])
            .args(args)
            .env("NO_COLOR", "1"))
    }

    /// The lab's state file as JSON (None when the lab is not up).
    pub fn state(&self) -> Option<Value> {
        let text = std::fs::read_to_string(format!("/run/netlab/{}.json", self.name)).ok()?;
        Some(serde_json::from_str(&text).expect("state file is JSON"))
    }

    /// The container records of the lab's state file.
    pub fn containers(&self) -> Vec<Value> {
        self.state()
            .and_then(|s| s["plan"]["containers"]["attachments"].as_array().cloned())
            .unwrap_or_default()
    }

    /// `netlab fdb --json`.
    pub fn fdb(&self) -> Vec<Value> {
        let out = self.netlab(&["fdb", "--json"]);
        assert!(out.status.success(), "netlab fdb: {}", describe(&out));
        serde_json::from_slice(&out.stdout).expect("fdb --json is a list")
    }

    /// `netlab nat list --json`.
    pub fn nat_list(&self) -> Vec<Value> {
        let out = self.netlab(&["nat", "list", "--json"]);
        assert!(out.status.success(), "netlab nat list: {}", describe(&out));
        serde_json::from_slice(&out.stdout).expect("nat list --json is a list")
    }

    /// Interface names in the lab's host namespace that are container
    /// ports (`nlc…`).
    pub fn container_ports(&self) -> Vec<String> {
        links(&self.host_ns())
            .into_iter()
            .filter(|l| l.starts_with("nlc"))
            .collect()
    }

    pub fn teardown(&self) {
        let _ = self.netlab(&["down"]);
        for ns in [self.host_ns(), self.inet_ns(), self.lab_ns()] {
            let _ = netlab::netns::delete(&ns);
        }
        let _ = std::fs::remove_file(format!("/run/netlab/{}.json", self.name));
        let _ = std::fs::remove_dir_all(format!("/sys/fs/bpf/netlab/{}", self.name));
    }
}

impl Drop for CniLab {
    fn drop(&mut self) {
        self.teardown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Link names in namespace `ns` (empty when it does not exist).
pub fn links(ns: &str) -> Vec<String> {
    if !netlab::netns::exists(ns) {
        return Vec::new();
    }
    netlab::topology::with_netlink(Some(ns), |nl| nl.links())
        .map(|l| l.into_iter().map(|l| l.name).collect())
        .unwrap_or_default()
}

/// A container's network namespace, as a runtime makes one: a named
/// namespace the lab does not own, passed to the plugin by path.
pub struct Sandbox {
    pub name: String,
}

impl Sandbox {
    pub fn new(name: &str) -> Self {
        let _ = netlab::netns::delete(name);
        netlab::netns::create(name).expect("create the container namespace");
        Self { name: name.into() }
    }

    pub fn path(&self) -> String {
        netlab::netns::path(&self.name).display().to_string()
    }

    pub fn links(&self) -> Vec<String> {
        links(&self.name)
    }

    /// `ip -n NS ARGS` output (asserting success).
    pub fn ip(&self, args: &[&str]) -> String {
        let out = run(Command::new("ip").arg("-n").arg(&self.name).args(args));
        assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One ping from inside; true when answered.
    pub fn ping(&self, to: &str) -> bool {
        crate::in_netns(&self.name, &["ping", "-c", "1", "-W", "2", to])
            .status
            .success()
    }

    pub fn remove(&self) {
        let _ = netlab::netns::delete(&self.name);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.remove();
    }
}

// ----------------------------------------------------------------------
// One operation, as the tests use them

/// The `CNI_*` variables libcni sets for `command` on interface eth0.
pub fn env<'a>(command: &'a str, id: &'a str, netns: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
    ]
}

/// ADD with the lab's plain configuration.
pub fn add(lab: &CniLab, sb: &Sandbox, version: &str, id: &str) -> Invocation {
    invoke(&env("ADD", id, &sb.path()), &lab.conf(version, json!({})))
}

/// DEL with the lab's plain configuration.
pub fn del(lab: &CniLab, sb: &Sandbox, version: &str, id: &str) -> Invocation {
    invoke(&env("DEL", id, &sb.path()), &lab.conf(version, json!({})))
}

/// CHECK with `prev` as prevResult.
pub fn check(lab: &CniLab, sb: &Sandbox, version: &str, id: &str, prev: &Value) -> Invocation {
    invoke(
        &env("CHECK", id, &sb.path()),
        &lab.conf(version, json!({ "prevResult": prev })),
    )
}

/// The container's address from an ADD result ("10.112.k.n/24" -> "10.112.k.n").
pub fn address_of(result: &Value) -> String {
    let ips = result["ips"].as_array().expect("ips");
    ips.last().expect("an IP")["address"]
        .as_str()
        .expect("address")
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// Whether `netlab fdb` holds the MAC netlab gives `address` (02:4e:<IPv4>).
pub fn fdb_has_mac_of(lab: &CniLab, address: &str) -> bool {
    let octets: Vec<u8> = address.split('.').map(|o| o.parse().unwrap()).collect();
    let mac = format!(
        "02:4e:{:02x}:{:02x}:{:02x}:{:02x}",
        octets[0], octets[1], octets[2], octets[3]
    );
    lab.fdb().iter().any(|r| r["mac"] == mac.as_str())
}
