//! XDP programs: they run in the driver's receive path, before the kernel
//! builds an skb, so what they drop costs no allocation at all.
//!
//! * [`uplink`]: the uplink's receive side drops what can only be dropped
//!   (the rule of `nat::inbound`) and passes the rest on to the kernel,
//!   where the uplink TC ingress translates replies. The TC program stays
//!   complete on its own: where XDP is not attached it applies the same
//!   rule.
//! * [`port`]: the switch as an XDP program on every port (datapath
//!   "ebpf-xdp"), the TC port program behind it for what it passes.

mod events;
pub mod port;
pub mod uplink;

use aya_ebpf::programs::XdpContext;

/// Pointer to a `T` at `offset` bytes into the frame, if it fits. An XDP
/// frame's bytes are all linear (the programs are not `xdp.frags`), so
/// there is nothing to pull, unlike `crate::hdr` for TC.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *const T)
}
