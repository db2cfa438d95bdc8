//! Every name and MAC rule of a lab, in one place: what a lab, namespace
//! or interface may be called, how netlab derives the names it chooses
//! itself, and the MAC it gives an interface.
//!
//! Foundation layer (see ARCHITECTURE.md §2.2): no imports from the crate,
//! so the lab file's validation, the topology, the datapaths and the
//! inspection commands all ask the same functions.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Linux IFNAMSIZ is 16 including the terminating NUL.
pub const MAX_IFNAME_LEN: usize = 15;

/// Lab names end up in the state file's name, the pin directory
/// (`/sys/fs/bpf/netlab/<lab>/`) and the sandbox's namespace names
/// (`<lab>-host`, `<lab>-inet`). 32 is the limit: it leaves those
/// namespace names well inside [`MAX_NETNS_NAME_LEN`] and keeps every path
/// and listing readable. (The datapath once accepted 64 on its own; every
/// lab it sees comes through this rule, so one limit is the truth.)
pub const MAX_LAB_NAME_LEN: usize = 32;

/// Namespace names are file names under /run/netns; keep them readable.
pub const MAX_NETNS_NAME_LEN: usize = 64;

/// The lab used when neither `--lab` nor the lab file names one.
pub const DEFAULT_LAB_NAME: &str = "netlab";

/// Interface name rules of the kernel (dev_valid_name) plus `lo`, which
/// every namespace already has.
pub fn interface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("an interface name cannot be empty".into())
    } else if name.len() > MAX_IFNAME_LEN {
        Some(format!(
            "interface names are at most {MAX_IFNAME_LEN} bytes (IFNAMSIZ - 1), this one has {}",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not interface names".into())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        Some("interface names cannot contain '/', ':' or whitespace".into())
    } else if name == "lo" {
        Some("`lo` is the loopback device every namespace already has".into())
    } else {
        None
    }
}

/// Namespace names become files in /run/netns.
pub fn netns_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("a namespace name cannot be empty".into())
    } else if name.len() > MAX_NETNS_NAME_LEN {
        Some(format!(
            "namespace names are at most {MAX_NETNS_NAME_LEN} bytes"
        ))
    } else if name.starts_with('.') {
        Some("namespace names cannot start with '.'".into())
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("namespace names may only contain A-Z a-z 0-9 . _ -".into())
    } else {
        None
    }
}

/// Lab names become a directory under bpffs (which refuses '.') and part
/// of file and namespace names.
pub fn lab_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("the lab name cannot be empty".into())
    } else if name.len() > MAX_LAB_NAME_LEN {
        Some(format!("lab names are at most {MAX_LAB_NAME_LEN} bytes"))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        Some("lab names may only contain A-Z a-z 0-9 _ -".into())
    } else {
        None
    }
}

/// The sandbox namespace that plays the host: `<lab>-host`.
pub fn sandbox_host_netns(lab: &str) -> String {
    format!("{lab}-host")
}

/// The sandbox namespace that plays the internet: `<lab>-inet`.
pub fn sandbox_internet_netns(lab: &str) -> String {
    format!("{lab}-inet")
}

/// The internet namespace's end of the sandbox uplink pair.
pub const SANDBOX_INTERNET_DEVICE: &str = "inet0";

/// The `index`-th namespace of a `namespace_count` lab: `<prefix><index>`.
pub fn counted_netns(prefix: &str, index: u32) -> String {
    format!("{prefix}{index}")
}

/// The endpoint's interface inside its namespace: `veth-N`.
pub fn endpoint_veth(index: u32) -> String {
    format!("veth-{index}")
}

/// The endpoint's host-side veth end, its switch or bridge port: `veth-N-br`.
pub fn endpoint_peer(index: u32) -> String {
    format!("veth-{index}-br")
}

/// The eBPF datapath's gateway switch port, peered with the gateway
/// device: `<gateway_device>-p`.
pub fn gateway_port(gateway_device: &str) -> String {
    format!("{gateway_device}-p")
}

/// 02:4e:<a.b.c.d>: the MAC netlab gives the interface holding `ip`
/// (locally administered, unicast, readable at a glance).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x4e, o[0], o[1], o[2], o[3]]
}

/// The link-local address the kernel gives an interface with `mac`
/// (`addr_gen_mode` eui64, the default, which `up` sets explicitly on the
/// lab's interfaces): fe80::/64 with the modified EUI-64 interface
/// identifier of RFC 4291 appendix A (U/L bit flipped, ff:fe in the
/// middle). The switch's IPv6 source check and ND responder know an
/// endpoint's link-local address by this rule.
pub fn link_local_for(mac: [u8; 6]) -> Ipv6Addr {
    let m = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `mac` can be a port's own address: not zero, not multicast or
/// broadcast.
pub fn is_unicast_mac(mac: &[u8; 6]) -> bool {
    *mac != [0; 6] && mac[0] & 1 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_is_the_kernels_eui64() {
        // What `ip -6 addr` shows on an interface with MAC 02:4e:c0:a8:1c:01.
        assert_eq!(
            link_local_for([0x02, 0x4e, 0xc0, 0xa8, 0x1c, 0x01]).to_string(),
            "fe80::4e:c0ff:fea8:1c01"
        );
    }

    #[test]
    fn macs_and_derived_names() {
        assert_eq!(
            mac_for(Ipv4Addr::new(192, 168, 28, 5)),
            [2, 0x4e, 192, 168, 28, 5]
        );
        assert_eq!(format_mac(&[0x02, 0, 0xab, 0, 0, 1]), "02:00:ab:00:00:01");
        assert!(is_unicast_mac(&mac_for(Ipv4Addr::new(10, 0, 0, 1))));
        assert!(!is_unicast_mac(&[0xff; 6]) && !is_unicast_mac(&[0; 6]));
        assert_eq!(
            (endpoint_veth(2), endpoint_peer(2)),
            ("veth-2".into(), "veth-2-br".into())
        );
        assert_eq!(gateway_port("vbridge"), "vbridge-p");
        assert_eq!(sandbox_host_netns("t1"), "t1-host");
    }

    #[test]
    fn name_rules() {
        assert!(lab_name_problem("netlab").is_none());
        assert!(lab_name_problem("../etc").is_some());
        assert!(lab_name_problem("").is_some());
        assert!(lab_name_problem(&"a".repeat(MAX_LAB_NAME_LEN + 1)).is_some());
        // The sandbox namespaces of the longest lab name are valid names.
        let longest = "a".repeat(MAX_LAB_NAME_LEN);
        assert!(netns_name_problem(&sandbox_internet_netns(&longest)).is_none());
        assert!(interface_name_problem("veth-1-br").is_none());
        assert!(interface_name_problem("a-very-long-device-name").is_some());
        assert!(interface_name_problem("a\0b").is_some());
        assert!(interface_name_problem("lo").is_some());
    }
}
