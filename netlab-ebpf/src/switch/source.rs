//! Source check of IPv4 frames entering on an endpoint port.
//!
//! The Ethernet source MAC is checked for every frame (switch/mod.rs) and
//! ARP senders in arp.rs. Here the IPv4 header is read for the rule both
//! port programs share (`decide::check_ipv4_source`): an IPv4 packet from
//! an endpoint must carry the endpoint's address. 0.0.0.0 is not allowed:
//! it is only used by DHCP clients, and nothing in the lab runs DHCP. IPv6
//! sources are checked in ipv6.rs.
//!
//! Rule for short frames: an IPv4 frame whose 20-byte header does not fit
//! is dropped (DropTruncated) on every port: the check cannot be done and
//! no receiver would accept it.

use aya_ebpf::programs::TcContext;
use netlab_common::{counters::Counter, switch::PortInfo};
use network_types::ip::Ipv4Hdr;

use super::decide::HostDst;
use crate::hdr::{make_linear, ptr_at};

/// Checks the source of an IPv4 frame. Returns the destination address
/// of a frame from an endpoint, for the host-access rule (host.rs);
/// `HostDst::None` on the gateway port, where the rule does not apply.
/// `l3` is the offset of the IPv4 header: `EthHdr::LEN`, or further behind
/// VLAN tags (vlan.rs); always a constant after inlining.
#[inline(always)]
pub fn check_ipv4(ctx: &TcContext, port: &PortInfo, l3: usize) -> Result<HostDst, Counter> {
    if !make_linear(ctx, l3 + Ipv4Hdr::LEN) {
        return Err(Counter::DropTruncated);
    }
    let ip = ptr_at::<Ipv4Hdr>(ctx, l3).ok_or(Counter::DropTruncated)?;
    // SAFETY: bounds-checked by ptr_at just above.
    let (src, dst) = unsafe { ((*ip).src_addr, (*ip).dst_addr) };
    super::decide::check_ipv4_source(port, src, dst)
}
