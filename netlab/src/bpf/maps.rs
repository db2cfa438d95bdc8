//! Typed views of the switch's pinned maps, and their expected layouts.
//!
//! Every view is opened from the pins in the lab's directory, so the same
//! code serves the loader right after loading, `add_port` in a later run,
//! and read-only commands (`netlab stats`, `status`, `fdb`).

use std::path::Path;

use std::os::fd::AsFd;

use aya::maps::{Array, HashMap, Map, MapData, MapError, MapType, PerCpuArray, PerCpuValues};
use netlab_common::{
    counters::{Counter, PortStats},
    maps::{
        COUNTERS_MAP, ENDPOINTS_MAP, FDB_MAP, FLOOD_MAP, HOST_ADDRS_MAP, HOST_ADDRS_SIZE,
        PORT_SLOTS_MAP, PORT_SLOTS_SIZE, PORT_STATS_MAP, PORTS_MAP, SWITCH_CONFIG_MAP,
    },
    switch::{Endpoint, FDB_FLAG_STATIC, FdbEntry, FdbKey, PortInfo, SwitchConfig},
};

use super::{
    btf::Btf,
    error::{Error, Result},
    sys::{self, RawMapInfo},
};

/// How a map's `max_entries` is decided (the table's `sizing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizing {
    /// The object's size; a pinned map of another size is refused.
    Fixed,
    /// Given to the loader (from the lab file); the object's is a default
    /// and a pinned map keeps the size it was created with.
    AtLoad,
}

/// What a pinned map must look like to be reused (or decoded) by this build:
/// one row of the map table (`netlab_common::map_table!`).
#[derive(Clone, Copy, Debug)]
pub struct MapSpec {
    pub name: &'static str,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    /// The object's `max_entries` (its default when sized at load time).
    pub max_entries: u32,
    pub sizing: Sizing,
}

/// The table's rows as [`MapSpec`]s.
macro_rules! map_specs {
    ($({
        item: $item:ident, name_const: $name_const:ident, name: $name:literal, kind: $kind:ident,
        key: $key:ty, value: $value:ty, max_entries: $max:expr, sizing: $sizing:ident,
        doc: $doc:literal
    })*) => {
        /// Every map netlab pins, in table order (switch first).
        pub const ALL_MAPS: &[MapSpec] = &[$(
            MapSpec {
                name: $name,
                map_type: MapType::$kind,
                key_size: size_of::<$key>() as u32,
                value_size: size_of::<$value>() as u32,
                max_entries: $max,
                sizing: Sizing::$sizing,
            },
        )*];
    };
}

netlab_common::map_table!(map_specs);

/// Every map netlab pins, switch first.
pub fn all_specs() -> impl Iterator<Item = &'static MapSpec> {
    ALL_MAPS.iter()
}

/// The spec of the map called `name`.
pub fn spec_of(name: &str) -> Option<&'static MapSpec> {
    all_specs().find(|s| s.name == name)
}

