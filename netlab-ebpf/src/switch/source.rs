//! Source check of IPv4 frames entering on an endpoint port.
//!
//! The Ethernet source MAC is checked for every frame (switch/mod.rs) and
//! ARP senders in arp.rs. Here: an IPv4 packet from an endpoint must carry
//! the endpoint's address. 0.0.0.0 is not allowed: it is only used by DHCP
//! clients, and nothing in the lab runs DHCP. IPv6 sources are not checked
//! (the control plane does not know the endpoints' IPv6 addresses); the MAC
//! check still pins such frames to their port.
//!
//! Rule for short frames: an IPv4 frame whose 20-byte header does not fit
//! is dropped (DropTruncated) on every port: the check cannot be done and
//! no receiver would accept it.

use aya_ebpf::programs::TcContext;
use netlab_common::{
    counters::Counter,
    switch::{PORT_KIND_ENDPOINT, PortInfo},
};
use network_types::{eth::EthHdr, ip::Ipv4Hdr};

use crate::hdr::{make_linear, ptr_at};

#[inline(always)]
pub fn check_ipv4(ctx: &TcContext, port: &PortInfo) -> Result<(), Counter> {
    if !make_linear(ctx, EthHdr::LEN + Ipv4Hdr::LEN) {
        return Err(Counter::DropTruncated);
    }
    let ip = ptr_at::<Ipv4Hdr>(ctx, EthHdr::LEN).ok_or(Counter::DropTruncated)?;
    if port.kind != PORT_KIND_ENDPOINT {
        return Ok(());
    }
    // SAFETY: bounds-checked by ptr_at just above.
    let src = u32::from_ne_bytes(unsafe { (*ip).src_addr });
    if src != port.ipv4 {
        return Err(Counter::DropSpoofed);
    }
    Ok(())
}
