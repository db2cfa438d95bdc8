//! One value of a map field as people read it: MACs, addresses and ports
//! in their usual notation, protocols, states, kinds and flags by name,
//! ages as durations.

use std::time::Duration;

use netlab_common::{
    nat::{
        IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NAT_ENTRY_DNAT, NAT_FLAG_ENABLED,
        NAT_FLAG_FAST_PATH, NAT_FRAG_IN, NAT_FRAG_OUT,
    },
    nat6::IPPROTO_ICMPV6,
    switch::{
        FDB_FLAG_LEARNED, FDB_FLAG_MANUAL, FDB_FLAG_STATIC, HOST_ADDR_BROADCAST, HOST_ADDR_LOCAL,
        PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY,
    },
};

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac(m: &[u8; 6]) -> String {
    crate::names::format_mac(m)
}

/// An address as the maps store it (network order, as in the packet):
/// the map encoding's one decoder, under the name the views use.
pub use crate::bpf::key::ipv4_of_key as ipv4;

/// An IPv6 address as the maps store it (the 16 bytes of the packet), in
/// its standard text form (RFC 5952: `fd00:192:168:28::1`).
pub fn ipv6(raw: &[u8; 16]) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::from(*raw)
}

/// A port as the maps store it (network order).
pub fn port(raw: u16) -> u16 {
    u16::from_be(raw)
}

/// `tcp`, `udp`, `icmp`, `icmpv6`, else `proto-N` (the spelling of
/// `nat::Proto`).
pub fn proto(p: u8) -> String {
    crate::nat::Proto::from_number(p).to_string()
}

/// The protocol number of a name `proto` gives (or a plain number).
pub fn proto_number(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "tcp" => Some(IPPROTO_TCP),
        "udp" => Some(IPPROTO_UDP),
        "icmp" => Some(IPPROTO_ICMP),
        "icmpv6" | "ipv6-icmp" => Some(IPPROTO_ICMPV6),
        other => other.strip_prefix("proto-").unwrap_or(other).parse().ok(),
    }
}

/// [`proto_number`], or the error every command that takes a protocol
/// gives for a name it does not know.
pub fn parse_proto(name: &str) -> Result<u8, String> {
    proto_number(name).ok_or_else(|| {
        format!("unknown protocol {name:?}: use tcp, udp, icmp, icmpv6 or a protocol number")
    })
}

/// A NAT entry's state, as conntrack spells it.
pub fn nat_state(s: u8) -> &'static str {
    crate::nat::FlowState::from_raw(s).as_str()
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
        assert_eq!(proto(58), "icmpv6");
        assert_eq!(proto_number("icmpv6"), Some(58));
        assert_eq!(
            ipv6(&[0xfd, 0, 1, 0x92, 1, 0x68, 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 1]).to_string(),
            "fd00:192:168:28::1"
        );
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