/// How a pinned map differs from what this build declares; `None` when it
/// matches. Compares type, key/value sizes, max_entries (unless sized at
/// load time) and the key and value BTF layouts: a map created by another
/// netlab version (or without BTF, before the maps carried it) is never
/// reused or decoded as if it were this build's.
pub fn layout_mismatch(spec: &MapSpec, info: &RawMapInfo) -> Option<String> {
    let mut problems = Vec::new();
    if info.map_type != spec.map_type as u32 {
        problems.push(format!(
            "type {}, this build uses {}",
            sys::map_type_name(info.map_type),
            sys::map_type_name(spec.map_type as u32)
        ));
    }
    if info.key_size != spec.key_size || info.value_size != spec.value_size {
        problems.push(format!(
            "key/value size {}/{} bytes, this build uses {}/{}",
            info.key_size, info.value_size, spec.key_size, spec.value_size
        ));
    }
    if spec.sizing == Sizing::Fixed && info.max_entries != spec.max_entries {
        problems.push(format!(
            "{} entries, this build uses {}",
            info.max_entries, spec.max_entries
        ));
    }
    if problems.is_empty()
        && let Some(p) = btf_mismatch(spec, info)
    {
        problems.push(p);
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The object's BTF, parsed once.
fn object_btf() -> Option<&'static Btf> {
    static BTF: std::sync::OnceLock<Option<Btf>> = std::sync::OnceLock::new();
    BTF.get_or_init(|| Btf::from_elf(crate::EBPF_OBJECT).ok())
        .as_ref()
}

fn btf_mismatch(spec: &MapSpec, info: &RawMapInfo) -> Option<String> {
    if spec.map_type == MapType::DevMapHash {
        // Created without BTF (its value is the kernel's own struct
        // bpf_devmap_val): type and sizes are all there is to compare.
        return None;
    }
    // An object built without BTF (AYA_BUILD_SKIP) has nothing to compare.
    let ours = object_btf()?;
    let (k, v) = ours.map_types(spec.name)?;
    let (want_key, want_value) = (ours.signature(k), ours.signature(v));
    if info.btf_id == 0 || info.btf_value_type_id == 0 {
        return Some("created without BTF (an older netlab)".into());
    }
    let theirs = match sys::btf_bytes(info.btf_id)
        .map_err(|e| e.to_string())
        .and_then(|b| Btf::parse(&b).map_err(|e| e.to_string()))
    {
        Ok(btf) => btf,
        Err(e) => return Some(format!("its BTF cannot be read: {e}")),
    };
    let (got_key, got_value) = (
        theirs.signature(info.btf_key_type_id),
        theirs.signature(info.btf_value_type_id),
    );
    if got_key != want_key || got_value != want_value {
        return Some(format!(
            "BTF layout {got_key} -> {got_value}, this build uses {want_key} -> {want_value}"
        ));
    }
    None
}

/// The kernel's description of a pinned map.
pub fn pinned_info(path: &Path, name: &'static str) -> Result<RawMapInfo> {
    let data = MapData::from_pin(path).map_err(Error::map(name))?;
    sys::map_info(data.fd().as_fd()).map_err(|e| Error::Map {
        map: name,
        source: aya::maps::MapError::IoError(e),
    })
}

/// Checks that the maps already pinned in `dir` (if any) have the layout
/// this build expects. aya reuses a pinned map by name without comparing
/// it, so a map left by another netlab version would be misread silently.
pub fn check_pinned_layouts(dir: &Path, specs: &[MapSpec]) -> Result<()> {
    for spec in specs {
        let path = dir.join(spec.name);
        if !path.exists() {
            continue;
        }
        let info = pinned_info(&path, spec.name)?;
        if let Some(detail) = layout_mismatch(spec, &info) {
            return Err(Error::IncompatibleMap { path, detail });
        }
    }
    Ok(())
}

/// Opens a pinned map as `T` (`HashMap<MapData, K, V>`, `Array<..>`, ...).
pub fn open_pinned<T>(dir: &Path, name: &'static str) -> Result<T>
where
    T: TryFrom<Map, Error = aya::maps::MapError>,
{
    let data = MapData::from_pin(dir.join(name)).map_err(Error::map(name))?;
    let map = Map::from_map_data(data).map_err(Error::map(name))?;
    T::try_from(map).map_err(Error::map(name))
}

/// The switch's maps, opened from their pins.
pub struct SwitchMaps {
    pub fdb: HashMap<MapData, FdbKey, FdbEntry>,
    pub ports: HashMap<MapData, u32, PortInfo>,
    pub flood_ports: Array<MapData, PortInfo>,
    pub port_slots: Array<MapData, u32>,
    pub endpoints: HashMap<MapData, u32, Endpoint>,
    pub port_stats: PerCpuArray<MapData, PortStats>,
    pub config: Array<MapData, SwitchConfig>,
}

/// Deletes `key` from a hash map: `Ok(true)` when it was there,
/// `Ok(false)` when it was already gone (another writer, an expiry, or
/// never written: aya 0.14 reports that as `KeyNotFound` or as ENOENT
/// from the syscall, by path). Every control-plane delete goes through
/// here, so "absent is fine" is one rule.
pub fn remove_key<T, K, V>(map: &mut HashMap<T, K, V>, key: &K) -> Result<bool, MapError>
where
    T: std::borrow::BorrowMut<MapData>,
    K: aya::Pod,
    V: aya::Pod,
{
    match map.remove(key) {
        Ok(()) => Ok(true),
        Err(MapError::KeyNotFound) => Ok(false),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

impl SwitchMaps {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            fdb: open_pinned(dir, FDB_MAP)?,
            ports: open_pinned(dir, PORTS_MAP)?,
            flood_ports: open_pinned(dir, FLOOD_MAP)?,
            port_slots: open_pinned(dir, PORT_SLOTS_MAP)?,
            endpoints: open_pinned(dir, ENDPOINTS_MAP)?,
            port_stats: open_pinned(dir, PORT_STATS_MAP)?,
            config: open_pinned(dir, SWITCH_CONFIG_MAP)?,
        })
    }

    /// Every port, by ifindex.
    pub fn ports(&self) -> Result<Vec<(u32, PortInfo)>> {
        self.ports
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::map(PORTS_MAP))
    }

    /// Every FDB entry.
    pub fn fdb_entries(&self) -> Result<Vec<(FdbKey, FdbEntry)>> {
        self.fdb
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::map(FDB_MAP))
    }

    /// Every known IPv4 address (network order keys).
    pub fn endpoints(&self) -> Result<Vec<(u32, Endpoint)>> {
        self.endpoints
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::map(ENDPOINTS_MAP))
    }

    /// The run-time switches.
    pub fn config(&self) -> Result<SwitchConfig> {
        self.config
            .get(&0, 0)
            .map_err(Error::map(SWITCH_CONFIG_MAP))
    }

    pub fn set_config(&mut self, config: SwitchConfig) -> Result<()> {
        self.config
            .set(0, config, 0)
            .map_err(Error::map(SWITCH_CONFIG_MAP))
    }

    /// A port slot's statistics summed over CPUs.
    pub fn port_stats(&self, slot: u32) -> Result<PortStats> {
        let values = self
            .port_stats
            .get(&slot, 0)
            .map_err(Error::map(PORT_STATS_MAP))?;
        Ok(sum_port_stats(values.iter()))
    }

    /// Registers a port as the control plane does: its `ports` and
    /// `flood_ports` rows, its endpoint (address -> MAC, port) and its
    /// static FDB entry.
    pub fn write_port(&mut self, info: &PortInfo) -> Result<()> {
        self.ports
            .insert(info.ifindex, *info, 0)
            .map_err(Error::map(PORTS_MAP))?;
        self.flood_ports
            .set(info.slot, *info, 0)
            .map_err(Error::map(FLOOD_MAP))?;
        // Never removed: the program trusts a `port_slots` row only while
        // `flood_ports` holds the same ifindex in that slot.
        if info.ifindex < PORT_SLOTS_SIZE {
            self.port_slots
                .set(info.ifindex, info.slot + 1, 0)
                .map_err(Error::map(PORT_SLOTS_MAP))?;
        }
        self.set_endpoint(info.ipv4, info.mac, info.ifindex)?;
        self.fdb
            .insert(
                FdbKey::new(info.mac),
                FdbEntry {
                    port_ifindex: info.ifindex,
                    kind: info.kind,
                    flags: FDB_FLAG_STATIC,
                    slot: info.slot as u16,
                },
                0,
            )
            .map_err(Error::map(FDB_MAP))
    }

    /// Records where the address `ipv4` (network-order key) lives: its MAC
    /// and its switch port. The ARP responder answers from this table and
    /// the NAT's fast path delivers replies through it.
    pub fn set_endpoint(&mut self, ipv4: u32, mac: [u8; 6], port_ifindex: u32) -> Result<()> {
        let value = Endpoint {
            mac,
            _pad: [0; 2],
            port_ifindex,
        };
        self.endpoints
            .insert(ipv4, value, 0)
            .map_err(Error::map(ENDPOINTS_MAP))
    }

    /// Forgets the address `ipv4` (network-order key); succeeds when it was
    /// not there.
    pub fn remove_endpoint(&mut self, ipv4: u32) -> Result<()> {
        remove_key(&mut self.endpoints, &ipv4).map_err(Error::map(ENDPOINTS_MAP))?;
        Ok(())
    }

    /// Zeroes a slot's statistics (a new port took the slot).
    pub fn reset_port_stats(&mut self, slot: u32) -> Result<()> {
        let zeros = zeroed_per_cpu::<PortStats>()?;
        self.port_stats
            .set(slot, zeros, 0)
            .map_err(Error::map(PORT_STATS_MAP))
    }
}

