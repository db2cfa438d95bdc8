//! A real container runtime on the eBPF datapath: podman (CNI backend, runc)
//! runs busybox containers on a netlab lab through `netlab-cni`, with `-p`
//! published through the lab's published ports. Lab
//! `c12p`, 10.112.21.0/24; containers `netlab-c12-…`.
//!
//! The lab's host side is its sandbox namespace, and podman's netavark is
//! never used, so the machine's own network must not change: no link, no
//! firewall rule of podman's or CNI's, nothing naming the lab subnet.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use netlab_tests::cni::{CniLab, links};
use netlab_tests::podman::Podman;
use netlab_tests::traffic::wait_until;
use netlab_tests::{describe, in_netns, run};
use serde_json::json;

/// What podman or CNI could leave in the root namespace: link names with
/// these prefixes, firewall lines with these words.
const ROOT_LINK_PREFIXES: &[&str] = &["cni", "podman", "nlc"];
/// `-p 8080:80` as the lab's internet server sees it.
const PUBLISHED_URL: &str = "http://203.0.113.1:8080/";
const FIREWALL_WORDS: &[&str] = &["CNI", "NETAVARK", "podman", "10.112.21."];

/// The parts of the root namespace's network that podman or the plugin
/// could touch.
fn root_network() -> (Vec<String>, Vec<String>) {
    let links: Vec<String> = netlab::topology::with_netlink(None, |nl| nl.links())
        .expect("read the root namespace's links")
        .into_iter()
        .map(|l| l.name)
        .filter(|n| ROOT_LINK_PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    let mut rules = Vec::new();
    for cmd in [&["iptables-save"][..], &["nft", "list", "ruleset"][..]] {
        let out = run(Command::new(cmd[0]).args(&cmd[1..]));
        rules.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| FIREWALL_WORDS.iter().any(|w| l.contains(w)))
                .map(str::to_string),
        );
    }
    (links, rules)
}

#[test]
fn podman_runs_a_busybox_container_on_the_lab_and_rm_leaves_nothing() {
    let lab = CniLab::new("p", 21);
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": lab.name,
        "plugins": [{
            "type": "netlab-cni",
            "lab": lab.name,
            "labFile": lab.lab_file,
            "capabilities": { "portMappings": true },
        }],
    });
    let podman = Podman::new("pod", &lab.name, &conflist.to_string());
    let root_before = root_network();
    let rootfs = podman.rootfs();
    let rootfs = rootfs.to_str().unwrap();

    let id = podman.ok(&[
        "run",
        "-d",
        "--name",
        "netlab-c12-web",
        "--network",
        &lab.name,
        "-p",
        "8080:80",
        "--rootfs",
        rootfs,
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    let short = &id[..12];
    let ip: Ipv4Addr = podman
        .ok(&[
            "inspect",
            "-f",
            &format!("{{{{.NetworkSettings.Networks.{}.IPAddress}}}}", lab.name),
            "netlab-c12-web",
        ])
        .parse()
        .expect("podman reports an IPv4 address");
    assert_eq!(
        ip.octets()[..3],
        [10, 112, 21],
        "address outside the lab: {ip}"
    );

    // The lab knows it, by short id and namespace.
    let containers = lab.containers();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0]["container_id"], id.as_str());
    let netns = containers[0]["netns"].as_str().unwrap().to_string();
    let status = lab.netlab(&["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(short) && status.contains(&netns),
        "{status}"
    );
    let label = format!("cni:{short} ({netns})");
    assert!(lab.fdb().iter().any(|r| r["owner"] == label.as_str()));

    // It reaches a lab namespace and the internet server (through the
    // eBPF NAT, which then lists it), ...
    for to in [lab.address(1), "203.0.113.2".to_string()] {
        let out = podman.run(&[
            "exec",
            "netlab-c12-web",
            "/bin/busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            &to,
        ]);
        assert!(
            out.status.success(),
            "container -> {to}: {}",
            describe(&out)
        );
    }
    let nat = lab.nat_list();
    assert!(
        nat.iter().any(|f| f["namespace"] == label.as_str()),
        "nat list does not show the container: {nat:?}"
    );
    // ... and serves HTTP to the lab namespace.
    let url = format!("http://{ip}/");
    let mut body = String::new();
    let served = wait_until(Duration::from_secs(10), || {
        let out = in_netns(&lab.lab_ns(), &["curl", "-s", "-m", "2", &url]);
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert!(served, "no HTTP answer from {url}");
    assert_eq!(body, "hello from a netlab container\n");
    // `-p 8080:80` arrived as portMappings: the internet namespace reaches
    // it on the uplink address, through the published port.
    let out = in_netns(&lab.inet_ns(), &["curl", "-s", "-m", "5", PUBLISHED_URL]);
    assert!(out.status.success(), "{PUBLISHED_URL}: {}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from a netlab container\n"
    );
    assert_eq!(root_network(), root_before, "the root namespace changed");

    // podman rm -f: DEL removes the port, the address, the NAT flows.
    podman.ok(&["rm", "--force", "--time", "0", "netlab-c12-web"]);
    assert!(lab.containers().is_empty(), "the address is still reserved");
    assert!(
        lab.container_ports().is_empty(),
        "{:?}",
        links(&lab.host_ns())
    );
    assert!(!lab.fdb().iter().any(|r| r["owner"] == label.as_str()));
    assert!(
        !lab.nat_list()
            .iter()
            .any(|f| f["src"] == ip.to_string().as_str())
    );
    assert!(!std::path::Path::new(&netns).exists(), "{netns} is left");
    assert_eq!(lab.state().unwrap()["plan"]["publications"], json!([]));
    let out = in_netns(&lab.inet_ns(), &["curl", "-s", "-m", "2", PUBLISHED_URL]);
    assert!(
        !out.status.success(),
        "still published after rm: {}",
        describe(&out)
    );
    let cache = format!("/var/lib/cni/results/{}-{id}-eth0", lab.name);
    assert!(
        !std::path::Path::new(&cache).exists(),
        "libcni cache {cache} is left"
    );
    assert_eq!(root_network(), root_before, "the root namespace changed");
}
