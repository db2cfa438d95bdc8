//! Published ports: `docker run -p` / CNI `portmap` for a lab's namespaces.
//!
//! A publication maps `<host address>:<host port>` to `<namespace
//! address>:<port>`. They come from the lab file (`publish = [...]` on a
//! namespace, or a top-level `[publish]` table) or from `netlab publish` on
//! a running lab, and live in the lab's state (`LabPlan::publications`).
//!
//! * [`spec`]: the `-p` syntax;
//! * this module: validation against the lab (namespace, collisions, the
//!   NAT range) and expansion into per-port [`PublishedPort`]s, the form
//!   both datapaths consume;
//! * [`host`]: checks against the running host side (its addresses, the
//!   ports its sockets already use) and the port reservation;
//! * [`portmap`]: the kernel datapath's iptables rules, as CNI portmap
//!   writes them;
//! * [`ops`]: the library API (`publish`, `unpublish`, `list`) on a
//!   running lab, also used by the CNI plugin for `portMappings`.
//!
//! On the eBPF datapath the publications are the pinned map
//! `nat_publish`, read by the uplink's ingress program (see
//! `nat::publish`).

pub mod host;
pub mod ops;
pub mod portmap;
pub mod show;
pub mod spec;

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

pub use spec::{PortRange, PortSpec, Protocol};

use crate::config::{LabPlan, Problem};
use crate::datapath::PublishedPort;

/// Most published ports (after expanding ranges) one lab can have: the
/// size of the eBPF datapath's `nat_publish` map.
pub const MAX_PUBLISHED_PORTS: usize = netlab_common::nat::NAT_PUBLISH_SIZE as usize;

/// One spec published for one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Publication {
    pub namespace: String,
    pub spec: PortSpec,
}

impl std::fmt::Display for Publication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.namespace, self.spec)
    }
}

