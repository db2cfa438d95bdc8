//! Uplink TC ingress: restore the original destination of replies, and
//! translate packets to published ports (see `dnat`).

use aya_ebpf::{bindings::TC_ACT_OK, helpers::bpf_redirect_peer, programs::TcContext};
use netlab_common::{
    counters::Counter,
    nat::{
        IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NAT_FLAG_FAST_PATH, NAT_FRAG_IN, NatConfig, NatKey,
    },
};

use super::{
    TCX_NEXT, config_and_ipv4, dnat, drop_packet, frag, icmp_error,
    inbound::{self, Refusal},
    now_ns,
    parse::{
        ICMP_CHECK, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ID, ICMP_PARAMETER_PROBLEM,
        ICMP_TIME_EXCEEDED, IP_CHECK, IP_DADDR, IP_OFF, IP_TTL, Ipv4, L4Head, TCP_CHECK, UDP_CHECK,
        load_ptr, tcp_flags,
    },
    pass_host,
    state::touch,
};
use crate::{
    counters::count,
    csum,
    maps::{ENDPOINTS, NAT_ORIG, NAT_REPLY},
};

/// Entry point of `netlab_uplink_ingress`.
#[inline(always)]
pub fn ingress(ctx: TcContext) -> i32 {
    let (cfg, ip) = match config_and_ipv4(&ctx) {
        Ok(found) => found,
        Err(verdict) => return verdict,
    };
    if let Some(refusal) = inbound::refusal(&cfg, ip.saddr, ip.daddr) {
        return drop_packet(
            &ctx,
            match refusal {
                Refusal::LabSource => Counter::NatDropLabSource,
                Refusal::Unsolicited => Counter::NatDropUnsolicited,
            },
        );
    }
    if ip.daddr != cfg.external {
        return pass_host();
    }
    if ip.later_fragment {
        // A reply larger than the MTU arrives in fragments; only the first
        // carries the ports (see `frag`).
        return later_fragment(&ctx, &cfg, &ip);
    }
    if !matches!(ip.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP) {
        // GRE, ESP, ... to the external address are the host's: the NAT
        // reads no L4 header of theirs, so a short one is not its to drop.
        return pass_host();
    }
    let Some(head) = load_ptr::<L4Head>(&ctx, ip.l4_off) else {
        return drop_packet(&ctx, Counter::NatDropMalformed);
    };
    // SAFETY: bounds checked by load_ptr.
    let head = unsafe { *head };
    let mut key = NatKey {
        saddr: ip.saddr,
        daddr: ip.daddr,
        sport: u16::from_ne_bytes(head.w0),
        dport: u16::from_ne_bytes(head.w1),
        proto: ip.proto,
        _pad: [0; 3],
    };
    match ip.proto {
        IPPROTO_TCP => {
            let Some(flags) = tcp_flags(&ctx, ip.l4_off) else {
                return drop_packet(&ctx, Counter::NatDropMalformed);
            };
            reverse(
                &ctx,
                &cfg,
                &ip,
                &key,
                ip.l4_off + TCP_CHECK,
                ip.l4_off + 2,
                Some(flags),
            )
        }
        IPPROTO_UDP => reverse(
            &ctx,
            &cfg,
            &ip,
            &key,
            ip.l4_off + UDP_CHECK,
            ip.l4_off + 2,
            None,
        ),
        IPPROTO_ICMP => match head.w0[0] {
            ICMP_ECHO_REPLY => {
                key.sport = 0;
                key.dport = u16::from_ne_bytes(head.w2);
                let off = ip.l4_off;
                reverse(&ctx, &cfg, &ip, &key, off + ICMP_CHECK, off + ICMP_ID, None)
            }
            ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM => {
                match icmp_error::translate_inbound(&ctx, &ip) {
                    Ok(Some(orig_addr)) => deliver(&ctx, &cfg, &ip, orig_addr),
                    Ok(None) => pass_host(),
                    Err(reason) => drop_packet(&ctx, reason),
                }
            }
            _ => pass_host(),
        },
        _ => pass_host(),
    }
}

/// A later fragment to the external address: the destination its
/// datagram's first fragment was restored to, delivered the same way; or,
/// when no first fragment was translated, the host's (its own datagram, or
/// a reply whose first fragment is still to come, which the host cannot
/// use either: nothing better can be done with it).
#[inline(always)]
fn later_fragment(ctx: &TcContext, cfg: &NatConfig, ip: &Ipv4) -> i32 {
    let Some(orig_addr) = frag::lookup(ip, NAT_FRAG_IN, now_ns()) else {
        count(Counter::NatFragUntracked);
        return TCX_NEXT;
    };
    if frag::rewrite_address(ctx, IP_DADDR, ip.daddr, orig_addr).is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    count(Counter::NatFragTranslated);
    deliver(ctx, cfg, ip, orig_addr)
}

