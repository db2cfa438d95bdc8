//! One more endpoint for a running lab (`netlab attach NAME IP`): the lab
//! file's rules, checked against what the lab already has.

use std::net::Ipv4Addr;

use super::error::ConfigError;
use super::ipv6::address6_for;
use super::problems::{Problems, lab_address_problem};
use crate::names;
use crate::plan::{EndpointPlan, LabPlan};

/// Plans endpoint `namespace` at `address` in `plan`: the next index, its
/// veth pair's names and its MAC.
pub fn plan_endpoint(
    plan: &LabPlan,
    namespace: &str,
    address: Ipv4Addr,
) -> Result<EndpointPlan, ConfigError> {
    let mut p = Problems::default();
    p.check("namespace", namespace, names::netns_name_problem);
    if plan.namespaces().iter().any(|n| n == namespace) {
        p.push(
            "namespace",
            namespace,
            format!("already part of lab {}", plan.name),
        );
    }
    if let Some(why) = address_problem(plan, address) {
        p.push("address", address, why);
    }
    // Its IPv6 address follows the lab file's rule: the IPv4 offset in subnet6.
    let address6 = plan.ipv6.and_then(|v6| {
        let a = address6_for(&plan.subnet, &v6.subnet, address);
        let why = match a {
            None => Some(format!(
                "its offset in {} does not fit in subnet6 {}",
                plan.subnet, v6.subnet
            )),
            Some(a) if a == v6.gateway => Some(format!("its IPv6 address {a} is gateway6")),
            Some(a) => plan
                .endpoints
                .iter()
                .find(|e| e.address6 == Some(a))
                .map(|e| {
                    format!(
                        "its IPv6 address {a} is already used by namespace {}",
                        e.namespace
                    )
                }),
        };
        if let Some(why) = why {
            p.push("address", address, why);
        }
        a
    });
    let index = plan.endpoints.iter().map(|e| e.index).max().unwrap_or(0) + 1;
    let peer = names::endpoint_peer(index);
    let taken = [
        plan.gateway_device.as_str(),
        plan.gateway_port.as_str(),
        plan.uplink(),
    ];
    if taken.contains(&peer.as_str()) || plan.endpoints.iter().any(|e| e.peer == peer) {
        p.push(
            "peer",
            &peer,
            "interface name already used on the host side",
        );
    }
    p.check("peer", &peer, names::interface_name_problem);
    if !p.is_empty() {
        return Err(ConfigError::Invalid(p.0));
    }
    Ok(EndpointPlan {
        index,
        namespace: namespace.to_string(),
        veth: names::endpoint_veth(index),
        peer,
        address,
        address6,
        mac: names::mac_for(address),
    })
}

/// Why `address` cannot be a new endpoint's: outside the subnet, or taken.
fn address_problem(plan: &LabPlan, address: Ipv4Addr) -> Option<String> {
    if let Some(why) = lab_address_problem(&plan.subnet, address) {
        Some(why)
    } else if address == plan.gateway {
        Some("that is the gateway's address".into())
    } else if let Some(e) = plan.endpoints.iter().find(|e| e.address == address) {
        Some(format!("already used by namespace {}", e.namespace))
    } else {
        plan.containers
            .by_address(address)
            .map(|c| format!("already used by container {}", c.label()))
    }
}
