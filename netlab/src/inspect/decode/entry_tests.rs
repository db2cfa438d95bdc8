//! Tests of `entry.rs`: every map's entries decoded from bytes.

use std::collections::BTreeMap;

use netlab_common::{
    nat::{NAT_FRAG_OUT, NAT_STATE_TCP_ESTABLISHED},
    switch::{HOST_ADDR_LOCAL, PORT_KIND_ENDPOINT},
};
use serde_json::json;

use super::*;
use crate::inspect::decode::context::IfNames;

fn cx() -> Context {
    let mut names = BTreeMap::new();
    names.insert(5, "veth-1-br".to_string());
    names.insert(9, "vbridge".to_string());
    Context {
        ifnames: IfNames(names),
        now_ns: 10_000_000_000,
    }
}

#[test]
fn fdb_entry_from_bytes() {
    let key = [0x02, 0x4e, 10, 79, 1, 1, 0, 0];
    // port_ifindex 5 (LE), kind endpoint, flags static, pad
    let value = [5, 0, 0, 0, 1, 1, 0, 0];
    let d = entry(FDB_MAP, &key, &[value.to_vec()], &cx()).unwrap();
    assert_eq!(d.key.to_json(), json!({ "mac": "02:4e:0a:4f:01:01" }));
    assert_eq!(
        d.value.to_json(),
        json!({ "port_ifindex": 5, "port": "veth-1-br", "kind": "endpoint", "flags": "static" })
    );
    assert!(d.per_cpu.is_none());
}

#[test]
fn nat_entry_from_bytes() {
    // 10.79.1.1:40000 -> 203.0.113.2:80 tcp
    let mut key = Vec::new();
    key.extend([10, 79, 1, 1]);
    key.extend([203, 0, 113, 2]);
    key.extend(40000u16.to_be_bytes());
    key.extend(80u16.to_be_bytes());
    key.extend([6, 0, 0, 0]);
    let mut value = Vec::new();
    value.extend([203, 0, 113, 1]);
    value.extend(20001u16.to_be_bytes());
    value.extend([NAT_STATE_TCP_ESTABLISHED, 0]);
    value.extend(7_500_000_000u64.to_ne_bytes());
    let d = entry(NAT_ORIG_MAP, &key, &[value], &cx()).unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "proto": "tcp", "saddr": "10.79.1.1", "sport": 40000, "daddr": "203.0.113.2", "dport": 80 })
    );
    assert_eq!(
        d.value.to_json(),
        json!({ "addr": "203.0.113.1", "port": 20001, "state": "ESTABLISHED",
                "kind": "snat", "last_seen_ns": 7_500_000_000u64, "age_ms": 2500 })
    );
}

#[test]
fn nat_frag_entry_from_bytes() {
    // A datagram 10.79.1.1 -> 203.0.113.2, id 0x1234, udp, leaving.
    let mut key = Vec::new();
    key.extend([10, 79, 1, 1]);
    key.extend([203, 0, 113, 2]);
    key.extend(0x1234u16.to_be_bytes());
    key.extend([17, NAT_FRAG_OUT]);
    let mut value = Vec::new();
    value.extend([203, 0, 113, 1]);
    value.extend([0; 4]);
    value.extend(9_000_000_000u64.to_ne_bytes());
    let d = entry(NAT_FRAGS_MAP, &key, &[value], &cx()).unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "dir": "out", "proto": "udp", "saddr": "10.79.1.1",
                "daddr": "203.0.113.2", "id": 0x1234 })
    );
    assert_eq!(
        d.value.to_json(),
        json!({ "addr": "203.0.113.1", "last_seen_ns": 9_000_000_000u64, "age_ms": 1000 })
    );
}

#[test]
fn per_cpu_counters_are_summed() {
    let key = (Counter::ArpAnswered as u32).to_ne_bytes();
    let values = vec![3u64.to_ne_bytes().to_vec(), 4u64.to_ne_bytes().to_vec()];
    let d = entry(COUNTERS_MAP, &key, &values, &cx()).unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "index": 5, "counter": "arp_answered" })
    );
    assert_eq!(d.value.to_json(), json!({ "count": 7 }));
    assert_eq!(
        serde_json::to_value(d.per_cpu.unwrap()).unwrap(),
        json!([{"count": 3}, {"count": 4}])
    );
}

