//! netlab's eBPF programs. Entry points only; the logic lives in one module
//! per concern.
#![no_std]
#![no_main]

mod btf_map;
mod counters;
mod csum;
mod events;
mod hdr;
mod log;
mod nat;
mod switch;

use aya_ebpf::{macros::classifier, programs::TcContext};

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

/// Not attached anywhere: `netlab daemon` runs it with BPF_PROG_TEST_RUN
/// to put the NAT expiries its sweep finds into the event stream.
#[classifier]
pub fn netlab_event_inject(ctx: TcContext) -> i32 {
    events::inject(&ctx);
    aya_ebpf::bindings::TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
