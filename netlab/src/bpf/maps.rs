//! Typed views of the switch's pinned maps, and their expected layouts.
//!
//! Every view is opened from the pins in the lab's directory, so the same
//! code serves the loader right after loading, `add_port` in a later run,
//! and read-only commands (`netlab stats`, `status`, `fdb`).

use std::path::Path;

use aya::maps::{Array, HashMap, Map, MapData, MapInfo, MapType, PerCpuArray, PerCpuValues};
use netlab_common::{
    counters::{Counter, PortStats},
    maps::{
        COUNTERS_MAP, ENDPOINTS_MAP, ENDPOINTS_SIZE, FDB_MAP, FDB_SIZE, FLOOD_MAP, MAX_PORTS,
        PORT_STATS_MAP, PORTS_MAP, SWITCH_CONFIG_MAP,
    },
    switch::{Endpoint, FdbEntry, FdbKey, PortInfo, SwitchConfig},
};

use super::error::{Error, Result};

/// What a pinned map must look like to be reused by this build.
#[derive(Clone, Copy, Debug)]
pub struct MapSpec {
    pub name: &'static str,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

const fn spec<K, V>(name: &'static str, map_type: MapType, max_entries: u32) -> MapSpec {
    MapSpec {
        name,
        map_type,
        key_size: size_of::<K>() as u32,
        value_size: size_of::<V>() as u32,
        max_entries,
    }
}

/// The switch's pinned maps, as the programs declare them.
pub const SWITCH_MAPS: [MapSpec; 7] = [
    spec::<FdbKey, FdbEntry>(FDB_MAP, MapType::Hash, FDB_SIZE),
    spec::<u32, PortInfo>(PORTS_MAP, MapType::Hash, MAX_PORTS),
    spec::<u32, PortInfo>(FLOOD_MAP, MapType::Array, MAX_PORTS),
    spec::<u32, Endpoint>(ENDPOINTS_MAP, MapType::Hash, ENDPOINTS_SIZE),
    spec::<u32, u64>(COUNTERS_MAP, MapType::PerCpuArray, Counter::COUNT),
    spec::<u32, PortStats>(PORT_STATS_MAP, MapType::PerCpuArray, MAX_PORTS),
    spec::<u32, SwitchConfig>(SWITCH_CONFIG_MAP, MapType::Array, 1),
];

/// Checks that the maps already pinned in `dir` (if any) have the layout
/// this build expects. aya reuses a pinned map by name without comparing
/// it, so a map left by another netlab version would be misread silently.
pub fn check_pinned_layouts(dir: &Path, specs: &[MapSpec]) -> Result<()> {
    for spec in specs {
        let path = dir.join(spec.name);
        if !path.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&path).map_err(Error::map(spec.name))?;
        let found = (
            info.map_type().ok(),
            info.key_size(),
            info.value_size(),
            info.max_entries(),
        );
        let wanted = (
            Some(spec.map_type),
            spec.key_size,
            spec.value_size,
            spec.max_entries,
        );
        if found != wanted {
            return Err(Error::IncompatibleMap {
                path,
                detail: format!(
                    "found type/key/value/entries {found:?}, this build uses {wanted:?}"
                ),
            });
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