#[test]
fn nat_config_and_ports_from_bytes() {
    let mut v = Vec::new();
    v.extend([10, 79, 1, 0]);
    v.extend([255, 255, 255, 0]);
    v.extend([203, 0, 113, 1]);
    v.extend(20000u16.to_ne_bytes());
    v.extend(29999u16.to_ne_bytes());
    v.extend(3u32.to_ne_bytes());
    v.extend([0x02, 0x4e, 10, 79, 1, 5, 0, 0]);
    let d = entry(NAT_CONFIG_MAP, &0u32.to_ne_bytes(), &[v], &cx()).unwrap();
    assert_eq!(
        d.value.to_json(),
        json!({ "subnet": "10.79.1.0/24", "external": "203.0.113.1", "port_min": 20000,
                "port_max": 29999, "flags": ["enabled", "fast_path"],
                "gateway_mac": "02:4e:0a:4f:01:05" })
    );

    let mut p = Vec::new();
    p.extend(5u32.to_ne_bytes());
    p.extend(5u32.to_ne_bytes());
    p.extend([10, 79, 1, 1]);
    p.extend(0u32.to_ne_bytes());
    p.extend([0x02, 0x4e, 10, 79, 1, 1, PORT_KIND_ENDPOINT, 0]);
    let d = entry(PORTS_MAP, &5u32.to_ne_bytes(), &[p], &cx()).unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "ifindex": 5, "port": "veth-1-br" })
    );
    assert_eq!(d.value.get("ipv4").unwrap(), "10.79.1.1");
    assert_eq!(d.value.get("kind").unwrap(), "endpoint");
    assert_eq!(d.value.get("mac").unwrap(), "02:4e:0a:4f:01:01");
}

#[test]
fn host_addrs_from_bytes() {
    let d = entry(
        HOST_ADDRS_MAP,
        &[203, 0, 113, 1],
        &[vec![HOST_ADDR_LOCAL]],
        &cx(),
    )
    .unwrap();
    assert_eq!(d.key.to_json(), json!({ "ipv4": "203.0.113.1" }));
    assert_eq!(
        d.value.to_json(),
        json!({ "kind": "address", "blocked": true })
    );
    let d = entry(HOST_ADDRS_MAP, &[203, 0, 113, 255], &[vec![2]], &cx()).unwrap();
    assert_eq!(d.value.get("kind").unwrap(), "broadcast");
    assert_eq!(host_addr_kind(7), "kind-7");
    assert!(entry(HOST_ADDRS_MAP, &[203, 0, 113, 1], &[vec![1, 0]], &cx()).is_err());
}

#[test]
fn wrong_sizes_are_refused_not_misread() {
    let err = entry(FDB_MAP, &[0; 6], &[vec![0; 8]], &cx()).unwrap_err();
    assert!(err.contains("6 bytes where FdbKey expects 8"), "{err}");
    assert!(entry("nope", &[], &[], &cx()).is_err());
    assert!(is_empty_slot(FLOOD_MAP, &[vec![0; 24]]));
    assert!(!is_empty_slot(FDB_MAP, &[vec![0; 8]]));
}

#[test]
fn port_slots_rows_show_the_slot_and_hide_when_empty() {
    let d = entry(
        PORT_SLOTS_MAP,
        &5u32.to_ne_bytes(),
        &[3u32.to_ne_bytes().to_vec()],
        &cx(),
    )
    .unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "ifindex": 5, "port": "veth-1-br" })
    );
    assert_eq!(d.value.to_json(), json!({ "slot": 2 }));
    assert!(is_empty_slot(PORT_SLOTS_MAP, &[vec![0; 4]]));
    assert!(!is_empty_slot(
        PORT_SLOTS_MAP,
        &[3u32.to_ne_bytes().to_vec()]
    ));
}

fn ip6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

#[test]
fn ipv6_switch_maps_from_bytes() {
    // endpoints6: address → MAC, port 5.
    let mut value = vec![0x02, 0x4e, 10, 79, 1, 1, 0, 0];
    value.extend(5u32.to_ne_bytes());
    let d = entry(ENDPOINTS6_MAP, &ip6("fd00:10:79:1::1"), &[value], &cx()).unwrap();
    assert_eq!(d.key.to_json(), json!({ "ipv6": "fd00:10:79:1::1" }));
    assert_eq!(
        d.value.to_json(),
        json!({ "mac": "02:4e:0a:4f:01:01", "port_ifindex": 5, "port": "veth-1-br" })
    );

    // ports6: ifindex 5 → global, link-local.
    let mut value = ip6("fd00:10:79:1::1").to_vec();
    value.extend(ip6("fe80::4e:aff:fe4f:101"));
    let d = entry(PORTS6_MAP, &5u32.to_ne_bytes(), &[value], &cx()).unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "ifindex": 5, "port": "veth-1-br" })
    );
    assert_eq!(
        d.value.to_json(),
        json!({ "global": "fd00:10:79:1::1", "link_local": "fe80::4e:aff:fe4f:101" })
    );

    let d = entry(
        HOST_ADDRS6_MAP,
        &ip6("2001:db8:203:113::1"),
        &[vec![HOST_ADDR_LOCAL]],
        &cx(),
    )
    .unwrap();
    assert_eq!(d.key.to_json(), json!({ "ipv6": "2001:db8:203:113::1" }));
    assert_eq!(
        d.value.to_json(),
        json!({ "kind": "address", "blocked": true })
    );
    // An IPv4-sized key is not read as an IPv6 one.
    assert!(entry(HOST_ADDRS6_MAP, &[203, 0, 113, 1], &[vec![1]], &cx()).is_err());
}

