//! Per-port statistics (per CPU, indexed by the port's slot).

use netlab_common::counters::PortStats;

use crate::maps::PORT_STATS;

#[inline(always)]
fn with_slot(slot: u32, f: impl FnOnce(&mut PortStats)) {
    if let Some(stats) = PORT_STATS.get_ptr_mut(slot) {
        // SAFETY: a per-CPU slot of a map value; nothing else writes it on
        // this CPU while the program runs.
        f(unsafe { &mut *stats });
    }
}

/// A frame entered the switch on this port.
#[inline(always)]
pub fn rx(slot: u32, bytes: u32) {
    with_slot(slot, |s| {
        s.rx_packets += 1;
        s.rx_bytes += u64::from(bytes);
    });
}

/// A frame (or a flood copy) left the switch through this port.
#[inline(always)]
pub fn tx(slot: u32, bytes: u32) {
    with_slot(slot, |s| {
        s.tx_packets += 1;
        s.tx_bytes += u64::from(bytes);
    });
}

/// A frame that entered on this port was dropped.
#[inline(always)]
pub fn drop(slot: u32) {
    with_slot(slot, |s| s.drops += 1);
}
