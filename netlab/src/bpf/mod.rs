//! Kernel-side plumbing of the eBPF datapath: bpffs and the pin layout
//! ([`fs`]), loading and attaching programs ([`loader`]), typed views of the
//! pinned maps ([`maps`], the IPv6 ones in [`maps6`]) and their IPv4
//! encoding ([`key`]), whole maps
//! read in batches ([`bulk`]), raw bpf(2) commands aya lacks ([`sys`]) and
//! the errors they report ([`error`]), the kernel's run-time statistics of
//! the programs ([`runstats`]).

pub mod btf;
pub mod bulk;
pub mod error;
pub mod fs;
pub mod key;
pub mod loader;
pub mod maps;
pub mod maps6;
pub mod runstats;
pub mod sys;
pub mod verdict;

pub use error::{Error, Result};
