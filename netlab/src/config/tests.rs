use std::net::Ipv4Addr;

use super::*;
use crate::plan::{
    DatapathKind, LabPlan, NatSettings, PortRole, Publication, check_publications, expand,
    planned_host_addresses,
};

pub(super) fn resolve(text: &str) -> Result<LabPlan, ConfigError> {
    LabConfig::from_toml(text, "test.toml")?.resolve()
}

/// Asserts that validation fails and one problem names `field` and `value`.
pub(super) fn rejects(text: &str, field: &str, value: &str) {
    match resolve(text) {
        Ok(plan) => panic!("accepted {text:?}: {plan:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                e.problems()
                    .iter()
                    .any(|p| p.field.starts_with(field) && p.value == value),
                "expected a problem with {field} = {value:?}, got: {msg}"
            );
            assert!(msg.contains(field), "{msg}");
        }
    }
}

#[test]
fn empty_file_is_the_walkthrough() {
    let plan = resolve("").unwrap();
    assert_eq!(plan.name, "netlab");
    assert_eq!(plan.datapath, DatapathKind::Ebpf);
    assert_eq!(plan.subnet.to_string(), "192.168.28.0/24");
    assert_eq!(plan.gateway, Ipv4Addr::new(192, 168, 28, 5));
    assert_eq!(plan.gateway_device, "vbridge");
    assert_eq!(plan.gateway_port, "vbridge-p");
    assert_eq!(plan.gateway_mac(), [2, 0x4e, 192, 168, 28, 5]);
    let names: Vec<_> = plan
        .endpoints
        .iter()
        .map(|e| {
            (
                e.namespace.as_str(),
                e.veth.as_str(),
                e.peer.as_str(),
                e.address.to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("ns1", "veth-1", "veth-1-br", "192.168.28.1".to_string()),
            ("ns2", "veth-2", "veth-2-br", "192.168.28.2".to_string()),
            ("ns3", "veth-3", "veth-3-br", "192.168.28.3".to_string()),
        ]
    );
    assert_eq!(plan.endpoints[1].mac, [2, 0x4e, 192, 168, 28, 2]);
    let s = plan.sandbox().unwrap();
    assert_eq!(s.namespace, "netlab-host");
    assert_eq!(s.internet_namespace, "netlab-inet");
    assert_eq!(s.uplink, "uplink");
    assert_eq!(s.uplink_address.to_string(), "203.0.113.1/24");
    assert_eq!(s.internet_address.to_string(), "203.0.113.2/24");
    assert_eq!(plan.nat, NatSettings::default());
    assert!(!plan.allow_host_access, "host access is off by default");
    assert_eq!(
        plan.namespaces(),
        ["netlab-host", "netlab-inet", "ns1", "ns2", "ns3"]
    );
}

#[test]
fn full_file_parses() {
    let plan = resolve(
        r#"
        name = "lab2"
        datapath = "kernel"
        subnet = "10.1.2.0/24"
        gateway = "10.1.2.254"
        gateway_device = "gw0"
        [host]
        namespace = "h"
        internet_namespace = "i"
        uplink = "up0"
        uplink_address = "198.51.100.1/24"
        internet_address = "198.51.100.9/24"
        allow_host_access = true
        [[namespaces]]
        name = "a"
        address = "10.1.2.1"
        [[namespaces]]
        name = "b"
        veth = "eth0"
        peer = "b-br"
        [nat]
        port_min = 40000
        port_max = 40010
        max_entries = 128
        udp_timeout = 5
        "#,
    )
    .unwrap();
    assert_eq!(plan.datapath, DatapathKind::Kernel);
    assert_eq!(plan.gateway_port, "gw0-p");
    assert_eq!(plan.endpoints[1].address, Ipv4Addr::new(10, 1, 2, 2));
    assert_eq!(plan.endpoints[1].veth, "eth0");
    assert_eq!(plan.endpoints[1].peer, "b-br");
    assert_eq!(plan.nat.port_min, 40000);
    assert_eq!(plan.nat.timeouts.udp, 5);
    assert_eq!(plan.nat.timeouts.icmp, 30);
    assert_eq!(plan.host_netns(), Some("h"));
    assert!(plan.allow_host_access);
}

#[test]
fn default_addresses_skip_gateway_and_explicit_ones() {
    let plan = resolve(
        r#"
        subnet = "10.0.0.0/29"
        gateway = "10.0.0.2"
        [[namespaces]]
        name = "a"
        [[namespaces]]
        name = "b"
        address = "10.0.0.3"
        [[namespaces]]
        name = "c"
        "#,
    )
    .unwrap();
    let ips: Vec<_> = plan
        .endpoints
        .iter()
        .map(|e| e.address.to_string())
        .collect();
    assert_eq!(ips, ["10.0.0.1", "10.0.0.3", "10.0.0.4"]);
}

#[test]
fn shorthand_and_default_gateway_follow_the_subnet() {
    let plan = resolve("name = \"t1\"\nsubnet = \"10.77.1.0/24\"\nnamespace_count = 2\nnamespace_prefix = \"t1-ns\"").unwrap();
    assert_eq!(plan.gateway, Ipv4Addr::new(10, 77, 1, 5));
    assert_eq!(
        plan.namespaces(),
        ["t1-host", "t1-inet", "t1-ns1", "t1-ns2"]
    );
}

#[test]
fn rejects_unknown_fields() {
    let e = resolve("nmae = \"x\"").unwrap_err();
    assert!(e.to_string().contains("nmae"), "{e}");
    let e = resolve("[host]\nmdoe = \"root\"").unwrap_err();
    assert!(e.to_string().contains("mdoe"), "{e}");
    let e = resolve("[[namespaces]]\nname = \"a\"\naddr = \"1.2.3.4\"").unwrap_err();
    assert!(e.to_string().contains("addr"), "{e}");
}

#[test]
fn rejects_long_and_bad_interface_names() {
    rejects(
        "gateway_device = \"abcdefghijklmnop\"",
        "gateway_device",
        "abcdefghijklmnop",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\nveth = \"a/b\"",
        "namespaces[0].veth",
        "a/b",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\npeer = \"a b\"",
        "namespaces[0].peer",
        "a b",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\npeer = \"a:b\"",
        "namespaces[0].peer",
        "a:b",
    );
    // vbridge-long-1 is 14 bytes, its default port adds 2.
    rejects(
        "gateway_device = \"vbridge-long-1\"",
        "gateway_port",
        "vbridge-long-1-p",
    );
    rejects(
        "[host]\nuplink = \"uplink-with-long-name\"",
        "host.uplink",
        "uplink-with-long-name",
    );
}

#[test]
fn rejects_addresses_outside_or_reserved() {
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress = \"192.168.29.1\"",
        "namespaces[0].address",
        "192.168.29.1",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.0\"",
        "namespaces[0].address",
        "192.168.28.0",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.255\"",
        "namespaces[0].address",
        "192.168.28.255",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress = \"banana\"",
        "namespaces[0].address",
        "banana",
    );
    rejects("gateway = \"10.0.0.1\"", "gateway", "10.0.0.1");
    rejects("gateway = \"192.168.28.255\"", "gateway", "192.168.28.255");
    rejects("subnet = \"192.168.28.1/24\"", "subnet", "192.168.28.1/24");
    rejects("subnet = \"192.168.28.0/31\"", "subnet", "192.168.28.0/31");
    rejects(
        "subnet = \"203.0.113.0/24\"",
        "host.uplink_address",
        "203.0.113.1/24",
    );
    rejects(
        "[host]\ninternet_address = \"198.51.100.2/24\"",
        "host.internet_address",
        "198.51.100.2/24",
    );
}

