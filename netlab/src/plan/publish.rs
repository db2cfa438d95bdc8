//! Published ports in the plan: the checks of [`Publication`]s against the
//! lab (namespace, collisions, the NAT range, the map's size) and their
//! expansion into per-port [`PublishedPort`]s, the form both datapaths
//! consume. What needs the
//! running host side (its addresses, its sockets) is `publish::host`'s.
//!
//! IPv6: a publication without a host address is published in both
//! families — to the namespace's IPv4 address, and to its IPv6 address
//! (`address6`) when the lab has IPv6 — and one with an IPv6 host address
//! in IPv6 only ([`expand6`]). A lab without IPv6 refuses an IPv6 host
//! address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::lab::LabPlan;
use super::port_spec::{PortRange, Publication};
use super::problem::Problem;

/// Most published ports (after expanding ranges) one lab can have: the
/// size of the eBPF datapath's `nat_publish` map.
pub const MAX_PUBLISHED_PORTS: usize = netlab_common::nat::NAT_PUBLISH_SIZE as usize;

/// One published host port, as the datapaths consume it (the lab file's
/// ranges expanded port by port), in one address family: `A` is
/// `Ipv4Addr` (the default) or `Ipv6Addr` ([`PublishedPort6`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort<A = Ipv4Addr> {
    /// None: every address of the host side (of this family).
    pub host_address: Option<A>,
    pub host_port: u16,
    /// IP protocol number (6 or 17).
    pub protocol: u8,
    /// The namespace's address and port.
    pub address: A,
    pub port: u16,
}

/// A published port's IPv6 side.
pub type PublishedPort6 = PublishedPort<Ipv6Addr>;

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
    known_host_addresses: Option<&[IpAddr]>,
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
                ipv6_problem(plan, p).or_else(|| unknown_host_address(p, known_host_addresses)),
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

/// An IPv6 host address on a namespace without an IPv6 address (a lab
/// with `subnet6 = "none"`, or a CNI container): nothing to publish to.
/// And `[::1]` on the kernel datapath: IPv6 has no `route_localnet`, the
/// kernel never routes a packet from ::1 off the host, so no DNAT rule
/// can serve it (see `publish::portmap`).
fn ipv6_problem(plan: &LabPlan, p: &Publication) -> Option<String> {
    let Some(IpAddr::V6(addr)) = p.spec.host_address else {
        return None;
    };
    if target_address6(plan, &p.namespace).is_none() {
        return Some(format!(
            "host address {addr} is IPv6 but {} has no IPv6 address (lab {} has no IPv6: subnet6 = \"none\", or a container)",
            p.namespace, plan.name
        ));
    }
    (addr.is_loopback() && plan.datapath == super::DatapathKind::Kernel).then(|| {
        format!(
            "host address {addr} cannot be published on the kernel datapath: the kernel never routes IPv6 from ::1 off the host (there is no route_localnet for IPv6)"
        )
    })
}

/// A host address the lab does not know the host side has.
fn unknown_host_address(p: &Publication, known: Option<&[IpAddr]>) -> Option<String> {
    let (addr, known) = (p.spec.host_address?, known?);
    (!known.contains(&addr)).then(|| {
        format!(
            "host address {addr} is not an address of the host side ({})",
            known
                .iter()
                .filter(|k| k.is_ipv4() == addr.is_ipv4())
                .map(IpAddr::to_string)
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

/// The IPv6 address behind a publication's `namespace`: a lab
/// namespace's `address6` (CNI containers have none).
fn target_address6(plan: &LabPlan, namespace: &str) -> Option<Ipv6Addr> {
    plan.endpoint(namespace).and_then(|e| e.address6)
}

/// The host addresses a lab file may name before the lab exists: the
/// gateway's, loopback's and, in a sandbox, the uplink's (the sandbox
/// host namespace has no other), in both families. In root mode the
/// machine's addresses are checked when the lab comes up
/// (`publish::host::check`).
pub fn planned_host_addresses(plan: &LabPlan) -> Option<Vec<IpAddr>> {
    let s = plan.sandbox()?;
    let mut out: Vec<IpAddr> = vec![
        s.uplink_address.addr.into(),
        plan.gateway.into(),
        Ipv4Addr::LOCALHOST.into(),
    ];
    if let Some(v6) = plan.ipv6 {
        out.extend(s.uplink_address6.map(|c| IpAddr::V6(c.addr)));
        out.push(v6.gateway.into());
        out.push(Ipv6Addr::LOCALHOST.into());
    }
    Some(out)
}

/// Every port of `publications`, expanded port for port, in the family
/// whose host address `host` gives (None: the publication has no address
/// in it) and to the namespace address `target` gives.
fn expand_in<A: Copy>(
    publications: &[Publication],
    host: impl Fn(Option<IpAddr>) -> Option<Option<A>>,
    target: impl Fn(&str) -> Option<A>,
) -> Vec<PublishedPort<A>> {
    let mut out = Vec::new();
    for p in publications {
        let (Some(host_address), Some(address)) = (host(p.spec.host_address), target(&p.namespace))
        else {
            continue;
        };
        for (host_port, port) in p.spec.pairs() {
            out.push(PublishedPort {
                host_address,
                host_port,
                protocol: p.spec.protocol.number(),
                address,
                port,
            });
        }
    }
    out
}

/// Every IPv4 port of `publications`, expanded, as the datapaths consume
/// them: those without a host address or with an IPv4 one. Publications
/// of namespaces that are not in the plan are skipped (the plan is
/// validated; this keeps a hand-edited state file harmless).
pub fn expand(plan: &LabPlan, publications: &[Publication]) -> Vec<PublishedPort> {
    expand_in(
        publications,
        |host| match host {
            None => Some(None),
            Some(IpAddr::V4(a)) => Some(Some(a)),
            Some(IpAddr::V6(_)) => None,
        },
        |ns| target_address(plan, ns),
    )
}

/// Every IPv6 port of `publications`, expanded: those without a host
/// address or with an IPv6 one, for namespaces with an IPv6 address.
pub fn expand6(plan: &LabPlan, publications: &[Publication]) -> Vec<PublishedPort6> {
    expand_in(
        publications,
        |host| match host {
            None => Some(None),
            Some(IpAddr::V6(a)) => Some(Some(a)),
            Some(IpAddr::V4(_)) => None,
        },
        |ns| target_address6(plan, ns),
    )
}

impl LabPlan {
    /// The lab's IPv4 publications, expanded port by port ([`expand`]).
    pub fn published_ports(&self) -> Vec<PublishedPort> {
        expand(self, &self.publications)
    }

    /// The lab's IPv6 publications, expanded port by port ([`expand6`]).
    pub fn published_ports6(&self) -> Vec<PublishedPort6> {
        expand6(self, &self.publications)
    }
}
