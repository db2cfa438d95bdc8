//! Neighbour Discovery (RFC 4861): the spoof rules for solicitations and
//! advertisements from endpoints, and the responder.
//!
//! Spoof rules (endpoint ports; `decide` holds the comparisons):
//! * an NA's target is one of the port's own addresses, and its target
//!   link-layer options carry the port's MAC;
//! * an NS's source link-layer options carry the port's MAC.
//!
//! Else DropNdSpoof. Options are walked up to [`MAX_ND_OPTIONS`]; a
//! message with more, an option of length 0 or one running past the
//! message is DropNdSpoof too (the check cannot be done, and RFC 4861
//! receivers discard such messages anyway). An NS/NA shorter than its
//! 24 fixed bytes is DropTruncated.
//!
//! The responder (TC program only; the XDP switch passes solicitations
//! on): a solicitation for an address in `endpoints6` (an endpoint's or
//! the gateway's, global or link-local) is turned into the advertisement
//! the owner would send and sent back out of the port it came in on, like
//! the ARP responder — solicitations for the gateway included, answered
//! with `vbridge`'s MAC, so the host stack never has to. Answered only:
//! not from `::` (duplicate address detection: an answer would tell the
//! endpoint its address is taken; those are switched as usual), with no
//! extension headers and exactly 32 bytes of ICMPv6 (the fixed part and
//! one source link-layer option: what Linux sends), so the advertisement
//! (24 bytes and one target link-layer option) fits in place; and not
//! when the address lives behind the asking port itself.

use aya_ebpf::programs::TcContext;
use netlab_common::{
    counters::Counter,
    nat6::IPPROTO_ICMPV6,
    switch::{PORT_KIND_GATEWAY, Port6, PortInfo},
};
use network_types::{eth::EthHdr, ip::Ipv6Hdr};

use super::{
    decide::{self, ICMPV6_NEIGHBOUR_ADVERT},
    deliver,
    ipv6::Walked,
};
use crate::{
    hdr::{Load, make_linear, ptr_at_mut},
    maps::{self, ENDPOINTS6},
};

/// ND options walked per message.
pub const MAX_ND_OPTIONS: usize = 4;
/// Type, code, checksum, flags/reserved, target address.
const ND_FIXED_LEN: usize = 24;
/// The solicitations the responder answers: the fixed part and one
/// link-layer address option (8 bytes).
const ANSWERED_LEN: usize = ND_FIXED_LEN + 8;
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;
/// NA flags (first byte of the flags word): router, solicited, override.
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;

/// An NS/NA as it sits in the packet: fixed part and one link-layer
/// option (all bytes, so any alignment will do).
#[repr(C)]
#[derive(Clone, Copy)]
struct NdMessage {
    kind: u8,
    code: u8,
    check: [u8; 2],
    flags: [u8; 4],
    target: [u8; 16],
    opt_kind: u8,
    opt_len: u8,
    lladdr: [u8; 6],
}

/// Checks every link-layer option of `kind` in the ND message `w` (fixed
/// part at `w.l4`) against the port's MAC.
#[inline(always)]
fn check_lladdr_options<L: Load>(
    pkt: &L,
    port: &PortInfo,
    w: &Walked,
    kind: u8,
) -> Result<(), Counter> {
    let mut off = w.l4 + ND_FIXED_LEN;
    for _ in 0..MAX_ND_OPTIONS {
        if off >= w.end {
            return Ok(());
        }
        if off + 8 > w.end {
            return Err(Counter::DropNdSpoof);
        }
        let opt = pkt.read::<[u8; 8]>(off).ok_or(Counter::DropTruncated)?;
        if opt[1] == 0 {
            return Err(Counter::DropNdSpoof);
        }
        if opt[0] == kind {
            let lladdr = [opt[2], opt[3], opt[4], opt[5], opt[6], opt[7]];
            decide::check_nd_lladdr(port, &lladdr)?;
        }
        off += opt[1] as usize * 8;
    }
    if off == w.end {
        Ok(())
    } else {
        Err(Counter::DropNdSpoof)
    }
}

/// The spoof rule of a solicitation from an endpoint.
#[inline(always)]
pub fn check_solicit<L: Load>(pkt: &L, port: &PortInfo, w: &Walked) -> Result<(), Counter> {
    if w.l4 + ND_FIXED_LEN > w.end {
        return Err(Counter::DropTruncated);
    }
    check_lladdr_options(pkt, port, w, OPT_SOURCE_LLADDR)
}

/// The spoof rules of an advertisement from an endpoint with the
/// addresses `own`.
#[inline(always)]
pub fn check_advert<L: Load>(
    pkt: &L,
    port: &PortInfo,
    own: &Port6,
    w: &Walked,
) -> Result<(), Counter> {
    if w.l4 + ND_FIXED_LEN > w.end {
        return Err(Counter::DropTruncated);
    }
    let target = pkt
        .read::<[u8; 16]>(w.l4 + 8)
        .ok_or(Counter::DropTruncated)?;
    decide::check_na_target(own, &target)?;
    check_lladdr_options(pkt, port, w, OPT_TARGET_LLADDR)
}

