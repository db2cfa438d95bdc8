//! netlab's eBPF programs. Entry points only; the logic lives in one module
//! per concern.
#![no_std]
#![no_main]

mod counters;
mod hdr;

use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};
use netlab_common::counters::Counter;

/// TC ingress of every switch port.
#[classifier]
pub fn netlab_port(_ctx: TcContext) -> i32 {
    counters::count(Counter::PortRx);
    TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
