//! The soak (issue 7, "Load"; tests/src/soak.rs): traffic from every
//! namespace at once through the NAT while `netlab daemon` is killed and
//! restarted every few seconds and `netlab up` re-adopts the running lab.
//! Zero failed connections, every long-lived connection survives every
//! restart, the NAT table drains to zero after its (short) timeouts, and
//! the daemon's memory stays flat.
//!
//! The suite runs it for a short while (12 s); `cargo xtask soak --seconds
//! N` runs the same test for N seconds (`NETLAB_SOAK_SECONDS`) and prints
//! its summary. The lab is `ts1` on 10.81.1.0/24 in the suite, `ts2` on
//! 10.81.2.0/24 for long runs, so both can run at once.

use std::time::Duration;

use netlab_tests::TestLab;
use netlab_tests::soak::{self, LAB_NAT_TIMEOUTS, SoakOptions};

/// Seconds of traffic in the suite's run.
const SUITE_SECONDS: u64 = 12;
/// Set by `cargo xtask soak`: seconds of traffic.
const SECONDS_ENV: &str = "NETLAB_SOAK_SECONDS";
/// Set by `cargo xtask soak`: where to write the summary.
const SUMMARY_ENV: &str = "NETLAB_SOAK_SUMMARY";

#[test]
fn soak_through_nat_while_the_control_plane_restarts() {
    let long_run = std::env::var(SECONDS_ENV).ok().map(|s| {
        s.parse::<u64>()
            .unwrap_or_else(|_| panic!("{SECONDS_ENV}={s:?} is not a number of seconds"))
    });
    let seconds = long_run.unwrap_or(SUITE_SECONDS);
    let k = if long_run.is_some() { 2 } else { 1 };
    let lab = TestLab::in_net(&format!("s{k}"), 81, k, 3, LAB_NAT_TIMEOUTS);
    // The soak runs (kills, restarts) its own daemon.
    lab.ok(&["up", "--no-daemon"]);

    let opts = SoakOptions::for_duration(Duration::from_secs(seconds));
    let report = soak::run(&lab, &opts);
    println!("{report}");
    if let Some(path) = std::env::var_os(SUMMARY_ENV) {
        std::fs::write(&path, format!("{report}\n")).expect("write the soak summary");
    }
    let problems = report.problems(&opts);
    assert!(
        problems.is_empty(),
        "the soak failed:\n{}\n{report}",
        problems.join("\n")
    );

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}
