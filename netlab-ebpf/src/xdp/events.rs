//! Drop events of the XDP programs into the monitor's ring buffer (the
//! record and the gate are `crate::events`'s; this reads the frame through
//! the XDP context instead of an skb).

use aya_ebpf::{bindings::xdp_md, helpers::bpf_ktime_get_ns, programs::XdpContext};
use netlab_common::{
    counters::Counter,
    events::{EVENT_DROP, Event},
    nat::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP},
};

use super::ptr_at;
use crate::{
    counters::count,
    events::{EVENTS, enabled},
};

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;

/// `program` (a `PROGRAM_*`) dropped the frame for `reason`. One call at
/// the drop site; the gate and the work are a subprogram.
#[inline(always)]
pub fn drop(ctx: &XdpContext, program: u8, reason: Counter) {
    drop_event(ctx.ctx, program, reason as u32);
}

#[inline(never)]
fn drop_event(md: *mut xdp_md, program: u8, reason: u32) {
    if !enabled() {
        return;
    }
    let ctx = XdpContext::new(md);
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        count(Counter::EventsLost);
        return;
    };
    let event = entry.write(Event::default());
    // SAFETY: helper without arguments.
    event.ts_ns = unsafe { bpf_ktime_get_ns() };
    event.kind = EVENT_DROP;
    event.program = program;
    event.reason = reason;
    event.ifindex = ctx.ingress_ifindex() as u32;
    if let Some(eth) = ptr_at::<[u8; ETH_HLEN]>(&ctx, 0) {
        // SAFETY: bounds checked by ptr_at.
        let eth = unsafe { &*eth };
        event.dst_mac.copy_from_slice(&eth[0..6]);
        event.src_mac.copy_from_slice(&eth[6..12]);
        event.ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    }
    if event.ethertype == ETH_P_IP
        && let Some(ip) = ptr_at::<[u8; 20]>(&ctx, ETH_HLEN)
    {
        // SAFETY: bounds checked by ptr_at.
        let ip = unsafe { &*ip };
        event.proto = ip[9];
        event.saddr = u32::from_ne_bytes([ip[12], ip[13], ip[14], ip[15]]);
        event.daddr = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
        let ihl = (ip[0] & 0x0f) as usize;
        let later_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
        if ihl >= 5
            && !later_fragment
            && let Some(head) = ptr_at::<[u8; 8]>(&ctx, ETH_HLEN + ihl * 4)
        {
            // SAFETY: bounds checked by ptr_at.
            let head = unsafe { &*head };
            match event.proto {
                IPPROTO_TCP | IPPROTO_UDP => {
                    event.sport = u16::from_ne_bytes([head[0], head[1]]);
                    event.dport = u16::from_ne_bytes([head[2], head[3]]);
                }
                IPPROTO_ICMP => {
                    event.sport = u16::from_ne_bytes([head[4], head[5]]);
                    event.dport = u16::from_ne_bytes([head[0], head[1]]);
                }
                _ => {}
            }
        }
    }
    entry.submit(0);
}
