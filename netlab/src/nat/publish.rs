//! The published ports' map (`nat_publish`) and the translations that
//! belong to them.
//!
//! [`sync_published`] makes the map exactly the list it is given, then
//! drops every published-port translation (`NAT_ENTRY_DNAT` entries of
//! `nat_orig`/`nat_reply`) that the map no longer leads to the same place:
//! after an unpublish, or a republish of the port for another namespace,
//! no stale entry keeps sending the client's packets (a UDP "connection"
//! never ends by itself) to the old namespace. Connections to other
//! published ports are left alone.

use std::collections::BTreeMap;
use std::path::Path;

use std::net::Ipv6Addr;

use aya::maps::{HashMap, MapData};
use netlab_common::nat::{
    NAT_ENTRY_DNAT, NAT_ORIG_MAP, NAT_PUBLISH_MAP, NAT_REPLY_MAP, NatEntry, NatKey, PublishEntry,
    PublishKey,
};
use netlab_common::nat6::{
    NAT6_ORIG_MAP, NAT6_PUBLISH_MAP, NAT6_REPLY_MAP, Nat6Entry, Nat6Key, Publish6Entry, Publish6Key,
};

use super::{NatError, maps};
use crate::bpf::key::{ipv4_key, ipv4_of_key};
use crate::plan::{PublishedPort, PublishedPort6};

fn key_of(p: &PublishedPort) -> PublishKey {
    PublishKey {
        addr: p.host_address.map(ipv4_key).unwrap_or(0),
        port: p.host_port.to_be(),
        proto: p.protocol,
        _pad: 0,
    }
}

fn entry_of(p: &PublishedPort) -> PublishEntry {
    PublishEntry {
        addr: ipv4_key(p.address),
        port: p.port.to_be(),
        _pad: [0; 2],
    }
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> NatError {
    move |source| NatError::Map { name, source }
}

/// Deletes `key`; absent is fine.
fn forget<K: aya::Pod, V: aya::Pod>(
    map: &mut HashMap<&mut MapData, K, V>,
    key: &K,
    name: &'static str,
) -> Result<(), NatError> {
    match map.remove(key) {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(s))
            if s.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        Err(source) => Err(NatError::Map { name, source }),
    }
}

/// Makes `nat_publish` under `pin_dir` hold exactly `ports`, then drops
/// the translations of publications that went away or changed.
/// Returns how many translations were dropped.
pub fn sync_published(pin_dir: &Path, ports: &[PublishedPort]) -> Result<usize, NatError> {
    let wanted: BTreeMap<_, _> = ports
        .iter()
        .map(|p| {
            let k = key_of(p);
            ((k.addr, k.port, k.proto), (k, entry_of(p)))
        })
        .collect();
    let mut raw = maps::open_pinned(pin_dir, NAT_PUBLISH_MAP)?;
    let current: Vec<(PublishKey, PublishEntry)> = maps::read_hash(&raw, NAT_PUBLISH_MAP)?;
    {
        let mut map: HashMap<&mut MapData, PublishKey, PublishEntry> =
            HashMap::try_from(&mut raw).map_err(map_err(NAT_PUBLISH_MAP))?;
        for (k, v) in &current {
            match wanted.get(&(k.addr, k.port, k.proto)) {
                Some((_, want)) if want == v => {}
                _ => forget(&mut map, k, NAT_PUBLISH_MAP)?,
            }
        }
        for (k, v) in wanted.values() {
            map.insert(k, v, 0).map_err(map_err(NAT_PUBLISH_MAP))?;
        }
    }
    let lookup = |addr: u32, port: u16, proto: u8| {
        wanted
            .get(&(addr, port, proto))
            .or_else(|| wanted.get(&(0, port, proto)))
            .map(|(_, v)| *v)
    };
    flush_stale(pin_dir, lookup)
}

/// Removes both directions of every DNAT translation whose published
/// port (`nat_reply` key: destination address and port) no longer leads
/// to the translation's namespace address and port.
fn flush_stale(
    pin_dir: &Path,
    lookup: impl Fn(u32, u16, u8) -> Option<PublishEntry>,
) -> Result<usize, NatError> {
    let mut reply_raw = maps::open_pinned(pin_dir, NAT_REPLY_MAP)?;
    let mut orig_raw = maps::open_pinned(pin_dir, NAT_ORIG_MAP)?;
    let replies: Vec<(NatKey, NatEntry)> = maps::read_hash(&reply_raw, NAT_REPLY_MAP)?;
    let stale: Vec<(NatKey, NatEntry)> = replies
        .into_iter()
        .filter(|(_, v)| v.flags & NAT_ENTRY_DNAT != 0)
        .filter(|(k, v)| {
            lookup(k.daddr, k.dport, k.proto).is_none_or(|p| p.addr != v.addr || p.port != v.port)
        })
        .collect();
    if stale.is_empty() {
        return Ok(0);
    }
    let mut reply: HashMap<&mut MapData, NatKey, NatEntry> =
        HashMap::try_from(&mut reply_raw).map_err(map_err(NAT_REPLY_MAP))?;
    let mut orig: HashMap<&mut MapData, NatKey, NatEntry> =
        HashMap::try_from(&mut orig_raw).map_err(map_err(NAT_ORIG_MAP))?;
    for (k, v) in &stale {
        forget(&mut orig, &k.orig_key(v), NAT_ORIG_MAP)?;
        forget(&mut reply, k, NAT_REPLY_MAP)?;
    }
    Ok(stale.len())
}

