//! The lab file's IPv6 side: derivation, explicit values, refusals.

use std::net::Ipv6Addr;

use super::tests::{rejects, resolve};
use super::*;
use crate::plan::LabPlan;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn addresses6(plan: &LabPlan) -> Vec<String> {
    plan.endpoints
        .iter()
        .map(|e| e.address6.map(|a| a.to_string()).unwrap_or_default())
        .collect()
}

#[test]
fn default_subnet6_follows_the_walkthrough_numbering() {
    let plan = resolve("").unwrap();
    let v6p = plan.ipv6.unwrap();
    assert_eq!(v6p.subnet.to_string(), "fd00:192:168:28::/64");
    assert_eq!(v6p.gateway, v6("fd00:192:168:28::5"));
    assert_eq!(
        addresses6(&plan),
        [
            "fd00:192:168:28::1",
            "fd00:192:168:28::2",
            "fd00:192:168:28::3"
        ]
    );
    let s = plan.sandbox().unwrap();
    assert_eq!(
        s.uplink_address6.unwrap().to_string(),
        "2001:db8:203:113::1/64"
    );
    assert_eq!(
        s.internet_address6.unwrap().to_string(),
        "2001:db8:203:113::2/64"
    );
    assert_eq!(plan.internet_server6(), Some(v6("2001:db8:203:113::2")));
    assert_eq!(
        plan.switch_plan().nat.unwrap().subnet6.unwrap().to_string(),
        "fd00:192:168:28::/64"
    );
}

#[test]
fn derived_from_wide_subnets_keeps_the_offset() {
    let plan = resolve(
        "subnet = \"10.161.0.0/16\"\n[[namespaces]]\nname = \"a\"\naddress = \"10.161.2.7\"",
    )
    .unwrap();
    assert_eq!(
        plan.ipv6.unwrap().subnet.to_string(),
        "fd00:10:161:0::/64"
            .parse::<crate::cidr::Ipv6Cidr>()
            .unwrap()
            .to_string()
    );
    // 10.161.2.7 is offset 0x0207 in the /16.
    assert_eq!(addresses6(&plan), ["fd00:10:161::207"]);
    assert_eq!(
        derived_subnet6(&"255.0.9.0/24".parse().unwrap()).to_string(),
        "fd00:255:0:9::/64"
    );
}

#[test]
fn explicit_subnet6_gateway6_and_address6() {
    let plan = resolve(
        r#"
        subnet6 = "fd12:3456::/112"
        gateway6 = "fd12:3456::fffe"
        [[namespaces]]
        name = "a"
        address6 = "fd12:3456::aa"
        [[namespaces]]
        name = "b"
        "#,
    )
    .unwrap();
    let v6p = plan.ipv6.unwrap();
    assert_eq!(v6p.gateway, v6("fd12:3456::fffe"));
    assert_eq!(addresses6(&plan), ["fd12:3456::aa", "fd12:3456::2"]);
    let gw = plan.switch_plan().ports.last().unwrap().ipv6;
    assert_eq!(gw, Some(v6("fd12:3456::fffe")));
}

#[test]
fn subnet6_none_turns_ipv6_off() {
    let plan = resolve("subnet6 = \"none\"").unwrap();
    assert_eq!(plan.ipv6, None);
    assert!(plan.endpoints.iter().all(|e| e.address6.is_none()));
    let s = plan.sandbox().unwrap();
    assert_eq!((s.uplink_address6, s.internet_address6), (None, None));
    assert_eq!(plan.switch_plan().nat.unwrap().subnet6, None);
    assert!(plan.switch_plan().ports.iter().all(|p| p.ipv6.is_none()));
    rejects(
        "subnet6 = \"none\"\ngateway6 = \"fd00::5\"",
        "gateway6",
        "fd00::5",
    );
    rejects(
        "subnet6 = \"none\"\n[[namespaces]]\nname = \"a\"\naddress6 = \"fd00::1\"",
        "namespaces[0].address6",
        "fd00::1",
    );
    rejects(
        "subnet6 = \"none\"\n[host]\nuplink_address6 = \"2001:db8::1/64\"",
        "host.uplink_address6",
        "2001:db8::1/64",
    );
}

