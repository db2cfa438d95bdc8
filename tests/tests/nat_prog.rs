//! The uplink NAT programs under BPF_PROG_TEST_RUN: crafted frames in, the
//! verdict and the rewritten frame out, every output checksum recomputed
//! from scratch in userspace (the oracle in tests/src/packets/checksum.rs).
//!
//! Each test loads its own copy of the eBPF object with its maps pinned in
//! its own directory (`/sys/fs/bpf/netlab-test-nat-<pid>-<name>`, removed
//! on drop), so tests share no state and run in parallel. No packet leaves
//! the test: test runs execute the program on a private skb.

// The parts of this test file, by idea, in the directory of the same
// name (this file stays the test target `--test nat_prog` names).
#[path = "nat_prog/fragments.rs"]
mod fragments;
#[path = "nat_prog/icmp_errors.rs"]
mod icmp_errors;
#[path = "nat_prog/lab.rs"]
mod lab;
#[path = "nat_prog/limits.rs"]
mod limits;
#[path = "nat_prog/publish.rs"]
mod publish;
#[path = "nat_prog/table.rs"]
mod table;
#[path = "nat_prog/translate.rs"]
mod translate;
#[path = "nat_prog/verdicts.rs"]
mod verdicts;
