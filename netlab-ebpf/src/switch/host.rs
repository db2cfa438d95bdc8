//! Host access: endpoints may reach the host side only at the gateway
//! address, unless the lab allows more (`[host] allow_host_access`).
//!
//! The control plane lists the host side's other addresses in
//! `host_addrs` (IPv4: those of its interfaces, and their subnets'
//! broadcast addresses) and `host_addrs6` (IPv6: those of its interfaces);
//! both are empty when the lab allows host access. An IP frame from an
//! endpoint port that the switch would hand to the host stack — unicast to
//! the gateway port, or flooded (the flood copies reach `vbridge` too, and
//! the host accepts a unicast destination in an L2 broadcast/multicast
//! frame) — is dropped when its destination is listed. Traffic routed
//! *through* the host (to the internet) has other destinations and is not
//! affected.
//!
//! Only these frames pay the lookup: namespace ↔ namespace unicast never
//! reaches this module.

use netlab_common::counters::Counter;

use crate::maps::{HOST_ADDRS, HOST_ADDRS6};

/// The destination the host-access rule looks at.
#[derive(Clone, Copy)]
pub enum HostDst {
    /// Not IP, or not from an endpoint: the rule does not apply.
    None,
    /// An IPv4 destination (network order).
    V4(u32),
    /// An IPv6 destination.
    V6([u8; 16]),
}

/// `Err(DropHostAccess)` when `dst` is one of the host's listed addresses.
#[inline(always)]
pub fn check(dst: &HostDst) -> Result<(), Counter> {
    // SAFETY (both lookups): only the presence of the key is used.
    let listed = match dst {
        HostDst::None => false,
        HostDst::V4(ip) => unsafe { HOST_ADDRS.get(*ip) }.is_some(),
        HostDst::V6(ip) => unsafe { HOST_ADDRS6.get(*ip) }.is_some(),
    };
    if listed {
        Err(Counter::DropHostAccess)
    } else {
        Ok(())
    }
}
