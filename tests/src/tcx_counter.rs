//! A program that is not netlab's, for the coexistence tests: a tcx
//! classifier of eleven instructions that counts the packets it sees in an
//! array map and returns TCX_NEXT, as a well-behaved member of a tcx chain
//! (a monitor, say) does.
//!
//! Hand-assembled and loaded with raw bpf(2) calls (`bpf::sys::prog`) because aya loads only
//! ELF objects, and the point is a program from somewhere else than
//! netlab's object. The link lives as long as the [`TcxCounter`]: dropping
//! it closes the link's fd, which detaches the program.

use netlab::bpf::sys::{
    bpf, lookup, map_info,
    prog::{Insn, insn, load_classifier, prog_id},
};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
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
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
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
        let prog = load_classifier("foreign_cnt", &program(map.as_raw_fd()))?;
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
        let prog_id = prog_id(prog.as_fd())?;
        Ok(Self {
            map,
            _prog: prog,
            _link: link,
            prog_id,
        })
    }

    /// Packets the program has seen so far.
    pub fn count(&self) -> u64 {
        let fd = self.map.as_fd();
        let info = map_info(fd).expect("the foreign program's map info");
        let values = lookup(fd, &info, &0u32.to_ne_bytes())
            .expect("read the foreign program's counter")
            .expect("an array map has every index");
        u64::from_ne_bytes(values[0][..8].try_into().expect("an 8-byte value"))
    }
}
