//! Per-CPU counters by reason (`netlab stats`).

use netlab_common::counters::Counter;

use crate::maps::COUNTERS;

/// Adds one to `counter` on this CPU. Per-CPU slots need no atomics.
#[inline(always)]
pub fn count(counter: Counter) {
    count_n(counter, 1);
}

/// Adds `n` to `counter` on this CPU.
#[inline(always)]
pub fn count_n(counter: Counter, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from the map lookup and is this CPU's slot.
        unsafe { *slot += n };
    }
}
