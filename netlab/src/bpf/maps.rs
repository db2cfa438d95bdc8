//! Typed views of the switch's pinned maps, and their expected layouts.
//!
//! Every view is opened from the pins in the lab's directory, so the same
//! code serves the loader right after loading, `add_port` in a later run,
//! and read-only commands (`netlab stats`, `status`, `fdb`).

use std::path::Path;

use std::os::fd::AsFd;

use aya::maps::{Array, HashMap, Map, MapData, MapType, PerCpuArray, PerCpuValues};
use netlab_common::{
    counters::{Counter, PortStats},
    events::{EVENTS_MAP, EVENTS_RING_SIZE},
    maps::{
        COUNTERS_MAP, ENDPOINTS_MAP, ENDPOINTS_SIZE, FDB_MAP, FDB_SIZE, FLOOD_MAP, HOST_ADDRS_MAP,
        HOST_ADDRS_SIZE, MAX_PORTS, PORT_STATS_MAP, PORTS_MAP, SWITCH_CONFIG_MAP,
    },
    nat::{
        NAT_CONFIG_MAP, NAT_DEFAULT_MAX_ENTRIES, NAT_ENDPOINTS_MAP, NAT_ENDPOINTS_SIZE,
        NAT_FRAGS_MAP, NAT_FRAGS_SIZE, NAT_ORIG_MAP, NAT_PUBLISH_MAP, NAT_PUBLISH_SIZE,
        NAT_REPLY_MAP, NatConfig, NatEntry, NatFragEntry, NatFragKey, NatKey, PUBLISH_NETNS_MAP,
        PUBLISH_NETNS_SIZE, PUBLISH_SOCKS_MAP, PUBLISH_SOCKS_SIZE, PublishEntry, PublishKey,
        PublishNetns, PublishSockEntry, PublishSockKey,
    },
    switch::{Endpoint, FDB_FLAG_STATIC, FdbEntry, FdbKey, PortInfo, SwitchConfig},
};

use super::{
    btf::Btf,
    error::{Error, Result},
    sys::{self, RawMapInfo},
};

/// What a pinned map must look like to be reused (or decoded) by this build.
#[derive(Clone, Copy, Debug)]
pub struct MapSpec {
    pub name: &'static str,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    /// The object's default; `None` in [`MapSpec::fixed_entries`] terms
    /// when the loader sizes the map from the lab file (the NAT tables).
    pub max_entries: u32,
    /// False: `max_entries` is set at load time and not compared.
    pub fixed_entries: bool,
}

const fn spec<K, V>(name: &'static str, map_type: MapType, max_entries: u32) -> MapSpec {
    MapSpec {
        name,
        map_type,
        key_size: size_of::<K>() as u32,
        value_size: size_of::<V>() as u32,
        max_entries,
        fixed_entries: true,
    }
}

const fn sized_at_load(mut spec: MapSpec) -> MapSpec {
    spec.fixed_entries = false;
    spec
}

/// The switch's pinned maps, as the programs declare them.
pub const SWITCH_MAPS: [MapSpec; 8] = [
    spec::<FdbKey, FdbEntry>(FDB_MAP, MapType::Hash, FDB_SIZE),
    spec::<u32, PortInfo>(PORTS_MAP, MapType::Hash, MAX_PORTS),
    spec::<u32, PortInfo>(FLOOD_MAP, MapType::Array, MAX_PORTS),
    spec::<u32, Endpoint>(ENDPOINTS_MAP, MapType::Hash, ENDPOINTS_SIZE),
    spec::<u32, u64>(COUNTERS_MAP, MapType::PerCpuArray, Counter::COUNT),
    spec::<u32, PortStats>(PORT_STATS_MAP, MapType::PerCpuArray, MAX_PORTS),
    spec::<u32, SwitchConfig>(SWITCH_CONFIG_MAP, MapType::Array, 1),
    spec::<u32, u8>(HOST_ADDRS_MAP, MapType::Hash, HOST_ADDRS_SIZE),
];

