//! How many entries a lab's NAT table holds, so the "prefilled" figure says
//! what the table actually held instead of what the prefill hoped for.
//!
//! kernel: `nf_conntrack_count` of the host namespace (where MASQUERADE
//! runs). ebpf: the largest key count among the hash maps pinned under
//! `/sys/fs/bpf/netlab/<lab>/` whose name contains "nat" (both directions of
//! the NAT hold one entry per flow).

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use anyhow::Context;
use aya::maps::{MapData, MapType};

use super::catalog::BenchDatapath;
use super::nsexec::NsCpu;

/// Entry count, or `None` when it cannot be read (no conntrack module in
/// that namespace, no NAT maps pinned yet).
pub fn entries(datapath: BenchDatapath, lab: &str, host_ns: &str) -> Option<u64> {
    match datapath {
        BenchDatapath::Kernel => NsCpu::new(host_ns, 0)
            .run_in("bench-conntrack", || {
                let text = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
                    .context("reading nf_conntrack_count")?;
                text.trim()
                    .parse::<u64>()
                    .context("parsing nf_conntrack_count")
            })
            .ok(),
        BenchDatapath::Ebpf | BenchDatapath::EbpfXdp => {
            ebpf_nat_entries(&crate::bpf::fs::lab_dir(lab))
        }
        BenchDatapath::Direct => None,
    }
}

fn ebpf_nat_entries(dir: &Path) -> Option<u64> {
    let mut best = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if !name.contains("nat") {
            continue;
        }
        // Pinned links and non-hash maps are skipped.
        let Ok(map) = MapData::from_pin(entry.path()) else {
            continue;
        };
        let Ok(info) = map.info() else { continue };
        if !matches!(info.map_type(), Ok(MapType::Hash | MapType::LruHash)) {
            continue;
        }
        let count = count_keys(&map, info.key_size() as usize, info.max_entries() as u64);
        best = best.max(count);
    }
    best
}

/// Walk the keys with BPF_MAP_GET_NEXT_KEY (aya 0.14 only offers typed key
/// iteration, and the NAT key type belongs to another module).
fn count_keys(map: &MapData, key_size: usize, max_entries: u64) -> Option<u64> {
    #[repr(C)]
    struct NextKeyAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        next_key: u64,
    }
    const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
    let fd = map.fd().as_fd().as_raw_fd();
    let mut key = vec![0u8; key_size];
    let mut next = vec![0u8; key_size];
    let mut count = 0u64;
    let mut first = true;
    // A map changing under the walk can restart it; stop at twice the size.
    while count <= max_entries * 2 {
        let attr = NextKeyAttr {
            map_fd: fd as u32,
            _pad: 0,
            key: if first { 0 } else { key.as_ptr() as u64 },
            next_key: next.as_mut_ptr() as u64,
        };
        // SAFETY: attr points at live buffers of the map's key size.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_GET_NEXT_KEY,
                &attr as *const NextKeyAttr,
                std::mem::size_of::<NextKeyAttr>() as u32,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return (err.raw_os_error() == Some(libc::ENOENT)).then_some(count);
        }
        count += 1;
        first = false;
        std::mem::swap(&mut key, &mut next);
    }
    Some(count.min(max_entries))
}
