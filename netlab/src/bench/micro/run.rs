//! BPF_PROG_TEST_RUN on a program fd, and the floor: an empty classifier.
//!
//! Hand-written rather than aya's `TestRun`: the floor program has no ELF
//! (aya loads programs only from an object), and every figure must come
//! from the same call so that the ratios compare like with like.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::bpf::sys::{
    bpf,
    prog::{insn, load_classifier},
};

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The `test` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    /// Explicit, so it is zero: the kernel refuses non-zero bytes past the
    /// last field it knows (EINVAL), and Rust leaves padding undefined.
    _pad: u32,
}

/// The floor: `return TC_ACT_OK;`, two instructions, no map, no helper.
pub fn load_empty_classifier() -> io::Result<OwnedFd> {
    load_classifier(
        "micro_floor",
        &[
            insn(0xb7, 0, 0, 0, 0), // r0 = 0
            insn(0x95, 0, 0, 0, 0), // exit
        ],
    )
}

/// What one BPF_PROG_TEST_RUN call reported.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// The program's return value (of the last repetition).
    pub verdict: u32,
    /// Mean nanoseconds per repetition, as the kernel measured it.
    pub ns: u32,
}

/// Runs `prog` `repeat` times on `frame` with the context `ctx` (a
/// `__sk_buff` or `xdp_md` prefix; empty: none).
pub fn test_run(prog: BorrowedFd<'_>, frame: &[u8], ctx: &[u8], repeat: u32) -> io::Result<Run> {
    let mut out = vec![0u8; frame.len() + 512];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat,
        ctx_size_in: ctx.len() as u32,
        ctx_in: if ctx.is_empty() {
            0
        } else {
            ctx.as_ptr() as u64
        },
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(Run {
        verdict: attr.retval,
        ns: attr.duration,
    })
}

/// Offset of `ingress_ifindex` in `struct __sk_buff` (nine u32 before it).
const SKB_INGRESS_IFINDEX: usize = 36;
/// The `__sk_buff` prefix passed: up to and including `ifindex`.
const SKB_CTX_LEN: usize = 44;

/// A `__sk_buff` context saying the frame came in on `ifindex` (0: none).
pub fn skb_ctx(ingress: u32) -> Vec<u8> {
    if ingress == 0 {
        return Vec::new();
    }
    let mut ctx = vec![0u8; SKB_CTX_LEN];
    ctx[SKB_INGRESS_IFINDEX..SKB_INGRESS_IFINDEX + 4].copy_from_slice(&ingress.to_ne_bytes());
    ctx
}

/// An `xdp_md` context for `frame_len` bytes arriving on `ingress`.
pub fn xdp_ctx(frame_len: usize, ingress: u32) -> Vec<u8> {
    // data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
    let mut ctx = vec![0u8; 24];
    ctx[4..8].copy_from_slice(&(frame_len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ingress.to_ne_bytes());
    ctx
}
