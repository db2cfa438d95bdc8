//! Host access: endpoints may reach the host side only at the gateway
//! address, unless the lab allows more (`[host] allow_host_access`).
//!
//! The control plane lists the host side's other IPv4 addresses (those of
//! its interfaces, and their subnets' broadcast addresses) in `host_addrs`;
//! the map is empty when the lab allows host access. An IPv4 frame from an
//! endpoint port that the switch would hand to the host stack — unicast to
//! the gateway port, or flooded (the flood copies reach `vbridge` too, and
//! the host accepts a unicast IPv4 destination in an L2 broadcast frame) —
//! is dropped when its destination is listed. Traffic routed *through* the
//! host (to the internet) has other destinations and is not affected.
//!
//! Only these frames pay the lookup: namespace ↔ namespace unicast never
//! reaches this module.

use netlab_common::counters::Counter;

use crate::maps::HOST_ADDRS;

/// `Err(DropHostAccess)` when `ipv4_dst` (network order; `None` for frames
/// the rule does not apply to: not IPv4, or not from an endpoint) is one of
/// the host's listed addresses.
#[inline(always)]
pub fn check(ipv4_dst: Option<u32>) -> Result<(), Counter> {
    let Some(dst) = ipv4_dst else {
        return Ok(());
    };
    // SAFETY: only the presence of the key is used.
    if unsafe { HOST_ADDRS.get(dst) }.is_some() {
        return Err(Counter::DropHostAccess);
    }
    Ok(())
}
