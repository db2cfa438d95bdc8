//! ICMPv6 errors (1 destination unreachable, 2 packet too big, 3 time
//! exceeded, 4 parameter problem) about a translated flow, both ways.
//!
//! An error quotes as much of the packet that caused it as fits (the
//! fixed header and at least the first 8 bytes of its upper-layer header).
//! Inbound, the quoted packet is one we translated (source = external
//! address and port); outbound (a lab namespace reporting an error about
//! a reply it got), one we reverse-translated. The outer address and the
//! quoted one are translated like the flow, so that the receiver matches
//! the error to its socket: that is what carries a Packet Too Big back to
//! the namespace that sent too large a packet (PMTU discovery).
//!
//! Checksums: the ICMPv6 checksum covers a pseudo-header with the outer
//! addresses and the whole message, so it absorbs the outer address, the
//! quoted address, the quoted port/id and the quoted L4 checksum. The
//! quoted TCP, UDP or ICMPv6 checksum (each covers the quoted addresses)
//! is updated when the quote reaches it (TCP's sits at 16, beyond the 8
//! bytes every error carries). All of it is plain RFC 1624 arithmetic
//! stored as bytes: the changes cancel in the packet's ones-complement
//! sum, so a `CHECKSUM_COMPLETE` value stays true.
//!
//! A quoted packet is matched when its upper-layer header follows the
//! fixed header directly or behind a first fragment's Fragment header;
//! one quoting other extension headers (or a later fragment) quotes no
//! translation the NAT can find, so inbound it is the host's.

use aya_ebpf::{bindings::TC_ACT_OK, programs::TcContext};
use netlab_common::{
    counters::Counter,
    nat::{IPPROTO_TCP, IPPROTO_UDP},
    nat6::{IPPROTO_ICMPV6, Nat6Entry, Nat6Key},
};

use super::parse::{
    ICMP6_ECHO_REPLY, ICMP6_ECHO_REQUEST, IP6_DADDR, IP6_HLEN, IP6_SADDR, Ipv6, fixed_at,
    load_addrs, load16,
};
use crate::{
    counters::count,
    csum,
    maps::{NAT6_ORIG, NAT6_REPLY},
    nat::{
        drop_packet,
        parse::{ICMP_CHECK, ICMP_ID, IP_OFF, L4Head, TCP_CHECK, UDP_CHECK, load_ptr},
    },
};

/// Outer ICMPv6 header (type, code, checksum, 4 bytes) before the quote.
const ICMP6_HLEN: usize = 8;
const NEXTHDR_FRAGMENT: u8 = 44;

/// What [`translate_inbound`] returns when the error was translated.
pub const TRANSLATED: i32 = i32::MIN + 3;

/// Inbound error to the external address: [`TRANSLATED`] (now addressed
/// to the lab endpoint written to `to`), or the verdict: the host's when
/// it quotes no translation, dropped when malformed.
#[inline(always)]
pub fn translate_inbound(ctx: &TcContext, ip: &Ipv6, to: &mut [u8; 16]) -> i32 {
    translate(ctx, ip, true, to)
}

/// Outbound error from a lab namespace: translated and passed, or dropped
/// (it must not leave with the lab's address).
#[inline(always)]
pub fn translate_outbound(ctx: &TcContext, ip: &Ipv6) -> i32 {
    let mut to = [0u8; 16];
    match translate(ctx, ip, false, &mut to) {
        TRANSLATED => TC_ACT_OK,
        verdict => verdict,
    }
}

/// [`translate_quoted`] as its own function (BPF-to-BPF call: its frame is
/// not the callers'), with the outcome as a verdict (no `Result` across
/// the call: its niche layout becomes BTF the kernel refuses).
#[inline(never)]
fn translate(ctx: &TcContext, ip: &Ipv6, inbound: bool, to: &mut [u8; 16]) -> i32 {
    match translate_quoted(ctx, ip, inbound) {
        Ok(Some(entry)) => {
            *to = entry.addr;
            TRANSLATED
        }
        Ok(None) if inbound => crate::nat::pass_host(),
        Ok(None) => drop_packet(ctx, Counter::NatDropUnknownProto),
        Err(reason) => drop_packet(ctx, reason),
    }
}

