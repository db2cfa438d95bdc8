//! ARP: source check of ARP senders and the ARP responder.
//!
//! Requests for an address the control plane knows (an endpoint or the
//! gateway, the `endpoints` map) are turned into replies in place and sent
//! back out of the port they came in on, so the common case never floods.

use aya_ebpf::programs::TcContext;
use netlab_common::{
    counters::Counter,
    switch::{PORT_KIND_ENDPOINT, PortInfo},
};
use network_types::{arp::ArpHdr, eth::EthHdr};

use super::{deliver, mac};
use netlab_common::ether::ETH_P_IP;

use crate::{
    hdr::{make_linear, ptr_at, ptr_at_mut},
    maps::ENDPOINTS,
};

const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;

/// What the ARP stage decided.
pub enum Arp {
    /// Not answered here: switch the frame by its destination MAC.
    Switch,
    /// Answered: the reply goes back with this verdict. `ip` is the address
    /// that was asked for (network order), for tracing.
    Answered { verdict: i32, ip: [u8; 4] },
}

/// Reads the ARP body at offset `l3` (a constant after inlining: behind
/// the Ethernet header, or behind VLAN tags, vlan.rs) and checks its
/// sender on endpoint ports. Short/foreign bodies: see [`handle`].
#[inline(always)]
pub fn checked(ctx: &TcContext, port: &PortInfo, l3: usize) -> Result<ArpHdr, Counter> {
    if !make_linear(ctx, l3 + ArpHdr::LEN) {
        return Err(Counter::DropTruncated);
    }
    let arp = ptr_at::<ArpHdr>(ctx, l3).ok_or(Counter::DropTruncated)?;
    // SAFETY: bounds-checked by ptr_at just above.
    let arp = unsafe { *arp };
    if arp.htype() != ARPHRD_ETHER || arp.ptype() != ETH_P_IP || arp.hlen() != 6 || arp.plen() != 4
    {
        return Err(Counter::DropTruncated);
    }
    if port.kind == PORT_KIND_ENDPOINT {
        let spa = u32::from_ne_bytes(arp.spa);
        // The sender fields are what other hosts put in their ARP caches:
        // they must be the endpoint's own. A sender address of 0.0.0.0 is
        // an RFC 5227 address probe ("is this address in use?"); receivers
        // never cache it, so it cannot poison anything and is allowed.
        if !mac::eq(&arp.sha, &port.mac) || (spa != port.ipv4 && spa != 0) {
            return Err(Counter::DropSpoofed);
        }
    }
    Ok(arp)
}

/// Checks an ARP frame and answers it when it is a request for a known
/// address.
///
/// Rule for short or foreign frames: an ARP frame whose 28-byte
/// Ethernet/IPv4 ARP body does not fit, or whose hardware/protocol
/// type/lengths are not Ethernet/IPv4, is dropped (DropTruncated). Nothing
/// in the lab sends such frames, the sender check cannot be done on them,
/// and no receiver would accept them.
#[inline(always)]
pub fn handle(ctx: &TcContext, ingress: u32, port: &PortInfo) -> Result<Arp, Counter> {
    let arp = checked(ctx, port, EthHdr::LEN)?;
    let spa = u32::from_ne_bytes(arp.spa);
    let tpa = u32::from_ne_bytes(arp.tpa);

    if arp.oper() != ARPOP_REQUEST || spa == tpa {
        // Replies, and gratuitous ARP (announcing one's own address), are
        // switched like any frame.
        return Ok(Arp::Switch);
    }
    // SAFETY: the value is copied out at once.
    let Some(target) = (unsafe { ENDPOINTS.get(tpa).copied() }) else {
        return Ok(Arp::Switch);
    };
    if target.port_ifindex == ingress {
        // The address lives behind the asking port itself (e.g. the host
        // probing for its own gateway address): answering would report a
        // conflict that does not exist. Let it flood; nobody else has it.
        return Ok(Arp::Switch);
    }

    // Turn the request into the reply the target would have sent. No
    // helper ran since make_linear, but re-derive the pointers writable.
    let eth = ptr_at_mut::<EthHdr>(ctx, 0).ok_or(Counter::DropTruncated)?;
    let reply = ptr_at_mut::<ArpHdr>(ctx, EthHdr::LEN).ok_or(Counter::DropTruncated)?;
    // SAFETY: both pointers are bounds-checked by ptr_at_mut just above.
    unsafe {
        (*eth).dst_addr = arp.sha;
        (*eth).src_addr = target.mac;
        (*reply).set_oper(ARPOP_REPLY);
        (*reply).sha = target.mac;
        (*reply).spa = arp.tpa;
        (*reply).tha = arp.sha;
        (*reply).tpa = arp.spa;
    }
    // Back out of the port it came in on: into the asking namespace, or to
    // the host through vbridge.
    let verdict = deliver::to_port(ctx, port)?;
    Ok(Arp::Answered {
        verdict,
        ip: arp.tpa,
    })
}
