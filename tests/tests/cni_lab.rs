//! The lab behind a CNI network: a kernel-datapath lab takes containers
//! too; an ADD killed while it was building the lab leaves a half-built
//! lab that the next ADD removes and builds again; a container whose
//! namespace vanished without DEL does not stop `netlab up` repairing the
//! lab; a namespace known only as `/proc/PID/ns/net` (containerd's way) is
//! attached like a named one; the switch's source check holds for
//! containers. Labs `c12h`, `c12j`, `c12k`, `c12l`, `c12m` on
//! 10.112.{8,10,11,12,13}.0/24.

use netlab_tests::cni::{CniLab, Sandbox, add, check, del, env, invoke};
use serde_json::json;

#[test]
fn the_kernel_datapath_takes_containers_too() {
    let lab = CniLab::with_file("h", 8, "10.112.8.0/24", "datapath = \"kernel\"");
    let sb = Sandbox::new("c12h-ct0");
    let r = add(&lab, &sb, "1.1.0", "kernel0").expect_ok("ADD");
    let port = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    let shown = std::process::Command::new("ip")
        .args(["-n", &lab.host_ns(), "-o", "link", "show", &port])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("master vbridge"),
        "not a bridge port: {shown}"
    );
    assert!(sb.ping(&lab.address(1)), "container -> lab namespace");
    assert!(sb.ping("203.0.113.2"), "container -> internet (MASQUERADE)");
    check(&lab, &sb, "1.1.0", "kernel0", &r).expect_ok("CHECK");
    del(&lab, &sb, "1.1.0", "kernel0").expect_ok("DEL");
    assert!(lab.container_ports().is_empty());
    assert!(!sb.links().contains(&"eth0".to_string()));
    assert!(lab.containers().is_empty());
}

#[test]
fn an_add_killed_while_building_the_lab_is_cleaned_by_the_next_add() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let lab = CniLab::new("j", 10);
    let sb = Sandbox::new("c12j-ct0");
    let path = sb.path();
    // An ADD that stops right after the lab's datapath step, before the
    // lab is marked complete, and is killed there.
    let mut child = Command::new(netlab_tests::cni::cni_bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env("ADD", "first", &path))
        .env(netlab::lab::PAUSE_AT_ENV, "datapath")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netlab-cni");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lab.conf("1.1.0", json!({})).as_bytes())
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let paused = stderr
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("paused after"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(paused, "the plugin never paused while building the lab");
    assert_eq!(lab.state().expect("a state file")["complete"], false);

    // The next ADD removes the half-built lab, builds it and attaches.
    let r = add(&lab, &sb, "1.1.0", "second").expect_ok("ADD after a killed ADD");
    assert_eq!(lab.state().unwrap()["complete"], true);
    assert!(sb.ping("203.0.113.2"), "container -> internet");
    assert_eq!(lab.containers().len(), 1);
    del(&lab, &sb, "1.1.0", "first").expect_ok("DEL of the killed ADD");
    del(&lab, &sb, "1.1.0", "second").expect_ok("DEL");
    assert!(lab.containers().is_empty(), "{r}");
}

#[test]
fn a_container_gone_without_del_does_not_stop_a_repair() {
    let lab = CniLab::new("k", 11);
    let sb = Sandbox::new("c12k-ct0");
    let kept = Sandbox::new("c12k-ct1");
    add(&lab, &sb, "1.1.0", "vanished").expect_ok("ADD");
    let r = add(&lab, &kept, "1.1.0", "kept").expect_ok("ADD");
    // The runtime died: the namespace is gone, DEL never came.
    sb.remove();
    // Something `netlab up` repairs (the lab namespace), so the datapath is
    // re-installed with the vanished container still recorded.
    netlab::netns::delete(&lab.lab_ns()).unwrap();
    let out = lab.netlab(&["up"]);
    assert!(
        out.status.success(),
        "repair failed: {}",
        netlab_tests::describe(&out)
    );
    let status = lab.netlab(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["missing"], json!([]), "{status}");
    // The living container still works; the vanished one's DEL cleans up.
    assert!(
        kept.ping(&lab.address(1)),
        "kept container -> rebuilt namespace"
    );
    check(&lab, &kept, "1.1.0", "kept", &r).expect_ok("CHECK of the kept container");
    let gone = invoke(
        &[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "vanished"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin"),
        ],
        &lab.conf("1.1.0", json!({})),
    );
    gone.expect_ok("DEL of the vanished container");
    del(&lab, &kept, "1.1.0", "kept").expect_ok("DEL");
    assert!(lab.containers().is_empty());
}

