//! `cargo xtask fuzz --cases N [--seed S]`: a long run of the BPF program
//! fuzzer (tests/tests/fuzz_programs.rs) with N cases per program, IPv4
//! and IPv6 frames alike (the IPv6 share of the uplink's cases is
//! reported apart, as "(IPv6)").
//!
//! The fuzzer is the integration test itself, driven by two environment
//! variables, so the suite's short run and the long runs here share every
//! check. Without `--seed` a fresh seed is drawn and printed first; any
//! failure prints the seed and the exact command that reproduces it.

use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Result, bail};

use crate::{cargo, setup};

/// A seed nobody chose: the clock and the process id, mixed.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ ((std::process::id() as u64) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

pub fn run(root: &Path, cases: u64, seed: Option<u64>) -> Result<()> {
    setup::require_root("cargo xtask fuzz")?;
    let seed = seed.unwrap_or_else(fresh_seed);
    println!("fuzzing every BPF program: {cases} cases per program, seed {seed:#x}");
    let status = cargo(root)
        .args([
            "test",
            "-p",
            "netlab-tests",
            "--test",
            "fuzz_programs",
            "--",
            "--nocapture",
            "fuzzed_frames",
        ])
        .env("NETLAB_FUZZ_SEED", format!("{seed:#x}"))
        .env("NETLAB_FUZZ_CASES", cases.to_string())
        .status()?;
    if !status.success() {
        bail!(
            "fuzzing found failures with seed {seed:#x}; reproduce with \
             `cargo xtask fuzz --cases {cases} --seed {seed:#x}`"
        );
    }
    println!("fuzzing passed: {cases} cases per program, seed {seed:#x}");
    Ok(())
}

/// Parses a seed given as decimal or 0x-prefixed hex (for clap).
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    }
    .map_err(|e| format!("`{text}` is not a seed (decimal or 0x hex): {e}"))
}
