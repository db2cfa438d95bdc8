//! Whole hash maps read in bulk, typed.
//!
//! aya 0.14 iterates a map with two syscalls per entry (next key, lookup);
//! for the NAT table, read every second by the daemon, that is 400 000
//! syscalls for 100 000 flows. BPF_MAP_LOOKUP_BATCH (kernel 5.6) returns
//! thousands of entries per call ([`sys::lookup_batch`]); older kernels get
//! the entry-by-entry walk ([`sys::dump`]).

use std::{io, os::fd::BorrowedFd};

use aya::Pod;

use super::sys;

/// Every entry of the (non-per-CPU) hash map behind `fd`, whose keys are
/// `K` and values `V`. Entries inserted or deleted while it reads may or
/// may not be in the result; none is returned twice except when an LRU map
/// recycles an element into a bucket not read yet.
pub fn read_all<K: Pod, V: Pod>(fd: BorrowedFd<'_>) -> io::Result<Vec<(K, V)>> {
    let info = sys::map_info(fd)?;
    if info.key_size as usize != size_of::<K>()
        || info.value_size as usize != size_of::<V>()
        || sys::is_per_cpu(info.map_type)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "map {} has {}-byte keys and {}-byte values ({}), expected {} and {} (not per-CPU)",
                info.id,
                info.key_size,
                info.value_size,
                sys::map_type_name(info.map_type),
                size_of::<K>(),
                size_of::<V>()
            ),
        ));
    }
    match sys::lookup_batch(fd, size_of::<K>(), size_of::<V>(), info.max_entries)? {
        Some(batch) => Ok(batch
            .iter()
            .map(|(k, v)| (from_bytes(k), from_bytes(v)))
            .collect()),
        None => Ok(sys::dump(fd, &info)?
            .iter()
            .map(|e| (from_bytes(&e.key), from_bytes(&e.values[0])))
            .collect()),
    }
}

/// A `T` from exactly `size_of::<T>()` bytes.
fn from_bytes<T: Pod>(bytes: &[u8]) -> T {
    assert_eq!(bytes.len(), size_of::<T>(), "entry size checked above");
    // SAFETY: `T: Pod` means any bytes of its size are a valid `T`, and
    // `bytes` holds exactly that many; read_unaligned needs no alignment.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
}
