//! Decoding map bytes into what a network engineer reads: MACs as
//! `aa:bb:..`, addresses as dotted quads, protocols and states by name,
//! ages as durations, ifindexes as interface names (resolved in the lab's
//! host namespace, where the switch ports live).
//!
//! Every decoder takes the raw key/value bytes of one entry (as the kernel
//! returns them) and yields named fields, so `map dump` tables and `--json`
//! come from one place, and the decoders are tested on known bytes.

use std::{collections::BTreeMap, net::Ipv4Addr, time::Duration};

use netlab_common::{
    counters::{Counter, PortStats},
    maps::{
        COUNTERS_MAP, ENDPOINTS_MAP, FDB_MAP, FLOOD_MAP, HOST_ADDRS_MAP, PORT_SLOTS_MAP,
        PORT_STATS_MAP, PORTS_MAP, SWITCH_CONFIG_MAP,
    },
    nat::{
        IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NAT_CONFIG_MAP, NAT_FLAG_ENABLED,
        NAT_FLAG_FAST_PATH, NAT_FRAG_IN, NAT_FRAG_OUT, NAT_FRAGS_MAP, NAT_ORIG_MAP,
        NAT_PUBLISH_MAP, NAT_REPLY_MAP, NAT_STATE_TCP_CLOSING, NAT_STATE_TCP_ESTABLISHED,
        NAT_STATE_TCP_SYN, NatConfig, NatEntry, NatFragEntry, NatFragKey, NatKey,
        PUBLISH_NETNS_MAP, PUBLISH_SOCKS_MAP, PublishEntry, PublishKey, PublishNetns,
        PublishSockEntry, PublishSockKey,
    },
    switch::{
        Endpoint, FDB_FLAG_LEARNED, FDB_FLAG_MANUAL, FDB_FLAG_STATIC, FdbEntry, FdbKey,
        HOST_ADDR_BROADCAST, HOST_ADDR_LOCAL, PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, PortInfo,
        SwitchConfig, TRACE_EVENTS, TRACE_FRAMES,
    },
};
use serde_json::Value;

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac(m: &[u8; 6]) -> String {
    crate::config::format_mac(m)
}

/// An address as the maps store it (network order, as in the packet).
pub fn ipv4(raw: u32) -> Ipv4Addr {
    Ipv4Addr::from(raw.to_ne_bytes())
}

/// A port as the maps store it (network order).
pub fn port(raw: u16) -> u16 {
    u16::from_be(raw)
}

/// `tcp`, `udp`, `icmp`, else `proto-N`.
pub fn proto(p: u8) -> String {
    match p {
        IPPROTO_TCP => "tcp".into(),
        IPPROTO_UDP => "udp".into(),
        IPPROTO_ICMP => "icmp".into(),
        n => format!("proto-{n}"),
    }
}

/// The protocol number of a name `proto` gives (or a plain number).
pub fn proto_number(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "tcp" => Some(IPPROTO_TCP),
        "udp" => Some(IPPROTO_UDP),
        "icmp" => Some(IPPROTO_ICMP),
        other => other.strip_prefix("proto-").unwrap_or(other).parse().ok(),
    }
}

/// A NAT entry's state, as conntrack spells it.
pub fn nat_state(s: u8) -> &'static str {
    match s {
        NAT_STATE_TCP_SYN => "SYN_SENT",
        NAT_STATE_TCP_ESTABLISHED => "ESTABLISHED",
        NAT_STATE_TCP_CLOSING => "CLOSING",
        _ => "-",
    }
}

pub fn port_kind(kind: u8) -> String {
    match kind {
        PORT_KIND_ENDPOINT => "endpoint".into(),
        PORT_KIND_GATEWAY => "gateway".into(),
        n => format!("kind-{n}"),
    }
}

/// What a `host_addrs` entry is: one of the host's addresses, or the
/// broadcast address of one of its subnets.
pub fn host_addr_kind(kind: u8) -> String {
    match kind {
        HOST_ADDR_LOCAL => "address".into(),
        HOST_ADDR_BROADCAST => "broadcast".into(),
        n => format!("kind-{n}"),
    }
}

