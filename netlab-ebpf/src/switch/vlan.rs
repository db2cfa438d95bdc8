//! VLAN-tagged frames (802.1Q, TPID 0x8100; 802.1ad, TPID 0x88a8).
//!
//! The kernel strips one tag into skb metadata (`vlan_tci`) before the tcx
//! ingress hook runs (`skb_vlan_untag` in `__netif_receive_skb_core`), so a
//! singly tagged frame reaches the program untagged and every check applies
//! to it. A frame whose EtherType is still a VLAN TPID had two tags or more.
//! Like any L2 switch, the program switches such frames by MAC between
//! namespaces, but on endpoint ports:
//!
//! - the source check looks through up to two remaining tags: the inner
//!   IPv4 source / ARP sender must be the endpoint's, and inner IPv6 passes
//!   the IPv6 rules (ipv6.rs: source, RA guard, ND spoofing; the responder
//!   does not answer tagged solicitations) — the receiving stack strips
//!   VLAN-id-0 "priority" tags of any depth and would accept a spoofed
//!   packet or a rogue RA behind them. A frame with more tags is dropped
//!   (DropTooManyTags): the check cannot be done on it.
//! - the gateway port is an untagged port into the host stack, which would
//!   strip the tags and deliver the packet past the host-access rule: a
//!   tagged unicast for it is dropped (DropTaggedToHost), and floods skip it.
//!
//! Frames from the gateway port (the host) are switched as they are.
//! Untagged frames never enter this module.

use aya_ebpf::programs::TcContext;
use netlab_common::{
    counters::Counter,
    switch::{PORT_KIND_ENDPOINT, PortInfo},
};
use network_types::{
    eth::{EthHdr, EtherType},
    vlan::VlanHdr,
};

use super::{arp, ipv6, source};
use crate::hdr::{make_linear, ptr_at};

/// Whether `ethertype` (network order) is a tag the Linux stack strips.
#[inline(always)]
pub fn is_tag(ethertype: u16) -> bool {
    ethertype == EtherType::Ieee8021q as u16 || ethertype == EtherType::Ieee8021ad as u16
}

/// The EtherType (network order) behind the tag whose 4 bytes start at
/// `offset` (a constant after inlining).
#[inline(always)]
fn inner_type(ctx: &TcContext, offset: usize) -> Result<u16, Counter> {
    if !make_linear(ctx, offset + VlanHdr::LEN) {
        return Err(Counter::DropTruncated);
    }
    let tag = ptr_at::<VlanHdr>(ctx, offset).ok_or(Counter::DropTruncated)?;
    // SAFETY: bounds-checked by ptr_at just above.
    Ok(unsafe { (*tag).ether_type })
}

/// Source check of a tagged frame (its outer EtherType is a tag). Frames
/// from the gateway port are not checked.
#[inline(always)]
pub fn check(ctx: &TcContext, port: &PortInfo) -> Result<(), Counter> {
    if port.kind != PORT_KIND_ENDPOINT {
        return Ok(());
    }
    // Constant offsets in each branch keep the verifier's job simple.
    const ONE: usize = EthHdr::LEN + VlanHdr::LEN;
    const TWO: usize = ONE + VlanHdr::LEN;
    let inner = inner_type(ctx, EthHdr::LEN)?;
    if !is_tag(inner) {
        return check_inner(ctx, port, inner, ONE);
    }
    let inner = inner_type(ctx, ONE)?;
    if is_tag(inner) {
        return Err(Counter::DropTooManyTags);
    }
    check_inner(ctx, port, inner, TWO)
}

/// Checks the IPv4 source, ARP sender or IPv6 rules of the `inner`
/// EtherType's header at `l3`; other EtherTypes carry no address the
/// program knows.
#[inline(always)]
fn check_inner(ctx: &TcContext, port: &PortInfo, inner: u16, l3: usize) -> Result<(), Counter> {
    if inner == EtherType::Ipv4 as u16 {
        source::check_ipv4(ctx, port, l3)?;
    } else if inner == EtherType::Arp as u16 {
        arp::checked(ctx, port, l3)?;
    } else if inner == EtherType::Ipv6 as u16 {
        ipv6::tc_stage(ctx, port, l3)?;
    }
    Ok(())
}
