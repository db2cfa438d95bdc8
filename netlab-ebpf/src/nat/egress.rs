//! Uplink TC egress: masquerade packets from the lab subnet.

use aya_ebpf::{bindings::TC_ACT_OK, programs::TcContext};
use netlab_common::{
    counters::Counter,
    events::EVENT_NAT_CREATED,
    nat::{
        IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NAT_FRAG_OUT, NAT_STATE_NONE, NatConfig, NatKey,
    },
};

use super::{
    alloc::{self, Created},
    config_and_ipv4, drop_packet, drop_untranslated, frag, icmp_error, now_ns,
    parse::{
        ICMP_CHECK, ICMP_DEST_UNREACH, ICMP_ECHO_REQUEST, ICMP_ID, ICMP_PARAMETER_PROBLEM,
        ICMP_TIME_EXCEEDED, IP_SADDR, Ipv4, L4Head, TCP_CHECK, UDP_CHECK, load_ptr, tcp_flags,
    },
    pass_host,
    rewrite::{self, Ipv4Change},
    state::{next_tcp_state, touch},
};
use crate::{
    counters::count,
    csum, events,
    maps::{NAT_ORIG, NAT_REPLY},
};

/// Entry point of `netlab_uplink_egress`.
#[inline(always)]
pub fn egress(ctx: TcContext) -> i32 {
    let (cfg, ip) = match config_and_ipv4(&ctx) {
        Ok(found) => found,
        Err(verdict) => return verdict,
    };
    if ip.saddr & cfg.mask != cfg.subnet {
        return pass_host();
    }
    // From here on the packet is the lab's: it leaves translated or not at all.
    if ip.later_fragment {
        // A datagram larger than the MTU leaves a lab namespace in
        // fragments; only the first carries the ports (see `frag`).
        return later_fragment(&ctx, &ip);
    }
    // The flow's key, where its checksum and port/id are, and the TCP
    // flags; then one `translate` for all three protocols: inlined once,
    // so the verifier walks its allocation loop once, not once per
    // protocol (ARCHITECTURE.md §3.2).
    let (key, check_off, port_off, tcp_flags) = match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let Some(head) = l4_head(&ctx, &ip) else {
                return drop_packet(&ctx, Counter::NatDropMalformed);
            };
            let (check_off, tcp_flags) = if ip.proto == IPPROTO_TCP {
                match tcp_flags(&ctx, ip.l4_off) {
                    Some(f) => (ip.l4_off + TCP_CHECK, Some(f)),
                    None => return drop_packet(&ctx, Counter::NatDropMalformed),
                }
            } else {
                (ip.l4_off + UDP_CHECK, None)
            };
            let key = NatKey {
                saddr: ip.saddr,
                daddr: ip.daddr,
                sport: u16::from_ne_bytes(head.w0),
                dport: u16::from_ne_bytes(head.w1),
                proto: ip.proto,
                _pad: [0; 3],
            };
            (key, check_off, ip.l4_off, tcp_flags)
        }
        IPPROTO_ICMP => {
            let Some(head) = l4_head(&ctx, &ip) else {
                return drop_packet(&ctx, Counter::NatDropMalformed);
            };
            match head.w0[0] {
                ICMP_ECHO_REQUEST => {
                    let key = NatKey {
                        saddr: ip.saddr,
                        daddr: ip.daddr,
                        sport: u16::from_ne_bytes(head.w2),
                        dport: 0,
                        proto: IPPROTO_ICMP,
                        _pad: [0; 3],
                    };
                    let off = ip.l4_off;
                    (key, off + ICMP_CHECK, off + ICMP_ID, None)
                }
                ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM => {
                    return icmp_error::translate_outbound(&ctx, &ip);
                }
                // Echo replies, timestamps, ...: nothing outside asked a lab
                // namespace (it is not reachable from outside).
                _ => return drop_packet(&ctx, Counter::NatDropUnknownProto),
            }
        }
        _ => return drop_packet(&ctx, Counter::NatDropUnknownProto),
    };
    translate(&ctx, &cfg, &ip, &key, check_off, port_off, tcp_flags)
}

