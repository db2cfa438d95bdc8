//! Uplink TC egress, IPv6: masquerade packets from `subnet6`.

use aya_ebpf::{bindings::TC_ACT_OK, programs::TcContext};
use netlab_common::{
    counters::Counter,
    nat::{IPPROTO_TCP, IPPROTO_UDP, NAT_FRAG_OUT, NAT_STATE_NONE},
    nat6::IPPROTO_ICMPV6,
};

use super::{
    Flow, STEP_FLOW, STEP_ICMP_ERROR, alloc, config, frag, icmp_error, in_lab,
    parse::{self, ICMP6_ECHO_REQUEST, IP6_SADDR, Ipv6, is_icmp6_error},
};
use crate::{
    counters::count,
    csum,
    maps::{NAT6_ORIG, NAT6_REPLY},
    nat::{
        TCX_NEXT,
        alloc::Created,
        drop_packet, now_ns,
        parse::{ICMP_CHECK, ICMP_ID, IP_OFF, L4Head, TCP_CHECK, UDP_CHECK, load_ptr, tcp_flags},
        pass_host,
        state::{next_tcp_state, touch},
    },
};

/// The IPv6 half of `netlab_uplink_egress`: classify, then translate, each
/// step a function of its own (see `STEP_FLOW`). A function of its own
/// itself: its frame (the `Flow`) is not on the IPv4 half's stack.
#[inline(never)]
pub fn egress(ctx: &TcContext) -> i32 {
    let mut flow = Flow::new();
    match classify(ctx, &mut flow) {
        STEP_FLOW => translate(ctx, &flow),
        STEP_ICMP_ERROR => icmp_error::translate_outbound(ctx, &flow.ip),
        verdict => verdict,
    }
}

