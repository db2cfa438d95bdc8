//! The switching decision, once for both port programs: the TC switch
//! (switch/mod.rs) and the XDP switch (xdp/port.rs). It works on values
//! read from the frame's headers, never on a program context, so each
//! program reads the headers its own way (TC pulls non-linear data, XDP
//! bounds-checks the frame) and delivers its own way (redirect_peer and
//! clone_redirect, or the devmap), and the rules in between cannot drift
//! apart.
//!
//! The rules: a frame from an endpoint port carries the port's MAC and, in
//! IPv4 and IPv6, the port's address (source.rs and ipv6.rs explain why);
//! IPv6 from an endpoint passes the RA guard; known unicast goes
//! to its port unless that is the port it came from (hairpin); a tagged
//! frame from an endpoint never reaches the gateway port (vlan.rs); what
//! reaches the host stack (the gateway port, or a flood) passes the
//! host-access rule (host.rs); the rest is flooded.

use netlab_common::{
    counters::Counter,
    nat6::IPPROTO_ICMPV6,
    switch::{FdbKey, PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, Port6, PortInfo},
};

use super::{host, mac};
use crate::maps;

pub use host::HostDst;

/// ICMPv6 types the IPv6 rules look at (RFC 4861).
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
pub const ICMPV6_NEIGHBOUR_SOLICIT: u8 = 135;
pub const ICMPV6_NEIGHBOUR_ADVERT: u8 = 136;
pub const ICMPV6_REDIRECT: u8 = 137;
/// DHCPv6 ports (RFC 8415): servers and relays listen on 547, clients on 546.
pub const DHCPV6_CLIENT_PORT: u16 = 546;
pub const DHCPV6_SERVER_PORT: u16 = 547;

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
/// destination of a packet from an endpoint, for the host-access rule;
/// nothing on the gateway port, where neither applies.
#[inline(always)]
pub fn check_ipv4_source(port: &PortInfo, src: [u8; 4], dst: [u8; 4]) -> Result<HostDst, Counter> {
    if port.kind != PORT_KIND_ENDPOINT {
        return Ok(HostDst::None);
    }
    if u32::from_ne_bytes(src) != port.ipv4 {
        return Err(Counter::DropSpoofed);
    }
    Ok(HostDst::V4(u32::from_ne_bytes(dst)))
}

/// The upper-layer facts of an IPv6 packet the RA guard classifies, as
/// the header walk (ipv6.rs) read them.
#[derive(Clone, Copy)]
pub enum Upper {
    /// An ICMPv6 message of this type.
    Icmp6(u8),
    /// A UDP datagram between these ports (host order).
    Udp { sport: u16, dport: u16 },
    /// A fragment with a non-zero offset: no upper-layer header, only the
    /// protocol its fragment header names.
    LaterFragment(u8),
    /// Anything else (TCP, other protocols, "no next header").
    Other,
}

/// The IPv6 source rule: a packet from an endpoint port carries one of
/// the port's two addresses (`ports6`: global, link-local), or `::` when
/// it is a neighbour solicitation (`solicit`), the only message sent from
/// `::` (duplicate address detection, RFC 4862). A port with no `ports6`
/// entry has no IPv6 address and sends no IPv6. Returns the port's
/// addresses in the map (the NA target rule needs them; not copied: the
/// stack is scarce). Only for endpoint ports.
#[inline(always)]
pub fn check_ipv6_source(
    port: &PortInfo,
    src: &[u8; 16],
    solicit: bool,
) -> Result<*const Port6, Counter> {
    let Some(own) = maps::PORTS6.get_ptr(port.ifindex) else {
        return Err(Counter::DropSpoofed);
    };
    // SAFETY: a map value, valid for the program's run; the control plane
    // replaces it whole (at worst the old or the new addresses are read).
    let (global, link_local) = unsafe { (&(*own).global, &(*own).link_local) };
    if src == global || src == link_local || (solicit && *src == [0; 16]) {
        Ok(own)
    } else {
        Err(Counter::DropSpoofed)
    }
}

/// The RA guard (RFC 6105) for IPv6 from an endpoint port: only routers
/// and DHCPv6 servers send router advertisements, redirects and DHCPv6
/// server messages, and no endpoint is either. A DHCPv6 server message is
/// UDP from the server port or to the client port (RFC 7610's rule). An
/// ICMPv6 later fragment is refused too: its first fragment may have been
/// let through for an innocent type while the reassembled message is an RA
/// (RFC 7113), and ICMPv6 that needs fragments is never legitimate here.
#[inline(always)]
pub fn ra_guard(upper: Upper) -> Result<(), Counter> {
    let refused = match upper {
        Upper::Icmp6(kind) => kind == ICMPV6_ROUTER_ADVERT || kind == ICMPV6_REDIRECT,
        Upper::Udp { sport, dport } => sport == DHCPV6_SERVER_PORT || dport == DHCPV6_CLIENT_PORT,
        Upper::LaterFragment(proto) => proto == IPPROTO_ICMPV6,
        Upper::Other => false,
    };
    if refused {
        Err(Counter::DropRaGuard)
    } else {
        Ok(())
    }
}

/// The NA rule: the target of a neighbour advertisement from an endpoint
/// is one of the port's own addresses (an endpoint may only announce
/// itself).
#[inline(always)]
pub fn check_na_target(own: &Port6, target: &[u8; 16]) -> Result<(), Counter> {
    if *target == own.global || *target == own.link_local {
        Ok(())
    } else {
        Err(Counter::DropNdSpoof)
    }
}

/// The link-layer option rule: a source/target link-layer address option
/// in an NS/NA from an endpoint is the port's MAC (it is what the
/// receivers put in their neighbour caches).
#[inline(always)]
pub fn check_nd_lladdr(port: &PortInfo, lladdr: &[u8; 6]) -> Result<(), Counter> {
    if mac::eq(lladdr, &port.mac) {
        Ok(())
    } else {
        Err(Counter::DropNdSpoof)
    }
}

/// Switches by destination MAC. `host_dst`: see [`host::check`], applied
/// to frames for the gateway port and to floods (which reach it too).
/// `tagged`: a VLAN-tagged frame from an endpoint, which must not reach
/// the host stack: refused for the gateway port (a flood of it skips the
/// gateway port; that is the TC program's delivery).
#[inline(always)]
pub fn by_destination(
    ingress: u32,
    dst: &[u8; 6],
    host_dst: HostDst,
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
                    host::check(&host_dst)?;
                }
                return Ok(Decision::Unicast(target));
            }
        }
    }
    host::check(&host_dst)?;
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
