//! An installed lab at run time: its switches (trace, learning, the
//! published ports) and its readings (counters, ports, FDB).

use std::net::Ipv4Addr;

use netlab_common::{
    counters::{Counter, PortStats},
    switch::{FdbEntry, PORT_KIND_GATEWAY, SwitchConfig},
};

use super::validate::{installed_dir, validate_lab};
use crate::bpf::{
    Result,
    key::ipv4_of_key,
    maps::{Counters, SwitchMaps},
};
use crate::plan::{PortRole, PublishedPort, PublishedPort6};

/// Makes the lab's published ports exactly `published` (IPv4) and
/// `published6` (IPv6) (`netlab publish/unpublish`); translations of
/// ports that went away are dropped. Runs in any namespace (maps only).
pub fn set_published(
    lab: &str,
    published: &[PublishedPort],
    published6: &[PublishedPort6],
) -> Result<()> {
    validate_lab(lab)?;
    let dir = installed_dir(lab)?;
    let dropped = crate::nat::sync_published(&dir, published)?
        + crate::nat::sync_published6(&dir, published6)?;
    log::debug!(
        "published ports: {} + {} (IPv6) set, {dropped} translations dropped",
        published.len(),
        published6.len()
    );
    Ok(())
}

/// Switches the port program's frame events (`netlab trace`) on or off,
/// at run time.
pub fn set_trace(lab: &str, on: bool) -> Result<()> {
    set_trace_bit(lab, netlab_common::switch::TRACE_FRAMES, on)
}

/// Sets or clears one `SwitchConfig::trace` bit (TRACE_FRAMES: `netlab
/// trace`; TRACE_EVENTS: `netlab monitor`), leaving the others.
pub fn set_trace_bit(lab: &str, bit: u32, on: bool) -> Result<()> {
    update_config(lab, |c| {
        if on {
            c.trace |= bit;
        } else {
            c.trace &= !bit;
        }
    })
}

/// Switches MAC learning on or off, at run time.
pub fn set_learning(lab: &str, on: bool) -> Result<()> {
    update_config(lab, |c| c.learning = u32::from(on))
}

/// The run-time switches of a lab.
pub fn config(lab: &str) -> Result<SwitchConfig> {
    SwitchMaps::open(&installed_dir(lab)?)?.config()
}

fn update_config(lab: &str, change: impl FnOnce(&mut SwitchConfig)) -> Result<()> {
    validate_lab(lab)?;
    let mut maps = SwitchMaps::open(&installed_dir(lab)?)?;
    let mut config = maps.config()?;
    change(&mut config);
    maps.set_config(config)
}

/// Every counter of the lab, summed over CPUs.
pub fn counters(lab: &str) -> Result<Vec<(Counter, u64)>> {
    validate_lab(lab)?;
    Counters::open(&installed_dir(lab)?)?.all()
}

/// One counter of the lab, summed over CPUs.
pub fn counter(lab: &str, counter: Counter) -> Result<u64> {
    validate_lab(lab)?;
    Counters::open(&installed_dir(lab)?)?.get(counter)
}

/// A switch port as the maps describe it, with its statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    pub ifindex: u32,
    pub slot: u32,
    pub role: PortRole,
    pub mac: [u8; 6],
    pub ipv4: Ipv4Addr,
    pub stats: PortStats,
}

/// Every port of the lab with its statistics (summed over CPUs), by slot.
pub fn ports(lab: &str) -> Result<Vec<PortStatus>> {
    validate_lab(lab)?;
    let maps = SwitchMaps::open(&installed_dir(lab)?)?;
    let mut out = maps
        .ports()?
        .into_iter()
        .map(|(ifindex, p)| {
            Ok(PortStatus {
                ifindex,
                slot: p.slot,
                role: if p.kind == PORT_KIND_GATEWAY {
                    PortRole::Gateway
                } else {
                    PortRole::Endpoint
                },
                mac: p.mac,
                ipv4: ipv4_of_key(p.ipv4),
                stats: maps.port_stats(p.slot)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|p| p.slot);
    Ok(out)
}

/// The FDB: MAC → (port ifindex, static?).
pub fn fdb(lab: &str) -> Result<Vec<([u8; 6], FdbEntry)>> {
    validate_lab(lab)?;
    let maps = SwitchMaps::open(&installed_dir(lab)?)?;
    let mut out: Vec<_> = maps
        .fdb_entries()?
        .into_iter()
        .map(|(k, v)| (k.mac, v))
        .collect();
    out.sort_by_key(|(mac, _)| *mac);
    Ok(out)
}
