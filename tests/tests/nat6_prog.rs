//! NAT66: the uplink programs' IPv6 half under BPF_PROG_TEST_RUN, crafted
//! IPv6 frames in, the verdict, the rewritten frame and the counters out,
//! every output checksum recomputed from scratch in userspace (the oracle
//! in tests/src/packets/checksum6.rs).
//!
//! Each test loads its own copy of the eBPF object with its maps pinned in
//! its own directory (`/sys/fs/bpf/netlab-test-nat6-<pid>-<name>`, removed
//! on drop). No packet leaves the test.

#[path = "nat6_prog/errors.rs"]
mod errors;
#[path = "nat6_prog/headers.rs"]
mod headers;
#[path = "nat6_prog/lab.rs"]
mod lab;
#[path = "nat6_prog/translate.rs"]
mod translate;
#[path = "nat6_prog/xdp.rs"]
mod xdp;
