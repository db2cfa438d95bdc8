//! The few bpf(2) commands aya 0.14 does not expose: a map's full info
//! (its BTF ids), its BTF blob, and byte-level iteration of any map
//! (`netlab map dump` reads every map the same way and decodes the bytes).

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_BTF_GET_FD_BY_ID: libc::c_long = 19;

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

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a properly laid out bpf_attr member for `cmd`, and
    // every pointer inside it points to a live buffer of the stated size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn obj_info<T: Default>(fd: BorrowedFd<'_>, fill: impl FnOnce(&mut T)) -> io::Result<T> {
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

/// One entry as bytes: the key, and the value (one per CPU for per-CPU maps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub values: Vec<Vec<u8>>,
}

/// Every entry of the map behind `fd`, as bytes. Entries deleted while we
/// iterate are skipped.
pub fn dump(fd: BorrowedFd<'_>, info: &RawMapInfo) -> io::Result<Vec<RawEntry>> {
    let per_cpu = is_per_cpu(info.map_type);
    let cpus = if per_cpu { possible_cpus()? } else { 1 };
    let stride = if per_cpu {
        (info.value_size as usize).div_ceil(8) * 8
    } else {
        info.value_size as usize
    };
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
        let mut value = vec![0u8; stride * cpus];
        let mut attr = ElemAttr {
            map_fd: fd.as_raw_fd() as u32,
            key: next.as_ptr() as u64,
            value: value.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
            Ok(_) => out.push(RawEntry {
                key: next.clone(),
                values: value
                    .chunks(stride.max(1))
                    .map(|c| c[..info.value_size as usize].to_vec())
                    .collect(),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        prev = Some(next);
        if out.len() > info.max_entries as usize + 1 {
            // An LRU map churning under us can cycle; never loop forever.
            break;
        }
    }
    Ok(out)
}
