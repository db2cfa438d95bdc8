//! Typed events into the `events` ring buffer (`netlab monitor`; the
//! record is `netlab_common::events::Event`).
//!
//! Cost: nothing on a forwarded packet. Events are emitted only where
//! something happens (a drop, a new translation, a learned MAC, an answered
//! ARP request), and there the gate (`TRACE_EVENTS` in `switch_config`,
//! set while `netlab monitor` runs) is read first; with nobody listening
//! that one array lookup is all. The work behind the gate (reading the
//! packet's headers, filling the record, the ring buffer) lives in
//! functions that are never inlined: they exist once in each program as a
//! BPF subprogram instead of being copied into every drop site.

use aya_ebpf::{
    bindings::__sk_buff, helpers::bpf_ktime_get_ns, maps::ring_buf::RingBufEntry,
    programs::TcContext,
};
use netlab_common::{
    counters::Counter,
    events::{
        EVENT_ARP_ANSWERED, EVENT_DROP, EVENT_FDB_LEARNED, EVENT_NAT_EXPIRED, EVENT_ND_ANSWERED,
        Event, Event6, PROGRAM_CONTROL, PROGRAM_NAT_EGRESS, PROGRAM_NAT_INGRESS, PROGRAM_PORT,
    },
    nat::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, NatEntry, NatKey},
    nat6::{IPPROTO_ICMPV6, Nat6Entry, Nat6Key},
    switch::TRACE_EVENTS,
};

use crate::{
    counters::count,
    hdr::ptr_at,
    maps::{EVENTS, config},
};

pub(crate) const ETH_HLEN: usize = 14;
pub(crate) use netlab_common::ether::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6};
/// Fixed IPv6 header length.
pub(crate) const IPV6_HLEN: usize = 40;

/// Whether a monitor listens.
#[inline(always)]
pub fn enabled() -> bool {
    config().trace & TRACE_EVENTS != 0
}

/// The switch dropped the frame (the gate was read by the caller, which
/// has the switch configuration at hand).
#[inline(always)]
pub fn port_drop(ctx: &TcContext, ingress: u32, reason: Counter) {
    packet_event(
        ctx.skb.skb,
        PROGRAM_PORT,
        EVENT_DROP,
        reason as u32,
        ingress,
    );
}

/// The switch answered an ARP request; the frame is the reply by now.
#[inline(always)]
pub fn arp_answered(ctx: &TcContext, ingress: u32) {
    packet_event(ctx.skb.skb, PROGRAM_PORT, EVENT_ARP_ANSWERED, 0, ingress);
}

/// The switch answered a neighbour solicitation; the frame is the
/// advertisement by now (see [`write_packet_event`]).
#[inline(always)]
pub fn nd_answered(ctx: &TcContext, ingress: u32) {
    packet_event(ctx.skb.skb, PROGRAM_PORT, EVENT_ND_ANSWERED, 0, ingress);
}

/// A NAT program dropped the packet. (Called from every drop site of the
/// NAT programs: one call instruction each, the rest is a subprogram.)
#[inline(always)]
pub fn nat_drop(ctx: &TcContext, reason: Counter) {
    nat_drop_event(ctx.skb.skb, reason as u32);
}

#[inline(never)]
fn nat_drop_event(skb: *mut __sk_buff, reason: u32) {
    if !enabled() {
        return;
    }
    // SAFETY: reading fields of the context the kernel handed us.
    let (ifindex, ingress) = unsafe { ((*skb).ifindex, (*skb).ingress_ifindex) };
    // On the uplink's TC ingress the packet came in on the uplink itself;
    // on its egress it came from elsewhere (or from a local socket,
    // ingress_ifindex 0).
    let program = if ingress == ifindex {
        PROGRAM_NAT_INGRESS
    } else {
        PROGRAM_NAT_EGRESS
    };
    write_packet_event(skb, program, EVENT_DROP, reason, ifindex);
}

/// A record in the ring buffer, stamped and typed, to be filled in and
/// submitted; `None` (counted in `events_lost`) when the ring is full.
#[inline(always)]
pub(crate) fn reserve(kind: u8, program: u8) -> Option<RingBufEntry<Event>> {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        count(Counter::EventsLost);
        return None;
    };
    entry.write(Event {
        // SAFETY: helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        kind,
        program,
        ..Event::default()
    });
    Some(entry)
}