/// The source NAT's pinned maps.
pub const NAT_MAPS: [MapSpec; 8] = [
    spec::<u32, NatConfig>(NAT_CONFIG_MAP, MapType::Array, 1),
    sized_at_load(spec::<NatKey, NatEntry>(
        NAT_ORIG_MAP,
        MapType::LruHash,
        NAT_DEFAULT_MAX_ENTRIES,
    )),
    sized_at_load(spec::<NatKey, NatEntry>(
        NAT_REPLY_MAP,
        MapType::LruHash,
        NAT_DEFAULT_MAX_ENTRIES,
    )),
    spec::<u32, Endpoint>(NAT_ENDPOINTS_MAP, MapType::Hash, NAT_ENDPOINTS_SIZE),
    spec::<NatFragKey, NatFragEntry>(NAT_FRAGS_MAP, MapType::LruHash, NAT_FRAGS_SIZE),
    spec::<PublishKey, PublishEntry>(NAT_PUBLISH_MAP, MapType::Hash, NAT_PUBLISH_SIZE),
    spec::<u64, PublishNetns>(PUBLISH_NETNS_MAP, MapType::Hash, PUBLISH_NETNS_SIZE),
    spec::<PublishSockKey, PublishSockEntry>(
        PUBLISH_SOCKS_MAP,
        MapType::LruHash,
        PUBLISH_SOCKS_SIZE,
    ),
];

/// The event stream's ring buffer (`netlab monitor`): no key or value,
/// `max_entries` is its size in bytes.
pub const EVENT_MAPS: [MapSpec; 1] = [MapSpec {
    name: EVENTS_MAP,
    map_type: MapType::RingBuf,
    key_size: 0,
    value_size: 0,
    max_entries: EVENTS_RING_SIZE,
    fixed_entries: true,
}];

/// The XDP switch's devmap (`switch = "xdp"`): port ifindex → `struct
/// bpf_devmap_val` (ifindex, program fd/id), the targets of its redirects.
pub const XDP_MAPS: [MapSpec; 1] = [spec::<u32, [u32; 2]>(
    netlab_common::maps::XDP_PORTS_MAP,
    MapType::DevMapHash,
    MAX_PORTS,
)];

/// Every map netlab pins, switch first.
pub fn all_specs() -> impl Iterator<Item = &'static MapSpec> {
    SWITCH_MAPS
        .iter()
        .chain(NAT_MAPS.iter())
        .chain(EVENT_MAPS.iter())
        .chain(XDP_MAPS.iter())
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
    if spec.fixed_entries && info.max_entries != spec.max_entries {
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
    pub endpoints: HashMap<MapData, u32, Endpoint>,
    pub port_stats: PerCpuArray<MapData, PortStats>,
    pub config: Array<MapData, SwitchConfig>,
}

impl SwitchMaps {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            fdb: open_pinned(dir, FDB_MAP)?,
            ports: open_pinned(dir, PORTS_MAP)?,
            flood_ports: open_pinned(dir, FLOOD_MAP)?,
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
        Ok(values
            .iter()
            .fold(PortStats::default(), |sum, s| PortStats {
                rx_packets: sum.rx_packets + s.rx_packets,
                rx_bytes: sum.rx_bytes + s.rx_bytes,
                tx_packets: sum.tx_packets + s.tx_packets,
                tx_bytes: sum.tx_bytes + s.tx_bytes,
                drops: sum.drops + s.drops,
            }))
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
        self.endpoints
            .insert(
                info.ipv4,
                Endpoint {
                    mac: info.mac,
                    _pad: [0; 2],
                    port_ifindex: info.ifindex,
                },
                0,
            )
            .map_err(Error::map(ENDPOINTS_MAP))?;
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
                match self.map.remove(&ip) {
                    Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                    Err(aya::maps::MapError::SyscallError(e))
                        if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(Error::map(HOST_ADDRS_MAP)(e)),
                }
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
