//! The CNI plugin's `portMappings` (the `portMappings` capability, as
//! podman `-p` and kubelet `hostPort` send it): published through the lab's
//! published ports on ADD, checked by CHECK, removed on DEL, refused whole
//! when they cannot be published. Every case for every spec version. Lab
//! `c12i` on 10.112.9.0/24; container namespaces `c12i-…`.

use netlab_tests::cni::{CniLab, Invocation, Sandbox, VERSIONS, address_of, env, invoke};
use serde_json::{Value, json};

/// An echo round trip from the lab's internet namespace to the published
/// port on the uplink address (203.0.113.1).
fn reaches_published(lab: &CniLab, port: u16) -> bool {
    use netlab_tests::traffic::{tcp_connect, tcp_echo};
    let to = std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(203, 0, 113, 1), port);
    tcp_connect(&lab.inet_ns(), to, std::time::Duration::from_secs(2))
        .and_then(|mut s| tcp_echo(&mut s, b"published"))
        .is_ok()
}

#[test]
fn port_mappings_are_published_on_add_and_removed_on_del_for_every_version() {
    use netlab_tests::traffic::TcpEchoServer;
    let lab = CniLab::new("i", 9);
    for (i, version) in VERSIONS.iter().enumerate() {
        let sb = Sandbox::new(&format!("c12i-ct{i}"));
        let id = format!("pub{i}");
        let host_port = 8080 + i as u16;
        let mappings = json!({ "runtimeConfig": { "portMappings": [
            { "hostPort": host_port, "containerPort": 80, "protocol": "tcp" },
        ] } });
        let r = invoke(
            &env("ADD", &id, &sb.path()),
            &lab.conf(version, mappings.clone()),
        )
        .expect_ok("ADD with portMappings");
        let addr: std::net::Ipv4Addr = address_of(&r).parse().unwrap();
        let _server = TcpEchoServer::start(&sb.name, std::net::SocketAddrV4::new(addr, 80));
        assert!(
            reaches_published(&lab, host_port),
            "{version}: published port unreachable"
        );
        let publications = lab.state().unwrap()["plan"]["publications"].clone();
        assert!(
            publications.to_string().contains(&format!("cni:{id}/eth0")),
            "{publications}"
        );

        // The same host port for another container: refused, nothing left.
        let other = Sandbox::new(&format!("c12i-cx{i}"));
        let err = invoke(
            &env("ADD", &format!("clash{i}"), &other.path()),
            &lab.conf(version, mappings.clone()),
        )
        .expect_error("ADD, host port taken", 7);
        assert!(
            err["details"]
                .as_str()
                .unwrap()
                .contains(&host_port.to_string()),
            "{err}"
        );
        assert_eq!(
            lab.containers().len(),
            1,
            "the refused container kept a record"
        );
        assert_eq!(
            other.links().len(),
            1,
            "the refused container kept an interface"
        );

        // CHECK knows the mapping: fine now, an error once it is gone.
        let with_prev = |prev: &Value| {
            let mut c = mappings.clone();
            c["prevResult"] = prev.clone();
            c
        };
        invoke(
            &env("CHECK", &id, &sb.path()),
            &lab.conf(version, with_prev(&r)),
        )
        .expect_ok("CHECK with portMappings");
        let spec = format!("{host_port}:80");
        let out = lab.netlab(&["unpublish", &format!("cni:{id}/eth0"), &spec]);
        assert!(out.status.success(), "{}", netlab_tests::describe(&out));
        let err = invoke(
            &env("CHECK", &id, &sb.path()),
            &lab.conf(version, with_prev(&r)),
        )
        .expect_error("CHECK, mapping unpublished by hand", 103);
        assert!(
            err["details"].as_str().unwrap().contains("port mapping"),
            "{err}"
        );
        let out = lab.netlab(&["publish", &format!("cni:{id}/eth0"), &spec]);
        assert!(out.status.success(), "{}", netlab_tests::describe(&out));

        // DEL unpublishes.
        invoke(&env("DEL", &id, &sb.path()), &lab.conf(version, mappings)).expect_ok("DEL");
        assert!(
            !reaches_published(&lab, host_port),
            "{version}: still published after DEL"
        );
        let publications = lab.state().unwrap()["plan"]["publications"].clone();
        assert_eq!(publications, json!([]), "{publications}");
    }
    // What published ports cannot do is refused before anything happens.
    let sb = Sandbox::new("c12i-bad");
    let sctp = json!({ "runtimeConfig": { "portMappings": [
        { "hostPort": 9000, "containerPort": 90, "protocol": "sctp" },
    ] } });
    let err = add_with(&lab, &sb, sctp).expect_error("sctp mapping", 2);
    assert!(err["details"].as_str().unwrap().contains("sctp"), "{err}");
    let v6 = json!({ "runtimeConfig": { "portMappings": [
        { "hostPort": 9000, "containerPort": 90, "protocol": "tcp", "hostIP": "::" },
    ] } });
    add_with(&lab, &sb, v6).expect_error("IPv6 host address", 2);
    assert!(lab.containers().is_empty());
    assert_eq!(sb.links().len(), 1);
}

fn add_with(lab: &CniLab, sb: &Sandbox, extra: Value) -> Invocation {
    invoke(&env("ADD", "bad", &sb.path()), &lab.conf("1.1.0", extra))
}