/// [`reserve`] for an IPv6 record ([`Event6`], `ethertype` set). Zeroed
/// in place rather than written from a 104-byte value: the NAT programs'
/// stack has no room for one.
#[inline(always)]
pub(crate) fn reserve6(kind: u8, program: u8) -> Option<RingBufEntry<Event6>> {
    let Some(mut entry) = EVENTS.reserve::<Event6>(0) else {
        count(Counter::EventsLost);
        return None;
    };
    // SAFETY: the reserved record is ours and Event6 is plain data, valid
    // all zero.
    let event = unsafe {
        core::ptr::write_bytes(entry.as_mut_ptr(), 0, 1);
        entry.assume_init_mut()
    };
    // SAFETY: helper without arguments.
    event.event.ts_ns = unsafe { bpf_ktime_get_ns() };
    event.event.kind = kind;
    event.event.program = program;
    event.event.ethertype = ETH_P_IPV6;
    Some(entry)
}

/// A NAT66 flow event of the egress program: created (`xlat` is the
/// translation) or exhausted (`reason`, `xlat` zero). The IPv6 twin of
/// [`nat_flow`]: the same kinds, in an [`Event6`].
#[inline(never)]
pub fn nat6_flow(kind: u8, key: &Nat6Key, xlat: &Nat6Entry, reason: u32) {
    if !enabled() {
        return;
    }
    let Some(mut entry) = reserve6(kind, PROGRAM_NAT_EGRESS) else {
        return;
    };
    // SAFETY: `reserve6` initialised the record.
    let event = unsafe { entry.assume_init_mut() };
    event.event.proto = key.proto;
    event.event.reason = reason;
    event.event.sport = key.sport;
    event.event.dport = key.dport;
    event.event.xport = xlat.port;
    event.saddr6 = key.saddr;
    event.daddr6 = key.daddr;
    event.xaddr6 = xlat.addr;
    entry.submit(0);
}

/// A NAT flow event of the egress program: created (`xlat` is the
/// translation) or exhausted (`reason`, `xlat` zero).
#[inline(never)]
pub fn nat_flow(kind: u8, key: &NatKey, xlat: &NatEntry, reason: u32) {
    if !enabled() {
        return;
    }
    let Some(mut entry) = reserve(kind, PROGRAM_NAT_EGRESS) else {
        return;
    };
    // SAFETY: `reserve` initialised the record.
    let event = unsafe { entry.assume_init_mut() };
    event.proto = key.proto;
    event.reason = reason;
    event.ethertype = ETH_P_IP;
    event.saddr = key.saddr;
    event.daddr = key.daddr;
    event.sport = key.sport;
    event.dport = key.dport;
    event.xaddr = xlat.addr;
    event.xport = xlat.port;
    entry.submit(0);
}

/// A MAC learned on `port` (the switch's learning is on).
#[inline(never)]
pub fn fdb_learned(mac: &[u8; 6], port: u32) {
    if !enabled() {
        return;
    }
    let Some(mut entry) = reserve(EVENT_FDB_LEARNED, PROGRAM_PORT) else {
        return;
    };
    // SAFETY: `reserve` initialised the record.
    let event = unsafe { entry.assume_init_mut() };
    event.ifindex = port;
    event.src_mac = *mac;
    entry.submit(0);
}

/// `netlab_event_inject`: the control plane hands an expiry event in as
/// the "packet" of a BPF_PROG_TEST_RUN, so that events it sees (its sweep
/// removing a flow) reach the same ring buffer, in order, and the same
/// lost counter. Only NAT expiry can be injected: an [`Event`], or an
/// [`Event6`] for a NAT66 flow (told apart by the length).
#[inline(always)]
pub fn inject(ctx: &TcContext) {
    if !enabled() {
        return;
    }
    if ctx.len() as usize >= Event6::SIZE {
        inject6(ctx);
        return;
    }
    let Ok(mut event) = ctx.load::<Event>(0) else {
        return;
    };
    if event.kind != EVENT_NAT_EXPIRED {
        return;
    }
    event.program = PROGRAM_CONTROL;
    // SAFETY: helper without arguments.
    event.ts_ns = unsafe { bpf_ktime_get_ns() };
    if EVENTS.output::<Event>(&event, 0).is_err() {
        count(Counter::EventsLost);
    }
}