/// Whether the solicitation `w` (not from `::`) has the shape the
/// responder answers (module doc); its addresses are then at fixed offsets, where
/// [`answer`] reads them.
#[inline(always)]
pub fn answerable(w: &Walked) -> bool {
    !w.extended && w.end - w.l4 == ANSWERED_LEN
}

/// Adds the 16-bit big-endian words of `bytes` to `sum`.
#[inline(always)]
fn add_words(mut sum: u32, bytes: &[u8; 16]) -> u32 {
    for i in 0..8 {
        sum += u32::from(u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]));
    }
    sum
}

/// The ICMPv6 checksum (RFC 4443 §2.3: over the pseudo-header of RFC 8200
/// §8.1 and the message) of the advertisement for `target` to `asker` with
/// `flags` and the target link-layer address `lladdr`: the target is also
/// the source address, hence counted twice.
#[inline(always)]
fn checksum(target: &[u8; 16], asker: &[u8; 16], flags: u8, lladdr: &[u8; 6]) -> [u8; 2] {
    let mut sum = add_words(0, target);
    sum = add_words(sum, asker);
    sum += ANSWERED_LEN as u32 + u32::from(IPPROTO_ICMPV6);
    sum += u32::from(u16::from_be_bytes([ICMPV6_NEIGHBOUR_ADVERT, 0]));
    sum += u32::from(flags) << 8;
    sum = add_words(sum, target);
    sum += u32::from(u16::from_be_bytes([OPT_TARGET_LLADDR, 1]));
    for i in 0..3 {
        sum += u32::from(u16::from_be_bytes([lladdr[2 * i], lladdr[2 * i + 1]]));
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (!(sum as u16)).to_be_bytes()
}

/// Answers the [`answerable`] solicitation in the frame, which came in on
/// `port`, when its target is known: returns the redirect's verdict, or
/// `None` to switch it as usual. Works on the packet bytes in place (no
/// copies of addresses on the stack, which the verifier limits).
#[inline(always)]
pub fn answer(ctx: &TcContext, port: &PortInfo) -> Result<Option<i32>, Counter> {
    const L4: usize = EthHdr::LEN + Ipv6Hdr::LEN;
    if !make_linear(ctx, L4 + ANSWERED_LEN) {
        return Err(Counter::DropTruncated);
    }
    let eth = ptr_at_mut::<EthHdr>(ctx, 0).ok_or(Counter::DropTruncated)?;
    let ip = ptr_at_mut::<Ipv6Hdr>(ctx, EthHdr::LEN).ok_or(Counter::DropTruncated)?;
    let msg = ptr_at_mut::<NdMessage>(ctx, L4).ok_or(Counter::DropTruncated)?;
    // SAFETY: the three pointers are bounds-checked by ptr_at_mut just
    // above (map lookups move no packet data); every field is made of
    // bytes (no alignment needed). The map value is copied out at once.
    unsafe {
        let Some(owner) = ENDPOINTS6.get((*msg).target).copied() else {
            return Ok(None);
        };
        if owner.port_ifindex == port.ifindex {
            // The address lives behind the asking port itself: nobody
            // else has it; let it go on (as the ARP responder does).
            return Ok(None);
        }
        // The gateway routes: its advertisements say so, as the host's
        // own would (a neighbour that stops saying so is no longer a
        // router).
        let router = maps::port(owner.port_ifindex).is_some_and(|p| p.kind == PORT_KIND_GATEWAY);
        let flags = if router { NA_ROUTER } else { 0 } | NA_SOLICITED | NA_OVERRIDE;
        (*msg).check = checksum(&(*msg).target, &(*ip).src_addr, flags, &owner.mac);
        (*eth).dst_addr = (*eth).src_addr;
        (*eth).src_addr = owner.mac;
        // Version 6, no traffic class or flow label; the payload length
        // (32) and next header (ICMPv6) stay as they are.
        (*ip).vcf = [0x60, 0, 0, 0];
        // RFC 4861 §7.1.2: receivers discard ND with any other hop limit.
        (*ip).hop_limit = 255;
        (*ip).dst_addr = (*ip).src_addr;
        (*ip).src_addr = (*msg).target;
        (*msg).kind = ICMPV6_NEIGHBOUR_ADVERT;
        (*msg).code = 0;
        (*msg).flags = [flags, 0, 0, 0];
        (*msg).opt_kind = OPT_TARGET_LLADDR;
        (*msg).opt_len = 1;
        (*msg).lladdr = owner.mac;
    }
    // Back out of the port it came in on: into the asking namespace, or
    // to the host through vbridge.
    deliver::to_port(ctx, port).map(Some)
}