pub fn fdb_flags(flags: u8) -> String {
    let mut v = Vec::new();
    if flags & FDB_FLAG_STATIC != 0 {
        v.push("static".to_string());
    }
    if flags & FDB_FLAG_LEARNED != 0 {
        v.push("learned".to_string());
    }
    if flags & FDB_FLAG_MANUAL != 0 {
        v.push("manual".to_string());
    }
    let rest = flags & !(FDB_FLAG_STATIC | FDB_FLAG_LEARNED | FDB_FLAG_MANUAL);
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

pub fn nat_flags(flags: u32) -> Vec<String> {
    let mut v = Vec::new();
    if flags & NAT_FLAG_ENABLED != 0 {
        v.push("enabled".to_string());
    }
    if flags & NAT_FLAG_FAST_PATH != 0 {
        v.push("fast_path".to_string());
    }
    let rest = flags & !(NAT_FLAG_ENABLED | NAT_FLAG_FAST_PATH);
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    v
}

/// `950ms`, `4.2s`, `3m07s`, `2h05m`, `4d23h`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// Interface names of the host namespace, by ifindex.
#[derive(Clone, Debug, Default)]
pub struct IfNames(pub BTreeMap<u32, String>);

impl IfNames {
    /// Reads the links of `netns` (None: netlab's own namespace). On error
    /// the names stay unknown and ifindexes are shown as numbers.
    pub fn of_namespace(netns: Option<&str>) -> Self {
        crate::topology::with_netlink(netns, |nl| nl.links())
            .map(|links| Self(links.into_iter().map(|l| (l.ifindex, l.name)).collect()))
            .unwrap_or_default()
    }

    /// The name, or `if<N>` when unknown.
    pub fn name(&self, ifindex: u32) -> String {
        self.0
            .get(&ifindex)
            .cloned()
            .unwrap_or_else(|| format!("if{ifindex}"))
    }
}

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

/// Decoding context: interface names and the current CLOCK_MONOTONIC time
/// (for ages).
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub ifnames: IfNames,
    pub now_ns: u64,
}

/// Named fields in a fixed order (table columns follow it; JSON objects
/// keep it too).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Fields(pub Vec<(&'static str, Value)>);

impl serde::Serialize for Fields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, v)))
    }
}

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `fields!{"a" => x, "b" => y}`: [`Fields`] from JSON-convertible values.
macro_rules! fields {
    ($($k:literal => $v:expr),* $(,)?) => {
        Fields(vec![$(($k, serde_json::json!($v))),*])
    };
}

/// One decoded entry. `value` sums per-CPU values; `per_cpu` keeps them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Decoded {
    pub key: Fields,
    pub value: Fields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_cpu: Option<Vec<Fields>>,
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