#[inline(always)]
fn inject6(ctx: &TcContext) {
    let Ok(mut event) = ctx.load::<Event6>(0) else {
        return;
    };
    if event.event.kind != EVENT_NAT_EXPIRED {
        return;
    }
    event.event.program = PROGRAM_CONTROL;
    // SAFETY: helper without arguments.
    event.event.ts_ns = unsafe { bpf_ktime_get_ns() };
    if EVENTS.output::<Event6>(&event, 0).is_err() {
        count(Counter::EventsLost);
    }
}

/// One event describing the packet itself: its Ethernet, IPv4 or ARP
/// addresses and its ports (ICMP echo: the identifier as `sport`). Written
/// straight into the ring buffer and read with direct packet access: the
/// NAT programs leave little of the 512-byte stack to a subprogram.
#[inline(never)]
fn packet_event(skb: *mut __sk_buff, program: u8, kind: u8, reason: u32, ifindex: u32) {
    write_packet_event(skb, program, kind, reason, ifindex);
}

/// The body of [`packet_event`], shared with [`nat_drop_event`] (each a
/// subprogram of its own, so no subprogram calls another: the NAT
/// programs' stack has room for one frame).
#[inline(always)]
fn write_packet_event(skb: *mut __sk_buff, program: u8, kind: u8, reason: u32, ifindex: u32) {
    let ctx = TcContext::new(skb);
    if let Some(eth) = ptr_at::<[u8; ETH_HLEN]>(&ctx, 0)
        // SAFETY: bounds checked by ptr_at.
        && ethertype_of(unsafe { &*eth }) == ETH_P_IPV6
    {
        let Some(mut entry) = reserve6(kind, program) else {
            return;
        };
        // SAFETY: `reserve6` initialised the record.
        let event = unsafe { entry.assume_init_mut() };
        event.event.reason = reason;
        event.event.ifindex = ifindex;
        // SAFETY: bounds checked by ptr_at.
        fill_ethernet(&mut event.event, unsafe { &*eth });
        if let Some(ip) = ptr_at::<[u8; IPV6_HLEN]>(&ctx, ETH_HLEN)
            // SAFETY: bounds checked by ptr_at.
            && let Some(l4) = fill_ipv6(event, unsafe { &*ip })
            && let Some(head) = ptr_at::<[u8; 8]>(&ctx, l4)
        {
            // SAFETY: bounds checked by ptr_at.
            fill_ports(&mut event.event, unsafe { &*head });
        }
        if kind == EVENT_ND_ANSWERED {
            // The advertisement goes from the address asked for back to
            // the asker: swapped back, the event names the asker as
            // source (as for an answered ARP request).
            core::mem::swap(&mut event.saddr6, &mut event.daddr6);
            core::mem::swap(&mut event.event.src_mac, &mut event.event.dst_mac);
        }
        entry.submit(0);
        return;
    }
    let Some(mut entry) = reserve(kind, program) else {
        return;
    };
    // SAFETY: `reserve` initialised the record.
    let event = unsafe { entry.assume_init_mut() };
    event.reason = reason;
    event.ifindex = ifindex;
    if let Some(eth) = ptr_at::<[u8; ETH_HLEN]>(&ctx, 0) {
        // SAFETY: bounds checked by ptr_at.
        fill_ethernet(event, unsafe { &*eth });
    }
    if event.ethertype == ETH_P_IP {
        ipv4(&ctx, event);
    } else if event.ethertype == ETH_P_ARP {
        arp(&ctx, event);
    }
    entry.submit(0);
}

