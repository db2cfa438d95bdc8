//! The CNI plugin, invoked as libcni does (env + stdin), modelled on
//! containernetworking/plugins' bridge tests: every case for every spec
//! version. Labs `c12<x>` on 10.112.<k>.0/24; container namespaces
//! `c12<x>-ctN`.

use std::collections::BTreeSet;

use netlab_tests::cni::{
    CniLab, Invocation, Sandbox, VERSIONS, add, address_of, check, del, env, fdb_has_mac_of, invoke,
};
use serde_json::{Value, json};

#[test]
fn add_gives_the_spec_result_and_a_working_interface_and_del_removes_it_for_every_version() {
    let lab = CniLab::new("a", 1);
    for (i, version) in VERSIONS.iter().enumerate() {
        let sb = Sandbox::new(&format!("c12a-ct{i}"));
        let id = format!("cont{i}abcdef0123456789");
        let r = add(&lab, &sb, version, &id).expect_ok("ADD");
        if i == 0 {
            // The ADD that created the lab started its control loop, as
            // `netlab up` does (netlab-cni run as `netlab daemon`).
            let pid = netlab::daemon::running_pid(&lab.name)
                .expect("the ADD that created the lab started no daemon");
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("daemon exe");
            assert!(
                exe.to_string_lossy().ends_with("netlab-cni"),
                "the daemon is {exe:?}, not the plugin binary"
            );
        }

        // Result shape (the CNI specification's "ADD Success",
        // https://github.com/containernetworking/cni/blob/main/SPEC.md),
        // in the version asked.
        assert_eq!(r["cniVersion"], *version, "{r}");
        let ifs = r["interfaces"].as_array().expect("interfaces");
        assert_eq!(ifs.len(), 2, "host end and container interface: {r}");
        assert_eq!(ifs[1]["name"], "eth0");
        assert_eq!(ifs[1]["sandbox"], sb.path().as_str());
        assert!(
            ifs[0].get("sandbox").is_none(),
            "host end is on the host: {r}"
        );
        let ip = &r["ips"][0];
        assert_eq!(ip["interface"], 1, "{r}");
        assert_eq!(ip["gateway"], lab.gateway().as_str());
        assert!(ip["address"].as_str().unwrap().ends_with("/24"), "{r}");
        if *version == "0.4.0" {
            assert_eq!(ip["version"], "4", "0.4.0 IPs carry a version: {r}");
        } else {
            assert!(ip.get("version").is_none(), "1.x IPs have no version: {r}");
        }
        assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(r["routes"][0]["gw"], lab.gateway().as_str());
        let addr = address_of(&r);
        assert!(addr.starts_with(&format!("10.112.{}.", lab.k)), "{addr}");

        // What the result says is what the namespace has.
        let shown = sb.ip(&["addr", "show", "dev", "eth0"]);
        assert!(shown.contains(&format!("{addr}/24")), "{shown}");
        assert!(shown.contains(ifs[1]["mac"].as_str().unwrap()), "{shown}");
        let routes = sb.ip(&["route"]);
        assert!(
            routes.contains(&format!("default via {} dev eth0", lab.gateway())),
            "{routes}"
        );
        // ... and it is on the switch: the lab namespace, the gateway and
        // the internet through the NAT.
        assert!(
            sb.ping(&lab.address(1)),
            "{version}: container -> lab namespace"
        );
        assert!(sb.ping(&lab.gateway()), "{version}: container -> gateway");
        assert!(sb.ping("203.0.113.2"), "{version}: container -> internet");
        assert!(fdb_has_mac_of(&lab, &addr), "FDB lacks the container");
        let label = format!("cni:{} ({})", &id[..12], sb.path());
        let fdb = lab.fdb();
        assert!(fdb.iter().any(|r| r["owner"] == label.as_str()), "{fdb:?}");
        let nat = lab.nat_list();
        assert!(
            nat.iter()
                .any(|f| f["src"] == addr.as_str() && f["namespace"] == label.as_str()),
            "nat list does not name the container: {nat:?}"
        );
        let out = lab.netlab(&["nat", "list", "--json", "--namespace", &id[..12]]);
        let mine: Vec<Value> = serde_json::from_slice(&out.stdout).expect("nat list --json");
        assert!(
            !mine.is_empty() && mine.iter().all(|f| f["src"] == addr.as_str()),
            "nat list --namespace <short id>: {mine:?}"
        );
        let host_end = ifs[0]["name"].as_str().unwrap().to_string();
        assert!(lab.container_ports().contains(&host_end));
        let status = lab.netlab(&["status"]);
        let status = String::from_utf8_lossy(&status.stdout);
        assert!(
            status.contains(&id[..12]) && status.contains(&sb.path()),
            "{status}"
        );

        // DEL removes both veth ends, the switch entries and the address.
        del(&lab, &sb, version, &id).expect_ok("DEL");
        assert!(!sb.links().contains(&"eth0".to_string()), "eth0 left");
        assert!(!lab.container_ports().contains(&host_end), "host end left");
        assert!(!fdb_has_mac_of(&lab, &addr), "FDB entry left");
        assert!(lab.containers().is_empty(), "address still reserved");
        assert!(
            !lab.nat_list().iter().any(|f| f["src"] == addr.as_str()),
            "the container's NAT flows outlived it"
        );
        // Repeated DEL succeeds and changes nothing.
        del(&lab, &sb, version, &id).expect_ok("second DEL");
        assert!(lab.containers().is_empty());
    }
}

