//! The kernel's BPF run-time statistics.
//!
//! `BPF_ENABLE_STATS` returns an fd: while it is open, every program
//! accumulates `run_time_ns` and `run_cnt`, and when it closes they switch
//! off again (no sysctl of the machine changes). The benchmark keeps it
//! open while it measures, the metrics server while it serves; the
//! difference of two readings divided by the runs is a program's average
//! cost per run.

use std::{collections::BTreeMap, os::fd::OwnedFd};

use aya::programs::{ProgramInfo, loaded_programs};

/// Keeps run-time statistics on while alive.
pub struct StatsOn(#[allow(dead_code)] OwnedFd);

/// Switches BPF run-time statistics on (None when the kernel refuses; the
/// callers then report no program costs rather than failing).
pub fn enable() -> Option<StatsOn> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .ok()
        .map(StatsOn)
}

/// Accumulated (run time ns, runs) of one program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub run_ns: u64,
    pub runs: u64,
}

/// The totals of the loaded programs among `ids` (kernel program id →
/// the name to report it under); a program no longer loaded is left out.
pub fn of_programs(ids: &BTreeMap<u32, String>) -> BTreeMap<String, Totals> {
    let mut out = BTreeMap::new();
    for info in loaded_programs().flatten() {
        if let Some(name) = ids.get(&info.id()) {
            out.insert(name.clone(), totals(&info));
        }
    }
    out
}

fn totals(info: &ProgramInfo) -> Totals {
    Totals {
        run_ns: info.run_time().as_nanos() as u64,
        runs: info.run_count(),
    }
}
