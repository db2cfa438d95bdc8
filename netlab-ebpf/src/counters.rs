//! Per-CPU counters by reason (`netlab stats`).

use aya_ebpf::{macros::map, maps::PerCpuArray};
use netlab_common::counters::Counter;

#[map(name = "counters")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(Counter::COUNT, 0);

/// Adds one to `counter` on this CPU. Per-CPU slots need no atomics.
#[inline(always)]
pub fn count(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from the map lookup and is this CPU's slot.
        unsafe { *slot += 1 };
    }
}