#[test]
fn check_passes_after_add_and_fails_after_tampering_for_every_version() {
    let lab = CniLab::new("b", 2);
    let tamper: [(&str, &[&str]); 3] = [
        ("address", &["addr", "flush", "dev", "eth0"]),
        ("default route", &["route", "del", "default"]),
        ("is down", &["link", "set", "eth0", "down"]),
    ];
    for (i, (version, (what, cmd))) in VERSIONS.iter().zip(tamper).enumerate() {
        let sb = Sandbox::new(&format!("c12b-ct{i}"));
        let id = format!("check{i}");
        let r = add(&lab, &sb, version, &id).expect_ok("ADD");
        check(&lab, &sb, version, &id, &r).expect_ok("CHECK right after ADD");
        sb.ip(cmd);
        let err = check(&lab, &sb, version, &id, &r).expect_error("CHECK after tampering", 103);
        assert!(
            err["details"].as_str().unwrap().contains(what),
            "{what}: {err}"
        );
        assert_eq!(err["cniVersion"], *version);
        // CHECK needs the ADD's result.
        invoke(
            &env("CHECK", &id, &sb.path()),
            &lab.conf(version, json!({})),
        )
        .expect_error("CHECK without prevResult", 7);
        del(&lab, &sb, version, &id).expect_ok("DEL");
    }
    // The datapath side is checked too: a lost switch port is reported.
    let sb = Sandbox::new("c12b-ctx");
    let r = add(&lab, &sb, "1.1.0", "checkx").expect_ok("ADD");
    let port = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    let out = std::process::Command::new("ip")
        .args(["-n", &lab.host_ns(), "link", "set", &port, "down"])
        .status()
        .unwrap();
    assert!(out.success());
    let err = check(&lab, &sb, "1.1.0", "checkx", &r).expect_error("CHECK, port down", 103);
    assert!(err["details"].as_str().unwrap().contains(&port), "{err}");
    del(&lab, &sb, "1.1.0", "checkx").expect_ok("DEL");
}

