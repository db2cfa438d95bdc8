//! Hand-assembled classifiers, loaded with BPF_PROG_LOAD: programs that
//! have no ELF object, which aya cannot load (it loads programs only from
//! an object). The bench's floor (an empty classifier) and the tests'
//! foreign tcx program are such programs.

use std::{
    io,
    os::fd::{BorrowedFd, FromRawFd, OwnedFd},
};

use super::{
    call::{BPF_PROG_LOAD, bpf},
    info::obj_info,
};

const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// One instruction: opcode, destination and source registers, offset,
/// immediate.
pub const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The `prog_load` member of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads `insns` as a GPL classifier named `name` (cut to 15 bytes). A
/// refusal carries the verifier's log.
pub fn load_classifier(name: &str, insns: &[Insn]) -> io::Result<OwnedFd> {
    let license = c"GPL";
    // Enough for the verifier's log of a program of a few instructions.
    let mut log = vec![0u8; 4096];
    let mut prog_name = [0u8; 16];
    let len = name.len().min(15);
    prog_name[..len].copy_from_slice(&name.as_bytes()[..len]);
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: a successful BPF_PROG_LOAD returns a new fd we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(io::Error::new(
                e.kind(),
                format!("{e}: {}", String::from_utf8_lossy(&log[..end])),
            ))
        }
    }
}

/// The first two fields of `struct bpf_prog_info`: type, id (the kernel
/// fills as much as the length asks for).
#[repr(C)]
#[derive(Default)]
struct ProgInfoHead {
    _prog_type: u32,
    id: u32,
}

/// The id of the program behind `fd`, as `bpftool` and tcx queries show it.
pub fn prog_id(fd: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(obj_info::<ProgInfoHead>(fd, |_| {})?.id)
}
