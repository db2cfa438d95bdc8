//! ICMP errors (destination unreachable incl. fragmentation needed, time
//! exceeded, parameter problem) about a translated flow.
//!
//! An error quotes the IP header and the first 8 bytes of L4 of the packet
//! that caused it. Inbound, that quoted packet is one we translated (source
//! = external address and port); outbound (a lab namespace reporting an
//! error about a reply it got), it is one we reverse-translated. Either way
//! the outer address and the quoted one must be translated like the flow,
//! or the receiver cannot match the error to its socket.
//!
//! Checksums: the outer IP header checksum is fixed with the helper. The
//! ICMP checksum covers the quoted bytes, so it absorbs every quoted change:
//! the quoted address, the quoted IP header checksum (fixed for that
//! address), the quoted port/id, and the quoted L4 checksum when it lies in
//! the 8 quoted bytes (UDP: yes, at offset 6; ICMP echo: yes, at 2; TCP: no,
//! it sits at 16, so it is left alone, as Linux NAT does). The quoted UDP
//! checksum covers the quoted pseudo header, so it changes with the quoted
//! address and port; zero ("no checksum") stays zero. ICMP has no pseudo
//! header, so the outer address change does not touch the ICMP checksum.
//! These are payload bytes the kernel does not track, so plain RFC 1624
//! arithmetic is used for them.

use aya_ebpf::{bindings::TC_ACT_OK, programs::TcContext};
use netlab_common::{
    counters::Counter,
    nat::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NatEntry, NatKey},
};
use network_types::ip::Ipv4Hdr;

use super::{
    drop_packet,
    parse::{
        ICMP_CHECK, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_ID, IP_CHECK, IP_DADDR, IP_OFF,
        IP_SADDR, Ipv4, L4Head, UDP_CHECK, load_ptr,
    },
};
use crate::{
    counters::count,
    csum,
    maps::{NAT_ORIG, NAT_REPLY},
};

/// Outer ICMP header (type, code, checksum, rest) before the quoted packet.
const ICMP_HLEN: usize = 8;

/// Which way the error travels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// From outside to the external address: restore the lab's address.
    Inbound,
    /// From a lab namespace to outside: apply the translation.
    Outbound,
}

/// Inbound error to the external address. `Ok(Some(addr))`: translated, now
/// addressed to the lab endpoint `addr`; `Ok(None)`: it quotes no
/// translation, so it is the host's; `Err`: drop for that reason.
#[inline(always)]
pub fn translate_inbound(ctx: &TcContext, ip: &Ipv4) -> Result<Option<u32>, Counter> {
    match translate(ctx, ip, Dir::Inbound)? {
        Some(entry) => Ok(Some(entry.addr)),
        None => Ok(None),
    }
}

/// Outbound error from a lab namespace: translated and passed, or dropped
/// (it must not leave with the lab's address).
#[inline(always)]
pub fn translate_outbound(ctx: &TcContext, ip: &Ipv4) -> i32 {
    match translate(ctx, ip, Dir::Outbound) {
        Ok(Some(_)) => TC_ACT_OK,
        Ok(None) => drop_packet(ctx, Counter::NatDropUnknownProto),
        Err(reason) => drop_packet(ctx, reason),
    }
}

