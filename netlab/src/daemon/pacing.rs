//! How often the daemon sweeps: often enough that expiry stays precise,
//! rarely enough that a large table costs little CPU.

use std::time::Duration;

use crate::{nat, plan::NatTimeouts};

/// A sweep may cost at most 1/SWEEP_COST_SHARE of one CPU: after a sweep
/// that took T, the next starts no sooner than SWEEP_COST_SHARE·T after it.
/// Measured on a 2-core machine, traffic loses about the share of a CPU the
/// daemon takes (37 % of one CPU cost the connection rate 34 %), and the
/// benchmark's target allows 5 % with a full table: hence 2 %.
const SWEEP_COST_SHARE: u32 = 50;

/// However costly sweeps are, one runs at least every 1/SWEEP_PRECISION of
/// the shortest timeout, so a flow never outlives its timeout by more than
/// that share of it.
const SWEEP_PRECISION: u32 = 4;

/// The time from the start of a sweep that took `took` to the start of the
/// next one.
///
/// A sweep reads the whole table (a few syscalls per 4096 entries, then the
/// join in userspace), so its cost grows with the table, not with what
/// expires: 100 000 flows take tens of milliseconds. Sweeping such a table
/// every `interval` regardless would keep a core busy in proportion (before
/// batched reads, 40 % of one on a 2-core machine, taken from the traffic
/// it serves). So the delay is stretched to `SWEEP_COST_SHARE` times the
/// sweep's own duration (the daemon spends at most 2 % of one CPU on
/// expiry), but never beyond a quarter of the shortest timeout, so expiry
/// stays precise to within that share of every timeout; `interval` remains
/// the shortest delay. A small table sweeps in well under a millisecond and
/// keeps `interval`.
pub fn next_sweep_delay(
    interval: Duration,
    took: Duration,
    shortest_timeout: Duration,
) -> Duration {
    let ceiling = (shortest_timeout / SWEEP_PRECISION).max(interval);
    (took * SWEEP_COST_SHARE).clamp(interval, ceiling)
}

/// The shortest of the flow timeouts and the fragment timeout.
pub fn shortest_timeout(t: &NatTimeouts) -> Duration {
    let secs = [t.tcp_established, t.tcp_closing, t.tcp_syn, t.udp, t.icmp]
        .into_iter()
        .min()
        .unwrap_or(0);
    Duration::from_secs(secs).min(nat::FRAG_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn cheap_sweeps_keep_the_interval() {
        assert_eq!(next_sweep_delay(S, MS, 30 * S), S);
        assert_eq!(next_sweep_delay(S, 20 * MS, 30 * S), S);
        assert_eq!(next_sweep_delay(5 * S, 100 * MS, 30 * S), 5 * S);
    }

    #[test]
    fn costly_sweeps_are_spaced_to_fifty_times_their_duration() {
        assert_eq!(next_sweep_delay(S, 40 * MS, 30 * S), 2 * S);
        assert_eq!(next_sweep_delay(S, 80 * MS, 30 * S), 4 * S);
    }

    #[test]
    fn the_delay_never_exceeds_a_quarter_of_the_shortest_timeout() {
        assert_eq!(next_sweep_delay(S, 200 * MS, 30 * S), 7500 * MS);
        // An interval longer than that quarter is the user's choice.
        assert_eq!(next_sweep_delay(10 * S, 2 * S, 8 * S), 10 * S);
        // Tiny timeouts (tests): never below the interval.
        assert_eq!(next_sweep_delay(S, 200 * MS, 2 * S), S);
    }

    #[test]
    fn the_shortest_timeout_includes_fragments() {
        let t = NatTimeouts::default();
        assert_eq!(shortest_timeout(&t), Duration::from_secs(t.udp.min(t.icmp)));
        let t = NatTimeouts {
            udp: 5,
            ..Default::default()
        };
        assert_eq!(shortest_timeout(&t), 5 * S);
        let t = NatTimeouts {
            tcp_established: 3600,
            tcp_closing: 600,
            tcp_syn: 600,
            udp: 600,
            icmp: 600,
        };
        assert_eq!(shortest_timeout(&t), nat::FRAG_TIMEOUT);
    }
}