fn zeroed_per_cpu<T: aya::Pod + Default>() -> Result<PerCpuValues<T>> {
    let cpus = aya::util::nr_cpus().map_err(|(_, source)| Error::Map {
        map: PORT_STATS_MAP,
        source: aya::maps::MapError::IoError(source),
    })?;
    PerCpuValues::try_from(vec![T::default(); cpus]).map_err(|source| Error::Map {
        map: PORT_STATS_MAP,
        source: aya::maps::MapError::IoError(source),
    })
}

/// `host_addrs`: the host's addresses endpoints may not reach.
pub struct HostAddrs {
    map: HashMap<MapData, u32, u8>,
}

impl HostAddrs {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            map: open_pinned(dir, HOST_ADDRS_MAP)?,
        })
    }

    /// Every entry: address (network order keys, as the program reads
    /// them) → HOST_ADDR_* kind.
    pub fn entries(&self) -> Result<Vec<(u32, u8)>> {
        self.map
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::map(HOST_ADDRS_MAP))
    }

    /// Makes the map hold exactly `wanted` (key → kind): new entries are
    /// written before stale ones go, so an address that stays blocked is
    /// never reachable in between.
    pub fn sync(&mut self, wanted: &std::collections::BTreeMap<u32, u8>) -> Result<()> {
        if wanted.len() > HOST_ADDRS_SIZE as usize {
            return Err(Error::InvalidPlan(format!(
                "the host has {} local IPv4 addresses; the switch can block at most \
                 {HOST_ADDRS_SIZE}",
                wanted.len()
            )));
        }
        let current = self.entries()?;
        for (ip, kind) in wanted {
            if !current.contains(&(*ip, *kind)) {
                self.map
                    .insert(ip, kind, 0)
                    .map_err(Error::map(HOST_ADDRS_MAP))?;
            }
        }
        for (ip, _) in current {
            if !wanted.contains_key(&ip) {
                remove_key(&mut self.map, &ip).map_err(Error::map(HOST_ADDRS_MAP))?;
            }
        }
        Ok(())
    }
}

