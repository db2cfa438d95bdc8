//! netlab: a container network lab on one Linux host, on a kernel-bridge or
//! an eBPF datapath.

pub mod bench;
pub mod bpf;
pub mod check;
pub mod cidr;
pub mod cli;
pub mod cni;
pub mod config;
pub mod daemon;
pub mod datapath;
pub mod edit;
pub mod handover;
pub mod health;
pub mod hostns;
pub mod inspect;
pub mod lab;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod names;
pub mod nat;
pub mod netns;
pub mod plan;
pub mod procnet;
pub mod progress;
pub mod publish;
pub mod state;
pub mod status;
pub mod supervise;
pub mod sysctl;
pub mod topology;

/// The compiled eBPF object (all programs and maps), embedded at build time.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netlab"));
