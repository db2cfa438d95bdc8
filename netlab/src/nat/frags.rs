//! Expiry of the fragment-tracking entries (`nat_frags`, and NAT66's
//! `nat6_frags` by the same rule).
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
use netlab_common::nat6::{NAT6_FRAGS_MAP, Nat6FragEntry, Nat6FragKey};

use super::{
    NatError,
    maps::{open_pinned, read_hash},
};
use crate::bpf::maps::remove_key;

/// How long a fragment entry lives after the datagram's last fragment.
pub const FRAG_TIMEOUT: Duration = Duration::from_secs(NAT_FRAG_TIMEOUT_SECS);

/// A fragment map's value: when the datagram's last fragment was seen.
/// `nat_frags` and NAT66's `nat6_frags` expire by the same rule.
pub trait FragEntry: aya::Pod {
    fn last_seen_ns(&self) -> u64;
}

impl FragEntry for NatFragEntry {
    fn last_seen_ns(&self) -> u64 {
        self.last_seen_ns
    }
}

impl FragEntry for Nat6FragEntry {
    fn last_seen_ns(&self) -> u64 {
        self.last_seen_ns
    }
}

/// Whether an entry last seen at `seen_ns` is expired at `now_ns`.
fn expired(seen_ns: u64, now_ns: u64) -> bool {
    now_ns.saturating_sub(seen_ns) >= FRAG_TIMEOUT.as_nanos() as u64
}

/// The keys of the entries expired at `now_ns`.
pub fn select_expired_fragments<K: Copy, E: FragEntry>(entries: &[(K, E)], now_ns: u64) -> Vec<K> {
    entries
        .iter()
        .filter(|(_, e)| expired(e.last_seen_ns(), now_ns))
        .map(|(k, _)| *k)
        .collect()
}

/// Removes the fragment entries of the lab pinned in `pin_dir` that are
/// older than [`FRAG_TIMEOUT`] at `now_ns`, in both families' maps;
/// returns how many went. A lab whose pins predate fragment tracking
/// (or NAT66) has no such map: nothing to do there.
pub fn sweep_fragments(pin_dir: &Path, now_ns: u64) -> Result<usize, NatError> {
    Ok(
        sweep_map::<NatFragKey, NatFragEntry>(pin_dir, NAT_FRAGS_MAP, now_ns)?
            + sweep_map::<Nat6FragKey, Nat6FragEntry>(pin_dir, NAT6_FRAGS_MAP, now_ns)?,
    )
}

/// [`sweep_fragments`] on one map.
fn sweep_map<K: aya::Pod, E: FragEntry>(
    pin_dir: &Path,
    name: &'static str,
    now_ns: u64,
) -> Result<usize, NatError> {
    let mut map = match open_pinned(pin_dir, name) {
        Ok(map) => map,
        Err(NatError::MissingMap { .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let entries: Vec<(K, E)> = read_hash(&map, name)?;
    let mut frags: BpfHashMap<&mut MapData, K, E> =
        BpfHashMap::try_from(&mut map).map_err(|source| NatError::Map { name, source })?;
    let mut removed = 0;
    for key in select_expired_fragments(&entries, now_ns) {
        // A fragment may have refreshed the entry since it was read.
        match frags.get(&key, 0) {
            Ok(e) if !expired(e.last_seen_ns(), now_ns) => continue,
            Ok(_) => {}
            Err(_) => continue,
        }
        let gone = remove_key(&mut frags, &key).map_err(|source| NatError::Map { name, source })?;
        removed += usize::from(gone);
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
