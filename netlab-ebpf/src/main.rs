//! netlab's eBPF programs. Entry points only; the logic lives in one module
//! per concern.
#![no_std]
#![no_main]

mod btf_map;
mod counters;
mod csum;
mod hdr;
mod log;
mod nat;
mod switch;
mod xdp;

use aya_ebpf::{
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

/// TC ingress (tcx) of every switch port: `veth-N-br` and the gateway port.
#[classifier]
pub fn netlab_port(ctx: TcContext) -> i32 {
    switch::port_ingress(&ctx)
}

/// TC egress of the uplink: source NAT (masquerade).
#[classifier]
pub fn netlab_uplink_egress(ctx: TcContext) -> i32 {
    nat::egress(ctx)
}

/// TC ingress of the uplink: reverse NAT of replies and ICMP errors.
#[classifier]
pub fn netlab_uplink_ingress(ctx: TcContext) -> i32 {
    nat::ingress(ctx)
}

/// XDP on the uplink's receive side: drops what can only be dropped
/// before an skb exists, passes the rest to the TC ingress.
#[xdp]
pub fn netlab_uplink_xdp(ctx: XdpContext) -> u32 {
    xdp::uplink::uplink(&ctx)
}

/// XDP of every switch port on the "ebpf-xdp" datapath: the switch before
/// an skb exists; what it passes goes on to `netlab_port`.
#[xdp]
pub fn netlab_xdp_port(ctx: XdpContext) -> u32 {
    xdp::port::port(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
