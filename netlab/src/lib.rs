//! netlab: a container network lab on one Linux host, on a kernel-bridge or
//! an eBPF datapath.

pub mod bench;
pub mod datapath;

/// The compiled eBPF object (all programs and maps), embedded at build time.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netlab"));
