//! netlab's eBPF programs. Entry points only; the logic lives in one module
//! per concern.
#![no_std]
#![no_main]

use aya_ebpf::{bindings::TC_ACT_OK, macros::{classifier, map}, maps::PerCpuArray, programs::TcContext};
use netlab_common::counters::Counter;

#[map(name = "counters")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

#[classifier]
pub fn netlab_port(_ctx: TcContext) -> i32 {
    if let Some(c) = COUNTERS.get_ptr_mut(Counter::PortRx as u32) {
        unsafe { *c += 1 };
    }
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
