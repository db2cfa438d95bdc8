//! What every command needs before it runs: the lab it names (`--lab`,
//! else the lab file's name), root's capabilities, and, in root mode, the
//! namespace the lab was brought up in.

use anyhow::{Context, bail};

use super::args::{Cli, Command};
use crate::{config::LabConfig, names::DEFAULT_LAB_NAME, state};

/// CAP_NET_ADMIN (12) for devices and routes, CAP_SYS_ADMIN (21) for
/// namespaces and mounts: checked up front so a plain user gets one clear
/// message instead of a failure half way.
pub fn require_privileges() -> anyhow::Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = [(12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| cap_eff & (1u64 << bit) == 0)
        .map(|(_, name)| name)
        .collect();
    if !missing.is_empty() {
        bail!(
            "netlab creates network namespaces and devices and needs root (missing {}); run it with sudo",
            missing.join(", ")
        );
    }
    Ok(())
}

pub fn load_config(cli: &Cli) -> anyhow::Result<LabConfig> {
    Ok(match &cli.file {
        Some(path) => LabConfig::from_file(path)?,
        None => LabConfig::default(),
    })
}

/// --lab, else the lab file's name, else "netlab".
pub fn lab_name(cli: &Cli) -> anyhow::Result<String> {
    if let Some(l) = &cli.lab {
        return Ok(l.clone());
    }
    Ok(load_config(cli)?
        .name
        .unwrap_or_else(|| DEFAULT_LAB_NAME.into()))
}

pub fn running_state(lab: &str) -> anyhow::Result<state::LabState> {
    state::peek(lab)?.with_context(|| {
        let others = state::labs();
        if others.is_empty() {
            format!("lab {lab} is not up (no labs are)")
        } else {
            format!(
                "lab {lab} is not up (labs up: {}; pick one with --lab)",
                others.join(", ")
            )
        }
    })
}

/// Root mode: moves this process into the namespace lab `lab` was brought
/// up in when it is elsewhere and the namespace has an `ip netns` name
/// (crate::hostns); refuses when it cannot be reached. Runs on the main
/// thread before any other starts, so every thread and child (the daemon,
/// iptables) works there. `down` may go on when the namespace is gone: it
/// then removes what did not go with it.
pub fn enter_lab_host(lab: &str, down: bool) -> anyhow::Result<()> {
    let Some(state) = state::peek(lab)? else {
        return Ok(());
    };
    let Some(host) = &state.host else {
        return Ok(());
    };
    require_privileges()?;
    match crate::hostns::enter(lab, host)? {
        crate::hostns::Placement::Gone if !down => bail!(
            "lab {lab}'s host side, {host}, is gone; `netlab down --lab {lab}` removes what is left"
        ),
        _ => Ok(()),
    }
}

/// The lab a command works on (None: `exec`, `bench`, which name none).
pub fn lab_of_command(cli: &Cli) -> anyhow::Result<Option<String>> {
    Ok(match &cli.command {
        Command::Exec { .. } | Command::Bench(_) => None,
        _ => Some(lab_name(cli)?),
    })
}