#[test]
fn del_works_after_a_failed_add_a_killed_add_and_a_vanished_namespace() {
    let lab = CniLab::new("c", 3);
    for (i, version) in VERSIONS.iter().enumerate() {
        // A failed ADD (the interface name is taken) leaves nothing, and
        // DEL after it succeeds.
        let sb = Sandbox::new(&format!("c12c-ct{i}"));
        sb.ip(&[
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "c12-taken",
        ]);
        let err = add(&lab, &sb, version, "failed").expect_error("ADD, eth0 taken", 101);
        assert!(err["details"].as_str().unwrap().contains("eth0"), "{err}");
        assert!(lab.containers().is_empty(), "failed ADD kept a record");
        assert!(lab.container_ports().is_empty(), "failed ADD left a port");
        del(&lab, &sb, version, "failed").expect_ok("DEL after failed ADD");
        assert!(
            sb.links().contains(&"eth0".to_string()),
            "DEL removed what it did not make"
        );
        sb.ip(&["link", "del", "eth0"]);

        // A plugin killed half way (after its interfaces exist): DEL
        // cleans everything.
        let path = sb.path();
        let mut e = env("ADD", "killed", &path);
        e.push(("NETLAB_CNI_DIE_AT", "wired"));
        let killed = invoke(&e, &lab.conf(version, json!({})));
        assert!(!killed.ok(), "the plugin was to be killed");
        assert_eq!(lab.containers().len(), 1, "the record survives the kill");
        assert_eq!(lab.containers()[0]["complete"], false);
        let addr = lab.containers()[0]["address"].as_str().unwrap().to_string();
        assert!(fdb_has_mac_of(&lab, &addr));
        del(&lab, &sb, version, "killed").expect_ok("DEL after killed ADD");
        assert!(lab.containers().is_empty());
        assert!(lab.container_ports().is_empty());
        assert!(!sb.links().contains(&"eth0".to_string()));
        assert!(!fdb_has_mac_of(&lab, &addr));

        // DEL after the runtime already removed the namespace.
        let r = add(&lab, &sb, version, "gone").expect_ok("ADD");
        let addr = address_of(&r);
        sb.remove();
        let dl = invoke(
            &[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", "gone"),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/opt/cni/bin"),
            ],
            &lab.conf(version, json!({ "prevResult": r })),
        );
        dl.expect_ok("DEL without a namespace");
        assert!(lab.containers().is_empty());
        assert!(lab.container_ports().is_empty());
        assert!(!fdb_has_mac_of(&lab, &addr));
    }
}

