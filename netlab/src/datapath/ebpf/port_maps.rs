//! The switch maps made to describe exactly the planned ports: a port's
//! devices resolved, its slot kept or the lowest free one, its entries
//! written, what no longer belongs deleted.

use std::collections::{BTreeMap, BTreeSet};

use netlab_common::{
    maps::MAX_PORTS,
    switch::{FDB_FLAG_STATIC, PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, Port6, PortInfo},
};

use crate::bpf::{Error, Result, key::ipv4_key, maps::SwitchMaps, maps6::SwitchMaps6};
use crate::datapath::xdp;
use crate::names::link_local_for;
use crate::plan::{PortPlan, PortRole};

/// A planned port with its devices resolved to ifindexes.
pub(super) struct ResolvedPort<'a> {
    pub(super) plan: &'a PortPlan,
    pub(super) ifindex: u32,
    pub(super) deliver_ifindex: u32,
}

impl ResolvedPort<'_> {
    pub(super) fn xdp(&self) -> xdp::XdpPort {
        let (peer_netns, peer_dev) = match self.plan.role {
            PortRole::Endpoint => (
                self.plan.namespace.clone(),
                self.plan.peer_dev.clone().unwrap_or_default(),
            ),
            PortRole::Gateway => (None, self.plan.deliver_dev.clone().unwrap_or_default()),
        };
        xdp::XdpPort {
            dev: self.plan.port_dev.clone(),
            ifindex: self.ifindex,
            peer_netns,
            peer_dev,
        }
    }

    pub(super) fn info(&self, slot: u32) -> PortInfo {
        PortInfo {
            ifindex: self.ifindex,
            deliver_ifindex: self.deliver_ifindex,
            ipv4: ipv4_key(self.plan.ipv4),
            slot,
            mac: self.plan.mac,
            kind: kind(self.plan.role),
            _pad: 0,
        }
    }
}

/// The IPv6 addresses behind a planned port: its global one and the
/// link-local one the kernel derives from its MAC; `None` without IPv6.
pub(super) fn addrs6(port: &PortPlan) -> Option<Port6> {
    port.ipv6.map(|global| Port6 {
        global: global.octets(),
        link_local: link_local_for(port.mac).octets(),
    })
}

/// Writes the IPv6 side of a resolved port (`ports6`, `endpoints6`).
pub(super) fn write_port6(maps6: &mut SwitchMaps6, port: &ResolvedPort<'_>) -> Result<()> {
    maps6.write_port(
        port.ifindex,
        port.plan.mac,
        port.plan.role == PortRole::Endpoint,
        addrs6(port.plan),
    )
}

pub(super) fn resolve(port: &PortPlan) -> Result<ResolvedPort<'_>> {
    let ifindex = ifindex(&port.port_dev)?;
    let deliver_ifindex = match (port.role, &port.deliver_dev) {
        (PortRole::Gateway, Some(dev)) => self::ifindex(dev)?,
        _ => ifindex,
    };
    Ok(ResolvedPort {
        plan: port,
        ifindex,
        deliver_ifindex,
    })
}

fn ifindex(dev: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(dev).map_err(|source| Error::NoDevice {
        dev: dev.to_owned(),
        source,
    })
}

