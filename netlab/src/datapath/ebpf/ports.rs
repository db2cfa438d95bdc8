//! One port more or less on a running lab (`netlab attach/detach`, CNI
//! ADD/DEL): its link, its map entries, its NAT endpoint; other ports are
//! not touched.

use std::{collections::BTreeMap, net::Ipv4Addr, path::Path};

use netlab_common::switch::{PORT_KIND_GATEWAY, PortInfo};

use super::port_maps::{addrs6, erase_port, resolve, slot_for, write_port6};
use super::validate::{installed_dir, validate_lab, validate_ports};
use crate::bpf::{
    Error, Result, fs,
    key::{ipv4_key, ipv4_of_key},
    loader,
    maps::SwitchMaps,
    maps6::SwitchMaps6,
};
use crate::datapath::xdp;
use crate::names::format_mac;
use crate::plan::{PortPlan, PortRole};

/// Adds one port to a running lab (`netlab attach`), or refreshes it when
/// it is already there. Must run in the host namespace. Other ports are
/// not touched.
pub fn add_port(lab: &str, port: &PortPlan) -> Result<()> {
    validate_lab(lab)?;
    validate_ports(std::slice::from_ref(port))?;
    let dir = installed_dir(lab)?;
    let resolved = resolve(port)?;
    let mut maps = SwitchMaps::open(&dir)?;
    let mut maps6 = SwitchMaps6::open(&dir)?;
    let existing = maps.ports()?;

    refuse_clash(lab, port, resolved.ifindex, &existing)?;
    refuse_clash6(lab, port, resolved.ifindex, &maps6)?;

    let was_present = existing.iter().any(|(i, _)| *i == resolved.ifindex);
    let used: BTreeMap<u32, u32> = existing.iter().map(|(i, p)| (*i, p.slot)).collect();
    let (slot, fresh) = slot_for(resolved.ifindex, &used)?;
    if fresh {
        maps.reset_port_stats(slot)?;
    }
    let info = resolved.info(slot);
    maps.write_port(&info)?;
    write_port6(&mut maps6, &resolved)?;
    // A refreshed port may have lost or changed its IPv6 addresses.
    maps6.prune_port(resolved.ifindex, addrs6(port))?;

    let mut program = loader::open_pinned_classifier(&fs::prog_pin(&dir))?;
    let attached = loader::attach_pinned(
        &mut program,
        &port.port_dev,
        &fs::link_pin(&dir, &port.port_dev),
    );
    if let Err(e) = attached {
        if !was_present {
            let _ = erase_port(&mut maps, &mut maps6, resolved.ifindex);
        }
        return Err(e);
    }
    xdp::join_port(&dir, &resolved.xdp())?;
    if port.role == PortRole::Endpoint
        && nat_installed(&dir)
        && let (Some(ns), Some(gateway)) = (&port.namespace, gateway_of(&maps)?)
    {
        let (cookie, value) = crate::nat::endpoint_netns(ns, gateway)?;
        crate::nat::set_netns(&dir, cookie, Some(value))?;
    }
    Ok(())
}

/// Refuses a port whose MAC, address or gateway role another port of the
/// lab (not the one at `ifindex`, which it refreshes) already has.
fn refuse_clash(
    lab: &str,
    port: &PortPlan,
    ifindex: u32,
    existing: &[(u32, PortInfo)],
) -> Result<()> {
    for (other, info) in existing {
        if *other == ifindex {
            continue;
        }
        let clash = if info.mac == port.mac {
            Some(format!("MAC {}", format_mac(&port.mac)))
        } else if info.ipv4 == ipv4_key(port.ipv4) {
            Some(format!("address {}", port.ipv4))
        } else if port.role == PortRole::Gateway && info.kind == PORT_KIND_GATEWAY {
            Some("the gateway role".to_owned())
        } else {
            None
        };
        if let Some(what) = clash {
            return Err(Error::Conflict {
                lab: lab.to_owned(),
                detail: format!(
                    "{what} of port {} is already used by the port with ifindex {other}",
                    port.port_dev
                ),
            });
        }
    }
    Ok(())
}

/// Refuses a port whose IPv6 addresses (global or link-local) another
/// port of the lab (not the one at `ifindex`) already has.
fn refuse_clash6(lab: &str, port: &PortPlan, ifindex: u32, maps6: &SwitchMaps6) -> Result<()> {
    let Some(addrs) = addrs6(port) else {
        return Ok(());
    };
    for (addr, entry) in maps6.endpoints6()? {
        let ours = addr.octets() == addrs.global || addr.octets() == addrs.link_local;
        if ours && entry.port_ifindex != ifindex {
            return Err(Error::Conflict {
                lab: lab.to_owned(),
                detail: format!(
                    "address {addr} of port {} is already used by the port with ifindex {}",
                    port.port_dev, entry.port_ifindex
                ),
            });
        }
    }
    Ok(())
}

/// The gateway port's address, from the ports map.
fn gateway_of(maps: &SwitchMaps) -> Result<Option<Ipv4Addr>> {
    Ok(maps
        .ports()?
        .into_iter()
        .find(|(_, p)| p.kind == PORT_KIND_GATEWAY)
        .map(|(_, p)| ipv4_of_key(p.ipv4)))
}

/// Whether the lab's datapath includes the source NAT (its config is pinned).
fn nat_installed(dir: &Path) -> bool {
    dir.join(netlab_common::nat::NAT_CONFIG_MAP).exists()
}

/// Removes one port from a running lab (`netlab detach`): its link, then
/// its map entries (port, flood slot, address, FDB entries pointing to it).
/// Works when the device is already gone. Removing a port that is not
/// there succeeds.
pub fn remove_port(lab: &str, port: &PortPlan) -> Result<()> {
    validate_lab(lab)?;
    let dir = installed_dir(lab)?;
    xdp::detach_port(&dir, &port.port_dev)?;
    loader::detach_pinned(&fs::link_pin(&dir, &port.port_dev))?;

    let mut maps = SwitchMaps::open(&dir)?;
    let mut maps6 = SwitchMaps6::open(&dir)?;
    let ports = maps.ports()?;
    // By ifindex while the device exists; by MAC and address once it is
    // gone (its namespace was deleted, taking the veth pair along).
    let by_index = nix::net::if_::if_nametoindex(port.port_dev.as_str()).ok();
    let found = ports
        .iter()
        .find(|(i, _)| Some(*i) == by_index)
        .or_else(|| {
            ports
                .iter()
                .find(|(_, p)| p.mac == port.mac && p.ipv4 == ipv4_key(port.ipv4))
        });
    if let Some((ifindex, _)) = found {
        erase_port(&mut maps, &mut maps6, *ifindex)?;
    }
    if nat_installed(&dir) {
        // While the namespace still exists (detach removes it after).
        if let Some(ns) = &port.namespace
            && crate::netns::exists(ns)
        {
            let (cookie, _) = crate::nat::endpoint_netns(ns, Ipv4Addr::UNSPECIFIED)?;
            crate::nat::set_netns(&dir, cookie, None)?;
        }
    }
    Ok(())
}