#[test]
fn rejects_duplicates() {
    rejects(
        "[[namespaces]]\nname = \"a\"\n[[namespaces]]\nname = \"a\"",
        "namespaces[1].name",
        "a",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.9\"\n[[namespaces]]\nname = \"b\"\naddress = \"192.168.28.9\"",
        "namespaces[1].address",
        "192.168.28.9",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.5\"",
        "namespaces[0].address",
        "192.168.28.5",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\npeer = \"vbridge\"",
        "namespaces[0].peer",
        "vbridge",
    );
    rejects(
        "[[namespaces]]\nname = \"netlab-host\"",
        "namespaces[0].name",
        "netlab-host",
    );
    rejects(
        "namespace_count = 2\n[[namespaces]]\nname = \"a\"",
        "namespace_count",
        "2",
    );
}

#[test]
fn rejects_bad_nat_ranges() {
    rejects(
        "[nat]\nport_min = 30000\nport_max = 20000",
        "nat.port_max",
        "20000",
    );
    rejects("[nat]\nport_min = 80", "nat.port_min", "80");
    rejects("[nat]\nport_max = 70000", "nat.port_max", "70000");
    rejects("[nat]\nmax_entries = 0", "nat.max_entries", "0");
    rejects("[nat]\nudp_timeout = 0", "nat.udp_timeout", "0");
}

#[test]
fn rejects_bad_names_and_root_mode_gaps() {
    rejects("name = \"my lab\"", "name", "my lab");
    rejects(
        "[[namespaces]]\nname = \"../etc\"",
        "namespaces[0].name",
        "../etc",
    );
    rejects("[host]\nmode = \"root\"", "host.uplink", "");
    rejects(
        "[host]\nmode = \"root\"\nuplink = \"eth0\"\nnamespace = \"x\"",
        "host.namespace",
        "x",
    );
    let plan = resolve("[host]\nmode = \"root\"\nuplink = \"eth0\"").unwrap();
    assert_eq!(plan.host_netns(), None);
    assert_eq!(plan.internet_server(), None);
    assert_eq!(plan.namespaces(), ["ns1", "ns2", "ns3"]);
}

