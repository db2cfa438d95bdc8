//! Resolution of the lab's IPv6 side: `subnet6` (default derived from the
//! IPv4 subnet), `gateway6`, `[[namespaces]] address6`, and the sandbox's
//! `host.uplink_address6` / `host.internet_address6`.
//!
//! Every IPv6 address of the lab is its IPv4 address's offset in the IPv4
//! subnet, placed in `subnet6` (192.168.28.1 → fd00:192:168:28::1), unless
//! the file gives one. `subnet6 = "none"` turns IPv6 off: nothing IPv6 is
//! planned or configured.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::problems::Problems;
use super::schema::LabConfig;
use crate::cidr::{Ipv4Cidr, Ipv6Cidr};
use crate::plan::{EndpointPlan, HostPlan, Ipv6Plan};

/// `subnet6 = "none"`: the lab has no IPv6.
pub(super) const NO_IPV6: &str = "none";
/// The prefix lengths `subnet6` may have: a /64 (what SLAAC and most
/// networks use) down to a /120 (256 addresses, still room for a lab).
const SUBNET6_PREFIX: std::ops::RangeInclusive<u8> = 64..=120;
/// Documentation addresses (RFC 3849): never a real network.
pub(super) const DEFAULT_UPLINK_ADDRESS6: &str = "2001:db8:203:113::1/64";
pub(super) const DEFAULT_INTERNET_ADDRESS6: &str = "2001:db8:203:113::2/64";

/// Address space a lab prefix or address may not touch, with why.
const RESERVED6: &[(&str, &str)] = &[
    ("::ffff:0:0/96", "IPv4-mapped space (::ffff:0:0/96)"),
    ("fe80::/10", "link-local space (fe80::/10)"),
    ("ff00::/8", "multicast space (ff00::/8)"),
    ("::/128", "the unspecified address (::)"),
    ("::1/128", "the loopback address (::1)"),
];

/// Why `c` touches reserved space, if it does.
pub(super) fn reserved6_problem(c: &Ipv6Cidr) -> Option<String> {
    RESERVED6.iter().find_map(|(prefix, what)| {
        let r: Ipv6Cidr = prefix.parse().expect("a valid reserved prefix");
        r.overlaps(c).then(|| format!("overlaps {what}"))
    })
}

/// The default `subnet6`: the IPv4 subnet's first three octets written as
/// decimal digits in hex groups, a ULA /64 that reads like the IPv4
/// numbering (192.168.28.0/24 → fd00:192:168:28::/64).
pub fn derived_subnet6(subnet: &Ipv4Cidr) -> Ipv6Cidr {
    let o = subnet.network().octets();
    let group = |octet: u8| {
        u16::from_str_radix(&octet.to_string(), 16).expect("decimal digits are hex digits")
    };
    let addr = Ipv6Addr::new(0xfd00, group(o[0]), group(o[1]), group(o[2]), 0, 0, 0, 0);
    Ipv6Cidr {
        addr,
        prefix_len: 64,
    }
}

/// The IPv6 address matching IPv4 `ip`: its offset in `subnet`, in
/// `subnet6`. None when the offset does not fit `subnet6`'s host bits.
pub fn address6_for(subnet: &Ipv4Cidr, subnet6: &Ipv6Cidr, ip: Ipv4Addr) -> Option<Ipv6Addr> {
    let offset = u32::from(ip).wrapping_sub(u32::from(subnet.network()));
    subnet6.nth(u128::from(offset))
}

/// Why `ip` cannot be a lab IPv6 address in `subnet6`, if it cannot.
pub(super) fn lab_address6_problem(subnet6: &Ipv6Cidr, ip: Ipv6Addr) -> Option<String> {
    if !subnet6.contains(ip) {
        Some(format!("outside subnet6 {subnet6}"))
    } else if ip == subnet6.network() {
        Some(format!(
            "{ip} is the subnet-router anycast address of {subnet6}"
        ))
    } else {
        None
    }
}

impl LabConfig {
    /// True unless the file says `subnet6 = "none"`.
    pub(super) fn wants_ipv6(&self) -> bool {
        self.subnet6.as_deref() != Some(NO_IPV6)
    }

