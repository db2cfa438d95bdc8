//! A map read element by element, as bytes: one lookup, or every entry
//! (`netlab map dump` reads every map the same way and decodes the bytes).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

use super::{
    call::{BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_ELEM, bpf},
    info::{RawMapInfo, is_per_cpu, possible_cpus},
};

/// The attribute of the map element commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// One entry as bytes: the key, and the value (one per CPU for per-CPU maps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub values: Vec<Vec<u8>>,
}

/// The value(s) stored under `key` in the map behind `fd` (one per CPU for
/// per-CPU maps); `None` when there is no such entry. `key` must be
/// exactly the map's key size (checked: the kernel would read past it).
pub fn lookup(
    fd: BorrowedFd<'_>,
    info: &RawMapInfo,
    key: &[u8],
) -> io::Result<Option<Vec<Vec<u8>>>> {
    if key.len() != info.key_size as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a key of {} bytes for a map whose keys are {}",
                key.len(),
                info.key_size
            ),
        ));
    }
    lookup_sized(fd, info, key, &ValueShape::of(info)?)
}

/// How a map's values come back from a lookup: one per CPU, each padded
/// to 8 bytes, for per-CPU maps.
struct ValueShape {
    cpus: usize,
    stride: usize,
}

impl ValueShape {
    fn of(info: &RawMapInfo) -> io::Result<Self> {
        let per_cpu = is_per_cpu(info.map_type);
        Ok(Self {
            cpus: if per_cpu { possible_cpus()? } else { 1 },
            stride: if per_cpu {
                (info.value_size as usize).div_ceil(8) * 8
            } else {
                info.value_size as usize
            },
        })
    }
}

fn lookup_sized(
    fd: BorrowedFd<'_>,
    info: &RawMapInfo,
    key: &[u8],
    shape: &ValueShape,
) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut value = vec![0u8; shape.stride * shape.cpus];
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
        Ok(_) => Ok(Some(
            value
                .chunks(shape.stride.max(1))
                .map(|c| c[..info.value_size as usize].to_vec())
                .collect(),
        )),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every entry of the map behind `fd`, as bytes. Entries deleted while we
/// iterate are skipped.
pub fn dump(fd: BorrowedFd<'_>, info: &RawMapInfo) -> io::Result<Vec<RawEntry>> {
    let shape = ValueShape::of(info)?;
    let key_size = info.key_size as usize;
    let mut out = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    loop {
        let mut next = vec![0u8; key_size];
        let mut attr = ElemAttr {
            map_fd: fd.as_raw_fd() as u32,
            key: prev.as_ref().map_or(0, |k| k.as_ptr() as u64),
            value: next.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => return Err(e),
        }
        if let Some(values) = lookup_sized(fd, info, &next, &shape)? {
            out.push(RawEntry {
                key: next.clone(),
                values,
            });
        }
        prev = Some(next);
        if out.len() > info.max_entries as usize + 1 {
            // An LRU map churning under us can cycle; never loop forever.
            break;
        }
    }
    Ok(out)
}
