//! IPv6 first-hop security of the port programs under BPF_PROG_TEST_RUN:
//! the header walk, the source check, the RA guard, the ND spoof rules,
//! the ND responder and the host-access rule, on the TC port program and
//! on the XDP port program loaded from the same object with the same maps.
//! Every case runs the frame through both and asserts each one's verdict
//! and the counters it moved; where the XDP program leaves the decision
//! to TC (solicitations the responder may answer, VLAN tags) it must say
//! so (`xdp_port_to_tc`) and nothing else.
//!
//! Like switch_prog.rs, every test runs on a thread in a private network
//! namespace whose throwaway veth devices carry the made-up ports'
//! ifindexes (flood copies and XDP devmap entries need real devices).

// The parts of this test file, by idea, in the directory of the same
// name (this file stays the test target `--test switch6_prog` names).
#[path = "switch6_prog/fixture.rs"]
mod fixture;
#[path = "switch6_prog/malformed.rs"]
mod malformed;
#[path = "switch6_prog/nd.rs"]
mod nd;
#[path = "switch6_prog/source.rs"]
mod source;
