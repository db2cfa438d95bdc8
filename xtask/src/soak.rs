//! `cargo xtask soak [--seconds N]`: the soak (tests/tests/soak.rs,
//! tests/src/soak.rs) for N seconds of traffic instead of the suite's
//! short run, with its summary printed at the end.
//!
//! Like `xtask fuzz`, it runs the integration test itself, driven by
//! environment variables, so the suite and the long run make the same
//! checks: NETLAB_SOAK_SECONDS (duration) and NETLAB_SOAK_SUMMARY (where
//! the test writes its summary).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::{cargo, setup, status};

pub fn run(root: &Path, seconds: u64) -> Result<()> {
    setup::require_root("cargo xtask soak")?;
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    // The test drives the real binary: build it and say where it is.
    status(cargo(root).args(["build", "-p", "netlab", "--bin", "netlab"]))?;
    let summary = root.join("target/soak-summary.txt");
    let _ = std::fs::remove_file(&summary);
    println!("soak: {seconds} s of traffic while the control plane restarts");
    let result = status(
        cargo(root)
            // --nocapture: the soak's progress lines (every few seconds).
            .args([
                "test",
                "-p",
                "netlab-tests",
                "--test",
                "soak",
                "--",
                "--nocapture",
            ])
            .env("NETLAB_BIN", root.join("target/debug/netlab"))
            .env("NETLAB_SOAK_SECONDS", seconds.to_string())
            .env("NETLAB_SOAK_SUMMARY", &summary),
    );
    if let Err(e) = result {
        bail!("the soak failed (its report and the problems are above): {e}");
    }
    let text = std::fs::read_to_string(&summary)
        .with_context(|| format!("the soak wrote no summary to {}", summary.display()))?;
    println!("\n{text}");
    println!("reproduce with `cargo xtask soak --seconds {seconds}`");
    Ok(())
}
