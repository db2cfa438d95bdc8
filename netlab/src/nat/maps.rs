//! Opening the NAT's maps from their pins.

use std::{os::fd::AsFd, path::Path};

use aya::maps::{Map, MapData};

use super::NatError;

/// The pinned map `name` under `pin_dir`.
pub fn open_pinned(pin_dir: &Path, name: &'static str) -> Result<Map, NatError> {
    let path = pin_dir.join(name);
    let data = MapData::from_pin(&path).map_err(|e| match e {
        aya::maps::MapError::SyscallError(ref s)
            if s.io_error.kind() == std::io::ErrorKind::NotFound =>
        {
            NatError::MissingMap {
                name,
                path: Some(path.clone()),
            }
        }
        source => NatError::Map { name, source },
    })?;
    Map::from_map_data(data).map_err(|source| NatError::Map { name, source })
}

/// Every entry of the NAT hash map `map` (keys `K`, values `V`), read in
/// batches (a few syscalls for the whole map, see `bpf::bulk`).
pub fn read_hash<K: aya::Pod, V: aya::Pod>(
    map: &Map,
    name: &'static str,
) -> Result<Vec<(K, V)>, NatError> {
    // The type and the key and value sizes, checked as aya checks them.
    aya::maps::HashMap::<&MapData, K, V>::try_from(map)
        .map_err(|source| NatError::Map { name, source })?;
    let (Map::HashMap(data) | Map::LruHashMap(data)) = map else {
        unreachable!("a HashMap view exists only for hash and LRU hash maps");
    };
    crate::bpf::bulk::read_all(data.fd().as_fd()).map_err(|source| NatError::Io {
        what: format!("reading NAT map {name}"),
        source,
    })
}