/// Decides what the packet is: the host's (passed), the lab's and
/// malformed (dropped), a later fragment (translated here), or a flow or
/// an ICMPv6 error to translate (`flow` filled in, a `STEP_*` returned).
#[inline(never)]
fn classify(ctx: &TcContext, flow: &mut Flow) -> i32 {
    let Some(cfg) = config() else {
        return super::off();
    };
    let fixed = match parse::header(ctx) {
        Ok(h) => h,
        Err(reason) => return drop_packet(ctx, reason),
    };
    // SAFETY: a packet pointer from `header`, used before any helper call.
    let addrs = unsafe { &(*fixed).addrs };
    if !in_lab(cfg, &addrs.saddr) {
        // The host's own traffic: its global address, link-local and
        // Neighbour Discovery, multicast listener reports, ...
        return pass_host();
    }
    // From here on the packet is the lab's: it leaves translated or not at all.
    if parse::link_scoped(&addrs.daddr) {
        // Link-local and multicast are never translated (nothing beyond
        // the uplink's link could answer the external address, and ND
        // must stay the uplink's own); a lab source must not leave as it
        // is either.
        return drop_packet(ctx, Counter::NatDropUnknownProto);
    }
    let walked = parse::walk(ctx, &mut flow.ip);
    if walked != parse::WALKED {
        return walked;
    }
    let ip = &flow.ip;
    if ip.later_fragment {
        return later_fragment(ctx, ip);
    }
    if !matches!(ip.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMPV6) {
        // Decided before reading any of it: a short packet of a protocol
        // the NAT does not translate is that, not malformed (as in IPv4).
        return drop_packet(ctx, Counter::NatDropUnknownProto);
    }
    let Some(head) = load_ptr::<L4Head>(ctx, ip.l4_off) else {
        return drop_packet(ctx, Counter::NatDropMalformed);
    };
    // SAFETY: bounds checked by load_ptr.
    let head = unsafe { *head };
    flow.key.sport = u16::from_ne_bytes(head.w0);
    flow.key.dport = u16::from_ne_bytes(head.w1);
    flow.key.proto = ip.proto;
    // Where the checksum and the port/id are, and the TCP flags.
    (flow.check_off, flow.port_off, flow.tcp_flags) = match ip.proto {
        IPPROTO_TCP => match tcp_flags(ctx, ip.l4_off) {
            Some(f) => (ip.l4_off + TCP_CHECK, ip.l4_off, f),
            None => return drop_packet(ctx, Counter::NatDropMalformed),
        },
        IPPROTO_UDP => (ip.l4_off + UDP_CHECK, ip.l4_off, 0),
        IPPROTO_ICMPV6 => match head.w0[0] {
            ICMP6_ECHO_REQUEST => {
                flow.key.sport = u16::from_ne_bytes(head.w2);
                flow.key.dport = 0;
                (ip.l4_off + ICMP_CHECK, ip.l4_off + ICMP_ID, 0)
            }
            t if is_icmp6_error(t) => return STEP_ICMP_ERROR,
            // Echo replies, ND, MLD from a lab address: nothing outside
            // asked for them (the lab is not reachable from outside).
            _ => return drop_packet(ctx, Counter::NatDropUnknownProto),
        },
        _ => return drop_packet(ctx, Counter::NatDropUnknownProto),
    };
    if !parse::load_addrs(ctx, IP_OFF, &mut flow.key.saddr, &mut flow.key.daddr) {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    STEP_FLOW
}

/// A later fragment from the lab: the source its datagram's first
/// fragment was translated to, or dropped when that is unknown.
// Its own function: the fragment key is not on the classifier's stack.
#[inline(never)]
fn later_fragment(ctx: &TcContext, ip: &Ipv6) -> i32 {
    let Some(xaddr) = frag::lookup(ctx, ip, NAT_FRAG_OUT, now_ns()) else {
        return drop_packet(ctx, Counter::NatDropFragment);
    };
    if ctx.store(IP_OFF + IP6_SADDR, &xaddr, 0).is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    count(Counter::NatFragTranslated);
    TC_ACT_OK
}

/// Finds or creates the translation of the flow and rewrites the source
/// address and the port/id, fixing the L4 checksum.
#[inline(never)]
fn translate(ctx: &TcContext, flow: &Flow) -> i32 {
    let Some(cfg) = config() else {
        return TCX_NEXT;
    };
    let key = &flow.key;
    let now = now_ns();
    let xlat = match NAT6_ORIG.get_ptr_mut(key) {
        Some(entry) => {
            count(Counter::NatHit);
            // SAFETY: map value pointer from the lookup.
            unsafe {
                if let Some(state) = touch(entry, now, flow.tcp())
                    && let Some(other) = NAT6_REPLY.get_ptr_mut(key.reply_key(&*entry))
                {
                    (*other).state = state;
                }
                *entry
            }
        }
        None => {
            let state = match flow.tcp() {
                Some(flags) => next_tcp_state(NAT_STATE_NONE, flags),
                None => NAT_STATE_NONE,
            };
            match alloc::create(key, cfg, now, state) {
                Ok(Created::New(xlat)) => {
                    count(Counter::NatCreated);
                    xlat
                }
                Ok(Created::Raced(xlat)) => {
                    count(Counter::NatHit);
                    xlat
                }
                Err(reason) => return drop_packet(ctx, reason),
            }
        }
    };
    let udp = key.proto == IPPROTO_UDP;
    let check_off = flow.check_off;
    let rewritten = (|| -> Result<(), csum::CsumError> {
        if xlat.addr != key.saddr {
            csum::l4_replace_addr6(ctx, check_off, &key.saddr, &xlat.addr, udp)?;
            ctx.store(IP_OFF + IP6_SADDR, &xlat.addr, 0)
                .map_err(|_| csum::CsumError)?;
        }
        if xlat.port != key.sport {
            csum::l4_replace2(ctx, check_off, key.sport, xlat.port, udp)?;
            ctx.store(flow.port_off, &xlat.port, 0)
                .map_err(|_| csum::CsumError)?;
        }
        Ok(())
    })();
    if rewritten.is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    if flow.ip.frag.is_some() {
        // The first fragment: the rest of the datagram follows without
        // ports and gets the same source.
        frag::remember(
            &key.saddr,
            &key.daddr,
            &flow.ip,
            NAT_FRAG_OUT,
            &xlat.addr,
            now,
        );
    }
    TC_ACT_OK
}
