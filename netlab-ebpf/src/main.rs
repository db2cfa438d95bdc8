//! netlab's eBPF programs. Entry points only; the logic lives in one module
//! per concern.
#![no_std]
#![no_main]

mod counters;
mod hdr;
mod log;
mod switch;

use aya_ebpf::{macros::classifier, programs::TcContext};

/// TC ingress (tcx) of every switch port: `veth-N-br` and the gateway port.
#[classifier]
pub fn netlab_port(ctx: TcContext) -> i32 {
    switch::port_ingress(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
