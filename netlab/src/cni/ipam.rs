//! Address allocation for containers, from the lab subnet.
//!
//! The reservations are the lab state's container records (written under
//! the lab lock, atomically), so an address is never handed out twice and
//! survives the plugin exiting; DEL and GC release it by removing the
//! record. Allocation goes round robin from the last address handed out,
//! like CNI's host-local IPAM.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::plan::LabPlan;

/// Every address of the subnet nobody else may take: network, broadcast,
/// gateway, the lab's namespaces, other containers.
fn taken(plan: &LabPlan) -> BTreeSet<Ipv4Addr> {
    let mut t: BTreeSet<Ipv4Addr> = [plan.gateway].into_iter().collect();
    t.extend(plan.endpoints.iter().map(|e| e.address));
    t.extend(plan.containers.attachments.iter().map(|c| c.address));
    t
}

/// The usable host addresses of the subnet (without network and
/// broadcast), in order.
fn hosts(plan: &LabPlan) -> impl Iterator<Item = Ipv4Addr> + Clone + use<> {
    plan.subnet.hosts()
}

/// The next free address after the last one handed out (wrapping), or
/// None when the subnet is full.
pub fn next_free(plan: &LabPlan) -> Option<Ipv4Addr> {
    let taken = taken(plan);
    let start = plan.containers.last_reserved;
    let all = hosts(plan);
    let after = all.clone().skip_while(move |a| Some(*a) <= start);
    after.chain(all).find(|a| !taken.contains(a))
}

/// How many addresses are still free (for STATUS).
pub fn free_count(plan: &LabPlan) -> usize {
    let taken = taken(plan);
    hosts(plan).filter(|a| !taken.contains(a)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LabConfig;
    use crate::plan::ContainerPlan;

    fn plan(text: &str) -> LabPlan {
        LabConfig::from_toml(text, "t.toml")
            .unwrap()
            .resolve()
            .unwrap()
    }

    fn hold(p: &mut LabPlan, a: Ipv4Addr) {
        p.containers.attachments.push(ContainerPlan {
            container_id: format!("c{a}"),
            ifname: "eth0".into(),
            netns: "/x".into(),
            peer: "p".into(),
            address: a,
            mac: crate::names::mac_for(a),
            default_route: true,
            complete: true,
        });
        p.containers.last_reserved = Some(a);
    }

    #[test]
    fn skips_gateway_and_namespaces_and_goes_round_robin() {
        // .1-.3 namespaces, .5 gateway.
        let mut p =
            plan("subnet = \"10.112.9.0/29\"\nnamespace_count = 3\ngateway = \"10.112.9.5\"");
        assert_eq!(next_free(&p), Some(Ipv4Addr::new(10, 112, 9, 4)));
        hold(&mut p, Ipv4Addr::new(10, 112, 9, 4));
        assert_eq!(next_free(&p), Some(Ipv4Addr::new(10, 112, 9, 6)));
        hold(&mut p, Ipv4Addr::new(10, 112, 9, 6));
        assert_eq!(next_free(&p), None, "/29 has 6 hosts, all taken");
        assert_eq!(free_count(&p), 0);
        // Releasing .4 while the cursor is at .6: wraps round to .4.
        p.containers
            .attachments
            .retain(|c| c.address.octets()[3] != 4);
        assert_eq!(next_free(&p), Some(Ipv4Addr::new(10, 112, 9, 4)));
        assert_eq!(free_count(&p), 1);
    }

    #[test]
    fn a_released_address_is_not_reused_at_once() {
        // .1 namespace, .5 gateway.
        let mut p = plan("subnet = \"10.112.9.0/24\"\nnamespace_count = 1");
        assert_eq!(next_free(&p), Some(Ipv4Addr::new(10, 112, 9, 2)));
        hold(&mut p, Ipv4Addr::new(10, 112, 9, 2));
        hold(&mut p, Ipv4Addr::new(10, 112, 9, 3));
        p.containers.attachments.clear();
        assert_eq!(next_free(&p), Some(Ipv4Addr::new(10, 112, 9, 4)));
    }
}