#[inline(always)]
fn translate_quoted(
    ctx: &TcContext,
    ip: &Ipv6,
    inbound: bool,
) -> Result<Option<Nat6Entry>, Counter> {
    let inner_ip_off = ip.l4_off + ICMP6_HLEN;
    let inner = fixed_at(ctx, inner_ip_off).ok_or(Counter::NatDropMalformed)?;
    // SAFETY: a packet pointer from `fixed_at`, read before any helper.
    let mut proto = unsafe { (*inner).next };
    let mut inner_l4_off = inner_ip_off + IP6_HLEN;
    if proto == NEXTHDR_FRAGMENT {
        let f = load_ptr::<[u8; 4]>(ctx, inner_l4_off).ok_or(Counter::NatDropMalformed)?;
        // SAFETY: bounds checked by load_ptr.
        let f = unsafe { *f };
        if u16::from_be_bytes([f[2], f[3]]) & 0xfff8 != 0 {
            // A later fragment was quoted: no ports, nothing to match.
            return Ok(None);
        }
        proto = f[0];
        inner_l4_off += 8;
    }
    let l4 = load_ptr::<L4Head>(ctx, inner_l4_off).ok_or(Counter::NatDropMalformed)?;
    // SAFETY: bounds checked by load_ptr.
    let l4 = unsafe { *l4 };
    let isport = u16::from_ne_bytes(l4.w0);
    let idport = u16::from_ne_bytes(l4.w1);

    // The flow's key in the direction of the map we look in: the quoted
    // packet travelled the opposite way to the error.
    let mut key = Nat6Key {
        saddr: [0; 16],
        daddr: [0; 16],
        sport: idport,
        dport: isport,
        proto,
        _pad: [0; 3],
    };
    // The quoted destination is the key's source.
    if !load_addrs(ctx, inner_ip_off, &mut key.daddr, &mut key.saddr) {
        return Err(Counter::NatDropMalformed);
    }
    // Where the translated port/id sits in the quoted header, and where
    // the quoted L4 checksum is.
    let (port_off, check_off) = match proto {
        IPPROTO_TCP => (if inbound { 0 } else { 2 }, TCP_CHECK),
        IPPROTO_UDP => (if inbound { 0 } else { 2 }, UDP_CHECK),
        IPPROTO_ICMPV6 => {
            let id = u16::from_ne_bytes(l4.w2);
            // Inbound errors quote our echo request; outbound ones an echo
            // reply (a namespace does not report errors about those, but
            // the symmetric case costs nothing).
            let expected = if inbound {
                ICMP6_ECHO_REQUEST
            } else {
                ICMP6_ECHO_REPLY
            };
            if l4.w0[0] != expected {
                return Ok(None);
            }
            (key.sport, key.dport) = if inbound { (0, id) } else { (id, 0) };
            (ICMP_ID, ICMP_CHECK)
        }
        _ => return Ok(None),
    };
    let found = if inbound {
        NAT6_REPLY.get_ptr(key)
    } else {
        NAT6_ORIG.get_ptr(key)
    };
    let Some(found) = found else {
        return Ok(None);
    };
    // SAFETY: map value pointer from the lookup, copied out at once.
    let entry = unsafe { *found };

    // Old and new values of the translated fields (the quoted address is
    // in the key: the quoted packet's source is the key's destination).
    let (outer_off, quoted_old, quoted_off) = if inbound {
        (IP6_DADDR, &key.daddr, IP6_SADDR)
    } else {
        (IP6_SADDR, &key.saddr, IP6_DADDR)
    };
    let mut outer_old = [0u8; 16];
    if !load16(ctx, IP_OFF + outer_off, &mut outer_old) {
        return Err(Counter::NatDropMalformed);
    }
    let outer_old = &outer_old;
    let new_addr = entry.addr;
    let old_port = u16::from_ne_bytes(match port_off {
        0 => l4.w0,
        2 => l4.w1,
        _ => l4.w2,
    });
    let new_port = entry.port;

    let icmp = load_ptr::<L4Head>(ctx, ip.l4_off).ok_or(Counter::NatDropMalformed)?;
    // SAFETY: bounds checked by load_ptr.
    let old_icmp_check = u16::from_ne_bytes(unsafe { (*icmp).w1 });
    let mut icmp_check = csum::replace16(old_icmp_check, outer_old, &new_addr);
    icmp_check = csum::replace16(icmp_check, quoted_old, &new_addr);
    icmp_check = csum::replace2(icmp_check, old_port, new_port);

    // The quoted L4 checksum, when the quote reaches it.
    let quoted_check = match load_ptr::<[u8; 2]>(ctx, inner_l4_off + check_off) {
        // SAFETY: bounds checked by load_ptr.
        Some(p) => {
            let old = u16::from_ne_bytes(unsafe { *p });
            let new = if proto == IPPROTO_UDP && old == 0 {
                // "No checksum" (not valid over IPv6, but not ours to fix).
                0
            } else {
                let c = csum::replace16(old, quoted_old, &new_addr);
                let c = csum::replace2(c, old_port, new_port);
                if proto == IPPROTO_UDP && c == 0 {
                    0xffff
                } else {
                    c
                }
            };
            icmp_check = csum::replace2(icmp_check, old, new);
            Some(new)
        }
        None => None,
    };

    let stored = (|| -> Result<(), ()> {
        ctx.store(IP_OFF + outer_off, &new_addr, 0)
            .map_err(|_| ())?;
        ctx.store(inner_ip_off + quoted_off, &new_addr, 0)
            .map_err(|_| ())?;
        ctx.store(inner_l4_off + port_off, &new_port, 0)
            .map_err(|_| ())?;
        if let Some(value) = quoted_check {
            ctx.store(inner_l4_off + check_off, &value, 0)
                .map_err(|_| ())?;
        }
        ctx.store(ip.l4_off + ICMP_CHECK, &icmp_check, 0)
            .map_err(|_| ())
    })();
    if stored.is_err() {
        return Err(Counter::NatDropMalformed);
    }
    count(Counter::NatIcmpError);
    Ok(Some(entry))
}