fn port_info(p: &PortInfo, cx: &Context) -> Fields {
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

fn endpoint(e: &Endpoint, cx: &Context) -> Fields {
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

fn nat_entry(e: &NatEntry, cx: &Context) -> Fields {
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

/// What created a translation: `snat` (a packet leaving the lab) or
/// `dnat` (a packet to a published port).
pub fn nat_kind(flags: u8) -> &'static str {
    if flags & netlab_common::nat::NAT_ENTRY_DNAT != 0 {
        "dnat"
    } else {
        "snat"
    }
}

fn publish_key(k: &PublishKey) -> Fields {
    fields! {
        "addr" => if k.addr == 0 { "0.0.0.0".to_string() } else { ipv4(k.addr).to_string() },
        "port" => port(k.port),
        "proto" => proto(k.proto),
    }
}

fn publish_entry(e: &PublishEntry) -> Fields {
    fields! {
        "addr" => ipv4(e.addr).to_string(),
        "port" => port(e.port),
    }
}

/// A fragment entry's direction: `out` (leaving the lab), `in` (a reply).
pub fn frag_dir(dir: u8) -> String {
    match dir {
        NAT_FRAG_OUT => "out".into(),
        NAT_FRAG_IN => "in".into(),
        other => format!("dir-{other}"),
    }
}

fn nat_frag_key(k: &NatFragKey) -> Fields {
    fields! {
        "dir" => frag_dir(k.dir),
        "proto" => proto(k.proto),
        "saddr" => ipv4(k.saddr).to_string(),
        "daddr" => ipv4(k.daddr).to_string(),
        "id" => port(k.id),
    }
}

fn nat_frag_entry(e: &NatFragEntry, cx: &Context) -> Fields {
    let age = Duration::from_nanos(cx.now_ns.saturating_sub(e.last_seen_ns));
    fields! {
        "addr" => ipv4(e.addr).to_string(),
        "last_seen_ns" => e.last_seen_ns,
        "age_ms" => age.as_millis() as u64,
    }
}

fn stats(s: &PortStats) -> Fields {
    fields! {
        "rx_packets" => s.rx_packets,
        "rx_bytes" => s.rx_bytes,
        "tx_packets" => s.tx_packets,
        "tx_bytes" => s.tx_bytes,
        "drops" => s.drops,
    }
}

fn sum_stats(all: &[PortStats]) -> PortStats {
    all.iter().fold(PortStats::default(), |a, s| PortStats {
        rx_packets: a.rx_packets + s.rx_packets,
        rx_bytes: a.rx_bytes + s.rx_bytes,
        tx_packets: a.tx_packets + s.tx_packets,
        tx_bytes: a.tx_bytes + s.tx_bytes,
        drops: a.drops + s.drops,
    })
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
                value: stats(&sum_stats(&per)),
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
        other => return Err(format!("no decoder for map {other}")),
    })
}

/// Orders keys the way people read them: numbers numerically, addresses
/// by address, other strings alphabetically, field by field.
pub fn compare_fields(a: &Fields, b: &Fields) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for ((_, x), (_, y)) in a.0.iter().zip(&b.0) {
        let o = match (x, y) {
            (Value::Number(m), Value::Number(n)) => m
                .as_f64()
                .partial_cmp(&n.as_f64())
                .unwrap_or(Ordering::Equal),
            (Value::String(s), Value::String(t)) => {
                match (s.parse::<Ipv4Addr>(), t.parse::<Ipv4Addr>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    _ => s.cmp(t),
                }
            }
            _ => x.to_string().cmp(&y.to_string()),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A JSON scalar as a table cell: strings without quotes, lists joined.
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn scalars() {
        assert_eq!(mac(&[0x02, 0x4e, 10, 79, 1, 2]), "02:4e:0a:4f:01:02");
        assert_eq!(
            ipv4(u32::from_ne_bytes([10, 79, 1, 2])).to_string(),
            "10.79.1.2"
        );
        assert_eq!(port(u16::from_ne_bytes([0x1f, 0x90])), 8080);
        assert_eq!(proto(6), "tcp");
        assert_eq!(proto(47), "proto-47");
        assert_eq!(proto_number("TCP"), Some(6));
        assert_eq!(proto_number("proto-47"), Some(47));
        assert_eq!(proto_number("17"), Some(17));
        assert_eq!(proto_number("bogus"), None);
        assert_eq!(duration(Duration::from_millis(950)), "950ms");
        assert_eq!(duration(Duration::from_millis(4_240)), "4.2s");
        assert_eq!(duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(duration(Duration::from_secs(7_500)), "2h05m");
        assert_eq!(duration(Duration::from_secs(431_999)), "4d23h");
        assert_eq!(fdb_flags(1), "static");
        assert_eq!(fdb_flags(2), "learned");
        assert_eq!(fdb_flags(0), "-");
        assert_eq!(nat_flags(3), ["enabled", "fast_path"]);
        assert_eq!(cx().ifnames.name(77), "if77");
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
        assert_eq!(frag_dir(NAT_FRAG_IN), "in");
        assert_eq!(frag_dir(9), "dir-9");
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
}
