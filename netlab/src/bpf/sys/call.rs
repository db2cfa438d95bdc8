//! bpf(2) itself, and the numbers of the commands netlab issues directly.

use std::io;

// Command numbers: `enum bpf_cmd` in uapi/linux/bpf.h.
pub(super) const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
pub(super) const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
pub(super) const BPF_PROG_LOAD: libc::c_long = 5;
pub(super) const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
pub(super) const BPF_BTF_GET_FD_BY_ID: libc::c_long = 19;
pub(super) const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// bpf(2) with `attr` as the command's union member. Public for the tests'
/// hand-assembled programs, which aya cannot load (they have no ELF).
pub fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
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
