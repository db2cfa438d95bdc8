//! One map entry decoded from its raw key/value bytes (as the kernel
//! returns them) into named fields, for every map the datapath pins.

use netlab_common::{
    counters::{Counter, PortStats},
    maps::{
        COUNTERS_MAP, ENDPOINTS_MAP, ENDPOINTS6_MAP, FDB_MAP, FLOOD_MAP, HOST_ADDRS_MAP,
        HOST_ADDRS6_MAP, PORT_SLOTS_MAP, PORT_STATS_MAP, PORTS_MAP, PORTS6_MAP, SWITCH_CONFIG_MAP,
    },
    nat::{
        NAT_CONFIG_MAP, NAT_FRAGS_MAP, NAT_ORIG_MAP, NAT_PUBLISH_MAP, NAT_REPLY_MAP, NatConfig,
        NatEntry, NatFragEntry, NatFragKey, NatKey, PUBLISH_NETNS_MAP, PUBLISH_SOCKS_MAP,
        PublishEntry, PublishKey, PublishNetns, PublishSockEntry, PublishSockKey,
    },
    nat6::{
        NAT6_CONFIG_MAP, NAT6_FRAGS_MAP, NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6Config, Nat6Entry,
        Nat6FragEntry, Nat6FragKey, Nat6Key,
    },
    switch::{
        Endpoint, FdbEntry, FdbKey, Port6, PortInfo, SwitchConfig, TRACE_EVENTS, TRACE_FRAMES,
    },
};

use super::{
    context::Context,
    fields::{Decoded, Fields, fields},
    records::{
        endpoint, nat_entry, nat_frag_entry, nat_frag_key, nat_key, nat6_config, nat6_entry,
        nat6_frag_entry, nat6_frag_key, nat6_key, port_info, port6, publish_entry, publish_key,
        stats,
    },
    scalars::{fdb_flags, host_addr_kind, ipv4, ipv6, mac, nat_flags, port, port_kind},
};

/// Reads a `#[repr(C)]` map type from exactly its bytes.
pub fn read<T: aya::Pod>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() != size_of::<T>() {
        return Err(format!(
            "{} bytes where {} expects {}",
            bytes.len(),
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("?"),
            size_of::<T>()
        ));
    }
    // SAFETY: T is Pod (any bit pattern is valid) and the length matches.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Whether an entry is worth listing: array slots that hold nothing (an
/// empty flood slot, an unused port statistics slot) are left out.
pub fn is_empty_slot(map: &str, values: &[Vec<u8>]) -> bool {
    match map {
        FLOOD_MAP | PORT_STATS_MAP | PORT_SLOTS_MAP => {
            values.iter().all(|v| v.iter().all(|b| *b == 0))
        }
        _ => false,
    }
}

