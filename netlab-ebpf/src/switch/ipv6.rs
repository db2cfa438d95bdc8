//! IPv6 entering on a switch port: the header walk and the first-hop
//! security rules, once for both port programs (generic over
//! `hdr::Load`, so the TC switch and the XDP switch read the same bytes
//! and decide the same way; the rules themselves are `decide`'s).
//!
//! Every IPv6 frame, on every port, must have a sound header chain:
//!
//! * the 40-byte header fits, else DropTruncated;
//! * its payload length fits the frame (≤ frame − header; padding after
//!   it is allowed), and is not 0 unless the next header is "no next
//!   header" (a zero length with a next header is a hop-by-hop jumbogram,
//!   RFC 2675, which no lab link carries, or a lie), else
//!   DropIpv6Malformed;
//! * extension headers (hop-by-hop, routing, destination options,
//!   fragment) are walked, at most [`MAX_EXT_HEADERS`]; a chain still going
//!   after that is DropIpv6Malformed; a header (extension or the
//!   upper-layer one the rules read) that runs past the payload is
//!   DropTruncated.
//!
//! Frames from an endpoint port then pass, in this order: the source rule
//! (`decide::check_ipv6_source`; `::` only for a neighbour solicitation),
//! the RA guard (`decide::ra_guard`), and for neighbour discovery the
//! spoof rules of nd.rs. Frames from the gateway port (the host) are not
//! checked beyond the walk.
//!
//! A neighbour solicitation of the shape the responder answers in place
//! (nd.rs) is returned as [`Ipv6::Solicit`] whatever port it came from;
//! the TC program answers it, the XDP program hands it to TC.

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_REDIRECT},
    programs::TcContext,
};
use netlab_common::{
    counters::Counter,
    nat6::IPPROTO_ICMPV6,
    switch::{PORT_KIND_ENDPOINT, PortInfo},
};
use network_types::{eth::EthHdr, ip::Ipv6Hdr};

use super::{
    decide::{self, HostDst, ICMPV6_NEIGHBOUR_ADVERT, ICMPV6_NEIGHBOUR_SOLICIT, Upper},
    nd,
};
use crate::hdr::Load;

/// Extension headers walked before the chain is refused.
pub const MAX_EXT_HEADERS: usize = 4;

/// Offsets of the addresses in the IPv6 header.
const SRC: usize = 8;
const DST: usize = 24;

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_UDP: u8 = 17;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_NONE: u8 = 59;
const NEXTHDR_DEST: u8 = 60;

/// What the IPv6 stage decided.
pub enum Ipv6 {
    /// Switch by MAC; the destination for the host-access rule.
    Switch(HostDst),
    /// A neighbour solicitation the responder may answer (nd.rs); if it
    /// does not, it is switched like [`Ipv6::Switch`].
    Solicit(HostDst),
}

/// Where the upper layer starts and the payload ends. (The addresses
/// are read from the packet where a rule needs them: copies cost stack,
/// which the verifier limits.)
pub struct Walked {
    /// The protocol after the extension headers (or the fragment header's
    /// for a later fragment).
    pub proto: u8,
    /// Offset of the upper-layer header.
    pub l4: usize,
    /// Offset just past the payload (the payload length says where).
    pub end: usize,
    /// A fragment with a non-zero offset: no upper-layer header follows.
    pub later_fragment: bool,
    /// Extension headers were present.
    pub extended: bool,
}

/// Whether `next` names an extension header the walk steps over.
#[inline(always)]
fn is_extension(next: u8) -> bool {
    next == NEXTHDR_HOP
        || next == NEXTHDR_ROUTING
        || next == NEXTHDR_DEST
        || next == NEXTHDR_FRAGMENT
}