/// A process in a network namespace of its own, as containerd/runc make
/// them: no name under /run/netns, only `/proc/PID/ns/net`. Killed on drop.
struct NamespacedProcess(std::process::Child);

impl NamespacedProcess {
    fn start() -> Self {
        let child = std::process::Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .spawn()
            .expect("start unshare");
        let p = Self(child);
        // Wait until the child is in its own namespace (unshare execs sleep).
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let path = p.netns();
        let moved = netlab_tests::traffic::wait_until(std::time::Duration::from_secs(10), || {
            std::fs::read_link(&path).is_ok_and(|l| l != own)
                && std::fs::read_to_string(format!("/proc/{}/comm", p.0.id()))
                    .is_ok_and(|c| c.trim() == "sleep")
        });
        assert!(moved, "unshare never entered its namespace");
        p
    }

    fn netns(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }
}

impl Drop for NamespacedProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_namespace_known_only_by_proc_path_is_attached_and_detached() {
    let lab = CniLab::new("l", 12);
    let proc_ns = NamespacedProcess::start();
    let path = proc_ns.netns();
    let r = invoke(&env("ADD", "byproc", &path), &lab.conf("1.0.0", json!({})))
        .expect_ok("ADD by /proc path");
    assert_eq!(r["interfaces"][1]["sandbox"], path.as_str());
    let ping = std::process::Command::new("nsenter")
        .arg(format!("--net={path}"))
        .args(["ping", "-c", "1", "-W", "2", "203.0.113.2"])
        .output()
        .unwrap();
    assert!(ping.status.success(), "{}", netlab_tests::describe(&ping));
    let status = lab.netlab(&["status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains(&path));
    invoke(&env("DEL", "byproc", &path), &lab.conf("1.0.0", json!({}))).expect_ok("DEL");
    assert!(lab.containers().is_empty());
    assert!(lab.container_ports().is_empty());
}

#[test]
fn a_container_cannot_use_another_endpoints_address() {
    use netlab_common::counters::Counter;
    let lab = CniLab::new("m", 13);
    let sb = Sandbox::new("c12m-ct0");
    add(&lab, &sb, "1.1.0", "spoofer").expect_ok("ADD");
    assert!(sb.ping(&lab.gateway()), "from its own address");
    // The plugin gives IPv4 only, so the interface carries no IPv6 at all
    // (not even a link-local, whose router solicitations the switch would
    // count as spoofed): IPv6 is disabled on it.
    let v6 = netlab_tests::in_netns(&sb.name, &["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
    assert!(v6.status.success(), "{}", netlab_tests::describe(&v6));
    assert!(
        String::from_utf8_lossy(&v6.stdout).trim().is_empty(),
        "IPv6 on the container's interface: {}",
        netlab_tests::describe(&v6)
    );
    let spoofed =
        |lab: &CniLab| netlab::datapath::ebpf::counter(&lab.name, Counter::DropSpoofed).unwrap();
    let before = spoofed(&lab);
    // The lab namespace's address, claimed inside the container.
    sb.ip(&[
        "addr",
        "add",
        &format!("{}/32", lab.address(1)),
        "dev",
        "eth0",
    ]);
    let out = netlab_tests::in_netns(
        &sb.name,
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-I",
            &lab.address(1),
            &lab.gateway(),
        ],
    );
    assert!(!out.status.success(), "a spoofed ping got through");
    assert!(
        spoofed(&lab) > before,
        "the switch did not count the spoofed frame"
    );
    del(&lab, &sb, "1.1.0", "spoofer").expect_ok("DEL");
}