#[test]
fn gc_removes_every_attachment_not_in_the_valid_list() {
    let lab = CniLab::new("d", 4);
    let sbs: Vec<Sandbox> = (0..3)
        .map(|i| Sandbox::new(&format!("c12d-ct{i}")))
        .collect();
    let mut addrs = Vec::new();
    for (i, sb) in sbs.iter().enumerate() {
        addrs.push(address_of(
            &add(&lab, sb, "1.1.0", &format!("gc{i}")).expect_ok("ADD"),
        ));
    }
    // A plugin killed after recording: GC cleans it too.
    let path = sbs[0].path();
    let mut e = env("ADD", "gckilled", &path);
    e[3] = ("CNI_IFNAME", "eth1");
    e.push(("NETLAB_CNI_DIE_AT", "recorded"));
    assert!(!invoke(&e, &lab.conf("1.1.0", json!({}))).ok());
    assert_eq!(lab.containers().len(), 4);

    let gc_env = [("CNI_COMMAND", "GC"), ("CNI_PATH", "/opt/cni/bin")];
    // GC is a 1.1.0 operation.
    invoke(&gc_env, &lab.conf("1.0.0", json!({}))).expect_error("GC in 1.0.0", 1);
    let keep = json!({ "cni.dev/valid-attachments": [{ "containerID": "gc1", "ifname": "eth0" }] });
    invoke(&gc_env, &lab.conf("1.1.0", keep)).expect_ok("GC");
    let left: Vec<String> = lab
        .containers()
        .iter()
        .map(|c| c["container_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["gc1"]);
    assert_eq!(lab.container_ports().len(), 1);
    assert!(
        sbs[1].ping(&lab.gateway()),
        "the kept container still works"
    );
    assert!(!sbs[0].links().contains(&"eth0".to_string()));
    assert!(!sbs[0].links().contains(&"eth1".to_string()));
    assert!(!fdb_has_mac_of(&lab, &addrs[0]) && !fdb_has_mac_of(&lab, &addrs[2]));

    // libcni's spelling, with nothing valid: everything goes.
    invoke(
        &gc_env,
        &lab.conf("1.1.0", json!({ "cni.dev/attachments": [] })),
    )
    .expect_ok("GC");
    assert!(lab.containers().is_empty());
    assert!(lab.container_ports().is_empty());
}

#[test]
fn parallel_adds_create_the_lab_once_and_get_distinct_addresses() {
    let lab = CniLab::new("e", 5);
    let sbs: Vec<Sandbox> = (0..6)
        .map(|i| Sandbox::new(&format!("c12e-ct{i}")))
        .collect();
    let results: Vec<Invocation> = std::thread::scope(|s| {
        let handles: Vec<_> = sbs
            .iter()
            .enumerate()
            .map(|(i, sb)| {
                let lab = &lab;
                s.spawn(move || add(lab, sb, VERSIONS[i % 3], &format!("par{i}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let addrs: BTreeSet<String> = results
        .iter()
        .map(|r| address_of(&r.expect_ok("parallel ADD")))
        .collect();
    assert_eq!(
        addrs.len(),
        sbs.len(),
        "addresses handed out twice: {addrs:?}"
    );
    assert_eq!(lab.containers().len(), sbs.len());
    for sb in &sbs {
        assert!(sb.ping(&lab.gateway()), "{} has no network", sb.name);
    }
    // Containers reach each other over the switch (the first from the
    // last; a container cannot ping itself, its loopback is down).
    let first = address_of(&results[0].expect_ok("parallel ADD"));
    assert!(sbs[5].ping(&first), "container -> container {first}");
    for (i, sb) in sbs.iter().enumerate() {
        del(&lab, sb, "1.1.0", &format!("par{i}")).expect_ok("DEL");
    }
    assert!(lab.containers().is_empty());
}

/// What, the environment, stdin, the expected code.
type BadCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u64);

#[test]
fn bad_input_gets_the_spec_code_and_changes_nothing() {
    let lab = CniLab::with_subnet("f", 6, "10.112.6.0/29");
    let sb = Sandbox::new("c12f-ct0");
    let path = sb.path();
    let conf = lab.conf("1.1.0", json!({}));
    let cases: Vec<BadCase> = vec![
        (
            "malformed JSON",
            env("ADD", "x", &path),
            "{\"cniVersion\":".into(),
            6,
        ),
        (
            "no CNI_COMMAND",
            vec![("CNI_CONTAINERID", "x")],
            conf.clone(),
            4,
        ),
        (
            "no CNI_NETNS",
            vec![
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "x"),
                ("CNI_IFNAME", "eth0"),
            ],
            conf.clone(),
            4,
        ),
        ("bad container id", env("ADD", "-x", &path), conf.clone(), 4),
        (
            "unsupported version",
            env("ADD", "x", &path),
            lab.conf("0.3.1", json!({})),
            1,
        ),
        (
            "ipam section",
            env("ADD", "x", &path),
            lab.conf("1.0.0", json!({ "ipam": { "type": "host-local" } })),
            2,
        ),
        (
            "missing netns",
            env("ADD", "x", "/run/netns/c12f-none"),
            conf.clone(),
            3,
        ),
        (
            "a bad lab file",
            env("ADD", "x", &path),
            lab.conf("1.0.0", json!({ "labFile": "/tmp/netlab-c12-f/none.toml" })),
            7,
        ),
    ];
    for (what, e, stdin, code) in cases {
        let err = invoke(&e, &stdin).expect_error(what, code);
        let details = err["details"].as_str().unwrap();
        match what {
            "no CNI_COMMAND" => assert!(details.contains("CNI_COMMAND"), "{err}"),
            "no CNI_NETNS" => assert!(details.contains("CNI_NETNS"), "{err}"),
            "unsupported version" => assert!(details.contains("0.3.1"), "{err}"),
            "missing netns" => assert!(details.contains("c12f-none"), "{err}"),
            _ => {}
        }
        assert!(lab.state().is_none(), "{what}: the lab was created");
        assert!(
            sb.links().len() == 1,
            "{what}: the container got an interface"
        );
    }

    // An exhausted subnet: a /29 has .1-.6; .1 is the lab namespace, .5
    // the gateway, so four containers fit.
    let sbs: Vec<Sandbox> = (1..=5)
        .map(|i| Sandbox::new(&format!("c12f-ct{i}")))
        .collect();
    let status_env = [("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/opt/cni/bin")];
    invoke(&status_env, &conf).expect_ok("STATUS before the lab is up");
    for (i, sb) in sbs.iter().take(4).enumerate() {
        add(&lab, sb, "1.1.0", &format!("fill{i}")).expect_ok("ADD");
    }
    let err = add(&lab, &sbs[4], "1.1.0", "fill4").expect_error("ADD, subnet full", 102);
    assert!(
        err["details"].as_str().unwrap().contains("10.112.6.0/29"),
        "{err}"
    );
    assert_eq!(
        sbs[4].links().len(),
        1,
        "the refused container got an interface"
    );
    assert_eq!(lab.containers().len(), 4);
    invoke(&status_env, &conf).expect_error("STATUS, subnet full", 50);
    invoke(&status_env, &lab.conf("1.0.0", json!({}))).expect_error("STATUS in 1.0.0", 1);
    del(&lab, &sbs[0], "1.1.0", "fill0").expect_ok("DEL");
    invoke(&status_env, &conf).expect_ok("STATUS with a free address");
    let r = add(&lab, &sbs[4], "1.1.0", "fill4").expect_ok("ADD after a DEL");
    assert!(
        r["ips"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.112.6.")
    );
    for (i, sb) in sbs.iter().enumerate().skip(1) {
        del(&lab, sb, "1.1.0", &format!("fill{i}")).expect_ok("DEL");
    }
}

#[test]
fn chained_prev_result_is_passed_on_and_version_answers_in_kind() {
    let lab = CniLab::new("g", 7);
    for (i, version) in VERSIONS.iter().enumerate() {
        let sb = Sandbox::new(&format!("c12g-ct{i}"));
        let mut prev = json!({
            "cniVersion": version,
            "interfaces": [{ "name": "other0", "sandbox": sb.path() }],
            "ips": [{ "address": "192.0.2.9/24", "interface": 0 }],
            "routes": [{ "dst": "192.0.2.0/24" }],
            "dns": { "nameservers": ["192.0.2.53"] },
        });
        if *version == "0.4.0" {
            prev["ips"][0]["version"] = json!("4");
        }
        let r = invoke(
            &env("ADD", &format!("chain{i}"), &sb.path()),
            &lab.conf(version, json!({ "prevResult": prev })),
        )
        .expect_ok("chained ADD");
        assert_eq!(r["cniVersion"], *version);
        assert_eq!(r["interfaces"][0]["name"], "other0", "{r}");
        assert_eq!(r["interfaces"][2]["name"], "eth0", "{r}");
        assert_eq!(r["ips"][0]["address"], "192.0.2.9/24");
        assert_eq!(
            r["ips"][1]["interface"], 2,
            "index shifted past prevResult's: {r}"
        );
        assert_eq!(r["routes"][0]["dst"], "192.0.2.0/24");
        assert_eq!(r["dns"]["nameservers"][0], "192.0.2.53");
        check(&lab, &sb, version, &format!("chain{i}"), &r).expect_ok("CHECK");
        del(&lab, &sb, version, &format!("chain{i}")).expect_ok("DEL");

        let v = invoke(
            &[("CNI_COMMAND", "VERSION")],
            &json!({ "cniVersion": version }).to_string(),
        )
        .expect_ok("VERSION");
        assert_eq!(v["cniVersion"], *version);
        let supported: Vec<&str> = v["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(supported, VERSIONS);
    }
}
