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

use std::collections::HashMap as StdHashMap;
use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::path::Path;

use aya::maps::{HashMap, MapData};
use netlab_common::nat::{NAT_PUBLISH_MAP, PublishEntry, PublishKey};
use netlab_common::nat6::{NAT6_PUBLISH_MAP, Publish6Entry, Publish6Key};

use super::table::{Family, Flow, Table, V4, V6};
use super::{NatError, maps};
use crate::bpf::key::{ipv4_key, ipv4_of_key};
use crate::bpf::maps::remove_key;
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
    remove_key(map, key).map_err(|source| NatError::Map { name, source })?;
    Ok(())
}

/// Makes `nat_publish` under `pin_dir` hold exactly `ports`, then drops
/// the translations of publications that went away or changed.
/// Returns how many translations were dropped.
pub fn sync_published(pin_dir: &Path, ports: &[PublishedPort]) -> Result<usize, NatError> {
    let wanted: StdHashMap<PublishKey, PublishEntry> =
        ports.iter().map(|p| (key_of(p), entry_of(p))).collect();
    hold_exactly(pin_dir, NAT_PUBLISH_MAP, &wanted)?;
    // Where a published end leads now: its exact address first, then the
    // every-address entry (as the program looks them up).
    let leads_to = |end: SocketAddrV4, proto: u8| {
        let key = |addr| PublishKey {
            addr,
            port: end.port().to_be(),
            proto,
            _pad: 0,
        };
        wanted
            .get(&key(ipv4_key(*end.ip())))
            .or_else(|| wanted.get(&key(0)))
            .map(|v| SocketAddrV4::new(ipv4_of_key(v.addr), u16::from_be(v.port)))
    };
    flush_stale::<V4>(pin_dir, leads_to)
}

/// Makes the pinned hash map `name` hold exactly `wanted`: entries not
/// in it (or with another value) are removed, the rest written. One rule
/// for both families' publication maps.
fn hold_exactly<K, V>(
    pin_dir: &Path,
    name: &'static str,
    wanted: &StdHashMap<K, V>,
) -> Result<(), NatError>
where
    K: aya::Pod + Eq + std::hash::Hash,
    V: aya::Pod + PartialEq,
{
    let mut raw = maps::open_pinned(pin_dir, name)?;
    let current: Vec<(K, V)> = maps::read_hash(&raw, name)?;
    let mut map: HashMap<&mut MapData, K, V> =
        HashMap::try_from(&mut raw).map_err(map_err(name))?;
    for (k, v) in &current {
        if wanted.get(k) != Some(v) {
            forget(&mut map, k, name)?;
        }
    }
    for (k, v) in wanted {
        map.insert(k, v, 0).map_err(map_err(name))?;
    }
    Ok(())
}

/// Removes both directions of every published-port translation of family
/// `F` whose published end (what the client addressed: the flow's
/// `translated` end) no longer leads to the translation's namespace
/// address and port (`leads_to`: published end and protocol → where it
/// leads now, if anywhere). Original direction first, as the expiry does.
fn flush_stale<F: Family>(
    pin_dir: &Path,
    leads_to: impl Fn(F::Sock, u8) -> Option<F::Sock>,
) -> Result<usize, NatError> {
    let mut table = Table::<F>::open(pin_dir)?;
    let stale: Vec<Flow<F>> = table
        .flows_unordered()?
        .into_iter()
        .filter(|f| f.dnat && f.reply_key.is_some())
        .filter(|f| leads_to(f.translated, f.proto.number()) != Some(f.orig_src))
        .collect();
    for f in &stale {
        table.remove_flow(f)?;
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
    let wanted: StdHashMap<Publish6Key, Publish6Entry> =
        ports.iter().map(|p| (key6_of(p), entry6_of(p))).collect();
    hold_exactly(pin_dir, NAT6_PUBLISH_MAP, &wanted)?;
    let leads_to = |end: SocketAddrV6, proto: u8| {
        let key = |addr| Publish6Key {
            addr,
            port: end.port().to_be(),
            proto,
            _pad: 0,
        };
        wanted
            .get(&key(end.ip().octets()))
            .or_else(|| wanted.get(&key([0; 16])))
            .map(|v| SocketAddrV6::new(Ipv6Addr::from(v.addr), u16::from_be(v.port), 0, 0))
    };
    flush_stale::<V6>(pin_dir, leads_to)
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