/// The published ports in `nat_publish` (for `netlab ports` checks and
/// tests): (host address or None, host port, protocol) → (address, port).
pub fn published(pin_dir: &Path) -> Result<Vec<PublishedPort>, NatError> {
    let raw = maps::open_pinned(pin_dir, NAT_PUBLISH_MAP)?;
    let entries: Vec<(PublishKey, PublishEntry)> = maps::read_hash(&raw, NAT_PUBLISH_MAP)?;
    let mut out: Vec<PublishedPort> = entries
        .into_iter()
        .map(|(k, v)| PublishedPort {
            host_address: (k.addr != 0).then(|| ipv4_of_key(k.addr)),
            host_port: u16::from_be(k.port),
            protocol: k.proto,
            address: ipv4_of_key(v.addr),
            port: u16::from_be(v.port),
        })
        .collect();
    out.sort_by_key(|p| (p.host_port, p.protocol, p.host_address));
    Ok(out)
}

fn key6_of(p: &PublishedPort6) -> Publish6Key {
    Publish6Key {
        addr: p.host_address.map(|a| a.octets()).unwrap_or([0; 16]),
        port: p.host_port.to_be(),
        proto: p.protocol,
        _pad: 0,
    }
}

fn entry6_of(p: &PublishedPort6) -> Publish6Entry {
    Publish6Entry {
        addr: p.address.octets(),
        port: p.port.to_be(),
        _pad: [0; 2],
    }
}

/// [`sync_published`] for IPv6: makes `nat6_publish` under `pin_dir` hold
/// exactly `ports`, then drops the NAT66 translations (`nat6_orig`,
/// `nat6_reply`, flagged DNAT) of publications that went away or changed.
/// Returns how many translations were dropped.
pub fn sync_published6(pin_dir: &Path, ports: &[PublishedPort6]) -> Result<usize, NatError> {
    let wanted: BTreeMap<_, _> = ports
        .iter()
        .map(|p| {
            let k = key6_of(p);
            ((k.addr, k.port, k.proto), (k, entry6_of(p)))
        })
        .collect();
    let mut raw = maps::open_pinned(pin_dir, NAT6_PUBLISH_MAP)?;
    let current: Vec<(Publish6Key, Publish6Entry)> = maps::read_hash(&raw, NAT6_PUBLISH_MAP)?;
    {
        let mut map: HashMap<&mut MapData, Publish6Key, Publish6Entry> =
            HashMap::try_from(&mut raw).map_err(map_err(NAT6_PUBLISH_MAP))?;
        for (k, v) in &current {
            match wanted.get(&(k.addr, k.port, k.proto)) {
                Some((_, want)) if want == v => {}
                _ => forget(&mut map, k, NAT6_PUBLISH_MAP)?,
            }
        }
        for (k, v) in wanted.values() {
            map.insert(k, v, 0).map_err(map_err(NAT6_PUBLISH_MAP))?;
        }
    }
    let lookup = |addr: [u8; 16], port: u16, proto: u8| {
        wanted
            .get(&(addr, port, proto))
            .or_else(|| wanted.get(&([0; 16], port, proto)))
            .map(|(_, v)| *v)
    };
    let mut reply_raw = maps::open_pinned(pin_dir, NAT6_REPLY_MAP)?;
    let mut orig_raw = maps::open_pinned(pin_dir, NAT6_ORIG_MAP)?;
    let replies: Vec<(Nat6Key, Nat6Entry)> = maps::read_hash(&reply_raw, NAT6_REPLY_MAP)?;
    let stale: Vec<(Nat6Key, Nat6Entry)> = replies
        .into_iter()
        .filter(|(_, v)| v.flags & NAT_ENTRY_DNAT != 0)
        .filter(|(k, v)| {
            lookup(k.daddr, k.dport, k.proto).is_none_or(|p| p.addr != v.addr || p.port != v.port)
        })
        .collect();
    if stale.is_empty() {
        return Ok(0);
    }
    let mut reply: HashMap<&mut MapData, Nat6Key, Nat6Entry> =
        HashMap::try_from(&mut reply_raw).map_err(map_err(NAT6_REPLY_MAP))?;
    let mut orig: HashMap<&mut MapData, Nat6Key, Nat6Entry> =
        HashMap::try_from(&mut orig_raw).map_err(map_err(NAT6_ORIG_MAP))?;
    for (k, v) in &stale {
        forget(&mut orig, &k.orig_key(v), NAT6_ORIG_MAP)?;
        forget(&mut reply, k, NAT6_REPLY_MAP)?;
    }
    Ok(stale.len())
}

/// The published IPv6 ports in `nat6_publish` (for tests).
pub fn published6(pin_dir: &Path) -> Result<Vec<PublishedPort6>, NatError> {
    let raw = maps::open_pinned(pin_dir, NAT6_PUBLISH_MAP)?;
    let entries: Vec<(Publish6Key, Publish6Entry)> = maps::read_hash(&raw, NAT6_PUBLISH_MAP)?;
    let mut out: Vec<PublishedPort6> = entries
        .into_iter()
        .map(|(k, v)| PublishedPort6 {
            host_address: (k.addr != [0; 16]).then(|| Ipv6Addr::from(k.addr)),
            host_port: u16::from_be(k.port),
            protocol: k.proto,
            address: Ipv6Addr::from(v.addr),
            port: u16::from_be(v.port),
        })
        .collect();
    out.sort_by_key(|p| (p.host_port, p.protocol, p.host_address));
    Ok(out)
}
