//! Every BPF program under BPF_PROG_TEST_RUN with fuzzed frames (random
//! bytes, mutated valid frames; tests/src/fuzz/). Per case:
//!
//! * the verdict is one the program documents (TC_ACT_OK, TC_ACT_SHOT,
//!   TC_ACT_REDIRECT, and for the uplink programs TCX_NEXT on traffic that
//!   is not the lab's), and the one the design asks for (tests/src/fuzz/
//!   nat_model.rs); a frame the kernel refuses to run (EINVAL: shorter
//!   than its Ethernet/IPv4 header) must be one the model says it refuses;
//! * exactly one reason counter moved, the expected one, and the fast-path
//!   counter moved exactly when the verdict is a redirect;
//! * NAT state: the translation maps grow by exactly one entry each when,
//!   and only when, a well-formed lab packet started a new translation; the
//!   new entries say what the packet was and use a port from the range;
//! * a rewritten frame changed only the fields its translation may change,
//!   to the values in the map, with checksums from scratch that are right
//!   when they were right before and exactly as wrong when they were wrong.
//!
//! The run is seeded: `NETLAB_FUZZ_SEED` (default below) and
//! `NETLAB_FUZZ_CASES` (per program) reproduce it; every failure names the
//! seed and the case index. `cargo xtask fuzz --cases N [--seed S]` runs
//! long ones. The object is loaded by the shared harness
//! (`netlab_tests::harness`), its maps pinned in
//! `/sys/fs/bpf/netlab-test-fuzz-<pid>-<name>/`, removed on drop.

// The parts of this test file, by idea, in the directory of the same
// name (this file stays the test target `--test fuzz_programs` names).
#[path = "fuzz_programs/common.rs"]
mod common;
#[path = "fuzz_programs/nat.rs"]
mod nat;
#[path = "fuzz_programs/nat6.rs"]
mod nat6;
#[path = "fuzz_programs/nat6_check.rs"]
mod nat6_check;
#[path = "fuzz_programs/nat_check.rs"]
mod nat_check;
#[path = "fuzz_programs/nat_lab.rs"]
mod nat_lab;
#[path = "fuzz_programs/switch.rs"]
mod switch;
