//! Containers attached to a lab by a container runtime through the CNI
//! plugin (`netlab-cni`): what the lab's state file records for each.
//!
//! A container is an endpoint whose namespace the lab does not own: the
//! runtime made it (any path, e.g. `/run/netns/netns-…` or
//! `/proc/PID/ns/net`) and removes it. The lab owns the veth pair (its host
//! end is a switch port like an endpoint's) and the address, which stays
//! reserved here until DEL or GC releases it. The record is written before
//! anything is created (`complete: false`), so an ADD killed half way is
//! cleaned by the next DEL or GC.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One attachment, identified as CNI does by `(container_id, ifname)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPlan {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`: the interface inside the container.
    pub ifname: String,
    /// `CNI_NETNS`: the path of the container's network namespace.
    pub netns: String,
    /// The host-side end of the veth pair: a switch port.
    pub peer: String,
    pub address: Ipv4Addr,
    /// Set on `ifname`: `names::mac_for` its address, as for the lab's namespaces.
    pub mac: [u8; 6],
    /// Whether ADD set the container's default route (via the gateway, on
    /// `ifname`); not when the container already had one (a second
    /// interface, or another plugin's).
    #[serde(default = "yes")]
    pub default_route: bool,
    /// False while ADD runs (or after it died half way).
    pub complete: bool,
}

fn yes() -> bool {
    true
}

/// Length of the container id shown by `netlab status`/`fdb`/`nat list`,
/// as `podman ps` and `docker ps` shorten theirs.
pub const SHORT_ID_LEN: usize = 12;

impl ContainerPlan {
    pub fn short_id(&self) -> &str {
        let end = self
            .container_id
            .char_indices()
            .nth(SHORT_ID_LEN)
            .map_or(self.container_id.len(), |(i, _)| i);
        &self.container_id[..end]
    }

    /// How the inspection commands name the container: `cni:<short id>
    /// (<netns>)`.
    pub fn label(&self) -> String {
        format!("cni:{} ({})", self.short_id(), self.netns)
    }

    /// The name its published ports (`portMappings`) are recorded under,
    /// where a lab namespace's name would be: `cni:<id>/<ifname>`.
    pub fn publish_name(&self) -> String {
        format!("cni:{}/{}", self.container_id, self.ifname)
    }

    pub fn is(&self, container_id: &str, ifname: &str) -> bool {
        self.container_id == container_id && self.ifname == ifname
    }
}

/// Every container attachment of a lab, plus the allocator's cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Containers {
    pub attachments: Vec<ContainerPlan>,
    /// The address handed out last: allocation continues after it (round
    /// robin, as CNI's host-local IPAM does), so a released address is not
    /// reused at once while peers may still have it in their ARP caches
    /// and NAT flows.
    pub last_reserved: Option<Ipv4Addr>,
}

impl Containers {
    pub fn is_empty(&self) -> bool {
        self.attachments.is_empty()
    }

    pub fn find(&self, container_id: &str, ifname: &str) -> Option<&ContainerPlan> {
        self.attachments.iter().find(|c| c.is(container_id, ifname))
    }

    /// A container as a user names it: its id, short id, netns path or
    /// published-ports name.
    pub fn find_by_name(&self, name: &str) -> Option<&ContainerPlan> {
        self.attachments.iter().find(|c| {
            c.container_id == name
                || c.short_id() == name
                || c.netns == name
                || c.publish_name() == name
        })
    }

    pub fn by_peer(&self, peer: &str) -> Option<&ContainerPlan> {
        self.attachments.iter().find(|c| c.peer == peer)
    }

    pub fn by_publish_name(&self, name: &str) -> Option<&ContainerPlan> {
        self.attachments.iter().find(|c| c.publish_name() == name)
    }

    pub fn by_address(&self, address: Ipv4Addr) -> Option<&ContainerPlan> {
        self.attachments.iter().find(|c| c.address == address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_id_and_label() {
        let c = ContainerPlan {
            container_id: "0123456789abcdef0123".into(),
            ifname: "eth0".into(),
            netns: "/run/netns/netns-x".into(),
            peer: "nlc0".into(),
            address: Ipv4Addr::new(10, 0, 0, 2),
            mac: [2, 0x4e, 10, 0, 0, 2],
            default_route: true,
            complete: true,
        };
        assert_eq!(c.short_id(), "0123456789ab");
        assert_eq!(c.label(), "cni:0123456789ab (/run/netns/netns-x)");
        let short = ContainerPlan {
            container_id: "abc".into(),
            ..c
        };
        assert_eq!(short.short_id(), "abc");
    }
}
