//! Published ports in the plan: the checks of [`Publication`]s against the
//! lab (namespace, collisions, the NAT range, the map's size) and their
//! expansion into per-port [`PublishedPort`]s, the form both datapaths
//! consume. What needs the
//! running host side (its addresses, its sockets) is `publish::host`'s.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::lab::LabPlan;
use super::port_spec::{PortRange, Publication};
use super::problem::Problem;

/// Most published ports (after expanding ranges) one lab can have: the
/// size of the eBPF datapath's `nat_publish` map.
pub const MAX_PUBLISHED_PORTS: usize = netlab_common::nat::NAT_PUBLISH_SIZE as usize;

/// One published host port, as the datapaths consume it (the lab file's
/// ranges expanded port for port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    /// None: every address of the host side.
    pub host_address: Option<Ipv4Addr>,
    pub host_port: u16,
    /// IP protocol number (6 or 17).
    pub protocol: u8,
    /// The namespace's address and port.
    pub address: Ipv4Addr,
    pub port: u16,
}

/// Checks `new` (each with the field it came from) against the lab plan
/// and the publications it already has: the namespace is an endpoint of
/// the lab, no two publications receive the same packets, no host port
/// lies in the NAT's port range, the host address is one the lab knows
/// the host side has (`known_host_addresses`), and the total fits the map.
/// What needs the running host (its other addresses, its sockets) is
/// `publish::host::check`'s.
pub fn check_publications(
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
            problems.push(Problem::new(
                field,
                &p.namespace,
                format!(
                    "namespace {} is not an endpoint of lab {}",
                    p.namespace, plan.name
                ),
            ));
            continue;
        }
        problems.extend(
            [
                nat_range_clash(plan, p),
                unknown_host_address(p, known_host_addresses),
            ]
            .into_iter()
            .flatten()
            .map(|why| Problem::new(field, &value, why)),
        );
        if let Some((other, _)) = accepted.iter().find(|(_, q)| q.spec.collides_with(&p.spec)) {
            problems.push(Problem::new(
                field,
                &value,
                format!("collides with {other}"),
            ));
        }
        total += p.spec.host_ports.len() as usize;
        accepted.push((field.clone(), p));
    }
    if total > MAX_PUBLISHED_PORTS {
        problems.push(Problem::new(
            "publish",
            total,
            format!("at most {MAX_PUBLISHED_PORTS} published ports per lab"),
        ));
    }
    problems
}

/// A host port inside the NAT's port range would be taken by translations.
fn nat_range_clash(plan: &LabPlan, p: &Publication) -> Option<String> {
    let nat = PortRange {
        first: plan.nat.port_min,
        last: plan.nat.port_max,
    };
    p.spec.host_ports.overlaps(&nat).then(|| {
        format!(
            "host port {} lies in the NAT's port range {nat} (nat.port_min..nat.port_max)",
            p.spec.host_ports
        )
    })
}

/// A host address the lab does not know the host side has.
fn unknown_host_address(p: &Publication, known: Option<&[Ipv4Addr]>) -> Option<String> {
    let (addr, known) = (p.spec.host_address?, known?);
    (!known.contains(&addr)).then(|| {
        format!(
            "host address {addr} is not an address of the host side ({})",
            known
                .iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The address behind a publication's `namespace`: a lab namespace's, or
/// a CNI container's (published under [`ContainerPlan::publish_name`]).
///
/// [`ContainerPlan::publish_name`]: super::ContainerPlan::publish_name
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
/// are checked when the lab comes up (`publish::host::check`).
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

impl LabPlan {
    /// The lab's publications, expanded port by port ([`expand`]).
    pub fn published_ports(&self) -> Vec<PublishedPort> {
        expand(self, &self.publications)
    }
}
