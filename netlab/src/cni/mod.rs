//! `netlab-cni`: a CNI plugin (spec 0.4.0, 1.0.0, 1.1.0) whose network is
//! a netlab lab. A container runtime (podman's CNI backend, containerd,
//! CRI-O, kubelet) executes it once per operation with `CNI_*` variables
//! and the network configuration on stdin; the result or the error goes to
//! stdout as JSON, logs go to stderr.
//!
//! ADD brings the lab up if needed and attaches the container like a lab
//! namespace (see [`attach`]); DEL, CHECK, GC and STATUS work on the lab's
//! state file, under the lab lock.
//!
//! Test hook: `NETLAB_CNI_DIE_AT=STEP` makes the plugin SIGKILL itself
//! after STEP (`recorded`: the container's record is saved; `wired`: its
//! interfaces and switch port exist), as a runtime killing it would.

pub mod attach;
pub mod commands;
pub mod env;
pub mod error;
pub mod ipam;
pub mod sandbox;
pub mod types;

use std::io::{Read, Write};
use std::process::ExitCode;

pub const DIE_AT_ENV: &str = "NETLAB_CNI_DIE_AT";

/// Kills the plugin at `step` when the test hook asks for it.
pub(crate) fn fault_point(step: &str) {
    if std::env::var(DIE_AT_ENV).is_ok_and(|s| s == step) {
        eprintln!("netlab-cni: killed after step {step} ({DIE_AT_ENV})");
        // SAFETY: kill(2) on our own pid; nothing is borrowed.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// The version errors are written in: the configuration's when it names
/// a supported one, else the newest.
fn error_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
        .filter(|v| types::SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| types::SUPPORTED_VERSIONS.last().unwrap().to_string())
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => commands::run(&|k| std::env::var(k).ok(), &stdin),
        Err(e) => Err(error::CniError::new(
            error::code::IO_FAILURE,
            "cannot read the network configuration from stdin",
            e.to_string(),
        )),
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(json)) => {
            let _ = writeln!(out, "{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("netlab-cni: {e}");
            let _ = writeln!(out, "{}", e.to_json(&error_version(&stdin)));
            ExitCode::FAILURE
        }
    }
}