fn problem(field: &str, value: impl ToString, reason: impl Into<String>) -> Problem {
    Problem {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Checks `new` (each with the field it came from) against the lab plan
/// and the publications it already has: the namespace is an endpoint of
/// the lab, no two publications receive the same packets, no host port
/// lies in the NAT's port range, the host address is one the lab knows
/// the host side has (`known_host_addresses`), and the total fits the map.
/// What needs the running host (its other addresses, its sockets) is
/// [`host::check`]'s.
pub fn check(
    plan: &LabPlan,
    existing: &[Publication],
    new: &[(String, Publication)],
    known_host_addresses: Option<&[Ipv4Addr]>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut accepted: Vec<(String, &Publication)> = existing
        .iter()
        .map(|p| (format!("publication {p}"), p))
        .collect();
    let mut total: usize = existing
        .iter()
        .map(|p| p.spec.host_ports.len() as usize)
        .sum();
    for (field, p) in new {
        let value = p.spec.to_string();
        if target_address(plan, &p.namespace).is_none() {
            problems.push(problem(
                field,
                &p.namespace,
                format!(
                    "namespace {} is not an endpoint of lab {}",
                    p.namespace, plan.name
                ),
            ));
            continue;
        }
        let nat = spec::PortRange {
            first: plan.nat.port_min,
            last: plan.nat.port_max,
        };
        if p.spec.host_ports.overlaps(&nat) {
            problems.push(problem(
                field,
                &value,
                format!(
                    "host port {} lies in the NAT's port range {nat} (nat.port_min..nat.port_max)",
                    p.spec.host_ports
                ),
            ));
        }
        if let (Some(addr), Some(known)) = (p.spec.host_address, known_host_addresses)
            && !known.contains(&addr)
        {
            problems.push(problem(
                field,
                &value,
                format!(
                    "host address {addr} is not an address of the host side ({})",
                    known
                        .iter()
                        .map(Ipv4Addr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if let Some((other, _)) = accepted.iter().find(|(_, q)| q.spec.collides_with(&p.spec)) {
            problems.push(problem(field, &value, format!("collides with {other}")));
        }
        total += p.spec.host_ports.len() as usize;
        accepted.push((field.clone(), p));
    }
    if total > MAX_PUBLISHED_PORTS {
        problems.push(problem(
            "publish",
            total,
            format!("at most {MAX_PUBLISHED_PORTS} published ports per lab"),
        ));
    }
    problems
}

/// The address behind a publication's `namespace`: a lab namespace's, or
/// a CNI container's (published under [`ContainerPlan::publish_name`]).
///
/// [`ContainerPlan::publish_name`]: crate::containers::ContainerPlan::publish_name
fn target_address(plan: &LabPlan, namespace: &str) -> Option<Ipv4Addr> {
    plan.endpoint(namespace).map(|e| e.address).or_else(|| {
        plan.containers
            .by_publish_name(namespace)
            .map(|c| c.address)
    })
}

/// The host addresses a lab file may name before the lab exists: the
/// gateway's, loopback's and, in a sandbox, the uplink's (the sandbox
/// host namespace has no other). In root mode the machine's addresses
/// are checked when the lab comes up ([`host::check`]).
pub fn planned_host_addresses(plan: &LabPlan) -> Option<Vec<Ipv4Addr>> {
    plan.sandbox()
        .map(|s| vec![s.uplink_address.addr, plan.gateway, Ipv4Addr::LOCALHOST])
}

/// Every port of `publications`, expanded, as the datapaths consume them.
/// Publications of namespaces that are not in the plan are skipped (the
/// plan is validated; this keeps a hand-edited state file harmless).
pub fn expand(plan: &LabPlan, publications: &[Publication]) -> Vec<PublishedPort> {
    let mut out = Vec::new();
    for p in publications {
        let Some(address) = target_address(plan, &p.namespace) else {
            continue;
        };
        for (host_port, port) in p.spec.pairs() {
            out.push(PublishedPort {
                host_address: p.spec.host_address,
                host_port,
                protocol: p.spec.protocol.number(),
                address,
                port,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LabConfig;

    fn publication(ns: &str, spec: &str) -> Publication {
        Publication {
            namespace: ns.into(),
            spec: spec.parse().unwrap(),
        }
    }

    #[test]
    fn checks_name_field_and_value() {
        let plan = LabConfig::default().resolve().unwrap();
        let known = planned_host_addresses(&plan).unwrap();
        let existing = vec![publication("ns1", "8080:80")];
        let cases = [
            ("ns9", "8081:80", "not an endpoint"),
            (
                "ns2",
                "8080:80",
                "collides with publication ns1 8080:80/tcp",
            ),
            ("ns2", "20000:80", "NAT's port range"),
            ("ns2", "10.9.9.9:8082:80", "not an address of the host side"),
        ];
        for (ns, spec, why) in cases {
            let new = vec![("publish".to_string(), publication(ns, spec))];
            let problems = check(&plan, &existing, &new, Some(&known));
            assert_eq!(problems.len(), 1, "{ns} {spec}: {problems:?}");
            assert_eq!(problems[0].field, "publish");
            assert!(problems[0].reason.contains(why), "{problems:?}");
        }
        let ok = vec![
            ("a".to_string(), publication("ns2", "8080:80/udp")),
            ("b".to_string(), publication("ns2", "127.0.0.1:9000:9000")),
        ];
        assert!(check(&plan, &existing, &ok, Some(&known)).is_empty());
    }

    #[test]
    fn expands_ranges_port_for_port() {
        let plan = LabConfig::default().resolve().unwrap();
        let ports = expand(&plan, &[publication("ns2", "8000-8002:9000-9002/udp")]);
        assert_eq!(ports.len(), 3);
        assert_eq!(ports[2].host_port, 8002);
        assert_eq!(ports[2].port, 9002);
        assert_eq!(ports[2].protocol, 17);
        assert_eq!(ports[2].address, Ipv4Addr::new(192, 168, 28, 2));
    }
}
