//! aya-log trace events, one per frame, emitted only while
//! `SwitchConfig.trace` is set (`netlab trace`), so tracing costs one array
//! lookup per frame when off and can be switched without reloading.

use aya_ebpf::programs::TcContext;
use aya_log_ebpf::debug;

use crate::switch::{Frame, Outcome};

#[inline(always)]
pub fn frame(ctx: &TcContext, ingress: u32, frame: &Frame, outcome: &Outcome) {
    let (src, dst, ethertype) = (frame.src, frame.dst, frame.ethertype);
    match *outcome {
        Outcome::Unicast { to, .. } => debug!(
            ctx,
            "port {}: {:mac} > {:mac} type {:x}: unicast to port {}",
            ingress,
            src,
            dst,
            ethertype,
            to
        ),
        Outcome::ArpAnswered { ip, .. } => debug!(
            ctx,
            "port {}: {:mac} asks who-has {:i}: answered", ingress, src, ip
        ),
        Outcome::Flooded { copies, .. } => debug!(
            ctx,
            "port {}: {:mac} > {:mac} type {:x}: flooded to {} ports",
            ingress,
            src,
            dst,
            ethertype,
            copies
        ),
        Outcome::Dropped(reason) => debug!(
            ctx,
            "port {}: {:mac} > {:mac} type {:x}: dropped ({})",
            ingress,
            src,
            dst,
            ethertype,
            reason.name()
        ),
    }
}
