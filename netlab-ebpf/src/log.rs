//! aya-log trace events, one per frame, emitted only while
//! `SwitchConfig.trace` is set (`netlab trace`), so tracing costs one array
//! lookup per frame when off and can be switched without reloading.
//!
//! Two `debug!` sites, not one per outcome: each site inlines its own
//! record writer (~400 instructions), and `bench --micro` measured four
//! sites at 53% of `netlab_port`. Drops carry their `Counter` index, which
//! `netlab trace` prints by name.

use aya_ebpf::programs::TcContext;
use aya_log_ebpf::debug;

use crate::switch::{Frame, Outcome};

#[inline(always)]
pub fn frame(ctx: &TcContext, ingress: u32, frame: &Frame, outcome: &Outcome) {
    let (src, dst, ethertype) = (frame.src, frame.dst, frame.ethertype);
    // "<what> <n><tail>": `n` is a port, a copy count or a drop reason.
    let (what, n, tail) = match *outcome {
        Outcome::Unicast { to, .. } => ("unicast to port", to, ""),
        Outcome::ArpAnswered { ip, .. } => {
            debug!(
                ctx,
                "port {}: {:mac} asks who-has {:i}: answered", ingress, src, ip
            );
            return;
        }
        Outcome::Flooded { copies, .. } => ("flooded to", copies, " ports"),
        Outcome::Dropped(reason) => ("dropped, reason", reason as u32, ""),
    };
    debug!(
        ctx,
        "port {}: {:mac} > {:mac} type {:x}: {} {}{}", ingress, src, dst, ethertype, what, n, tail
    );
}
