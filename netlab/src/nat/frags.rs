//! Expiry of the fragment-tracking entries (`nat_frags`).
//!
//! The datapath records a fragmented datagram when its first fragment is
//! translated, so that the later fragments (which carry no ports) get the
//! same address; it never deletes the entry itself, because fragments may
//! arrive in any order. A datagram whose fragments are older than the
//! kernel's reassembly timeout cannot be reassembled by anyone any more:
//! the sweep removes such entries. (The map is an LRU too, so a burst of
//! datagrams between sweeps only evicts the oldest.)

use std::{path::Path, time::Duration};

use aya::maps::{HashMap as BpfHashMap, MapData};
use netlab_common::nat::{NAT_FRAG_TIMEOUT_SECS, NAT_FRAGS_MAP, NatFragEntry, NatFragKey};

use super::{
    NatError,
    maps::{open_pinned, read_hash},
};

/// How long a fragment entry lives after the datagram's last fragment.
pub const FRAG_TIMEOUT: Duration = Duration::from_secs(NAT_FRAG_TIMEOUT_SECS);

/// The keys of the entries expired at `now_ns`.
pub fn select_expired_fragments(
    entries: &[(NatFragKey, NatFragEntry)],
    now_ns: u64,
) -> Vec<NatFragKey> {
    let timeout = FRAG_TIMEOUT.as_nanos() as u64;
    entries
        .iter()
        .filter(|(_, e)| now_ns.saturating_sub(e.last_seen_ns) >= timeout)
        .map(|(k, _)| *k)
        .collect()
}

/// Removes the fragment entries of the lab pinned in `pin_dir` that are
/// older than [`FRAG_TIMEOUT`] at `now_ns`; returns how many went. A lab
/// whose pins predate fragment tracking has no map: nothing to do.
pub fn sweep_fragments(pin_dir: &Path, now_ns: u64) -> Result<usize, NatError> {
    let map = match open_pinned(pin_dir, NAT_FRAGS_MAP) {
        Ok(map) => map,
        Err(NatError::MissingMap { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let entries: Vec<(NatFragKey, NatFragEntry)> = read_hash(&map, NAT_FRAGS_MAP)?;
    let mut map = map;
    let mut frags: BpfHashMap<&mut MapData, NatFragKey, NatFragEntry> =
        BpfHashMap::try_from(&mut map).map_err(|source| NatError::Map {
            name: NAT_FRAGS_MAP,
            source,
        })?;
    let mut removed = 0;
    for key in select_expired_fragments(&entries, now_ns) {
        // A fragment may have refreshed the entry since it was read.
        match frags.get(&key, 0) {
            Ok(e) if now_ns.saturating_sub(e.last_seen_ns) < FRAG_TIMEOUT.as_nanos() as u64 => {
                continue;
            }
            Ok(_) => {}
            Err(_) => continue,
        }
        match frags.remove(&key) {
            Ok(()) => removed += 1,
            Err(aya::maps::MapError::KeyNotFound) => {}
            Err(aya::maps::MapError::SyscallError(s))
                if s.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => {
                return Err(NatError::Map {
                    name: NAT_FRAGS_MAP,
                    source,
                });
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlab_common::nat::{IPPROTO_UDP, NAT_FRAG_IN, NAT_FRAG_OUT};

    const S: u64 = 1_000_000_000;

    fn entry(id: u16, dir: u8, seen: u64) -> (NatFragKey, NatFragEntry) {
        (
            NatFragKey {
                saddr: u32::from_ne_bytes([192, 168, 28, 1]),
                daddr: u32::from_ne_bytes([203, 0, 113, 2]),
                id: id.to_be(),
                proto: IPPROTO_UDP,
                dir,
            },
            NatFragEntry {
                addr: u32::from_ne_bytes([203, 0, 113, 1]),
                _pad: 0,
                last_seen_ns: seen,
            },
        )
    }

    #[test]
    fn entries_older_than_the_reassembly_timeout_expire() {
        let now = 1_000 * S;
        let all = [
            entry(1, NAT_FRAG_OUT, now - 31 * S),
            entry(2, NAT_FRAG_OUT, now - 29 * S),
            entry(3, NAT_FRAG_IN, now - 30 * S),
            entry(4, NAT_FRAG_IN, now),
            // Seen "after" now (the clock was read earlier): never expired.
            entry(5, NAT_FRAG_OUT, now + S),
        ];
        let mut ids: Vec<u16> = select_expired_fragments(&all, now)
            .iter()
            .map(|k| u16::from_be(k.id))
            .collect();
        ids.sort();
        assert_eq!(ids, [1, 3]);
    }
}
