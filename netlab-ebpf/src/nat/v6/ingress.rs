//! Uplink TC ingress, IPv6: restore the original destination of replies
//! and of ICMPv6 errors about translated packets.

use aya_ebpf::{bindings::TC_ACT_OK, helpers::bpf_redirect_peer, programs::TcContext};
use netlab_common::{
    counters::Counter,
    nat::{IPPROTO_TCP, IPPROTO_UDP, NAT_FLAG_FAST_PATH, NAT_FRAG_IN},
    nat6::IPPROTO_ICMPV6,
};

use super::{
    Flow, STEP_FLOW, STEP_ICMP_ERROR, config, frag, icmp_error, in_lab,
    parse::{self, ICMP6_ECHO_REPLY, IP6_DADDR, IP6_HOP_LIMIT, Ipv6, is_icmp6_error},
};
use crate::{
    counters::count,
    csum,
    maps::{ENDPOINTS6, NAT6_ORIG, NAT6_REPLY},
    nat::{
        TCX_NEXT, drop_packet, now_ns,
        parse::{ICMP_CHECK, ICMP_ID, IP_OFF, L4Head, TCP_CHECK, UDP_CHECK, load_ptr, tcp_flags},
        pass_host,
        state::touch,
    },
};

/// The IPv6 half of `netlab_uplink_ingress`: classify, then translate,
/// each step a function of its own (see `STEP_FLOW`). A function of its
/// own itself: its frame (the `Flow`) is not on the IPv4 half's stack.
#[inline(never)]
pub fn ingress(ctx: &TcContext) -> i32 {
    let mut flow = Flow::new();
    match classify(ctx, &mut flow) {
        STEP_FLOW => reverse(ctx, &flow),
        STEP_ICMP_ERROR => error(ctx, &flow.ip),
        verdict => verdict,
    }
}

/// Decides what the packet is: refused (dropped), the host's (passed), a
/// later fragment (restored here), or a reply or an ICMPv6 error to
/// translate (`flow` filled in, a `STEP_*` returned).
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
    // The IPv4 rule (`nat::inbound`): nothing from outside carries a lab
    // source, and the lab is reachable only through translations.
    if in_lab(cfg, &addrs.saddr) {
        return drop_packet(ctx, Counter::NatDropLabSource);
    }
    if addrs.daddr != cfg.external {
        if in_lab(cfg, &addrs.daddr) {
            return drop_packet(ctx, Counter::NatDropUnsolicited);
        }
        // The host's: its other addresses, link-local, multicast (ND).
        return pass_host();
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
        // ESP, GRE, ... to the external address are the host's.
        return pass_host();
    }
    let Some(head) = load_ptr::<L4Head>(ctx, ip.l4_off) else {
        return drop_packet(ctx, Counter::NatDropMalformed);
    };
    // SAFETY: bounds checked by load_ptr.
    let head = unsafe { *head };
    flow.key.sport = u16::from_ne_bytes(head.w0);
    flow.key.dport = u16::from_ne_bytes(head.w1);
    flow.key.proto = ip.proto;
    (flow.check_off, flow.port_off, flow.tcp_flags) = match ip.proto {
        IPPROTO_TCP => match tcp_flags(ctx, ip.l4_off) {
            Some(f) => (ip.l4_off + TCP_CHECK, ip.l4_off + 2, f),
            None => return drop_packet(ctx, Counter::NatDropMalformed),
        },
        IPPROTO_UDP => (ip.l4_off + UDP_CHECK, ip.l4_off + 2, 0),
        _ => match head.w0[0] {
            ICMP6_ECHO_REPLY => {
                flow.key.sport = 0;
                flow.key.dport = u16::from_ne_bytes(head.w2);
                (ip.l4_off + ICMP_CHECK, ip.l4_off + ICMP_ID, 0)
            }
            t if is_icmp6_error(t) => return STEP_ICMP_ERROR,
            // Echo requests to the uplink, Neighbour Discovery, ...: the
            // host's.
            _ => return pass_host(),
        },
    };
    if !parse::load_addrs(ctx, IP_OFF, &mut flow.key.saddr, &mut flow.key.daddr) {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    STEP_FLOW
}

/// An ICMPv6 error to the external address: translated and delivered to
/// the endpoint when it quotes a translation, else the host's.
#[inline(always)]
fn error(ctx: &TcContext, ip: &Ipv6) -> i32 {
    let mut orig_addr = [0u8; 16];
    match icmp_error::translate_inbound(ctx, ip, &mut orig_addr) {
        icmp_error::TRANSLATED => deliver(ctx, ip, &orig_addr),
        verdict => verdict,
    }
}