/// Makes the maps describe exactly `ports`: new and changed entries are
/// written first, then what no longer belongs is deleted, so a running lab
/// never loses a path it keeps. Slots of ports that stay are kept (their
/// statistics too). The IPv6 tables likewise.
pub(super) fn sync_maps(
    maps: &mut SwitchMaps,
    maps6: &mut SwitchMaps6,
    ports: &[ResolvedPort<'_>],
) -> Result<()> {
    let existing: BTreeMap<u32, u32> = maps
        .ports()?
        .into_iter()
        .map(|(i, p)| (i, p.slot))
        .filter(|(i, slot)| *slot < MAX_PORTS && ports.iter().any(|p| p.ifindex == *i))
        .collect();
    let mut assigned: BTreeMap<u32, u32> = existing.clone();
    let mut infos = Vec::with_capacity(ports.len());
    for port in ports {
        let (slot, fresh) = slot_for(port.ifindex, &assigned)?;
        assigned.insert(port.ifindex, slot);
        if fresh {
            maps.reset_port_stats(slot)?;
        }
        infos.push(port.info(slot));
    }
    for info in &infos {
        maps.write_port(info)?;
    }
    for port in ports {
        write_port6(maps6, port)?;
    }
    let keep6: BTreeMap<u32, Port6> = ports
        .iter()
        .filter_map(|p| addrs6(p.plan).map(|a| (p.ifindex, a)))
        .collect();
    maps6.retain(&keep6)?;

    let keep_ports: BTreeSet<u32> = infos.iter().map(|p| p.ifindex).collect();
    let keep_slots: BTreeSet<u32> = infos.iter().map(|p| p.slot).collect();
    let keep_ips: BTreeSet<u32> = infos.iter().map(|p| p.ipv4).collect();
    let keep_macs: BTreeSet<[u8; 6]> = infos.iter().map(|p| p.mac).collect();

    for (ifindex, _) in maps.ports()? {
        if !keep_ports.contains(&ifindex) {
            remove_key(&mut maps.ports, &ifindex, netlab_common::maps::PORTS_MAP)?;
        }
    }
    for slot in 0..MAX_PORTS {
        if !keep_slots.contains(&slot) {
            maps.flood_ports
                .set(slot, PortInfo::default(), 0)
                .map_err(Error::map(netlab_common::maps::FLOOD_MAP))?;
        }
    }
    for (ip, _) in maps.endpoints()? {
        if !keep_ips.contains(&ip) {
            remove_key(&mut maps.endpoints, &ip, netlab_common::maps::ENDPOINTS_MAP)?;
        }
    }
    for (key, entry) in maps.fdb_entries()? {
        let stale = if entry.flags & FDB_FLAG_STATIC != 0 {
            !keep_macs.contains(&key.mac)
        } else {
            !keep_ports.contains(&entry.port_ifindex)
        };
        if stale {
            remove_key(&mut maps.fdb, &key, netlab_common::maps::FDB_MAP)?;
        }
    }
    Ok(())
}

/// The slot of `ifindex`: its current one, or the lowest free one (then
/// `fresh` is true and its statistics must be reset).
pub(super) fn slot_for(ifindex: u32, assigned: &BTreeMap<u32, u32>) -> Result<(u32, bool)> {
    if let Some(slot) = assigned.get(&ifindex) {
        return Ok((*slot, false));
    }
    let used: BTreeSet<u32> = assigned.values().copied().collect();
    (0..MAX_PORTS)
        .find(|s| !used.contains(s))
        .map(|s| (s, true))
        .ok_or_else(|| Error::InvalidPlan(format!("more than {MAX_PORTS} switch ports")))
}

/// Deletes every map entry of the port with `ifindex`, its IPv6 ones too.
pub(super) fn erase_port(
    maps: &mut SwitchMaps,
    maps6: &mut SwitchMaps6,
    ifindex: u32,
) -> Result<()> {
    use netlab_common::maps::{ENDPOINTS_MAP, FDB_MAP, FLOOD_MAP, PORTS_MAP};
    maps6.erase_port(ifindex)?;
    if let Some((_, info)) = maps.ports()?.into_iter().find(|(i, _)| *i == ifindex) {
        remove_key(&mut maps.ports, &ifindex, PORTS_MAP)?;
        let slot = info.slot;
        if slot < MAX_PORTS {
            let current = maps
                .flood_ports
                .get(&slot, 0)
                .map_err(Error::map(FLOOD_MAP))?;
            if current.ifindex == ifindex {
                maps.flood_ports
                    .set(slot, PortInfo::default(), 0)
                    .map_err(Error::map(FLOOD_MAP))?;
            }
        }
    }
    for (ip, endpoint) in maps.endpoints()? {
        if endpoint.port_ifindex == ifindex {
            remove_key(&mut maps.endpoints, &ip, ENDPOINTS_MAP)?;
        }
    }
    for (key, entry) in maps.fdb_entries()? {
        if entry.port_ifindex == ifindex {
            remove_key(&mut maps.fdb, &key, FDB_MAP)?;
        }
    }
    Ok(())
}

/// Deletes a hash map key; a key that is already gone is fine.
fn remove_key<K: aya::Pod, V: aya::Pod>(
    map: &mut aya::maps::HashMap<aya::maps::MapData, K, V>,
    key: &K,
    name: &'static str,
) -> Result<()> {
    crate::bpf::maps::remove_key(map, key).map_err(Error::map(name))?;
    Ok(())
}

fn kind(role: PortRole) -> u8 {
    match role {
        PortRole::Endpoint => PORT_KIND_ENDPOINT,
        PortRole::Gateway => PORT_KIND_GATEWAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_stable_and_lowest_free() {
        let mut assigned = BTreeMap::new();
        assigned.insert(10, 0);
        assigned.insert(11, 2);
        assert_eq!(slot_for(10, &assigned).unwrap(), (0, false));
        assert_eq!(slot_for(12, &assigned).unwrap(), (1, true));
        let full: BTreeMap<u32, u32> = (0..MAX_PORTS).map(|s| (100 + s, s)).collect();
        assert!(slot_for(1, &full).is_err());
    }
}