#[test]
fn plans_an_attached_endpoint() {
    let plan = resolve("").unwrap();
    let e = plan_endpoint(&plan, "ns4", Ipv4Addr::new(192, 168, 28, 4)).unwrap();
    assert_eq!(
        (e.index, e.veth.as_str(), e.peer.as_str()),
        (4, "veth-4", "veth-4-br")
    );
    assert!(plan_endpoint(&plan, "ns4", Ipv4Addr::new(192, 168, 28, 1)).is_err());
    assert!(plan_endpoint(&plan, "ns4", Ipv4Addr::new(192, 168, 28, 5)).is_err());
    assert!(plan_endpoint(&plan, "ns1", Ipv4Addr::new(192, 168, 28, 9)).is_err());
    assert!(plan_endpoint(&plan, "ns4", Ipv4Addr::new(10, 0, 0, 1)).is_err());
}

// The plan derived from a resolved lab: the switch plan and the
// published ports.

#[test]
fn switch_plan_of_the_walkthrough() {
    let plan = LabConfig::default().resolve().unwrap();
    let sp = plan.switch_plan();
    assert_eq!(sp.lab, "netlab");
    assert_eq!(sp.host_netns.as_deref(), Some("netlab-host"));
    let devs: Vec<_> = sp
        .ports
        .iter()
        .map(|p| (p.port_dev.as_str(), p.role))
        .collect();
    assert_eq!(
        devs,
        [
            ("veth-1-br", PortRole::Endpoint),
            ("veth-2-br", PortRole::Endpoint),
            ("veth-3-br", PortRole::Endpoint),
            ("vbridge-p", PortRole::Gateway),
        ]
    );
    assert_eq!(sp.ports[0].mac, [2, 0x4e, 192, 168, 28, 1]);
    assert_eq!(sp.ports[0].namespace.as_deref(), Some("ns1"));
    assert_eq!(sp.ports[0].deliver_dev, None);
    assert_eq!(sp.ports[3].mac, [2, 0x4e, 192, 168, 28, 5]);
    assert_eq!(sp.ports[3].ipv4, Ipv4Addr::new(192, 168, 28, 5));
    assert_eq!(sp.ports[3].deliver_dev.as_deref(), Some("vbridge"));
    assert!(!sp.allow_host_access);
    let nat = sp.nat.unwrap();
    assert_eq!(nat.uplink_dev, "uplink");
    assert_eq!(
        (nat.subnet, nat.prefix_len),
        (Ipv4Addr::new(192, 168, 28, 0), 24)
    );
    assert_eq!((nat.port_min, nat.port_max), (20000, 29999));
}

fn publication(ns: &str, spec: &str) -> Publication {
    Publication {
        namespace: ns.into(),
        spec: spec.parse().unwrap(),
    }
}

#[test]
fn checks_name_field_and_value() {
    let plan = LabConfig::default().resolve().unwrap();
    let known = planned_host_addresses(&plan).unwrap();
    let existing = vec![publication("ns1", "8080:80")];
    let cases = [
        ("ns9", "8081:80", "not an endpoint"),
        (
            "ns2",
            "8080:80",
            "collides with publication ns1 8080:80/tcp",
        ),
        ("ns2", "20000:80", "NAT's port range"),
        ("ns2", "10.9.9.9:8082:80", "not an address of the host side"),
    ];
    for (ns, spec, why) in cases {
        let new = vec![("publish".to_string(), publication(ns, spec))];
        let problems = check_publications(&plan, &existing, &new, Some(&known));
        assert_eq!(problems.len(), 1, "{ns} {spec}: {problems:?}");
        assert_eq!(problems[0].field, "publish");
        assert!(problems[0].reason.contains(why), "{problems:?}");
    }
    let ok = vec![
        ("a".to_string(), publication("ns2", "8080:80/udp")),
        ("b".to_string(), publication("ns2", "127.0.0.1:9000:9000")),
    ];
    assert!(check_publications(&plan, &existing, &ok, Some(&known)).is_empty());
}

#[test]
fn expands_ranges_port_for_port() {
    let plan = LabConfig::default().resolve().unwrap();
    let ports = expand(&plan, &[publication("ns2", "8000-8002:9000-9002/udp")]);
    assert_eq!(ports.len(), 3);
    assert_eq!(ports[2].host_port, 8002);
    assert_eq!(ports[2].port, 9002);
    assert_eq!(ports[2].protocol, 17);
    assert_eq!(ports[2].address, Ipv4Addr::new(192, 168, 28, 2));
}