#[inline(always)]
fn translate(ctx: &TcContext, ip: &Ipv4, dir: Dir) -> Result<Option<NatEntry>, Counter> {
    let inner_ip_off = ip.l4_off + ICMP_HLEN;
    let Some(inner) = load_ptr::<Ipv4Hdr>(ctx, inner_ip_off) else {
        return Err(Counter::NatDropMalformed);
    };
    // SAFETY: bounds checked by load_ptr.
    let inner = unsafe { *inner };
    let inner_ihl = (inner.vihl & 0x0f) as usize;
    if inner.vihl >> 4 != 4 || inner_ihl < 5 {
        return Err(Counter::NatDropMalformed);
    }
    if u16::from_be_bytes(inner.frags) & 0x1fff != 0 {
        // A later fragment was quoted: no ports, nothing to match.
        return Ok(None);
    }
    let inner_l4_off = inner_ip_off + inner_ihl * 4;
    let Some(l4) = load_ptr::<L4Head>(ctx, inner_l4_off) else {
        return Err(Counter::NatDropMalformed);
    };
    // SAFETY: bounds checked by load_ptr.
    let l4 = unsafe { *l4 };
    let isaddr = u32::from_ne_bytes(inner.src_addr);
    let idaddr = u32::from_ne_bytes(inner.dst_addr);
    let isport = u16::from_ne_bytes(l4.w0);
    let idport = u16::from_ne_bytes(l4.w1);
    let inbound = dir == Dir::Inbound;

    // The flow's key, in the direction of the map we look in: the quoted
    // packet travelled the opposite way to the error.
    let mut key = NatKey {
        saddr: idaddr,
        daddr: isaddr,
        sport: idport,
        dport: isport,
        proto: inner.proto,
        _pad: [0; 3],
    };
    // Where the translated port/id sits in the quoted L4 header, and the
    // quoted L4 checksum if it is among the 8 quoted bytes.
    let (port_off, l4_check_off) = match inner.proto {
        IPPROTO_TCP => (if inbound { 0 } else { 2 }, None),
        IPPROTO_UDP => (if inbound { 0 } else { 2 }, Some(UDP_CHECK)),
        IPPROTO_ICMP => {
            let id = u16::from_ne_bytes(l4.w2);
            // Inbound errors quote our echo request; outbound ones the echo
            // reply a lab namespace... would not send errors about, but
            // handle the symmetric case anyway.
            let expected = if inbound {
                ICMP_ECHO_REQUEST
            } else {
                ICMP_ECHO_REPLY
            };
            if l4.w0[0] != expected {
                return Ok(None);
            }
            if inbound {
                key.sport = 0;
                key.dport = id;
            } else {
                key.sport = id;
                key.dport = 0;
            }
            (ICMP_ID, Some(ICMP_CHECK))
        }
        _ => return Ok(None),
    };
    let found = if inbound {
        NAT_REPLY.get_ptr(key)
    } else {
        NAT_ORIG.get_ptr(key)
    };
    let Some(found) = found else {
        return Ok(None);
    };
    // SAFETY: map value pointer from the lookup, copied out at once.
    let entry = unsafe { *found };

    // Old and new values of the quoted fields.
    let (old_addr, outer_addr_off, inner_addr_off) = if inbound {
        (isaddr, IP_OFF + IP_DADDR, inner_ip_off + IP_SADDR)
    } else {
        (idaddr, IP_OFF + IP_SADDR, inner_ip_off + IP_DADDR)
    };
    let outer_old = if inbound { ip.daddr } else { ip.saddr };
    let new_addr = entry.addr;
    let old_port = u16::from_ne_bytes(match port_off {
        0 => l4.w0,
        2 => l4.w1,
        _ => l4.w2,
    });
    let new_port = entry.port;
    let old_ip_check = u16::from_ne_bytes(inner.check);
    let new_ip_check = csum::replace4(old_ip_check, old_addr, new_addr);

    let Some(icmp) = load_ptr::<L4Head>(ctx, ip.l4_off) else {
        return Err(Counter::NatDropMalformed);
    };
    // SAFETY: bounds checked by load_ptr.
    let old_icmp_check = u16::from_ne_bytes(unsafe { (*icmp).w1 });
    let mut icmp_check = csum::replace4(old_icmp_check, old_addr, new_addr);
    icmp_check = csum::replace2(icmp_check, old_ip_check, new_ip_check);
    icmp_check = csum::replace2(icmp_check, old_port, new_port);

    let mut l4_check = None;
    if let Some(off) = l4_check_off {
        let old = u16::from_ne_bytes(if off == UDP_CHECK { l4.w3 } else { l4.w1 });
        let new = if inner.proto == IPPROTO_UDP {
            if old == 0 {
                // No checksum: stays none.
                0
            } else {
                let c = csum::replace4(old, old_addr, new_addr);
                let c = csum::replace2(c, old_port, new_port);
                if c == 0 { 0xffff } else { c }
            }
        } else {
            csum::replace2(old, old_port, new_port)
        };
        icmp_check = csum::replace2(icmp_check, old, new);
        l4_check = Some((inner_l4_off + off, new));
    }

    let stored = (|| -> Result<(), csum::CsumError> {
        csum::l3_replace4(ctx, IP_OFF + IP_CHECK, outer_old, new_addr)?;
        ctx.store(outer_addr_off, &new_addr, 0)
            .map_err(|_| csum::CsumError)?;
        ctx.store(inner_addr_off, &new_addr, 0)
            .map_err(|_| csum::CsumError)?;
        ctx.store(inner_ip_off + IP_CHECK, &new_ip_check, 0)
            .map_err(|_| csum::CsumError)?;
        ctx.store(inner_l4_off + port_off, &new_port, 0)
            .map_err(|_| csum::CsumError)?;
        if let Some((off, value)) = l4_check {
            ctx.store(off, &value, 0).map_err(|_| csum::CsumError)?;
        }
        ctx.store(ip.l4_off + ICMP_CHECK, &icmp_check, 0)
            .map_err(|_| csum::CsumError)?;
        Ok(())
    })();
    if stored.is_err() {
        return Err(Counter::NatDropMalformed);
    }
    count(Counter::NatIcmpError);
    Ok(Some(entry))
}
