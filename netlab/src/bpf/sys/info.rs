//! What the kernel says about a map: its full info (type, sizes, BTF ids),
//! its BTF blob, the names of map types, and how per-CPU values come back.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

use super::call::{BPF_BTF_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, bpf};

/// `struct bpf_map_info` (uapi/linux/bpf.h), the fields up to `map_extra`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RawMapInfo {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: [u8; 16],
    pub ifindex: u32,
    pub btf_vmlinux_value_type_id: u32,
    pub netns_dev: u64,
    pub netns_ino: u64,
    pub btf_id: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    pub btf_vmlinux_id: u32,
    pub map_extra: u64,
}

/// `struct bpf_btf_info`.
#[repr(C)]
#[derive(Default)]
struct RawBtfInfo {
    btf: u64,
    btf_size: u32,
    id: u32,
    name: u64,
    name_len: u32,
    kernel_btf: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

pub(super) fn obj_info<T: Default>(fd: BorrowedFd<'_>, fill: impl FnOnce(&mut T)) -> io::Result<T> {
    let mut info = T::default();
    fill(&mut info);
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<T>() as u32,
        info: std::ptr::from_mut(&mut info) as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// The kernel's description of the map behind `fd`.
pub fn map_info(fd: BorrowedFd<'_>) -> io::Result<RawMapInfo> {
    obj_info(fd, |_| {})
}

/// The raw BTF blob with id `btf_id` (the object's BTF a map was created with).
pub fn btf_bytes(btf_id: u32) -> io::Result<Vec<u8>> {
    #[repr(C)]
    #[derive(Default)]
    struct IdAttr {
        id: u32,
        next_id: u32,
        open_flags: u32,
    }
    let mut attr = IdAttr {
        id: btf_id,
        ..Default::default()
    };
    let raw = bpf(BPF_BTF_GET_FD_BY_ID, &mut attr)?;
    // SAFETY: the kernel returned a new file descriptor that we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let size = obj_info::<RawBtfInfo>(
        // SAFETY: `fd` lives until the end of this function.
        unsafe { BorrowedFd::borrow_raw(fd.as_raw_fd()) },
        |_| {},
    )?
    .btf_size;
    let mut buf = vec![0u8; size as usize];
    let ptr = buf.as_mut_ptr() as u64;
    obj_info::<RawBtfInfo>(
        // SAFETY: as above.
        unsafe { BorrowedFd::borrow_raw(fd.as_raw_fd()) },
        |i| {
            i.btf = ptr;
            i.btf_size = size;
        },
    )?;
    Ok(buf)
}

/// The kernel's name of a map type (`bpftool map show` spells them so).
pub fn map_type_name(map_type: u32) -> String {
    match map_type {
        1 => "hash".into(),
        2 => "array".into(),
        5 => "percpu_hash".into(),
        6 => "percpu_array".into(),
        9 => "lru_hash".into(),
        10 => "lru_percpu_hash".into(),
        25 => "devmap_hash".into(),
        27 => "ringbuf".into(),
        n => format!("type-{n}"),
    }
}

/// Per-CPU maps return one value per possible CPU, each rounded up to 8 bytes.
pub fn is_per_cpu(map_type: u32) -> bool {
    // BPF_MAP_TYPE_PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE
    matches!(map_type, 5 | 6 | 10 | 21)
}

/// Number of possible CPUs (the per-CPU value count).
pub fn possible_cpus() -> io::Result<usize> {
    aya::util::nr_cpus().map_err(|(_, e)| e)
}
