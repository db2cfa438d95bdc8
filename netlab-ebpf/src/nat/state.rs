//! Per-entry bookkeeping: last-seen time and the TCP state that decides the
//! entry's timeout (userspace expires entries; see netlab::nat::sweep).
//!
//! Each direction refreshes its own entry's last-seen time (userspace takes
//! the later of the two). The TCP state is kept equal in both entries: when
//! a packet changes it, the other direction's entry is updated too, so
//! either map alone tells the flow's state.

use netlab_common::{
    nat::{
        NAT_STATE_NONE, NAT_STATE_TCP_CLOSING, NAT_STATE_TCP_ESTABLISHED, NAT_STATE_TCP_SYN,
        NatEntry,
    },
    nat6::Nat6Entry,
};

/// A translation entry of either family: what [`touch`] updates.
pub trait Tracked {
    fn last_seen_ns(&mut self) -> &mut u64;
    fn state(&mut self) -> &mut u8;
}

impl Tracked for NatEntry {
    #[inline(always)]
    fn last_seen_ns(&mut self) -> &mut u64 {
        &mut self.last_seen_ns
    }
    #[inline(always)]
    fn state(&mut self) -> &mut u8 {
        &mut self.state
    }
}

impl Tracked for Nat6Entry {
    #[inline(always)]
    fn last_seen_ns(&mut self) -> &mut u64 {
        &mut self.last_seen_ns
    }
    #[inline(always)]
    fn state(&mut self) -> &mut u8 {
        &mut self.state
    }
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// The TCP state after a packet with `flags` (either direction). A simple
/// model, enough to pick a timeout: FIN/RST close, a bare SYN opens, an ACK
/// answering the SYN establishes, a flow first seen mid-stream is
/// established.
#[inline(always)]
pub fn next_tcp_state(cur: u8, flags: u8) -> u8 {
    if flags & (TCP_FIN | TCP_RST) != 0 {
        NAT_STATE_TCP_CLOSING
    } else if flags & TCP_SYN != 0 && flags & TCP_ACK == 0 {
        NAT_STATE_TCP_SYN
    } else if (cur == NAT_STATE_TCP_SYN && flags & TCP_ACK != 0) || cur == NAT_STATE_NONE {
        NAT_STATE_TCP_ESTABLISHED
    } else {
        cur
    }
}

/// Refreshes `entry` for a packet seen now. Returns the new TCP state when
/// it changed (the caller mirrors it into the other direction's entry).
///
/// # Safety
/// `entry` must be a valid map value pointer.
#[inline(always)]
pub unsafe fn touch<E: Tracked>(entry: *mut E, now: u64, tcp_flags: Option<u8>) -> Option<u8> {
    // Racing CPUs may interleave these plain stores; any of their values is
    // a correct last-seen time / state.
    let entry = unsafe { &mut *entry };
    *entry.last_seen_ns() = now;
    let flags = tcp_flags?;
    let cur = *entry.state();
    let next = next_tcp_state(cur, flags);
    if next == cur {
        return None;
    }
    *entry.state() = next;
    Some(next)
}
