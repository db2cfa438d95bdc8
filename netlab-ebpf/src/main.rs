//! netlab's eBPF programs. Entry points only; the logic lives in one module
//! per concern.
#![no_std]
#![no_main]

mod counters;
mod csum;
mod hdr;
mod nat;

use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};
use netlab_common::counters::Counter;

/// TC ingress of every switch port.
#[classifier]
pub fn netlab_port(_ctx: TcContext) -> i32 {
    counters::count(Counter::PortRx);
    TC_ACT_OK
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
