//! Whole hash maps read with BPF_MAP_LOOKUP_BATCH (the NAT table:
//! thousands of entries per syscall instead of two syscalls per entry).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

use super::call::{BPF_MAP_LOOKUP_BATCH, bpf};

/// The `batch` member of union bpf_attr (the BPF_MAP_*_BATCH commands).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Entries asked for per BPF_MAP_LOOKUP_BATCH call: for the NAT maps
/// (16-byte keys and values) 4096 entries are 128 KiB of buffer, and a
/// table of 100 000 entries takes 25 calls instead of 200 000.
pub const LOOKUP_BATCH_COUNT: u32 = 4096;

/// Entries read by [`lookup_batch`]: keys of `key_size` bytes and their
/// values of `value_size` bytes, each packed back to back, in the map's
/// (bucket) order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchEntries {
    key_size: usize,
    value_size: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
}

impl BatchEntries {
    pub fn len(&self) -> usize {
        self.keys.len() / self.key_size.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Each entry's key and value bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.keys
            .chunks_exact(self.key_size.max(1))
            .zip(self.values.chunks_exact(self.value_size.max(1)))
    }
}

/// One BPF_MAP_LOOKUP_BATCH call, as [`read_batches`] hands it to the
/// kernel (or to a test's stand-in for it).
pub struct BatchCall<'a> {
    /// Where to continue: the previous call's `out_batch`, `None` on the
    /// first call (the start of the map).
    pub in_batch: Option<&'a [u8]>,
    /// Where the kernel writes the position to continue from.
    pub out_batch: &'a mut [u8],
    /// Room for `count` keys and values.
    pub keys: &'a mut [u8],
    pub values: &'a mut [u8],
    /// In: how many entries `keys` and `values` have room for. Out: how
    /// many the kernel wrote (also on ENOENT, the last batch).
    pub count: u32,
}

/// The batch loop of BPF_MAP_LOOKUP_BATCH (kernel docs, bpf(2) and
/// `htab_map_lookup_batch`): call with no `in_batch`, then always pass the
/// previous `out_batch` on, appending the `count` entries each call returns,
/// until the call fails with ENOENT (the end; its `count` entries still
/// count). A hash map is read bucket by bucket and a bucket is never split,
/// so a bucket holding more entries than the buffer fails with ENOSPC and
/// nothing read: retry the same position with a buffer twice as large (up
/// to `max_count`, the map's size, which no bucket can exceed).
///
/// `call` performs one call; it is a parameter so the loop is testable
/// without a kernel.
pub fn read_batches(
    key_size: usize,
    value_size: usize,
    first_count: u32,
    max_count: u32,
    mut call: impl FnMut(&mut BatchCall<'_>) -> io::Result<()>,
) -> io::Result<BatchEntries> {
    if key_size == 0 || value_size == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "batch lookup of a map with empty keys or values",
        ));
    }
    let max_count = max_count.max(1);
    let mut count = first_count.clamp(1, max_count);
    // Hash maps use a u32 bucket index as the position, array maps a key.
    let token_size = key_size.max(8);
    let mut in_token = vec![0u8; token_size];
    let mut out_token = vec![0u8; token_size];
    let mut started = false;
    let mut out = BatchEntries {
        key_size,
        value_size,
        keys: Vec::new(),
        values: Vec::new(),
    };
    loop {
        let have = out.len();
        out.keys.resize((have + count as usize) * key_size, 0);
        out.values.resize((have + count as usize) * value_size, 0);
        let mut c = BatchCall {
            in_batch: started.then_some(in_token.as_slice()),
            out_batch: &mut out_token,
            keys: &mut out.keys[have * key_size..],
            values: &mut out.values[have * value_size..],
            count,
        };
        let result = call(&mut c);
        // Never believe more than the buffer had room for.
        let got = (c.count as usize).min(count as usize);
        out.keys.truncate((have + got) * key_size);
        out.values.truncate((have + got) * value_size);
        match result {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && got == 0 => {
                if count >= max_count {
                    return Err(e);
                }
                count = count.saturating_mul(2).min(max_count);
                // Same position again: the tokens are not swapped.
                continue;
            }
            // ENOSPC after some entries: the kernel stopped before a bucket
            // that did not fit; `out_batch` points at it.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {}
            Err(e) => return Err(e),
            Ok(()) if got == 0 => {
                return Err(io::Error::other(
                    "BPF_MAP_LOOKUP_BATCH returned neither entries nor the end",
                ));
            }
            Ok(()) => {}
        }
        std::mem::swap(&mut in_token, &mut out_token);
        started = true;
        // Buckets are visited once each, so the walk ends; an LRU map that
        // recycles elements into later buckets can only make it see a few
        // entries twice. Never grow without bound, like `dump`.
        if out.len() > 2 * max_count as usize + count as usize {
            return Ok(out);
        }
    }
}

