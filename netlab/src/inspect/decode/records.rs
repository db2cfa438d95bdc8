//! The fields of each key and value type the maps hold (the structs of
//! `netlab_common`), for [`super::entry`].

use std::time::Duration;

use netlab_common::{
    counters::PortStats,
    nat::{NatEntry, NatFragEntry, NatFragKey, NatKey, PublishEntry, PublishKey},
    nat6::{Nat6Config, Nat6Entry, Nat6FragEntry, Nat6FragKey, Nat6Key},
    switch::{Endpoint, Port6, PortInfo},
};

use super::{
    context::Context,
    fields::{Fields, fields},
    scalars::{frag_dir, ipv4, ipv6, mac, nat_flags, nat_kind, nat_state, port, port_kind, proto},
};

pub fn port_info(p: &PortInfo, cx: &Context) -> Fields {
    fields! {
        "ifindex" => p.ifindex,
        "port" => cx.ifnames.name(p.ifindex),
        "deliver_ifindex" => p.deliver_ifindex,
        "deliver" => cx.ifnames.name(p.deliver_ifindex),
        "ipv4" => ipv4(p.ipv4).to_string(),
        "slot" => p.slot,
        "mac" => mac(&p.mac),
        "kind" => port_kind(p.kind),
    }
}

pub fn endpoint(e: &Endpoint, cx: &Context) -> Fields {
    fields! {
        "mac" => mac(&e.mac),
        "port_ifindex" => e.port_ifindex,
        "port" => cx.ifnames.name(e.port_ifindex),
    }
}

pub fn nat_key(k: &NatKey) -> Fields {
    fields! {
        "proto" => proto(k.proto),
        "saddr" => ipv4(k.saddr).to_string(),
        "sport" => port(k.sport),
        "daddr" => ipv4(k.daddr).to_string(),
        "dport" => port(k.dport),
    }
}

pub fn nat_entry(e: &NatEntry, cx: &Context) -> Fields {
    let age = Duration::from_nanos(cx.now_ns.saturating_sub(e.last_seen_ns));
    fields! {
        "addr" => ipv4(e.addr).to_string(),
        "port" => port(e.port),
        "state" => nat_state(e.state),
        "kind" => nat_kind(e.flags),
        "last_seen_ns" => e.last_seen_ns,
        "age_ms" => age.as_millis() as u64,
    }
}

pub fn publish_key(k: &PublishKey) -> Fields {
    fields! {
        "addr" => if k.addr == 0 { "0.0.0.0".to_string() } else { ipv4(k.addr).to_string() },
        "port" => port(k.port),
        "proto" => proto(k.proto),
    }
}

pub fn publish_entry(e: &PublishEntry) -> Fields {
    fields! {
        "addr" => ipv4(e.addr).to_string(),
        "port" => port(e.port),
    }
}

pub fn nat_frag_key(k: &NatFragKey) -> Fields {
    fields! {
        "dir" => frag_dir(k.dir),
        "proto" => proto(k.proto),
        "saddr" => ipv4(k.saddr).to_string(),
        "daddr" => ipv4(k.daddr).to_string(),
        "id" => port(k.id),
    }
}

pub fn nat_frag_entry(e: &NatFragEntry, cx: &Context) -> Fields {
    let age = Duration::from_nanos(cx.now_ns.saturating_sub(e.last_seen_ns));
    fields! {
        "addr" => ipv4(e.addr).to_string(),
        "last_seen_ns" => e.last_seen_ns,
        "age_ms" => age.as_millis() as u64,
    }
}

pub fn port6(p: &Port6) -> Fields {
    fields! {
        "global" => ipv6(&p.global).to_string(),
        "link_local" => ipv6(&p.link_local).to_string(),
    }
}

pub fn nat6_config(c: &Nat6Config) -> Fields {
    fields! {
        "subnet" => format!("{}/{}", ipv6(&c.subnet), c.prefix_len),
        "external" => ipv6(&c.external).to_string(),
        "port_min" => c.port_min,
        "port_max" => c.port_max,
        "flags" => nat_flags(c.flags),
        "gateway_mac" => mac(&c.gateway_mac),
    }
}

/// The same fields as [`nat_key`], with IPv6 addresses.
pub fn nat6_key(k: &Nat6Key) -> Fields {
    fields! {
        "proto" => proto(k.proto),
        "saddr" => ipv6(&k.saddr).to_string(),
        "sport" => port(k.sport),
        "daddr" => ipv6(&k.daddr).to_string(),
        "dport" => port(k.dport),
    }
}

/// The same fields as [`nat_entry`], with an IPv6 address.
pub fn nat6_entry(e: &Nat6Entry, cx: &Context) -> Fields {
    let age = Duration::from_nanos(cx.now_ns.saturating_sub(e.last_seen_ns));
    fields! {
        "addr" => ipv6(&e.addr).to_string(),
        "port" => port(e.port),
        "state" => nat_state(e.state),
        "kind" => nat_kind(e.flags),
        "last_seen_ns" => e.last_seen_ns,
        "age_ms" => age.as_millis() as u64,
    }
}

/// The same fields as [`nat_frag_key`]; the identification is 32 bits.
pub fn nat6_frag_key(k: &Nat6FragKey) -> Fields {
    fields! {
        "dir" => frag_dir(k.dir),
        "proto" => proto(k.proto),
        "saddr" => ipv6(&k.saddr).to_string(),
        "daddr" => ipv6(&k.daddr).to_string(),
        "id" => u32::from_be(k.id),
    }
}

pub fn nat6_frag_entry(e: &Nat6FragEntry, cx: &Context) -> Fields {
    let age = Duration::from_nanos(cx.now_ns.saturating_sub(e.last_seen_ns));
    fields! {
        "addr" => ipv6(&e.addr).to_string(),
        "last_seen_ns" => e.last_seen_ns,
        "age_ms" => age.as_millis() as u64,
    }
}

pub fn stats(s: &PortStats) -> Fields {
    fields! {
        "rx_packets" => s.rx_packets,
        "rx_bytes" => s.rx_bytes,
        "tx_packets" => s.tx_packets,
        "tx_bytes" => s.tx_bytes,
        "drops" => s.drops,
    }
}
