//! One value of a map field as people read it: MACs, addresses and ports
//! in their usual notation, protocols, states, kinds and flags by name,
//! ages as durations.

use std::{net::Ipv4Addr, time::Duration};

use netlab_common::{
    nat::{
        IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NAT_ENTRY_DNAT, NAT_FLAG_ENABLED,
        NAT_FLAG_FAST_PATH, NAT_FRAG_IN, NAT_FRAG_OUT, NAT_STATE_TCP_CLOSING,
        NAT_STATE_TCP_ESTABLISHED, NAT_STATE_TCP_SYN,
    },
    switch::{
        FDB_FLAG_LEARNED, FDB_FLAG_MANUAL, FDB_FLAG_STATIC, HOST_ADDR_BROADCAST, HOST_ADDR_LOCAL,
        PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY,
    },
};

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac(m: &[u8; 6]) -> String {
    crate::names::format_mac(m)
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

/// What created a translation: `snat` (a packet leaving the lab) or
/// `dnat` (a packet to a published port).
pub fn nat_kind(flags: u8) -> &'static str {
    if flags & NAT_ENTRY_DNAT != 0 {
        "dnat"
    } else {
        "snat"
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn nat_kinds_and_fragment_directions() {
        assert_eq!(nat_kind(NAT_ENTRY_DNAT), "dnat");
        assert_eq!(nat_kind(0), "snat");
        assert_eq!(frag_dir(NAT_FRAG_IN), "in");
        assert_eq!(frag_dir(9), "dir-9");
    }
}
