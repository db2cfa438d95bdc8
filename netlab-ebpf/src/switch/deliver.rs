//! Sending a frame to one port, and to all of them (flooding).
//!
//! An endpoint port is the host end of a namespace's veth pair: a frame for
//! it is redirected to the *peer* of the port (`bpf_redirect_peer`), so it
//! enters the namespace directly, skipping the host-side veth and backlog.
//! The gateway port is the peer of `vbridge`: a frame for the host is put on
//! `vbridge`'s receive path (`bpf_redirect(vbridge, BPF_F_INGRESS)`).

use aya_ebpf::{
    bindings::{BPF_F_INGRESS, TC_ACT_REDIRECT, TC_ACT_SHOT},
    helpers::generated::{bpf_redirect, bpf_redirect_peer},
    programs::TcContext,
};
use netlab_common::{
    counters::Counter,
    maps::MAX_PORTS,
    switch::{PORT_KIND_GATEWAY, PortInfo},
};

use super::stats;
use crate::{
    counters::{count, count_n},
    maps::FLOOD_PORTS,
};

/// `PACKET_HOST` (linux/if_packet.h).
const PACKET_HOST: u32 = 0;

/// Redirects the frame to `target`. Returns the TC verdict on success; the
/// drop reason when the helper refused.
#[inline(always)]
pub fn to_port(ctx: &TcContext, target: &PortInfo) -> Result<i32, Counter> {
    let verdict = if target.kind == PORT_KIND_GATEWAY {
        // SAFETY: plain helper call; the flag is the only one it accepts.
        unsafe { bpf_redirect(target.deliver_ifindex, u64::from(BPF_F_INGRESS)) }
    } else {
        // The frame was classified on the port with the port's own MAC, so a
        // unicast for the namespace is PACKET_OTHERHOST here, and broadcast
        // requests turned into replies are PACKET_BROADCAST. redirect_peer
        // does not re-run eth_type_trans, and the namespace's IP stack drops
        // OTHERHOST frames: mark it as addressed to the receiving host.
        let _ = ctx.change_type(PACKET_HOST);
        // SAFETY: plain helper call; flags must be 0.
        unsafe { bpf_redirect_peer(target.deliver_ifindex, 0) }
    };
    if verdict == i64::from(TC_ACT_REDIRECT) {
        stats::tx(target.slot, ctx.len());
        Ok(verdict as i32)
    } else {
        Err(Counter::DropRedirectFailed)
    }
}

/// Sends a copy of the frame to every port of the flood list except the one
/// it came in on, and returns the verdict for the original (dropped: every
/// port that should see it got its own copy). Returns the number of copies.
/// `skip_gateway`: a VLAN-tagged frame from an endpoint, kept away from the
/// host stack (vlan.rs).
#[inline(always)]
pub fn flood(ctx: &TcContext, ingress: u32, skip_gateway: bool) -> (i32, u32) {
    let len = ctx.len();
    let mut copies: u32 = 0;
    // Bounded by MAX_PORTS so the verifier sees the loop end. Empty slots
    // (ifindex 0) are skipped, not a terminator: remove_port leaves holes.
    for slot in 0..MAX_PORTS {
        let Some(port) = FLOOD_PORTS.get(slot) else {
            break;
        };
        let (ifindex, kind, deliver) = (port.ifindex, port.kind, port.deliver_ifindex);
        if ifindex == 0 || ifindex == ingress || (skip_gateway && kind == PORT_KIND_GATEWAY) {
            continue;
        }
        // clone_redirect to an endpoint port's *egress* transmits on the
        // host end of the veth, so the copy arrives in the namespace and the
        // kernel sets pkt_type there; to the gateway: vbridge's receive path.
        let (to, flags) = if kind == PORT_KIND_GATEWAY {
            (deliver, u64::from(BPF_F_INGRESS))
        } else {
            (ifindex, 0)
        };
        // clone_redirect invalidates packet pointers; none is used after it.
        if ctx.clone_redirect(to, flags).is_ok() {
            copies += 1;
            stats::tx(slot, len);
        } else {
            count(Counter::DropRedirectFailed);
        }
    }
    count(Counter::Flooded);
    count_n(Counter::FloodCopies, u64::from(copies));
    (TC_ACT_SHOT, copies)
}
