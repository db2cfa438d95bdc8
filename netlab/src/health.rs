//! What of a running lab is missing: the plan in the state file compared
//! with what the kernel shows. Used by `netlab status` (which reports it)
//! and by `netlab up` on a lab that is already up (which repairs it, see
//! [`crate::lab::repair`]).
//!
//! Checked, per datapath: the lab's namespaces; in each namespace that
//! exists, the links the lab put there (host side: uplink, gateway device,
//! the endpoints' peers, the eBPF gateway port; internet side: its end of
//! the uplink; endpoints: their veth); the kernel datapath's bridge ports
//! and MASQUERADE rule; the eBPF datapath's pins (maps, the port program,
//! one tcx link per port and the two uplink links).
//!
//! A part is reported once, where it is missing: a deleted endpoint
//! namespace is one namespace missing plus its peer link on the host side
//! (the veth pair died with it), not every address inside it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::datapath::kernel;
use crate::netns;
use crate::plan::DatapathKind;
use crate::plan::{HostPlan, LabPlan};
use crate::state::{LabState, Owned};
use crate::topology::{LinkInfoView, with_netlink};

/// Kinds of parts, as shown by `status` (and in its JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartKind {
    Namespace,
    Link,
    /// A kernel-datapath port that is no longer enslaved to the bridge.
    BridgePort,
    /// The kernel datapath's MASQUERADE rule.
    Masquerade,
    /// A pinned map, program or link of the eBPF datapath.
    Pin,
}

/// One missing part of a lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub kind: PartKind,
    /// Namespace, link or pin name; the subnet for a MASQUERADE rule.
    pub name: String,
    /// The namespace it belongs in (None: the root namespace, or bpffs).
    pub netns: Option<String>,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = self
            .netns
            .as_deref()
            .map(|n| format!(" in namespace {n}"))
            .unwrap_or_default();
        match self.kind {
            PartKind::Namespace => write!(f, "namespace {}", self.name),
            PartKind::Link => write!(f, "link {}{place}", self.name),
            PartKind::BridgePort => write!(f, "{} is not a port of its bridge{place}", self.name),
            PartKind::Masquerade => write!(f, "MASQUERADE rule for {}{place}", self.name),
            PartKind::Pin => write!(f, "pinned object {}", self.name),
        }
    }
}

fn part(kind: PartKind, name: &str, netns: Option<&str>) -> Missing {
    Missing {
        kind,
        name: name.to_string(),
        netns: netns.map(str::to_string),
    }
}

/// Links the lab puts into each namespace (None = host side in root mode).
fn expected_links(plan: &LabPlan) -> Vec<(Option<String>, Vec<String>)> {
    let host = plan.host_netns().map(str::to_string);
    let mut host_links = vec![plan.uplink().to_string(), plan.gateway_device.clone()];
    if plan.datapath == DatapathKind::Ebpf {
        host_links.push(plan.gateway_port.clone());
    }
    host_links.extend(plan.endpoints.iter().map(|e| e.peer.clone()));
    let mut v = vec![(host, host_links)];
    if let HostPlan::Sandbox(s) = &plan.host {
        v.push((
            Some(s.internet_namespace.clone()),
            vec![s.internet_device.clone()],
        ));
    }
    v.extend(
        plan.endpoints
            .iter()
            .map(|e| (Some(e.namespace.clone()), vec![e.veth.clone()])),
    );
    v
}

/// The pins the eBPF datapath keeps for `plan`.
pub fn expected_pins(plan: &LabPlan) -> Vec<PathBuf> {
    use crate::bpf::fs;
    let dir = fs::lab_dir(&plan.name);
    // Every map of the table is pinned by the loader, whatever the lab
    // uses (an XDP-less lab still has an empty `xdp_ports`).
    let mut v: Vec<PathBuf> = crate::bpf::maps::all_specs()
        .map(|s| dir.join(s.name))
        .chain(
            [crate::nat::EGRESS_LINK_PIN, crate::nat::INGRESS_LINK_PIN]
                .iter()
                .map(|n| dir.join(n)),
        )
        .collect();
    v.push(fs::prog_pin(&dir));
    v.extend(
        plan.switch_plan()
            .ports
            .iter()
            .map(|p| fs::link_pin(&dir, &p.port_dev)),
    );
    // The published ports' socket hooks, where the machine has cgroup v2.
    if crate::nat::cgroup2_root().is_some() {
        v.extend(crate::nat::SOCK_HOOKS.iter().map(|(_, pin)| dir.join(pin)));
    }
    v
}