/// The per-CPU counters map, read-only.
pub struct Counters {
    map: PerCpuArray<MapData, u64>,
}

impl Counters {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            map: open_pinned(dir, COUNTERS_MAP)?,
        })
    }

    /// One counter, summed over CPUs.
    pub fn get(&self, counter: Counter) -> Result<u64> {
        let values = self
            .map
            .get(&(counter as u32), 0)
            .map_err(Error::map(COUNTERS_MAP))?;
        Ok(values.iter().sum())
    }

    /// Every counter, summed over CPUs, in index order.
    pub fn all(&self) -> Result<Vec<(Counter, u64)>> {
        Counter::ALL
            .iter()
            .map(|&c| Ok((c, self.get(c)?)))
            .collect()
    }
}

/// Per-CPU port statistics summed field by field (the one sum, for the
/// typed view and `map dump`).
pub fn sum_port_stats<'a>(per_cpu: impl IntoIterator<Item = &'a PortStats>) -> PortStats {
    per_cpu
        .into_iter()
        .fold(PortStats::default(), |sum, s| PortStats {
            rx_packets: sum.rx_packets + s.rx_packets,
            rx_bytes: sum.rx_bytes + s.rx_bytes,
            tx_packets: sum.tx_packets + s.tx_packets,
            tx_bytes: sum.tx_bytes + s.tx_bytes,
            drops: sum.drops + s.drops,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map table and the object agree: every pinned map in the object
    /// has a spec of the same type, key and value sizes and size, and every
    /// spec is a pinned map of the object. (The object's statics come from
    /// the same table, so this fails when an expansion drifts, e.g. a kind
    /// expanding to the wrong map type, or a map declared outside it.)
    #[test]
    fn the_object_declares_exactly_the_table() {
        assert!(
            !crate::EBPF_OBJECT.is_empty(),
            "built with AYA_BUILD_SKIP: no object to compare"
        );
        let object = aya_obj::Object::parse(crate::EBPF_OBJECT).expect("parse the object");
        let pinned: std::collections::BTreeMap<&str, &aya_obj::Map> = object
            .maps
            .iter()
            .filter(|(_, m)| m.pinning() == aya_obj::maps::PinningType::ByName)
            .map(|(name, m)| (name.as_str(), m))
            .collect();
        for (name, map) in &pinned {
            let spec =
                spec_of(name).unwrap_or_else(|| panic!("{name}: pinned but not in the table"));
            assert_eq!(map.map_type(), spec.map_type as u32, "{name}: type");
            assert_eq!(map.key_size(), spec.key_size, "{name}: key size");
            assert_eq!(map.value_size(), spec.value_size, "{name}: value size");
            assert_eq!(map.max_entries(), spec.max_entries, "{name}: max_entries");
        }
        for spec in all_specs() {
            assert!(
                pinned.contains_key(spec.name),
                "{}: in the table but not a pinned map of the object",
                spec.name
            );
        }
        assert_eq!(pinned.len(), ALL_MAPS.len());
    }
}
