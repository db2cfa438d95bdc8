//! Kernel-side plumbing of the eBPF datapath: bpffs and the pin layout
//! ([`fs`]), loading and attaching programs ([`loader`]), typed views of the
//! pinned maps ([`maps`]) and the errors they report ([`error`]).

pub mod error;
pub mod fs;
pub mod loader;
pub mod maps;

pub use error::{Error, Result};
