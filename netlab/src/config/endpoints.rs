//! Resolution of the endpoint namespaces: `[[namespaces]]` or the
//! `namespace_count` shorthand, explicit addresses first, then defaults
//! allocated in order from the subnet, skipping the gateway.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::problems::{Problems, lab_address_problem};
use super::schema::LabConfig;
use super::schema::NamespaceConfig;
use crate::cidr::Ipv4Cidr;
use crate::names;
use crate::plan::EndpointPlan;

/// How many namespaces a `namespace_count` lab may have.
const MAX_NAMESPACE_COUNT: u32 = 1000;
const DEFAULT_NAMESPACE_COUNT: u32 = 3;
const DEFAULT_NAMESPACE_PREFIX: &str = "ns";

/// Addresses taken so far, each with the field that took it.
type Used = HashMap<Ipv4Addr, String>;

impl LabConfig {
    pub(super) fn resolve_endpoints(
        &self,
        p: &mut Problems,
        subnet: Option<Ipv4Cidr>,
        gateway: Option<Ipv4Addr>,
    ) -> Vec<EndpointPlan> {
        let Some(listed) = self.listed_namespaces(p) else {
            return Vec::new();
        };
        if listed.is_empty() {
            p.push("namespaces", "[]", "a lab needs at least one namespace");
        }
        let mut used = Used::new();
        if let Some(gw) = gateway {
            used.insert(gw, "gateway".into());
        }
        // Explicit addresses first, so defaults skip them.
        let explicit = explicit_addresses(p, &listed, subnet, &mut used);
        let mut free = subnet
            .into_iter()
            // Lazily: a /8 has 16 million hosts and only a few are needed.
            .flat_map(|s| s.hosts());
        let mut out = Vec::new();
        for (i, ns) in listed.iter().enumerate() {
            let index = i as u32 + 1;
            let (veth, peer) = interface_names(p, i, ns);
            let address = match explicit[i] {
                Some(ip) => Some(ip),
                None if ns.address.is_some() => None, // already reported
                None => next_free(p, i, &mut free, &mut used, subnet.is_some()),
            };
            if let Some(address) = address {
                out.push(EndpointPlan {
                    index,
                    namespace: ns.name.clone(),
                    veth,
                    peer,
                    address,
                    address6: None,
                    mac: names::mac_for(address),
                });
            }
        }
        out
    }

    /// The namespaces as listed, or as `namespace_count` names them; None
    /// when the file says both or too many.
    fn listed_namespaces(&self, p: &mut Problems) -> Option<Vec<NamespaceConfig>> {
        match (&self.namespaces, self.namespace_count) {
            (Some(_), Some(n)) => {
                p.push(
                    "namespace_count",
                    n,
                    "use either namespace_count or [[namespaces]], not both",
                );
                None
            }
            (Some(list), None) => {
                if let Some(prefix) = &self.namespace_prefix {
                    p.push("namespace_prefix", prefix, "only used with namespace_count");
                }
                Some(list.clone())
            }
            (None, count) => {
                let count = count.unwrap_or(DEFAULT_NAMESPACE_COUNT);
                let prefix = self
                    .namespace_prefix
                    .as_deref()
                    .unwrap_or(DEFAULT_NAMESPACE_PREFIX);
                if count > MAX_NAMESPACE_COUNT {
                    p.push("namespace_count", count, "at most 1000 namespaces");
                    return None;
                }
                let named = |i| NamespaceConfig {
                    name: names::counted_netns(prefix, i),
                    ..Default::default()
                };
                Some((1..=count).map(named).collect())
            }
        }
    }
}

/// The addresses the file gives, checked (inside the subnet, not taken)
/// and marked used; None where none is given or it is invalid.
fn explicit_addresses(
    p: &mut Problems,
    listed: &[NamespaceConfig],
    subnet: Option<Ipv4Cidr>,
    used: &mut Used,
) -> Vec<Option<Ipv4Addr>> {
    let mut explicit = Vec::new();
    for (i, ns) in listed.iter().enumerate() {
        let field = format!("namespaces[{i}].address");
        let ip = ns.address.as_deref().and_then(|a| p.parse_ip(&field, a));
        if let (Some(ip), Some(s)) = (ip, subnet) {
            if let Some(why) = lab_address_problem(&s, ip) {
                p.push(&field, ip, why);
            } else if let Some(first) = used.get(&ip) {
                p.push(
                    &field,
                    ip,
                    format!("duplicate address: also used by {first}"),
                );
            } else {
                used.insert(ip, field.clone());
            }
        }
        explicit.push(ip);
    }
    explicit
}

/// The namespace's name checked, its veth and peer named and checked.
fn interface_names(p: &mut Problems, i: usize, ns: &NamespaceConfig) -> (String, String) {
    let index = i as u32 + 1;
    p.check(
        format!("namespaces[{i}].name"),
        &ns.name,
        names::netns_name_problem,
    );
    let veth = ns
        .veth
        .clone()
        .unwrap_or_else(|| names::endpoint_veth(index));
    let peer = ns
        .peer
        .clone()
        .unwrap_or_else(|| names::endpoint_peer(index));
    p.check(
        format!("namespaces[{i}].veth"),
        &veth,
        names::interface_name_problem,
    );
    p.check(
        format!("namespaces[{i}].peer"),
        &peer,
        names::interface_name_problem,
    );
    (veth, peer)
}

/// The next host address of the subnet nobody uses, for namespace `i`.
fn next_free(
    p: &mut Problems,
    i: usize,
    free: &mut impl Iterator<Item = Ipv4Addr>,
    used: &mut Used,
    have_subnet: bool,
) -> Option<Ipv4Addr> {
    match free.find(|ip| !used.contains_key(ip)) {
        Some(ip) => {
            used.insert(ip, format!("namespaces[{i}]"));
            Some(ip)
        }
        None => {
            if have_subnet {
                p.push(
                    format!("namespaces[{i}].address"),
                    "",
                    "no free address left in the subnet",
                );
            }
            None
        }
    }
}