/// Looks the reply tuple up and, when it is a translation's, restores the
/// destination address and the port/id at `port_off`, fixing the IP
/// checksum and the L4 checksum at `check_off`.
#[inline(always)]
fn reverse(
    ctx: &TcContext,
    cfg: &NatConfig,
    ip: &Ipv4,
    key: &NatKey,
    check_off: usize,
    port_off: usize,
    tcp_flags: Option<u8>,
) -> i32 {
    let now = now_ns();
    let orig = match NAT_REPLY.get_ptr_mut(key) {
        // SAFETY: map value pointer from the lookup.
        Some(entry) => unsafe {
            if let Some(state) = touch(entry, now, tcp_flags)
                && let Some(other) = NAT_ORIG.get_ptr_mut(key.orig_key(&*entry))
            {
                (*other).state = state;
            }
            *entry
        },
        // No translation yet: a published port's first packet, or the host's.
        None if key.proto != IPPROTO_ICMP => match dnat::inbound(key, now, tcp_flags) {
            dnat::Published::Translate(entry) => entry,
            dnat::Published::No => return pass_host(),
            dnat::Published::Drop(reason) => return drop_packet(ctx, reason),
        },
        None => return pass_host(),
    };
    let l4_pseudo = key.proto != IPPROTO_ICMP;
    let udp = key.proto == IPPROTO_UDP;
    let rewritten = (|| -> Result<(), csum::CsumError> {
        csum::l3_replace4(ctx, IP_OFF + IP_CHECK, ip.daddr, orig.addr)?;
        if l4_pseudo {
            csum::l4_replace_addr(ctx, check_off, ip.daddr, orig.addr, udp)?;
        }
        ctx.store(IP_OFF + IP_DADDR, &orig.addr, 0)
            .map_err(|_| csum::CsumError)?;
        if orig.port != key.dport {
            csum::l4_replace2(ctx, check_off, key.dport, orig.port, udp)?;
            ctx.store(port_off, &orig.port, 0)
                .map_err(|_| csum::CsumError)?;
        }
        Ok(())
    })();
    if rewritten.is_err() {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    if ip.first_fragment {
        // The rest of the reply follows without ports: it goes to the same
        // endpoint (and the same way, see `deliver`).
        frag::remember(ip, NAT_FRAG_IN, orig.addr, now);
    }
    count(Counter::NatReversed);
    deliver(ctx, cfg, ip, orig.addr)
}

/// Hands a reverse-translated packet on. Fast path: when the endpoint
/// owning `daddr` is known, do the router's job here (TTL, MACs) and put
/// the packet straight into the endpoint's namespace with
/// `bpf_redirect_peer` on its switch port (`veth-N-br`, in this namespace).
/// Otherwise the host stack routes it to `vbridge` as usual.
#[inline(always)]
fn deliver(ctx: &TcContext, cfg: &NatConfig, ip: &Ipv4, daddr: u32) -> i32 {
    if cfg.flags & NAT_FLAG_FAST_PATH == 0 {
        return TC_ACT_OK;
    }
    // SAFETY: copied out at once.
    let Some(ep) = (unsafe { ENDPOINTS.get(daddr) }).copied() else {
        return TC_ACT_OK;
    };
    // `endpoints` is the switch's table and lists the gateway too: a reply
    // to the host side's own address is the host stack's (its port's peer
    // is in this namespace, where `bpf_redirect_peer` cannot go).
    if ip.ttl <= 1 || ep.port_ifindex == 0 || ep.mac == cfg.gateway_mac {
        // The host stack sends the ICMP time exceeded.
        return TC_ACT_OK;
    }
    // TTL and protocol share a 16-bit word of the header checksum.
    let old = u16::from_ne_bytes([ip.ttl, ip.proto]);
    let new = u16::from_ne_bytes([ip.ttl - 1, ip.proto]);
    if csum::l3_replace2(ctx, IP_OFF + IP_CHECK, old, new).is_err()
        || ctx.store(IP_OFF + IP_TTL, &(ip.ttl - 1), 0).is_err()
        || ctx.store(0, &ep.mac, 0).is_err()
        || ctx.store(6, &cfg.gateway_mac, 0).is_err()
    {
        return drop_packet(ctx, Counter::NatDropMalformed);
    }
    count(Counter::NatFastPath);
    // SAFETY: plain helper call.
    unsafe { bpf_redirect_peer(ep.port_ifindex, 0) as i32 }
}