/// Every entry of the map behind `fd`, read with BPF_MAP_LOOKUP_BATCH
/// ([`read_batches`]); `value_size` is the bytes per entry's value (per-CPU
/// maps: the rounded value times the possible CPUs). `None` when the
/// kernel (before 5.6) or the map type has no batch lookup: the caller
/// falls back to [`super::dump`].
pub fn lookup_batch(
    fd: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
) -> io::Result<Option<BatchEntries>> {
    let result = read_batches(key_size, value_size, LOOKUP_BATCH_COUNT, max_entries, |c| {
        let mut attr = BatchAttr {
            in_batch: c.in_batch.map_or(0, |b| b.as_ptr() as u64),
            out_batch: c.out_batch.as_mut_ptr() as u64,
            keys: c.keys.as_mut_ptr() as u64,
            values: c.values.as_mut_ptr() as u64,
            count: c.count,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        let result = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr).map(|_| ());
        // The kernel writes `count` back on success, ENOENT and ENOSPC;
        // after any other error it is still our request.
        c.count = match &result {
            Ok(()) => attr.count,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOSPC)) => attr.count,
            Err(_) => 0,
        };
        result
    });
    match result {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if is_unsupported(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The errors of a bpf command the kernel does not know (EINVAL before
/// 5.6) or a map type does not implement (ENOTSUPP, EOPNOTSUPP).
fn is_unsupported(e: &io::Error) -> bool {
    const ENOTSUPP: i32 = 524;
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the kernel's `htab_map_lookup_batch`: a hash map of
    /// u32 keys and u64 values in `buckets`, the position a u32 bucket
    /// index. Records each call's (in_batch, count).
    struct FakeHash {
        buckets: Vec<Vec<(u32, u64)>>,
        calls: Vec<(Option<u32>, u32)>,
    }

    impl FakeHash {
        fn new(sizes: &[usize]) -> Self {
            let mut next = 0u32;
            let buckets = sizes
                .iter()
                .map(|&n| {
                    (0..n)
                        .map(|_| {
                            next += 1;
                            (next, u64::from(next) * 1000)
                        })
                        .collect()
                })
                .collect();
            Self {
                buckets,
                calls: Vec::new(),
            }
        }

        fn all(&self) -> Vec<(u32, u64)> {
            self.buckets.iter().flatten().copied().collect()
        }

        fn call(&mut self, c: &mut BatchCall<'_>) -> io::Result<()> {
            let max = c.count;
            let start = c
                .in_batch
                .map(|b| u32::from_ne_bytes(b[..4].try_into().unwrap()));
            self.calls.push((start, max));
            c.count = 0;
            let mut batch = start.unwrap_or(0) as usize;
            if batch >= self.buckets.len() {
                return Err(io::Error::from_raw_os_error(libc::ENOENT));
            }
            let mut total = 0usize;
            let result = loop {
                let bucket = &self.buckets[batch];
                if bucket.len() > max as usize - total {
                    break if total == 0 {
                        Err(io::Error::from_raw_os_error(libc::ENOSPC))
                    } else {
                        Ok(())
                    };
                }
                for (k, v) in bucket {
                    c.keys[total * 4..][..4].copy_from_slice(&k.to_ne_bytes());
                    c.values[total * 8..][..8].copy_from_slice(&v.to_ne_bytes());
                    total += 1;
                }
                batch += 1;
                if batch >= self.buckets.len() {
                    break Err(io::Error::from_raw_os_error(libc::ENOENT));
                }
            };
            c.out_batch[..4].copy_from_slice(&(batch as u32).to_ne_bytes());
            c.count = total as u32;
            result
        }
    }

    fn decode(b: &BatchEntries) -> Vec<(u32, u64)> {
        b.iter()
            .map(|(k, v)| {
                (
                    u32::from_ne_bytes(k.try_into().unwrap()),
                    u64::from_ne_bytes(v.try_into().unwrap()),
                )
            })
            .collect()
    }

    fn read(fake: &mut FakeHash, first: u32, max: u32) -> io::Result<BatchEntries> {
        read_batches(4, 8, first, max, |c| fake.call(c))
    }

    #[test]
    fn an_empty_map_is_one_call_ending_in_enoent() {
        let mut fake = FakeHash::new(&[0; 16]);
        let got = read(&mut fake, 8, 64).unwrap();
        assert!(got.is_empty());
        assert_eq!(got.len(), 0);
        assert_eq!(fake.calls, [(None, 8)]);
    }

    #[test]
    fn batches_continue_where_the_last_ended_and_keep_the_final_batch() {
        let mut fake = FakeHash::new(&[2, 0, 1, 3, 0, 0, 2, 1]);
        let got = read(&mut fake, 4, 64).unwrap();
        assert_eq!(decode(&got), fake.all(), "every entry once, in order");
        assert_eq!(got.len(), 9);
        // Buckets 0..=2 (3 entries; bucket 3's 3 do not fit in the 1 left),
        // then 3..=5 (bucket 6's 2 do not fit), then 6 and 7 and the end:
        // the last entries arrive together with ENOENT.
        assert_eq!(fake.calls, [(None, 4), (Some(3), 4), (Some(6), 4)]);
    }

    #[test]
    fn a_bucket_larger_than_the_buffer_is_retried_at_the_same_place_with_more_room() {
        let mut fake = FakeHash::new(&[1, 5, 1]);
        let got = read(&mut fake, 2, 64).unwrap();
        assert_eq!(decode(&got), fake.all());
        assert_eq!(
            fake.calls,
            [
                (None, 2),    // bucket 0, stops before bucket 1 (5 > 1 left)
                (Some(1), 2), // ENOSPC, nothing read
                (Some(1), 4), // ENOSPC again
                (Some(1), 8), // fits; bucket 2 too, and the end
            ]
        );
    }

    #[test]
    fn enospc_on_the_first_call_retries_from_the_start() {
        let mut fake = FakeHash::new(&[3, 1]);
        let got = read(&mut fake, 1, 64).unwrap();
        assert_eq!(decode(&got), fake.all());
        assert_eq!(fake.calls, [(None, 1), (None, 2), (None, 4)]);
    }

    #[test]
    fn a_bucket_larger_than_the_map_size_is_an_error_not_a_loop() {
        let mut fake = FakeHash::new(&[10]);
        let err = read(&mut fake, 2, 6).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(fake.calls, [(None, 2), (None, 4), (None, 6)]);
    }

    #[test]
    fn other_errors_are_reported_and_empty_successes_do_not_loop() {
        let err = read_batches(4, 8, 16, 64, |_| {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        })
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let mut calls = 0;
        let err = read_batches(4, 8, 16, 64, |c| {
            calls += 1;
            c.count = 0;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(err.to_string().contains("neither entries nor the end"));
    }

    #[test]
    fn a_count_beyond_the_buffer_is_not_believed() {
        let got = read_batches(4, 8, 2, 64, |c| {
            c.keys.fill(7);
            c.values.fill(9);
            c.count = 1000;
            Err(io::Error::from_raw_os_error(libc::ENOENT))
        })
        .unwrap();
        assert_eq!(decode(&got), [(0x0707_0707, 0x0909_0909_0909_0909); 2]);
    }

    #[test]
    fn unsupported_kernels_and_map_types_are_recognised() {
        for errno in [libc::EINVAL, libc::EOPNOTSUPP, 524] {
            assert!(is_unsupported(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!is_unsupported(&io::Error::from_raw_os_error(libc::EPERM)));
    }
}