/// A later fragment to the external address: the destination its
/// datagram's first fragment was restored to, or the host's.
// Its own function: the fragment key is not on the classifier's stack.
#[inline(never)]
fn later_fragment(ctx: &TcContext, ip: &Ipv6) -> i32 {
    let Some(orig_addr) = frag::lookup(ctx, ip, NAT_FRAG_IN, now_ns()) else {
        count(Counter::NatFragUntracked);
        return TCX_NEXT;
    };
    if ctx.store(IP_OFF + IP6_DADDR, &orig_addr, 0).is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    count(Counter::NatFragTranslated);
    deliver(ctx, ip, &orig_addr)
}

/// Looks the reply tuple up and, when it is a translation's, restores the
/// destination address and the port/id, fixing the L4 checksum.
#[inline(never)]
fn reverse(ctx: &TcContext, flow: &Flow) -> i32 {
    let key = &flow.key;
    let now = now_ns();
    let orig = match NAT6_REPLY.get_ptr_mut(key) {
        // SAFETY: map value pointer from the lookup.
        Some(entry) => unsafe {
            if let Some(state) = touch(entry, now, flow.tcp())
                && let Some(other) = NAT6_ORIG.get_ptr_mut(key.orig_key(&*entry))
            {
                (*other).state = state;
            }
            *entry
        },
        // No translation: the host's. (Published ports over IPv6 hook in
        // here, where the IPv4 ingress calls `dnat::inbound`: a TCP/UDP
        // packet to a published port creates its translation.)
        None => return pass_host(),
    };
    let udp = key.proto == IPPROTO_UDP;
    let check_off = flow.check_off;
    let rewritten = (|| -> Result<(), csum::CsumError> {
        csum::l4_replace_addr6(ctx, check_off, &key.daddr, &orig.addr, udp)?;
        ctx.store(IP_OFF + IP6_DADDR, &orig.addr, 0)
            .map_err(|_| csum::CsumError)?;
        if orig.port != key.dport {
            csum::l4_replace2(ctx, check_off, key.dport, orig.port, udp)?;
            ctx.store(flow.port_off, &orig.port, 0)
                .map_err(|_| csum::CsumError)?;
        }
        Ok(())
    })();
    if rewritten.is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    if flow.ip.frag.is_some() {
        // The first fragment: the rest of the reply follows without ports
        // and goes to the same endpoint.
        frag::remember(
            &key.saddr,
            &key.daddr,
            &flow.ip,
            NAT_FRAG_IN,
            &orig.addr,
            now,
        );
    }
    count(Counter::NatReversed);
    deliver(ctx, &flow.ip, &orig.addr)
}

/// Hands a reverse-translated packet (destination already written) on.
/// Fast path, as in IPv4: when `endpoints6` knows the endpoint, do the
/// router's job here (hop limit, MACs) and put the packet straight into
/// its namespace with `bpf_redirect_peer`; otherwise the host stack
/// routes it to `vbridge`.
#[inline(always)]
fn deliver(ctx: &TcContext, ip: &Ipv6, daddr: &[u8; 16]) -> i32 {
    let Some(cfg) = config() else {
        return TC_ACT_OK;
    };
    if cfg.flags & NAT_FLAG_FAST_PATH == 0 {
        return TC_ACT_OK;
    }
    // SAFETY: copied out at once.
    let Some(ep) = (unsafe { ENDPOINTS6.get(daddr) }).copied() else {
        return TC_ACT_OK;
    };
    // Hop limit 1: the host stack sends the time exceeded. The gateway's
    // own addresses are listed too: they are the host stack's.
    if ip.hop_limit <= 1 || ep.port_ifindex == 0 || ep.mac == cfg.gateway_mac {
        return TC_ACT_OK;
    }
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&ep.mac);
    macs[6..].copy_from_slice(&cfg.gateway_mac);
    if ctx.store(0, &macs, 0).is_err()
        || ctx
            .store(IP_OFF + IP6_HOP_LIMIT, &(ip.hop_limit - 1), 0)
            .is_err()
    {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    count(Counter::NatFastPath);
    // SAFETY: plain helper call.
    unsafe { bpf_redirect_peer(ep.port_ifindex, 0) as i32 }
}