#[test]
fn rejects_bad_subnet6() {
    for bad in [
        "fd00::/48",
        "fd00::/121",
        "fd00::/128",
        "fd00::1/64",
        "banana",
        "10.0.0.0/24",
        "::ffff:0:0/96",
        "::ffff:10.0.0.0/112",
        "fe80::/64",
        "ff02::/64",
        "::/64",
    ] {
        rejects(&format!("subnet6 = \"{bad}\""), "subnet6", bad);
    }
    // The uplink's prefix, default and explicit.
    rejects(
        "subnet6 = \"2001:db8:203:113::/64\"",
        "subnet6",
        "2001:db8:203:113::/64",
    );
    rejects(
        "subnet6 = \"fd00:1::/64\"\n[host]\nuplink_address6 = \"fd00:1::1/48\"\ninternet_address6 = \"fd00:1::2/48\"",
        "subnet6",
        "fd00:1::/64",
    );
}

#[test]
fn rejects_bad_ipv6_addresses() {
    rejects("gateway6 = \"fd00:1::5\"", "gateway6", "fd00:1::5");
    rejects(
        "gateway6 = \"fd00:192:168:28::\"",
        "gateway6",
        "fd00:192:168:28::",
    );
    rejects("gateway6 = \"fe80::1\"", "gateway6", "fe80::1");
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress6 = \"fd00:1::1\"",
        "namespaces[0].address6",
        "fd00:1::1",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress6 = \"192.168.28.1\"",
        "namespaces[0].address6",
        "192.168.28.1",
    );
    // Duplicates: with another namespace (explicit against derived) and
    // with the gateway.
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress6 = \"fd00:192:168:28::2\"\n[[namespaces]]\nname = \"b\"",
        "namespaces[1].address6",
        "fd00:192:168:28::2",
    );
    rejects(
        "[[namespaces]]\nname = \"a\"\naddress6 = \"fd00:192:168:28::5\"",
        "namespaces[0].address6",
        "fd00:192:168:28::5",
    );
    // A /16's offsets do not fit a /120.
    rejects(
        "subnet = \"10.9.0.0/16\"\nsubnet6 = \"fd00:9::/120\"\n[[namespaces]]\nname = \"a\"\naddress = \"10.9.1.1\"",
        "namespaces[0].address6",
        "",
    );
    rejects(
        "[host]\nuplink_address6 = \"2001:db8::/64\"",
        "host.uplink_address6",
        "2001:db8::/64",
    );
    rejects(
        "[host]\ninternet_address6 = \"2001:db8:1::2/64\"",
        "host.internet_address6",
        "2001:db8:1::2/64",
    );
    rejects(
        "[host]\ninternet_address6 = \"2001:db8:203:113::1/64\"",
        "host.internet_address6",
        "2001:db8:203:113::1/64",
    );
    rejects(
        "[host]\nmode = \"root\"\nuplink = \"eth0\"\nuplink_address6 = \"2001:db8::1/64\"",
        "host.uplink_address6",
        "2001:db8::1/64",
    );
}

#[test]
fn attach_gets_the_derived_address6() {
    let plan = resolve("").unwrap();
    let e = plan_endpoint(&plan, "ns9", "192.168.28.9".parse().unwrap()).unwrap();
    assert_eq!(e.address6, Some(v6("fd00:192:168:28::9")));
    let off = resolve("subnet6 = \"none\"").unwrap();
    let e = plan_endpoint(&off, "ns9", "192.168.28.9".parse().unwrap()).unwrap();
    assert_eq!(e.address6, None);
    // An explicit address6 elsewhere can take the derived one.
    let taken = resolve("[[namespaces]]\nname = \"a\"\naddress6 = \"fd00:192:168:28::9\"").unwrap();
    let err = plan_endpoint(&taken, "ns9", "192.168.28.9".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("fd00:192:168:28::9"), "{err}");
}

#[test]
fn old_state_without_ipv6_fields_loads() {
    let plan = resolve("").unwrap();
    let mut json = serde_json::to_value(&plan).unwrap();
    json.as_object_mut().unwrap().remove("ipv6");
    for e in json["endpoints"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("address6");
    }
    let host = json["host"].as_object_mut().unwrap();
    host.remove("uplink_address6");
    host.remove("internet_address6");
    let back: LabPlan = serde_json::from_value(json).unwrap();
    assert_eq!(back.ipv6, None);
    assert!(back.endpoints.iter().all(|e| e.address6.is_none()));
    assert_eq!(back.internet_server6(), None);
}
