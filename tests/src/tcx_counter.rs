//! A program that is not netlab's, for the coexistence tests: a tcx
//! classifier of eleven instructions that counts the packets it sees in an
//! array map and returns TCX_NEXT, as a well-behaved member of a tcx chain
//! (a monitor, say) does.
//!
//! Hand-assembled and loaded with raw bpf(2) calls because aya loads only
//! ELF objects, and the point is a program from somewhere else than
//! netlab's object. The link lives as long as the [`TcxCounter`]: dropping
//! it closes the link's fd, which detaches the program.

use netlab::bpf::sys::bpf;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_TCX_INGRESS: u32 = 46;
const BPF_TCX_EGRESS: u32 = 47;
/// Link creation flag: put the program first in the chain (with no
/// relative program); without it, the program goes last.
const BPF_F_BEFORE: u32 = 1 << 3;

/// Which tcx hook of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Ingress,
    Egress,
}

/// Where in the hook's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    First,
    Last,
}

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// `counter[0] += 1; return TCX_NEXT;`
fn program(map_fd: i32) -> Vec<Insn> {
    vec![
        insn(0x62, 10, 0, -4, 0),    // *(u32 *)(r10 - 4) = 0 (the key)
        insn(0xbf, 2, 10, 0, 0),     // r2 = r10
        insn(0x07, 2, 0, 0, -4),     // r2 += -4
        insn(0x18, 1, 1, 0, map_fd), // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        insn(0x00, 0, 0, 0, 0),
        insn(0x85, 0, 0, 0, 1),  // call bpf_map_lookup_elem
        insn(0x15, 0, 0, 2, 0),  // if r0 == 0 goto +2
        insn(0xb7, 1, 0, 0, 1),  // r1 = 1
        insn(0xdb, 0, 1, 0, 0),  // lock *(u64 *)(r0 + 0) += r1
        insn(0xb7, 0, 0, 0, -1), // r0 = -1 (TCX_NEXT)
        insn(0x95, 0, 0, 0, 0),  // exit
    ]
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

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

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// A counting program attached to one tcx hook of one device.
pub struct TcxCounter {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
    /// The program's id, as `bpftool` and tcx queries show it.
    pub prog_id: u32,
}

impl TcxCounter {
    /// Loads the program and attaches it to `dev`'s `hook` at `place`.
    /// Run it on a thread inside the device's namespace (the ifindex is
    /// looked up and resolved there).
    pub fn attach(dev: &str, hook: Hook, place: Place) -> io::Result<Self> {
        let mut map_attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: 1,
            map_flags: 0,
        };
        // SAFETY: a successful BPF_MAP_CREATE returns a new fd we own.
        let map = unsafe { OwnedFd::from_raw_fd(bpf(BPF_MAP_CREATE, &mut map_attr)? as i32) };
        let insns = program(map.as_raw_fd());
        let license = c"GPL";
        let mut log = vec![0u8; 4096];
        let mut name = [0u8; 16];
        name[..11].copy_from_slice(b"foreign_cnt");
        let mut load = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_SCHED_CLS,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            prog_name: name,
            ..Default::default()
        };
        let prog = match bpf(BPF_PROG_LOAD, &mut load) {
            // SAFETY: a new fd we own.
            Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd as i32) },
            Err(e) => {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                return Err(io::Error::new(
                    e.kind(),
                    format!("{e}: {}", String::from_utf8_lossy(&log[..end])),
                ));
            }
        };
        let ifindex = nix::net::if_::if_nametoindex(dev).map_err(io::Error::from)?;
        let mut link_attr = LinkCreateAttr {
            prog_fd: prog.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: match hook {
                Hook::Ingress => BPF_TCX_INGRESS,
                Hook::Egress => BPF_TCX_EGRESS,
            },
            flags: match place {
                Place::First => BPF_F_BEFORE,
                Place::Last => 0,
            },
            ..Default::default()
        };
        // SAFETY: a new fd we own.
        let link = unsafe { OwnedFd::from_raw_fd(bpf(BPF_LINK_CREATE, &mut link_attr)? as i32) };
        // The first two fields of `struct bpf_prog_info`: type, id (the
        // kernel fills as much as the length asks for).
        let mut info = [0u32; 2];
        let mut info_attr = InfoAttr {
            bpf_fd: prog.as_raw_fd() as u32,
            info_len: size_of_val(&info) as u32,
            info: info.as_mut_ptr() as u64,
        };
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut info_attr)?;
        let prog_id = info[1];
        Ok(Self {
            map,
            _prog: prog,
            _link: link,
            prog_id,
        })
    }

    /// Packets the program has seen so far.
    pub fn count(&self) -> u64 {
        let key = 0u32;
        let mut value = 0u64;
        let mut attr = ElemAttr {
            map_fd: self.map.as_raw_fd() as u32,
            key: std::ptr::from_ref(&key) as u64,
            value: std::ptr::from_mut(&mut value) as u64,
            ..Default::default()
        };
        bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).expect("read the foreign program's counter");
        value
    }
}
