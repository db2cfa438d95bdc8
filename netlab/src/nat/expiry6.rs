//! Expiry of NAT66's fragment entries (`nat6_frags`): the IPv4 rule
//! (`frags`) with the same timeout, on the IPv6 map. NAT66's translations
//! (`nat6_orig`, `nat6_reply`) expire with the IPv4 ones: the same table
//! code reads both families (`table::Family`), and the sweep (`expiry`)
//! goes through both.

use std::path::Path;

use aya::maps::{HashMap as BpfHashMap, MapData};
use netlab_common::nat6::{NAT6_FRAGS_MAP, Nat6FragEntry, Nat6FragKey};

use super::{
    NatError,
    frags::FRAG_TIMEOUT,
    maps::{open_pinned, read_hash},
};

/// Removes the `nat6_frags` entries older than the reassembly timeout.
pub fn sweep_fragments6(pin_dir: &Path, now_ns: u64) -> Result<usize, NatError> {
    let mut map = match open_pinned(pin_dir, NAT6_FRAGS_MAP) {
        Ok(map) => map,
        Err(NatError::MissingMap { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let name = NAT6_FRAGS_MAP;
    let entries: Vec<(Nat6FragKey, Nat6FragEntry)> = read_hash(&map, name)?;
    let timeout = FRAG_TIMEOUT.as_nanos() as u64;
    let mut frags: BpfHashMap<&mut MapData, Nat6FragKey, Nat6FragEntry> =
        BpfHashMap::try_from(&mut map).map_err(|source| NatError::Map { name, source })?;
    let mut removed = 0;
    for (key, _) in entries
        .iter()
        .filter(|(_, e)| now_ns.saturating_sub(e.last_seen_ns) >= timeout)
    {
        // A fragment may have refreshed the entry since it was read.
        match frags.get(key, 0) {
            Ok(e) if now_ns.saturating_sub(e.last_seen_ns) < timeout => continue,
            Ok(_) => {}
            Err(_) => continue,
        }
        if frags.remove(key).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}