/// Why the lab's IPv6 cannot leave through the uplink, if it cannot:
/// * root mode: the uplink needs a global IPv6 address (its first one is
///   what the lab's IPv6 is translated to), read now;
/// * eBPF datapath: its NAT66 must hold an external address
///   (`nat6_config`), which the install writes when it can translate.
///
/// None: the lab has no IPv6, or its IPv6 can leave.
pub fn ipv6_egress_problem(plan: &LabPlan) -> Option<String> {
    plan.ipv6?;
    if let HostPlan::Root { uplink } = &plan.host
        && let Some(why) = uplink_without_ipv6(uplink)
    {
        return Some(why);
    }
    if plan.datapath == DatapathKind::Ebpf {
        return nat66_unconfigured(plan);
    }
    None
}

/// The eBPF datapath's NAT66 has no external address (not installed, or
/// installed without one).
fn nat66_unconfigured(plan: &LabPlan) -> Option<String> {
    use aya::maps::{Array, MapData};
    use netlab_common::nat6::{NAT6_CONFIG_MAP, Nat6Config};
    let dir = crate::bpf::fs::lab_dir(&plan.name);
    let config = crate::bpf::maps::open_pinned::<Array<MapData, Nat6Config>>(&dir, NAT6_CONFIG_MAP)
        .and_then(|m| {
            m.get(&0, 0)
                .map_err(crate::bpf::Error::map(NAT6_CONFIG_MAP))
        });
    match config {
        Ok(c) if c.external != [0; 16] => None,
        Ok(_) => Some(format!(
            "IPv6 egress unavailable: the eBPF datapath's NAT66 is not configured \
             ({NAT6_CONFIG_MAP} holds no external address)"
        )),
        Err(e) => Some(format!("IPv6 egress unavailable: {e}")),
    }
}

/// Root mode's uplink has no global IPv6 address to translate to.
fn uplink_without_ipv6(uplink: &str) -> Option<String> {
    match with_netlink(None, |nl| nl.global_ipv6(uplink)) {
        Ok(Some(_)) => None,
        Ok(None) => Some(format!(
            "IPv6 egress unavailable: {uplink} has no global IPv6 address"
        )),
        Err(e) => Some(format!("IPv6 egress unavailable: {e}")),
    }
}

/// Every part of the lab `state` records that is missing now. Empty for a
/// healthy lab. Parts whose state cannot be read (netlink errors) count as
/// missing, with the reason in the name.
pub fn missing(state: &LabState) -> Vec<Missing> {
    let plan = &state.plan;
    let mut v: Vec<Missing> = plan
        .namespaces()
        .iter()
        .filter(|n| !netns::exists(n))
        .map(|n| part(PartKind::Namespace, n, None))
        .collect();
    let host = plan.host_netns();
    let mut host_links: Vec<LinkInfoView> = Vec::new();
    for (ns, links) in expected_links(plan) {
        let ns = ns.as_deref();
        if ns.is_some_and(|n| !netns::exists(n)) {
            continue; // reported as a namespace
        }
        match with_netlink(ns, |nl| nl.links()) {
            Ok(present) => {
                for l in &links {
                    if !present.iter().any(|p| &p.name == l) {
                        v.push(part(PartKind::Link, l, ns));
                    }
                }
                if ns == host {
                    host_links = present;
                }
            }
            Err(e) => v.push(part(
                PartKind::Link,
                &format!("(cannot list links: {e})"),
                ns,
            )),
        }
    }
    let host_there = host.is_none_or(netns::exists);
    match plan.datapath {
        DatapathKind::Kernel if host_there => {
            let bridge = host_links
                .iter()
                .find(|l| l.name == plan.gateway_device)
                .map(|l| l.ifindex);
            for e in &plan.endpoints {
                let peer = host_links.iter().find(|l| l.name == e.peer);
                if let (Some(bridge), Some(peer)) = (bridge, peer)
                    && peer.controller != Some(bridge)
                {
                    v.push(part(PartKind::BridgePort, &e.peer, host));
                }
            }
            // The rules `up` made, as recorded (root mode without a
            // global IPv6 address on the uplink makes no IPv6 one).
            let recorded = state.objects.iter().filter_map(|o| match o {
                Owned::Masquerade { subnet, .. } => subnet.parse::<kernel::Masqueraded>().ok(),
                _ => None,
            });
            for subnet in recorded {
                if !kernel::masquerade_present(host, &subnet).unwrap_or(false) {
                    v.push(part(PartKind::Masquerade, &subnet.to_string(), host));
                }
            }
        }
        DatapathKind::Kernel => {}
        DatapathKind::Ebpf => {
            for pin in expected_pins(plan) {
                if !pin.exists() {
                    v.push(part(PartKind::Pin, &pin.display().to_string(), None));
                }
            }
        }
    }
    v
}