/// Walks the IPv6 header at `l3` and its extension headers (rules above).
#[inline(always)]
pub fn walk<L: Load>(pkt: &L, l3: usize) -> Result<Walked, Counter> {
    if l3 + Ipv6Hdr::LEN > pkt.frame_len() {
        return Err(Counter::DropTruncated);
    }
    // Version/class/flow, payload length, next header, hop limit.
    let head = pkt.read::<[u8; 8]>(l3).ok_or(Counter::DropTruncated)?;
    let start = l3 + Ipv6Hdr::LEN;
    let payload = u16::from_be_bytes([head[4], head[5]]) as usize;
    let first = head[6];
    if payload > pkt.frame_len() - start || (payload == 0 && first != NEXTHDR_NONE) {
        return Err(Counter::DropIpv6Malformed);
    }
    let end = start + payload;
    let mut next = first;
    let mut off = start;
    let mut later_fragment = false;
    for _ in 0..MAX_EXT_HEADERS {
        if !is_extension(next) {
            break;
        }
        // Every extension header is a multiple of 8 bytes, at least 8.
        if off + 8 > end {
            return Err(Counter::DropTruncated);
        }
        // Next header, then the length (8-byte units beyond the first 8)
        // or, in a fragment header, a reserved byte and the offset.
        let head = pkt.read::<[u8; 4]>(off).ok_or(Counter::DropTruncated)?;
        let this = next;
        next = head[0];
        if this == NEXTHDR_FRAGMENT {
            off += 8;
            if u16::from_be_bytes([head[2], head[3]]) & 0xfff8 != 0 {
                // The rest is data of the middle of a datagram.
                later_fragment = true;
                break;
            }
        } else {
            off += (head[1] as usize + 1) * 8;
        }
        if off > end {
            return Err(Counter::DropTruncated);
        }
    }
    if !later_fragment && is_extension(next) {
        return Err(Counter::DropIpv6Malformed);
    }
    Ok(Walked {
        proto: next,
        l4: off,
        end,
        later_fragment,
        extended: off != start,
    })
}

/// The upper-layer facts the RA guard classifies: the ICMPv6 type, the
/// UDP ports. A header that does not fit the payload is DropTruncated.
#[inline(always)]
fn upper<L: Load>(pkt: &L, w: &Walked) -> Result<Upper, Counter> {
    if w.later_fragment {
        return Ok(Upper::LaterFragment(w.proto));
    }
    if w.proto == IPPROTO_ICMPV6 {
        // Type, code, checksum.
        if w.l4 + 4 > w.end {
            return Err(Counter::DropTruncated);
        }
        let kind = pkt.read::<u8>(w.l4).ok_or(Counter::DropTruncated)?;
        return Ok(Upper::Icmp6(kind));
    }
    if w.proto == NEXTHDR_UDP {
        if w.l4 + 8 > w.end {
            return Err(Counter::DropTruncated);
        }
        let ports = pkt.read::<[u8; 4]>(w.l4).ok_or(Counter::DropTruncated)?;
        return Ok(Upper::Udp {
            sport: u16::from_be_bytes([ports[0], ports[1]]),
            dport: u16::from_be_bytes([ports[2], ports[3]]),
        });
    }
    Ok(Upper::Other)
}

/// Checks an IPv6 frame whose header starts at `l3` (rules in the module
/// doc) and says what to do with it.
#[inline(always)]
pub fn check<L: Load>(pkt: &L, port: &PortInfo, l3: usize) -> Result<Ipv6, Counter> {
    let w = walk(pkt, l3)?;
    let upper = upper(pkt, &w)?;
    let solicit = matches!(upper, Upper::Icmp6(ICMPV6_NEIGHBOUR_SOLICIT));
    let src = pkt
        .read::<[u8; 16]>(l3 + SRC)
        .ok_or(Counter::DropTruncated)?;
    let mut host_dst = HostDst::None;
    if port.kind == PORT_KIND_ENDPOINT {
        let own = decide::check_ipv6_source(port, &src, solicit)?;
        decide::ra_guard(upper)?;
        if solicit {
            nd::check_solicit(pkt, port, &w)?;
        } else if matches!(upper, Upper::Icmp6(ICMPV6_NEIGHBOUR_ADVERT)) {
            // SAFETY: a `ports6` value; the control plane replaces it
            // whole, at worst the old or the new addresses are read.
            nd::check_advert(pkt, port, unsafe { &*own }, &w)?;
        }
        let dst = pkt
            .read::<[u8; 16]>(l3 + DST)
            .ok_or(Counter::DropTruncated)?;
        host_dst = HostDst::V6(dst);
    }
    if solicit && src != [0; 16] && nd::answerable(&w) {
        return Ok(Ipv6::Solicit(host_dst));
    }
    Ok(Ipv6::Switch(host_dst))
}

