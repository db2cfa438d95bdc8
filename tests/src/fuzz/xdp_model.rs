//! What the uplink XDP program must do with a frame arriving from the
//! internet, from the design and independent of its code: drop what the
//! NAT could only drop — headers it cannot read, a lab source, a lab
//! destination that is no translation's — and pass everything else,
//! untouched, to the TC ingress. Whatever it drops, the TC ingress (its
//! model in `nat_model`) must drop too, for the matching reason.

use std::net::Ipv4Addr;

use netlab_common::counters::Counter;

use super::frames::EXTERNAL;
use super::nat_model::{Expect, in_subnet};
use crate::packets::{ETH_P_IP, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

const IP: usize = 14;

/// The expected outcome for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpExpect {
    /// BPF_PROG_TEST_RUN refuses it (shorter than an Ethernet header).
    Refused,
    /// XDP_PASS, untouched, counted `xdp_pass`.
    Pass,
    /// XDP_DROP, counted under this reason.
    Drop(Counter),
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn addr(f: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(f[at], f[at + 1], f[at + 2], f[at + 3])
}

/// The uplink XDP program's expected outcome for `f`.
pub fn expect(f: &[u8]) -> XdpExpect {
    if f.len() < IP {
        return XdpExpect::Refused;
    }
    if be16(f, 12) != ETH_P_IP {
        return XdpExpect::Pass;
    }
    let malformed = XdpExpect::Drop(Counter::XdpDropMalformed);
    if f.len() < IP + 20 {
        return malformed;
    }
    let vihl = f[IP];
    if vihl >> 4 != 4 || vihl & 0x0f < 5 {
        return malformed;
    }
    let (src, dst) = (addr(f, IP + 12), addr(f, IP + 16));
    if in_subnet(src) {
        return XdpExpect::Drop(Counter::XdpDropLabSource);
    }
    if dst != EXTERNAL && in_subnet(dst) {
        return XdpExpect::Drop(Counter::XdpDropUnsolicited);
    }
    let later_fragment = be16(f, IP + 6) & 0x1fff != 0;
    if dst != EXTERNAL || later_fragment {
        return XdpExpect::Pass;
    }
    let l4 = IP + (vihl & 0x0f) as usize * 4;
    let needed = match f[IP + 9] {
        PROTO_TCP => 20,
        PROTO_UDP | PROTO_ICMP => 8,
        // Other protocols are the host's: nothing of theirs is read.
        _ => return XdpExpect::Pass,
    };
    if l4 + needed > f.len() {
        return malformed;
    }
    XdpExpect::Pass
}

/// Whether the TC ingress's expectation agrees with an XDP drop for
/// `reason`: it drops for the matching reason, or (a frame too short for
/// an IPv4 header) BPF_PROG_TEST_RUN does not run it at all.
pub fn tc_agrees(reason: Counter, tc: &Expect) -> bool {
    let wanted = match reason {
        Counter::XdpDropMalformed => Counter::NatDropMalformed,
        Counter::XdpDropLabSource => Counter::NatDropLabSource,
        Counter::XdpDropUnsolicited => Counter::NatDropUnsolicited,
        _ => return false,
    };
    match tc {
        Expect::Drop(r) => *r == wanted,
        Expect::Refused => reason == Counter::XdpDropMalformed,
        _ => false,
    }
}