#[test]
fn nat66_maps_from_bytes() {
    let mut v = ip6("fd00:10:79:1::").to_vec();
    v.extend(ip6("2001:db8:203:113::1"));
    v.extend([64, 0]);
    v.extend(20000u16.to_ne_bytes());
    v.extend(29999u16.to_ne_bytes());
    v.extend([0x02, 0x4e, 10, 79, 1, 5]);
    v.extend(3u32.to_ne_bytes());
    let d = entry(NAT6_CONFIG_MAP, &0u32.to_ne_bytes(), &[v], &cx()).unwrap();
    assert_eq!(
        d.value.to_json(),
        json!({ "subnet": "fd00:10:79:1::/64", "external": "2001:db8:203:113::1",
                "port_min": 20000, "port_max": 29999, "flags": ["enabled", "fast_path"],
                "gateway_mac": "02:4e:0a:4f:01:05" })
    );

    // [fd00:10:79:1::1]:40000 -> [2001:db8:203:113::2]:80 tcp
    let mut key = ip6("fd00:10:79:1::1").to_vec();
    key.extend(ip6("2001:db8:203:113::2"));
    key.extend(40000u16.to_be_bytes());
    key.extend(80u16.to_be_bytes());
    key.extend([6, 0, 0, 0]);
    let mut value = ip6("2001:db8:203:113::1").to_vec();
    value.extend(20001u16.to_be_bytes());
    value.extend([NAT_STATE_TCP_ESTABLISHED, 0]);
    value.extend([0; 4]);
    value.extend(7_500_000_000u64.to_ne_bytes());
    for map in [NAT6_ORIG_MAP, NAT6_REPLY_MAP] {
        let d = entry(map, &key, std::slice::from_ref(&value), &cx()).unwrap();
        assert_eq!(
            d.key.to_json(),
            json!({ "proto": "tcp", "saddr": "fd00:10:79:1::1", "sport": 40000,
                    "daddr": "2001:db8:203:113::2", "dport": 80 })
        );
        assert_eq!(
            d.value.to_json(),
            json!({ "addr": "2001:db8:203:113::1", "port": 20001, "state": "ESTABLISHED",
                    "kind": "snat", "last_seen_ns": 7_500_000_000u64, "age_ms": 2500 })
        );
    }

    // A fragmented ICMPv6 datagram leaving, identification 0x12345678.
    let mut key = ip6("fd00:10:79:1::1").to_vec();
    key.extend(ip6("2001:db8:203:113::2"));
    key.extend(0x1234_5678u32.to_be_bytes());
    key.extend([58, NAT_FRAG_OUT, 0, 0]);
    let mut value = ip6("2001:db8:203:113::1").to_vec();
    value.extend(9_000_000_000u64.to_ne_bytes());
    let d = entry(NAT6_FRAGS_MAP, &key, &[value], &cx()).unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "dir": "out", "proto": "icmpv6", "saddr": "fd00:10:79:1::1",
                "daddr": "2001:db8:203:113::2", "id": 0x1234_5678 })
    );
    assert_eq!(
        d.value.to_json(),
        json!({ "addr": "2001:db8:203:113::1", "last_seen_ns": 9_000_000_000u64,
                "age_ms": 1000 })
    );
}

/// No table of the map table is printed as raw bytes: each has a
/// decoder that reads an entry of its key and value sizes. (The ring
/// buffer is a stream, and `xdp_ports` a device map of ifindexes that
/// `map dump` has never decoded.)
#[test]
fn every_table_has_a_decoder() {
    for spec in crate::bpf::maps::all_specs() {
        if spec.map_type == aya::maps::MapType::RingBuf
            || spec.name == netlab_common::maps::XDP_PORTS_MAP
        {
            continue;
        }
        let key = vec![0; spec.key_size as usize];
        let value = vec![0; spec.value_size as usize];
        let d = entry(spec.name, &key, &[value], &cx())
            .unwrap_or_else(|e| panic!("map {}: {e}", spec.name));
        assert!(!d.key.0.is_empty(), "map {}: no key fields", spec.name);
    }
}

#[test]
fn published_ipv6_ports_from_bytes() {
    let cx = Context {
        ifnames: IfNames(Default::default()),
        now_ns: 0,
    };
    let mut key = [0u8; 16].to_vec();
    key.extend(8080u16.to_be_bytes());
    key.extend([6, 0]);
    let mut value = "fd00:10:79:1::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    value.extend(80u16.to_be_bytes());
    value.extend([0, 0]);
    let d = entry(netlab_common::nat6::NAT6_PUBLISH_MAP, &key, &[value], &cx).unwrap();
    assert_eq!(
        d.key.to_json(),
        json!({ "addr": "::", "port": 8080, "proto": "tcp" })
    );
    assert_eq!(
        d.value.to_json(),
        json!({ "addr": "fd00:10:79:1::1", "port": 80 })
    );
}