#[inline(always)]
fn ipv4(ctx: &TcContext, event: &mut Event) {
    let Some(ip) = ptr_at::<[u8; 20]>(ctx, ETH_HLEN) else {
        return;
    };
    // SAFETY: bounds checked by ptr_at.
    let Some(l4) = fill_ipv4(event, unsafe { &*ip }) else {
        return;
    };
    if let Some(head) = ptr_at::<[u8; 8]>(ctx, l4) {
        // SAFETY: bounds checked by ptr_at.
        fill_ports(event, unsafe { &*head });
    }
}

// The frame's header fields as an event carries them, from bytes already
// bounds-checked by the caller (TC and XDP read the packet through
// different contexts; the layout is read here once for both).

/// MACs and EtherType from the Ethernet header.
#[inline(always)]
pub(crate) fn fill_ethernet(event: &mut Event, eth: &[u8; ETH_HLEN]) {
    event.dst_mac.copy_from_slice(&eth[0..6]);
    event.src_mac.copy_from_slice(&eth[6..12]);
    event.ethertype = u16::from_be_bytes([eth[12], eth[13]]);
}

/// The EtherType of an Ethernet header, host order.
#[inline(always)]
pub(crate) fn ethertype_of(eth: &[u8; ETH_HLEN]) -> u16 {
    u16::from_be_bytes([eth[12], eth[13]])
}

/// Next Header and addresses from the IPv6 header at `ETH_HLEN`; the
/// offset of the L4 header when it follows the fixed header directly
/// (TCP, UDP, ICMPv6). Extension headers are not walked here: the event
/// then names the first one as its protocol (0 hop-by-hop, 44 fragment),
/// which is what a drop for a malformed chain needs to show.
#[inline(always)]
pub(crate) fn fill_ipv6(event: &mut Event6, ip: &[u8; IPV6_HLEN]) -> Option<usize> {
    event.event.proto = ip[6];
    event.saddr6.copy_from_slice(&ip[8..24]);
    event.daddr6.copy_from_slice(&ip[24..40]);
    matches!(ip[6], IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMPV6).then_some(ETH_HLEN + IPV6_HLEN)
}

/// Protocol and addresses from the IPv4 header at `ETH_HLEN`; the offset
/// of the L4 header when its ports are worth reading (a first fragment
/// with a valid IHL).
#[inline(always)]
pub(crate) fn fill_ipv4(event: &mut Event, ip: &[u8; 20]) -> Option<usize> {
    event.proto = ip[9];
    event.saddr = u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]);
    event.daddr = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let later_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
    // IHL is 5..=15 words; anything below 5 is malformed (no ports read).
    let ihl = (ip[0] & 0x0f) as usize;
    (!later_fragment && ihl >= 5).then_some(ETH_HLEN + ihl * 4)
}

/// Ports from the first 8 bytes of the L4 header.
#[inline(always)]
pub(crate) fn fill_ports(event: &mut Event, head: &[u8; 8]) {
    match event.proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            event.sport = u16::from_ne_bytes([head[0], head[1]]);
            event.dport = u16::from_ne_bytes([head[2], head[3]]);
        }
        // The echo id in `sport`, type and code in `dport` (as in the
        // packet, like every port: type is the high byte in host order).
        // ICMPv6 echo has the same layout.
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            event.sport = u16::from_ne_bytes([head[4], head[5]]);
            event.dport = u16::from_ne_bytes([head[0], head[1]]);
        }
        _ => {}
    }
}

/// ARP: sender and target protocol addresses. An answered request is the
/// reply by the time the event is written, so its sender and target are
/// swapped back: the event names the asker as source and the address (and
/// MAC) asked for as destination.
#[inline(always)]
fn arp(ctx: &TcContext, event: &mut Event) {
    let Some(body) = ptr_at::<[u8; 28]>(ctx, ETH_HLEN) else {
        return;
    };
    // SAFETY: bounds checked by ptr_at.
    let body = unsafe { &*body };
    let spa = u32::from_ne_bytes([body[14], body[15], body[16], body[17]]);
    let tpa = u32::from_ne_bytes([body[24], body[25], body[26], body[27]]);
    if event.kind == EVENT_ARP_ANSWERED {
        (event.saddr, event.daddr) = (tpa, spa);
        core::mem::swap(&mut event.src_mac, &mut event.dst_mac);
    } else {
        (event.saddr, event.daddr) = (spa, tpa);
    }
}
