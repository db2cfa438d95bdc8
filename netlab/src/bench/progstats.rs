//! What the eBPF programs themselves cost, measured by the kernel.
//!
//! While the bench runs, BPF run-time statistics are on
//! (`crate::bpf::runstats`); the difference over one measurement divided
//! by the runs is each program's average cost per packet on that workload —
//! the part of the datapath's cost that is netlab's own code, as opposed to
//! the veth, the stack and the sockets around it.

use std::{collections::BTreeMap, path::Path};

use crate::bpf::runstats::Totals;

/// The lab's programs (those attached through its pinned links), by name.
pub fn snapshot(lab: &str, uplink: &str) -> BTreeMap<String, Totals> {
    crate::inspect::programs::run_totals(&crate::datapath::ebpf::pin_dir(lab), uplink)
}

/// Fewer runs than this in one measurement say nothing about the workload
/// (an ARP or IPv6 neighbour frame on the uplink during a namespace-to-
/// namespace test, cold caches and all): such programs are left out.
pub const MIN_RUNS: u64 = 1000;

/// Per-program (ns per run, runs) between two snapshots; programs that ran
/// fewer than [`MIN_RUNS`] times are left out.
pub fn per_run(
    before: &BTreeMap<String, Totals>,
    after: &BTreeMap<String, Totals>,
) -> BTreeMap<String, (f64, u64)> {
    let mut out = BTreeMap::new();
    for (name, a) in after {
        let b = before.get(name).copied().unwrap_or_default();
        let runs = a.runs.saturating_sub(b.runs);
        if runs >= MIN_RUNS {
            let ns = a.run_ns.saturating_sub(b.run_ns) as f64 / runs as f64;
            out.insert(name.clone(), (ns, runs));
        }
    }
    out
}

/// Whether the pinned lab directory exists (only eBPF labs have one).
pub fn has_programs(lab: &str) -> bool {
    Path::new(&crate::datapath::ebpf::pin_dir(lab)).is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_run_divides_the_differences() {
        let t = |run_ns, runs| Totals { run_ns, runs };
        let before = BTreeMap::from([
            ("a".to_string(), t(1000, 10)),
            ("b".to_string(), t(5, 1)),
            ("d".to_string(), t(0, 0)),
        ]);
        let after = BTreeMap::from([
            ("a".to_string(), t(201_000, 2010)),
            ("b".to_string(), t(5, 1)),
            ("c".to_string(), t(400_000, 4000)),
            ("d".to_string(), t(9_000, 3)),
        ]);
        let got = per_run(&before, &after);
        assert_eq!(got["a"], (100.0, 2000));
        assert!(!got.contains_key("b"), "b did not run");
        assert_eq!(got["c"], (100.0, 4000));
        assert!(!got.contains_key("d"), "3 runs say nothing");
    }
}
