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
#[path = "entry_tests.rs"]
mod tests;