    /// `subnet6` checked (or derived); None when IPv6 is off or the value
    /// is refused (reported).
    pub(super) fn resolve_subnet6(
        &self,
        p: &mut Problems,
        subnet: Option<Ipv4Cidr>,
    ) -> Option<Ipv6Cidr> {
        if !self.wants_ipv6() {
            if let Some(v) = &self.gateway6 {
                p.push("gateway6", v, "the lab has no IPv6 (subnet6 = \"none\")");
            }
            return None;
        }
        let Some(text) = self.subnet6.as_deref() else {
            return subnet.map(|s| derived_subnet6(&s));
        };
        let c = p.parse_cidr6("subnet6", text)?;
        let why = if !SUBNET6_PREFIX.contains(&c.prefix_len) {
            "prefix length must be 64..=120".to_string()
        } else if c.addr != c.network() {
            format!("host bits set; did you mean {}?", c.trunc())
        } else if let Some(why) = reserved6_problem(&c) {
            why
        } else {
            return Some(c);
        };
        p.push("subnet6", text, why);
        None
    }

    /// `gateway6` checked, or derived from the IPv4 gateway; and the
    /// subnet's overlap with the sandbox uplink's prefix.
    pub(super) fn resolve_ipv6(
        &self,
        p: &mut Problems,
        subnet: Option<Ipv4Cidr>,
        subnet6: Option<Ipv6Cidr>,
        gateway: Option<Ipv4Addr>,
        host: Option<&HostPlan>,
    ) -> Option<Ipv6Plan> {
        let subnet6 = subnet6?;
        if let Some(HostPlan::Sandbox(s)) = host
            && let Some(ua) = s.uplink_address6
            && ua.overlaps(&subnet6)
        {
            p.push(
                "subnet6",
                subnet6,
                format!(
                    "overlaps the uplink's IPv6 prefix {} (host.uplink_address6)",
                    ua.trunc()
                ),
            );
        }
        let gateway6 = match (&self.gateway6, subnet, gateway) {
            (Some(text), _, _) => p.parse_ip6("gateway6", text),
            (None, Some(s), Some(gw)) => {
                let derived = address6_for(&s, &subnet6, gw);
                if derived.is_none() {
                    p.push(
                        "gateway6",
                        "",
                        format!(
                            "gateway {gw}'s offset does not fit in subnet6 {subnet6}; set gateway6"
                        ),
                    );
                }
                derived
            }
            _ => None,
        }?;
        if let Some(why) = lab_address6_problem(&subnet6, gateway6) {
            p.push("gateway6", gateway6, why);
        }
        Some(Ipv6Plan {
            subnet: subnet6,
            gateway: gateway6,
        })
    }

    /// Gives every endpoint its IPv6 address: `[[namespaces]] address6`,
    /// else its IPv4 offset in `subnet6`; checked inside the subnet and
    /// unique (the gateway's included).
    pub(super) fn resolve_addresses6(
        &self,
        p: &mut Problems,
        subnet: Option<Ipv4Cidr>,
        ipv6: Option<&Ipv6Plan>,
        endpoints: &mut [EndpointPlan],
    ) {
        let listed = self.namespaces.as_deref().unwrap_or_default();
        let Some(v6) = ipv6 else {
            for (i, ns) in listed.iter().enumerate() {
                if let Some(a) = &ns.address6 {
                    p.push(
                        format!("namespaces[{i}].address6"),
                        a,
                        "the lab has no IPv6 (subnet6 = \"none\")",
                    );
                }
            }
            return;
        };
        let mut used: HashMap<Ipv6Addr, String> = HashMap::new();
        used.insert(v6.gateway, "gateway6".into());
        for e in endpoints.iter_mut() {
            let i = (e.index - 1) as usize;
            let explicit = listed.get(i).and_then(|n| n.address6.as_deref());
            let (field, address) = match explicit {
                Some(text) => {
                    let field = format!("namespaces[{i}].address6");
                    let a = p.parse_ip6(&field, text);
                    (field, a)
                }
                None => {
                    let field = format!("namespaces[{i}].address6 (derived from its address)");
                    let a = subnet.and_then(|s| address6_for(&s, &v6.subnet, e.address));
                    if a.is_none() {
                        p.push(
                            &field,
                            "",
                            format!(
                                "{}'s offset does not fit in subnet6 {}; set address6",
                                e.address, v6.subnet
                            ),
                        );
                    }
                    (field, a)
                }
            };
            let Some(address) = address else { continue };
            if let Some(why) = lab_address6_problem(&v6.subnet, address) {
                p.push(&field, address, why);
            } else if let Some(first) = used.get(&address) {
                p.push(
                    &field,
                    address,
                    format!("duplicate address: also used by {first}"),
                );
            } else {
                used.insert(address, field.clone());
            }
            e.address6 = Some(address);
        }
    }
}