/// What the TC program does with an IPv6 frame ([`tc_stage`]).
pub enum TcStage {
    /// Switch by MAC; the destination for the host-access rule.
    Switch(HostDst),
    /// A solicitation answered in place and redirected with this verdict.
    Answered(i32),
}

/// The TC program's IPv6 stage for the header at `l3` on `port` (the
/// ingress port): [`check`], then the responder (nd.rs) for an untagged
/// solicitation; behind VLAN tags (`l3` further in, vlan.rs) nothing is
/// answered. Both run as BPF subprograms, one after the other, for every
/// caller: inlined three times (untagged, one tag, two tags) the
/// program's stack would not fit the verifier's 512 bytes. IPv4 frames
/// never pay for them.
#[inline(always)]
pub fn tc_stage(ctx: &TcContext, port: &PortInfo, l3: usize) -> Result<TcStage, Counter> {
    let mut dst = [0u8; 16];
    let code = check_subprogram(ctx.skb.skb, port, l3 as u32, &mut dst);
    let host_dst = if code & STAGE_HOST_DST != 0 {
        HostDst::V6(dst)
    } else {
        HostDst::None
    };
    match code & !STAGE_HOST_DST {
        STAGE_SWITCH => Ok(TcStage::Switch(host_dst)),
        STAGE_SOLICIT if l3 == EthHdr::LEN => match answer_subprogram(ctx.skb.skb, port) {
            STAGE_ANSWERED => Ok(TcStage::Answered(TC_ACT_REDIRECT)),
            STAGE_SWITCH => Ok(TcStage::Switch(host_dst)),
            code => Err(counter_of(code - STAGE_DROPPED)),
        },
        STAGE_SOLICIT => Ok(TcStage::Switch(host_dst)),
        code => Err(counter_of(code - STAGE_DROPPED)),
    }
}

/// The subprograms' results: a scalar keeps the calls simple for the
/// verifier; the host-access destination comes back through `dst`.
const STAGE_SWITCH: u32 = 0;
const STAGE_SOLICIT: u32 = 1;
const STAGE_ANSWERED: u32 = 2;
/// Dropped: this + the reason's index.
const STAGE_DROPPED: u32 = 0x100;
/// Or-ed in: `dst` holds the destination for the host-access rule.
const STAGE_HOST_DST: u32 = 0x1000;

#[inline(never)]
fn check_subprogram(skb: *mut __sk_buff, port: &PortInfo, l3: u32, dst: &mut [u8; 16]) -> u32 {
    let ctx = TcContext::new(skb);
    let (code, host_dst) = match check(&ctx, port, l3 as usize) {
        Ok(Ipv6::Switch(host_dst)) => (STAGE_SWITCH, host_dst),
        Ok(Ipv6::Solicit(host_dst)) => (STAGE_SOLICIT, host_dst),
        Err(reason) => return STAGE_DROPPED + reason as u32,
    };
    if let HostDst::V6(d) = host_dst {
        *dst = d;
        return code | STAGE_HOST_DST;
    }
    code
}

#[inline(never)]
fn answer_subprogram(skb: *mut __sk_buff, port: &PortInfo) -> u32 {
    let ctx = TcContext::new(skb);
    match nd::answer(&ctx, port) {
        Ok(Some(_)) => STAGE_ANSWERED,
        Ok(None) => STAGE_SWITCH,
        Err(reason) => STAGE_DROPPED + reason as u32,
    }
}

/// The counter with index `index` (from the subprograms).
#[inline(always)]
fn counter_of(index: u32) -> Counter {
    if index < Counter::COUNT {
        // SAFETY: `Counter` is `repr(u32)` with the dense indices
        // 0..COUNT (its declaring macro guarantees it), checked just above.
        unsafe { core::mem::transmute::<u32, Counter>(index) }
    } else {
        Counter::DropIpv6Malformed
    }
}
