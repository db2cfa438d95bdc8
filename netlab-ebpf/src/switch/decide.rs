//! The switching decision, once for both port programs: the TC switch
//! (switch/mod.rs) and the XDP switch (xdp/port.rs). It works on values
//! read from the frame's headers, never on a program context, so each
//! program reads the headers its own way (TC pulls non-linear data, XDP
//! bounds-checks the frame) and delivers its own way (redirect_peer and
//! clone_redirect, or the devmap), and the rules in between cannot drift
//! apart.
//!
//! The rules: a frame from an endpoint port carries the port's MAC and, in
//! IPv4, the port's address (source.rs explains why); known unicast goes
//! to its port unless that is the port it came from (hairpin); a tagged
//! frame from an endpoint never reaches the gateway port (vlan.rs); what
//! reaches the host stack (the gateway port, or a flood) passes the
//! host-access rule (host.rs); the rest is flooded.

use netlab_common::{
    counters::Counter,
    switch::{FdbKey, PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, PortInfo},
};

use super::{host, mac};
use crate::maps;

/// Where a frame goes.
pub enum Decision {
    /// Known unicast: to this port.
    Unicast(PortInfo),
    /// Broadcast, multicast or unknown unicast: to every port but the one
    /// it came in on.
    Flood,
}

/// The source MAC rule: a frame from an endpoint port carries the port's
/// MAC.
#[inline(always)]
pub fn check_mac_source(port: &PortInfo, src: &[u8; 6]) -> Result<(), Counter> {
    if port.kind == PORT_KIND_ENDPOINT && !mac::eq(src, &port.mac) {
        return Err(Counter::DropSpoofed);
    }
    Ok(())
}

/// The IPv4 source rule for a header's source and destination addresses:
/// a packet from an endpoint port carries the port's address. Returns the
/// destination (network order) of a packet from an endpoint, for the
/// host-access rule; `None` on the gateway port, where neither applies.
#[inline(always)]
pub fn check_ipv4_source(
    port: &PortInfo,
    src: [u8; 4],
    dst: [u8; 4],
) -> Result<Option<u32>, Counter> {
    if port.kind != PORT_KIND_ENDPOINT {
        return Ok(None);
    }
    if u32::from_ne_bytes(src) != port.ipv4 {
        return Err(Counter::DropSpoofed);
    }
    Ok(Some(u32::from_ne_bytes(dst)))
}

/// Switches by destination MAC. `ipv4_dst`: see [`host::check`], applied
/// to frames for the gateway port and to floods (which reach it too).
/// `tagged`: a VLAN-tagged frame from an endpoint, which must not reach
/// the host stack: refused for the gateway port (a flood of it skips the
/// gateway port; that is the TC program's delivery).
#[inline(always)]
pub fn by_destination(
    ingress: u32,
    dst: &[u8; 6],
    ipv4_dst: Option<u32>,
    tagged: bool,
) -> Result<Decision, Counter> {
    if !mac::is_group(dst) {
        // SAFETY: the values are copied out at once.
        if let Some(entry) = unsafe { maps::FDB.get(FdbKey::new(*dst)).copied() } {
            if entry.port_ifindex == ingress {
                return Err(Counter::DropHairpin);
            }
            // An FDB entry whose port is gone (removed port, stale learned
            // entry) is treated as unknown unicast.
            if let Some(target) = maps::fdb_target(&entry) {
                if target.kind == PORT_KIND_GATEWAY {
                    if tagged {
                        return Err(Counter::DropTaggedToHost);
                    }
                    host::check(ipv4_dst)?;
                }
                return Ok(Decision::Unicast(target));
            }
        }
    }
    host::check(ipv4_dst)?;
    Ok(Decision::Flood)
}

/// The counter of a unicast delivered to `target`: to the host stack, or
/// to a namespace.
#[inline(always)]
pub fn unicast_counter(target: &PortInfo) -> Counter {
    if target.kind == PORT_KIND_GATEWAY {
        Counter::ToHost
    } else {
        Counter::RedirectPeer
    }
}
