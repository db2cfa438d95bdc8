//! The few bpf(2) commands aya 0.14 does not expose: a map's full info
//! (its BTF ids), its BTF blob, byte-level iteration of any map
//! (`netlab map dump` reads every map the same way and decodes the bytes),
//! and batched reads of whole hash maps (the NAT table: thousands of
//! entries per syscall instead of two syscalls per entry), and loading a
//! hand-assembled program (which has no ELF object for aya to load).
//!
//! [`call`] is the syscall, [`info`] what the kernel says about a map,
//! [`elem`] element-by-element reads, [`batch`] batched reads, [`prog`]
//! hand-assembled classifiers.

pub mod batch;
pub mod call;
pub mod elem;
pub mod info;
pub mod prog;

pub use batch::{BatchCall, BatchEntries, LOOKUP_BATCH_COUNT, lookup_batch, read_batches};
pub use call::bpf;
pub use elem::{RawEntry, dump, lookup};
pub use info::{RawMapInfo, btf_bytes, is_per_cpu, map_info, map_type_name, possible_cpus};