/// Decodes one entry of map `map`. `values` has one element, or one per
/// CPU for per-CPU maps. Errors name what did not fit (the layout check
/// runs first, so this means a map this build does not know).
pub fn entry(map: &str, key: &[u8], values: &[Vec<u8>], cx: &Context) -> Result<Decoded, String> {
    let one = || values.first().map(Vec::as_slice).ok_or("no value");
    let plain = |key: Fields, value: Fields| Decoded {
        key,
        value,
        per_cpu: None,
    };
    Ok(match map {
        FDB_MAP => {
            let k: FdbKey = read(key)?;
            let v: FdbEntry = read(one()?)?;
            plain(
                fields! { "mac" => mac(&k.mac) },
                fields! {
                    "port_ifindex" => v.port_ifindex,
                    "port" => cx.ifnames.name(v.port_ifindex),
                    "kind" => port_kind(v.kind),
                    "flags" => fdb_flags(v.flags),
                },
            )
        }
        PORTS_MAP => {
            let k: u32 = read(key)?;
            let v: PortInfo = read(one()?)?;
            plain(
                fields! { "ifindex" => k, "port" => cx.ifnames.name(k) },
                port_info(&v, cx),
            )
        }
        FLOOD_MAP => {
            let k: u32 = read(key)?;
            let v: PortInfo = read(one()?)?;
            plain(fields! { "slot" => k }, port_info(&v, cx))
        }
        PORT_SLOTS_MAP => {
            let k: u32 = read(key)?;
            let v: u32 = read(one()?)?;
            plain(
                fields! { "ifindex" => k, "port" => cx.ifnames.name(k) },
                // Stored as slot + 1 (0: none).
                fields! { "slot" => v.checked_sub(1) },
            )
        }
        ENDPOINTS_MAP => {
            let k: u32 = read(key)?;
            let v: Endpoint = read(one()?)?;
            plain(fields! { "ipv4" => ipv4(k).to_string() }, endpoint(&v, cx))
        }
        ENDPOINTS6_MAP => {
            let k: [u8; 16] = read(key)?;
            let v: Endpoint = read(one()?)?;
            plain(fields! { "ipv6" => ipv6(&k).to_string() }, endpoint(&v, cx))
        }
        PORTS6_MAP => {
            let k: u32 = read(key)?;
            let v: Port6 = read(one()?)?;
            plain(
                fields! { "ifindex" => k, "port" => cx.ifnames.name(k) },
                port6(&v),
            )
        }
        COUNTERS_MAP => {
            let k: u32 = read(key)?;
            let per: Vec<u64> = values.iter().map(|v| read(v)).collect::<Result<_, _>>()?;
            let name = Counter::ALL
                .get(k as usize)
                .map_or_else(|| format!("counter-{k}"), |c| c.name().to_string());
            Decoded {
                key: fields! { "index" => k, "counter" => name },
                value: fields! { "count" => per.iter().sum::<u64>() },
                per_cpu: Some(per.iter().map(|c| fields! { "count" => c }).collect()),
            }
        }
        PORT_STATS_MAP => {
            let k: u32 = read(key)?;
            let per: Vec<PortStats> = values.iter().map(|v| read(v)).collect::<Result<_, _>>()?;
            Decoded {
                key: fields! { "slot" => k },
                value: stats(&crate::bpf::maps::sum_port_stats(&per)),
                per_cpu: Some(per.iter().map(stats).collect()),
            }
        }
        SWITCH_CONFIG_MAP => {
            let k: u32 = read(key)?;
            let v: SwitchConfig = read(one()?)?;
            plain(
                fields! { "index" => k },
                fields! {
                    "trace" => v.trace & TRACE_FRAMES != 0,
                    "events" => v.trace & TRACE_EVENTS != 0,
                    "learning" => v.learning != 0
                },
            )
        }
        HOST_ADDRS_MAP => {
            let k: u32 = read(key)?;
            let v: u8 = read(one()?)?;
            plain(
                fields! { "ipv4" => ipv4(k).to_string() },
                fields! { "kind" => host_addr_kind(v), "blocked" => true },
            )
        }
        HOST_ADDRS6_MAP => {
            let k: [u8; 16] = read(key)?;
            let v: u8 = read(one()?)?;
            plain(
                fields! { "ipv6" => ipv6(&k).to_string() },
                fields! { "kind" => host_addr_kind(v), "blocked" => true },
            )
        }
        NAT6_CONFIG_MAP => {
            let k: u32 = read(key)?;
            let v: Nat6Config = read(one()?)?;
            plain(fields! { "index" => k }, nat6_config(&v))
        }
        NAT6_ORIG_MAP | NAT6_REPLY_MAP => {
            let k: Nat6Key = read(key)?;
            let v: Nat6Entry = read(one()?)?;
            plain(nat6_key(&k), nat6_entry(&v, cx))
        }
        NAT6_FRAGS_MAP => {
            let k: Nat6FragKey = read(key)?;
            let v: Nat6FragEntry = read(one()?)?;
            plain(nat6_frag_key(&k), nat6_frag_entry(&v, cx))
        }
        NAT_CONFIG_MAP => {
            let k: u32 = read(key)?;
            let v: NatConfig = read(one()?)?;
            let prefix = u32::from_be(v.mask).leading_ones();
            plain(
                fields! { "index" => k },
                fields! {
                    "subnet" => format!("{}/{prefix}", ipv4(v.subnet)),
                    "external" => ipv4(v.external).to_string(),
                    "port_min" => v.port_min,
                    "port_max" => v.port_max,
                    "flags" => nat_flags(v.flags),
                    "gateway_mac" => mac(&v.gateway_mac),
                },
            )
        }
        NAT_ORIG_MAP | NAT_REPLY_MAP => {
            let k: NatKey = read(key)?;
            let v: NatEntry = read(one()?)?;
            plain(nat_key(&k), nat_entry(&v, cx))
        }
        NAT_FRAGS_MAP => {
            let k: NatFragKey = read(key)?;
            let v: NatFragEntry = read(one()?)?;
            plain(nat_frag_key(&k), nat_frag_entry(&v, cx))
        }
        PUBLISH_NETNS_MAP => {
            let k: u64 = read(key)?;
            let v: PublishNetns = read(one()?)?;
            plain(
                fields! { "netns_cookie" => k },
                fields! {
                    "gateway" => ipv4(v.gateway).to_string(),
                    "host_side" => v.host != 0,
                },
            )
        }
        PUBLISH_SOCKS_MAP => {
            let k: PublishSockKey = read(key)?;
            let v: PublishSockEntry = read(one()?)?;
            plain(
                fields! {
                    "socket_cookie" => k.cookie,
                    "addr" => ipv4(k.addr).to_string(),
                    "port" => port(k.port),
                },
                fields! {
                    "published_addr" => ipv4(v.addr).to_string(),
                    "published_port" => port(v.port),
                },
            )
        }
        NAT_PUBLISH_MAP => {
            let k: PublishKey = read(key)?;
            let v: PublishEntry = read(one()?)?;
            plain(publish_key(&k), publish_entry(&v))
        }
        // Published IPv6 ports (full paths: one arm each, beside the
        // IPv4 ones).
        netlab_common::nat6::NAT6_PUBLISH_MAP => {
            let k: netlab_common::nat6::Publish6Key = read(key)?;
            let v: netlab_common::nat6::Publish6Entry = read(one()?)?;
            plain(
                fields! {
                    "addr" => std::net::Ipv6Addr::from(k.addr).to_string(),
                    "port" => port(k.port),
                    "proto" => super::scalars::proto(k.proto),
                },
                fields! {
                    "addr" => std::net::Ipv6Addr::from(v.addr).to_string(),
                    "port" => port(v.port),
                },
            )
        }
        netlab_common::nat6::PUBLISH_SOCKS6_MAP => {
            let k: netlab_common::nat6::Publish6SockKey = read(key)?;
            let v: netlab_common::nat6::Publish6SockEntry = read(one()?)?;
            plain(
                fields! {
                    "socket_cookie" => k.cookie,
                    "addr" => std::net::Ipv6Addr::from(k.addr).to_string(),
                    "port" => port(k.port),
                },
                fields! {
                    "published_addr" => std::net::Ipv6Addr::from(v.addr).to_string(),
                    "published_port" => port(v.port),
                },
            )
        }
        other => return Err(format!("no decoder for map {other}")),
    })
}

#[cfg(test)]
mod publish6_tests {
    use serde_json::json;

    use super::*;
    use crate::inspect::decode::context::{Context, IfNames};

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
}

#[cfg(test)]
mod tests {
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
}
