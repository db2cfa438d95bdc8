//! What the programs return, as a BPF_PROG_TEST_RUN reports it (a u32):
//! `TC_ACT_*` (uapi/linux/pkt_cls.h) and `enum xdp_action`
//! (uapi/linux/bpf.h). The bench's checks and the program tests compare
//! the programs' verdicts against these, the one userspace copy.

pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;
/// TC_ACT_UNSPEC (-1) as the test run reports it: tcx hands the packet to
/// the next program in the chain (the uplink programs' verdict for traffic
/// that is not the lab's).
pub const TCX_NEXT: u32 = u32::MAX;

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;
