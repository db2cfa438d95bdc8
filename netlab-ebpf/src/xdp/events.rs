//! Drop events of the XDP programs into the monitor's ring buffer (the
//! record and the gate are `crate::events`'s; this reads the frame through
//! the XDP context instead of an skb).

use aya_ebpf::{bindings::xdp_md, programs::XdpContext};
use netlab_common::{counters::Counter, events::EVENT_DROP};

use super::ptr_at;
use crate::events::{
    ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPV6_HLEN, enabled, ethertype_of, fill_ethernet, fill_ipv4,
    fill_ipv6, fill_ports, reserve, reserve6,
};

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
    let ingress = ctx.ingress_ifindex() as u32;
    if let Some(eth) = ptr_at::<[u8; ETH_HLEN]>(&ctx, 0)
        // SAFETY: bounds checked by ptr_at.
        && ethertype_of(unsafe { &*eth }) == ETH_P_IPV6
    {
        let Some(mut entry) = reserve6(EVENT_DROP, program) else {
            return;
        };
        // SAFETY: `reserve6` initialised the record.
        let event = unsafe { entry.assume_init_mut() };
        event.event.reason = reason;
        event.event.ifindex = ingress;
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
        entry.submit(0);
        return;
    }
    let Some(mut entry) = reserve(EVENT_DROP, program) else {
        return;
    };
    // SAFETY: `reserve` initialised the record.
    let event = unsafe { entry.assume_init_mut() };
    event.reason = reason;
    event.ifindex = ingress;
    if let Some(eth) = ptr_at::<[u8; ETH_HLEN]>(&ctx, 0) {
        // SAFETY: bounds checked by ptr_at.
        fill_ethernet(event, unsafe { &*eth });
    }
    if event.ethertype == ETH_P_IP
        && let Some(ip) = ptr_at::<[u8; 20]>(&ctx, ETH_HLEN)
        // SAFETY: bounds checked by ptr_at.
        && let Some(l4) = fill_ipv4(event, unsafe { &*ip })
        && let Some(head) = ptr_at::<[u8; 8]>(&ctx, l4)
    {
        // SAFETY: bounds checked by ptr_at.
        fill_ports(event, unsafe { &*head });
    }
    entry.submit(0);
}
