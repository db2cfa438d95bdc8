//! Wiring one container into a running lab, and unwiring it. Always called
//! with the lab lock held and the lab's state loaded.
//!
//! The same machinery as `netlab attach`: a veth pair whose host end is a
//! switch port (`datapath::ebpf::add_port` fills the port, flood, source
//! check, FDB, ARP and NAT endpoint maps; the kernel datapath enslaves it
//! to the bridge), the MAC 02:4e:<IPv4>, the address and a default route
//! via the gateway. Only the namespace differs: the runtime's, by path.
//!
//! Crash safety, as for the lab: the container's record (with its address)
//! is saved before anything is created, so DEL or GC after a killed ADD
//! finds and removes everything.

use std::os::fd::{AsFd, OwnedFd};

use super::env::Attachment;
use super::error::{CniError, CniResult, code};
use super::{ipam, sandbox};
use crate::datapath::{self, kernel};
use crate::lab::LabError;
use crate::names::{format_mac, mac_for};
use crate::netns;
use crate::plan::{ContainerPlan, DatapathKind, LabPlan, PortSpec};
use crate::state::{LabLock, LabState, Owned};
use crate::sysctl;
use crate::topology::TopologyError;
use crate::topology::with_netlink;

/// The host-side veth name of an attachment: "nlc" + 12 hex digits of a
/// hash of (container id, ifname), 15 bytes (IFNAMSIZ - 1). FNV-1a is
/// written out because std's hasher is not guaranteed stable across
/// releases, and the name must be the same in every plugin run.
pub fn peer_name(container_id: &str, ifname: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes().chain([0]).chain(ifname.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("nlc{:012x}", h & 0xffff_ffff_ffff)
}

fn save(lock: &LabLock, state: &LabState) -> CniResult<()> {
    lock.save(state)
        .map_err(|e| CniError::lab("cannot save the lab state", e))
}

/// Adds the container to the lab. On failure, everything this call made is
/// removed again (and the address released).
pub fn add(
    lock: &LabLock,
    state: &mut LabState,
    att: &Attachment,
    netns_path: &str,
    netns_fd: &OwnedFd,
    ports: &[PortSpec],
) -> CniResult<ContainerPlan> {
    if let Some(old) = state.plan.containers.find(&att.container_id, &att.ifname) {
        if old.complete {
            return Err(CniError::new(
                code::INTERFACE_EXISTS,
                "the container is already attached",
                format!(
                    "container {} interface {} is already attached to lab {} (DEL it first)",
                    att.container_id, att.ifname, state.lab
                ),
            ));
        }
        // An ADD that was killed half way: clean it before starting over.
        let old = old.clone();
        remove(lock, state, &old)?;
    }
    let (taken, has_default) = sandbox::with_netlink_in(netns_fd, netns_path, |nl| {
        let taken = nl.link_index(&att.ifname)?;
        let has_default = nl.routes()?.iter().any(|r| r.destination == "default");
        Ok((taken, has_default))
    })
    .map_err(|e| CniError::lab("cannot read the container's interfaces", e))?;
    if taken.is_some() {
        return Err(CniError::new(
            code::INTERFACE_EXISTS,
            "the interface name is taken",
            format!(
                "CNI_IFNAME {:?}: the namespace {netns_path} already has an interface of that name",
                att.ifname
            ),
        ));
    }
    let plan = state.plan.clone();
    let address = ipam::next_free(&plan).ok_or_else(|| {
        CniError::new(
            code::SUBNET_EXHAUSTED,
            "no free address",
            format!(
                "lab {} subnet {}: every address is taken (gateway, {} namespaces, {} containers)",
                plan.name,
                plan.subnet,
                plan.endpoints.len(),
                plan.containers.attachments.len()
            ),
        )
    })?;
    let peer = peer_name(&att.container_id, &att.ifname);
    if let Some(other) = plan.containers.by_peer(&peer) {
        return Err(CniError::lab(
            "host-side interface name clash",
            anyhow::anyhow!("{peer} is already used by container {}", other.label()),
        ));
    }
    let container = ContainerPlan {
        container_id: att.container_id.clone(),
        ifname: att.ifname.clone(),
        netns: netns_path.to_string(),
        peer,
        address,
        mac: mac_for(address),
        default_route: !has_default,
        complete: false,
    };
    state.plan.containers.attachments.push(container.clone());
    state.plan.containers.last_reserved = Some(address);
    if plan.host_netns().is_none() {
        // Root mode: `down` must remove the host end too.
        state.objects.push(Owned::Link {
            netns: None,
            name: container.peer.clone(),
        });
    }
    save(lock, state)?;
    super::fault_point("recorded");

    let wired = wire(&plan, &container, netns_fd).and_then(|()| {
        super::fault_point("wired");
        publish(lock, state, &container, ports)
    });
    match wired {
        Ok(()) => {
            let c = state
                .plan
                .containers
                .attachments
                .iter_mut()
                .find(|c| c.is(&container.container_id, &container.ifname))
                .expect("just recorded");
            c.complete = true;
            let done = c.clone();
            save(lock, state)?;
            Ok(done)
        }
        Err(failure) => {
            if let Err(rollback) = remove(lock, state, &container) {
                log::error!("rolling back container {}: {rollback}", container.label());
            }
            Err(failure)
        }
    }
}

/// Publishes the container's `portMappings` through the lab's published
/// ports (checked like `netlab publish`: collisions, the NAT range, ports
/// in use on the host side).
fn publish(
    lock: &LabLock,
    state: &mut LabState,
    c: &ContainerPlan,
    ports: &[PortSpec],
) -> CniResult<()> {
    if ports.is_empty() {
        return Ok(());
    }
    crate::lab::publish::publish_locked(lock, state, &c.publish_name(), ports).map_err(|e| {
        let code = match e {
            LabError::Config(_) | LabError::PublishRefused { .. } => code::INVALID_CONFIG,
            _ => code::LAB_FAILURE,
        };
        CniError::new(
            code,
            "cannot publish the container's portMappings",
            format!("{:#}", anyhow::Error::new(e)),
        )
    })
}

/// Creates the veth pair, configures the container's end and joins the
/// host end to the datapath.
fn wire(plan: &LabPlan, c: &ContainerPlan, netns_fd: &OwnedFd) -> CniResult<()> {
    let host = plan.host_netns();
    with_netlink(host, |nl| {
        nl.create_veth(
            &c.peer,
            None,
            &c.ifname,
            Some(c.mac),
            Some(netns_fd.as_fd()),
        )?;
        nl.set_up(&c.peer)
    })
    .map_err(|e| CniError::lab("cannot create the container's veth pair", e))?;
    sandbox::with_netlink_in(netns_fd, &c.netns, |nl| {
        nl.add_address(&c.ifname, c.address, plan.subnet.prefix_len)?;
        // The plugin's IPAM is IPv4 only, so the container's port has no
        // IPv6 address in the switch (`ports6`): every IPv6 frame from it
        // would be dropped as spoofed. Without this, the link-local the
        // kernel makes on up would send router solicitations and MLD
        // reports that count as `drop_spoofed` and hide real spoofing.
        // Written on this thread, which is in the container's namespace
        // (net sysctls are the calling task's namespace's).
        let key = sysctl::ipv6_device_key(&c.ifname, "disable_ipv6");
        sysctl::write(None, &key, "1").map_err(|e| TopologyError::Io {
            context: format!("cannot disable IPv6 on {} in {}", c.ifname, c.netns),
            source: std::io::Error::other(e.to_string()),
        })?;
        nl.set_up(&c.ifname)?;
        if c.default_route {
            nl.add_default_route(plan.gateway)?;
        }
        Ok(())
    })
    .map_err(|e| CniError::lab("cannot configure the container's interface", e))?;
    match plan.datapath {
        DatapathKind::Ebpf => {
            let port = c.port_plan();
            netns::run_in(host, || datapath::ebpf::add_port(&plan.name, &port))
                .map_err(|e| CniError::lab("cannot enter the lab's host namespace", e))?
                .map_err(|e| CniError::lab("cannot add the container's switch port", e))
        }
        DatapathKind::Kernel => with_netlink(host, |nl| Ok(kernel::enslave(nl, plan, &c.peer)))
            .map_err(|e| CniError::lab("cannot enter the lab's host namespace", e))?
            .map_err(|e| CniError::lab("cannot add the container to the bridge", e)),
    }
}

/// Removes a container: its switch port (map entries included), the veth
/// pair (by its host end, which works whether or not the container's
/// namespace still exists), then its record, releasing the address.
pub fn remove(lock: &LabLock, state: &mut LabState, c: &ContainerPlan) -> CniResult<()> {
    // Its published ports first, with their translations (and rules).
    let name = c.publish_name();
    if state.plan.publications.iter().any(|p| p.namespace == name) {
        let left = state
            .plan
            .publications
            .iter()
            .filter(|p| p.namespace != name)
            .cloned()
            .collect();
        crate::lab::publish::apply(lock, state, left)
            .map_err(|e| CniError::lab("cannot unpublish the container's ports", e))?;
    }
    let plan = state.plan.clone();
    let host = plan.host_netns();
    let host_there = host.is_none_or(netns::exists);
    if plan.datapath == DatapathKind::Ebpf && datapath::ebpf::is_installed(&plan.name) {
        let port = c.port_plan();
        // Outside the host namespace when it is gone: remove_port then
        // finds the port by MAC and address.
        let ns = if host_there { host } else { None };
        netns::run_in(ns, || datapath::ebpf::remove_port(&plan.name, &port))
            .map_err(|e| CniError::lab("cannot enter the lab's host namespace", e))?
            .map_err(|e| CniError::lab("cannot remove the container's switch port", e))?;
        let dir = datapath::ebpf::pin_dir(&plan.name);
        if dir.join(netlab_common::nat::NAT_ORIG_MAP).exists() {
            let flushed = crate::nat::flush_source(&dir, c.address)
                .map_err(|e| CniError::lab("cannot remove the container's NAT flows", e))?;
            log::info!("{flushed} NAT flows of {} removed", c.label());
        }
    }
    if host_there {
        with_netlink(host, |nl| nl.delete_link(&c.peer))
            .map_err(|e| CniError::lab("cannot delete the container's veth pair", e))?;
    }
    state
        .plan
        .containers
        .attachments
        .retain(|x| !x.is(&c.container_id, &c.ifname));
    state.objects.retain(
        |o| !matches!(o, Owned::Link { netns: None, name } if host.is_none() && *name == c.peer),
    );
    save(lock, state)
}

/// CHECK: the container is as ADD left it. Returns what differs.
pub fn check(plan: &LabPlan, c: &ContainerPlan, netns_fd: &OwnedFd) -> Vec<String> {
    let mut wrong = Vec::new();
    if !c.complete {
        wrong.push("its ADD did not finish".to_string());
    }
    let cidr = format!("{}/{}", c.address, plan.subnet.prefix_len);
    match sandbox::with_netlink_in(netns_fd, &c.netns, |nl| Ok((nl.links()?, nl.routes()?))) {
        Err(e) => wrong.push(format!("cannot read the container's namespace: {e}")),
        Ok((links, routes)) => match links.iter().find(|l| l.name == c.ifname) {
            None => wrong.push(format!("interface {} is missing", c.ifname)),
            Some(l) => {
                let mac = format_mac(&c.mac);
                if l.mac.as_deref() != Some(mac.as_str()) {
                    wrong.push(format!(
                        "interface {} has MAC {}, not {mac}",
                        c.ifname,
                        l.mac.as_deref().unwrap_or("none")
                    ));
                }
                if !l.up {
                    wrong.push(format!("interface {} is down", c.ifname));
                }
                if !l.addresses.contains(&cidr) {
                    wrong.push(format!(
                        "interface {} lacks address {cidr} (has {})",
                        c.ifname,
                        l.addresses.join(", ")
                    ));
                }
                let default_ok = routes.iter().any(|r| {
                    r.destination == "default"
                        && r.gateway == Some(plan.gateway.into())
                        && r.device.as_deref() == Some(c.ifname.as_str())
                });
                if c.default_route && !default_ok {
                    wrong.push(format!(
                        "no default route via {} on {}",
                        plan.gateway, c.ifname
                    ));
                }
            }
        },
    }
    let host = plan.host_netns();
    let peer = with_netlink(host, |nl| {
        Ok(nl.links()?.into_iter().find(|l| l.name == c.peer))
    });
    let peer_index = match peer {
        Err(e) => {
            wrong.push(format!("cannot read the lab's host side: {e}"));
            None
        }
        Ok(None) => {
            wrong.push(format!("host-side interface {} is missing", c.peer));
            None
        }
        Ok(Some(l)) => {
            if !l.up {
                wrong.push(format!("host-side interface {} is down", c.peer));
            }
            Some(l.ifindex)
        }
    };
    if plan.datapath == DatapathKind::Ebpf {
        wrong.extend(check_switch(plan, c, peer_index));
    }
    wrong
}

/// The switch maps hold the container's port (by ifindex, MAC, address)
/// and its static FDB entry.
fn check_switch(plan: &LabPlan, c: &ContainerPlan, ifindex: Option<u32>) -> Vec<String> {
    let mut wrong = Vec::new();
    let Some(ifindex) = ifindex else {
        return wrong;
    };
    match datapath::ebpf::ports(&plan.name) {
        Err(e) => wrong.push(format!("cannot read the switch's ports: {e}")),
        Ok(ports) => match ports.iter().find(|p| p.ifindex == ifindex) {
            None => wrong.push(format!("switch port {} is not in the port map", c.peer)),
            Some(p) if p.mac != c.mac || p.ipv4 != c.address => wrong.push(format!(
                "switch port {} holds {} {}, not {} {}",
                c.peer,
                format_mac(&p.mac),
                p.ipv4,
                format_mac(&c.mac),
                c.address
            )),
            Some(_) => {}
        },
    }
    match datapath::ebpf::fdb(&plan.name) {
        Err(e) => wrong.push(format!("cannot read the FDB: {e}")),
        Ok(fdb) => {
            if !fdb
                .iter()
                .any(|(mac, e)| *mac == c.mac && e.port_ifindex == ifindex)
            {
                wrong.push(format!(
                    "the FDB has no entry {} -> {}",
                    format_mac(&c.mac),
                    c.peer
                ));
            }
        }
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_names_are_stable_distinct_and_short() {
        let a = peer_name("abc", "eth0");
        assert_eq!(a, peer_name("abc", "eth0"));
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("nlc"));
        assert_ne!(a, peer_name("abc", "eth1"));
        assert_ne!(a, peer_name("abd", "eth0"));
        // The separator keeps ("ab", "ceth0") apart from ("abc", "eth0").
        assert_ne!(a, peer_name("ab", "ceth0"));
    }
}