/// A later fragment from the lab: the source address its datagram's first
/// fragment was translated to, or dropped when that is unknown.
#[inline(always)]
fn later_fragment(ctx: &TcContext, ip: &Ipv4) -> i32 {
    let Some(xaddr) = frag::lookup(ip, NAT_FRAG_OUT, now_ns()) else {
        return drop_packet(ctx, Counter::NatDropFragment);
    };
    if frag::rewrite_address(ctx, IP_SADDR, ip.saddr, xaddr).is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    count(Counter::NatFragTranslated);
    TC_ACT_OK
}

/// The first 8 bytes of the L4 header.
#[inline(always)]
fn l4_head(ctx: &TcContext, ip: &Ipv4) -> Option<L4Head> {
    // SAFETY: bounds checked by load_ptr.
    load_ptr::<L4Head>(ctx, ip.l4_off).map(|p| unsafe { *p })
}

/// Finds or creates the translation of `key` and rewrites the source
/// address and the port/id at `port_off`, fixing the IP checksum and the L4
/// checksum at `check_off`.
#[inline(always)]
fn translate(
    ctx: &TcContext,
    cfg: &NatConfig,
    ip: &Ipv4,
    key: &NatKey,
    check_off: usize,
    port_off: usize,
    tcp_flags: Option<u8>,
) -> i32 {
    let now = now_ns();
    let xlat = match NAT_ORIG.get_ptr_mut(key) {
        Some(entry) => {
            count(Counter::NatHit);
            // SAFETY: map value pointer from the lookup.

            unsafe {
                if let Some(state) = touch(entry, now, tcp_flags) {
                    mirror_state(key, &*entry, state);
                }
                *entry
            }
        }
        None => {
            let state = match tcp_flags {
                Some(flags) => next_tcp_state(NAT_STATE_NONE, flags),
                None => NAT_STATE_NONE,
            };
            match alloc::create(key, cfg, now, state) {
                Ok(Created::New(xlat)) => {
                    count(Counter::NatCreated);
                    events::nat_flow(EVENT_NAT_CREATED, key, &xlat, 0);
                    xlat
                }
                Ok(Created::Raced(xlat)) => {
                    count(Counter::NatHit);
                    xlat
                }
                Err(reason) => return drop_untranslated(key, reason),
            }
        }
    };
    if rewrite(ctx, ip, key, xlat.addr, xlat.port, check_off, port_off).is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    if ip.first_fragment {
        // The rest of the datagram follows without ports: it gets the
        // same source address. (The L4 checksum covers the whole datagram
        // and was just corrected here, in the fragment that holds it.)
        frag::remember(ip, NAT_FRAG_OUT, xlat.addr, now);
    }
    TC_ACT_OK
}

/// Copies a changed TCP state into the reply-direction entry.
#[inline(always)]
fn mirror_state(key: &NatKey, xlat: &netlab_common::nat::NatEntry, state: u8) {
    if let Some(other) = NAT_REPLY.get_ptr_mut(key.reply_key(xlat)) {
        // SAFETY: map value pointer from the lookup.
        unsafe { (*other).state = state };
    }
}

#[inline(always)]
fn rewrite(
    ctx: &TcContext,
    ip: &Ipv4,
    key: &NatKey,
    xaddr: u32,
    xport: u16,
    check_off: usize,
    port_off: usize,
) -> Result<(), csum::CsumError> {
    let l4_pseudo = key.proto != IPPROTO_ICMP;
    let udp = key.proto == IPPROTO_UDP;
    if xaddr != ip.saddr {
        if l4_pseudo {
            csum::l4_replace_addr(ctx, check_off, ip.saddr, xaddr, udp)?;
        }
        rewrite::ipv4(
            ctx,
            Ipv4Change {
                saddr: Some(xaddr),
                ..Ipv4Change::default()
            },
        )?;
    }
    if xport != key.sport {
        csum::l4_replace2(ctx, check_off, key.sport, xport, udp)?;
        ctx.store(port_off, &xport, 0)
            .map_err(|_| csum::CsumError)?;
    }
    Ok(())
}
