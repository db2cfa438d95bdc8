//! The kernel datapath, the walkthrough itself: `vbridge` is a Linux bridge
//! holding the gateway address with the `veth-N-br` ends as its ports, and
//! `iptables -t nat -A POSTROUTING -s SUBNET -j MASQUERADE` in the host
//! namespace. Nothing more (no FORWARD rules, no br_netfilter settings), so
//! it stays the baseline the eBPF datapath is measured against.
//!
//! iptables is the one thing netlab shells out for: there is no stable
//! library for it, and the rule must be exactly what the walkthrough types.

use std::process::Command;

use crate::cidr::Ipv4Cidr;
use crate::netns::{self, NetnsError};
use crate::plan::LabPlan;
use crate::topology::{Netlink, TopologyError};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("cannot run iptables (the kernel datapath needs it)")]
    Spawn(#[source] std::io::Error),
    #[error("`{command}` failed ({status}): {stderr}")]
    Iptables {
        command: String,
        status: String,
        stderr: String,
    },
}

/// Creates the bridge `vbridge` (MAC 02:4e:<gateway>, gateway address),
/// then brings it up. Ports are added with [`enslave`]. Runs in the host
/// namespace.
pub fn create_bridge(nl: &Netlink, plan: &LabPlan) -> Result<(), KernelError> {
    nl.create_bridge(&plan.gateway_device, Some(plan.gateway_mac()))?;
    nl.add_address(&plan.gateway_device, plan.gateway, plan.subnet.prefix_len)?;
    nl.set_up(&plan.gateway_device)?;
    Ok(())
}

/// Makes `port` a port of the lab bridge.
pub fn enslave(nl: &Netlink, plan: &LabPlan, port: &str) -> Result<(), KernelError> {
    nl.set_controller(port, &plan.gateway_device)?;
    Ok(())
}

fn rule_args(op: &str, subnet: &Ipv4Cidr) -> Vec<String> {
    // -w: wait for the xtables lock; parallel labs run iptables at once.
    [
        "-w",
        "-t",
        "nat",
        op,
        "POSTROUTING",
        "-s",
        &subnet.to_string(),
        "-j",
        "MASQUERADE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn iptables(netns: Option<&str>, args: &[String]) -> Result<std::process::Output, KernelError> {
    xtables("iptables", netns, args)
}

/// `iptables` or `ip6tables` (`program`) with `args` in `netns`.
fn xtables(
    program: &str,
    netns: Option<&str>,
    args: &[String],
) -> Result<std::process::Output, KernelError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(ns) = netns {
        netns::command_in(&mut cmd, ns, false)?;
    }
    cmd.output().map_err(KernelError::Spawn)
}

fn run_checked(netns: Option<&str>, args: &[String]) -> Result<(), KernelError> {
    run_checked_with("iptables", netns, args)
}

fn run_checked_with(
    program: &str,
    netns: Option<&str>,
    args: &[String],
) -> Result<(), KernelError> {
    let out = xtables(program, netns, args)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(KernelError::Iptables {
            command: format!(
                "{}{program} {}",
                netns
                    .map(|n| format!("ip netns exec {n} "))
                    .unwrap_or_default(),
                args.join(" ")
            ),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// True when the MASQUERADE rule for `subnet` is present in `netns`.
pub fn masquerade_present(netns: Option<&str>, subnet: &Ipv4Cidr) -> Result<bool, KernelError> {
    Ok(iptables(netns, &rule_args("-C", subnet))?.status.success())
}

/// Appends the MASQUERADE rule in `netns` (None: netlab's own namespace).
pub fn add_masquerade(netns: Option<&str>, subnet: &Ipv4Cidr) -> Result<(), KernelError> {
    run_checked(netns, &rule_args("-A", subnet))
}

/// The `nat` table's lines of `iptables-save` in `netns` (from `*nat` to
/// its `COMMIT`), or None when the table does not exist. (`iptables-save
/// -t nat` would print an empty table even when there is none.)
fn saved_nat_table(netns: Option<&str>) -> Result<Option<Vec<String>>, KernelError> {
    let mut cmd = Command::new("iptables-save");
    if let Some(ns) = netns {
        netns::command_in(&mut cmd, ns, false)?;
    }
    let out = cmd.output().map_err(KernelError::Spawn)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().skip_while(|l| *l != "*nat");
    if lines.next().is_none() {
        return Ok(None);
    }
    Ok(Some(
        lines
            .take_while(|l| *l != "COMMIT")
            .map(str::to_string)
            .collect(),
    ))
}

/// Whether the `nat` table exists in `netns`. With iptables-nft (Debian's
/// default) it does not until a rule needs it, and then it stays, empty,
/// after the rule is deleted; `up` records that it made it.
pub fn nat_table_exists(netns: Option<&str>) -> Result<bool, KernelError> {
    Ok(saved_nat_table(netns)?.is_some())
}

/// Deletes the `nat` table that `up` caused to exist, if it holds no rule
/// and no chain of anyone else's (`nft delete table ip nat`, the one
/// command that removes an iptables-nft table). With iptables-legacy, or
/// without nft, the empty table stays: it filters nothing.
pub fn remove_nat_table_if_empty(netns: Option<&str>) -> Result<(), KernelError> {
    if let Some(ns) = netns
        && !netns::exists(ns)
    {
        return Ok(());
    }
    let Some(table) = saved_nat_table(netns)? else {
        return Ok(());
    };
    let builtin = [":PREROUTING ", ":INPUT ", ":OUTPUT ", ":POSTROUTING "];
    let in_use = table.iter().any(|l| {
        l.starts_with("-A ") || (l.starts_with(':') && !builtin.iter().any(|b| l.starts_with(b)))
    });
    if in_use {
        return Ok(());
    }
    let mut cmd = Command::new("nft");
    cmd.args(["delete", "table", "ip", "nat"]);
    if let Some(ns) = netns {
        netns::command_in(&mut cmd, ns, false)?;
    }
    match cmd.output() {
        Ok(out) if !out.status.success() => log::info!(
            "the empty iptables nat table stays: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => {}
        Err(e) => log::info!("the empty iptables nat table stays (cannot run nft: {e})"),
    }
    Ok(())
}

/// Deletes one MASQUERADE rule for `subnet`; nothing to do when the rule
/// or the namespace is gone.
pub fn remove_masquerade(netns: Option<&str>, subnet: &Ipv4Cidr) -> Result<(), KernelError> {
    if let Some(ns) = netns
        && !netns::exists(ns)
    {
        return Ok(());
    }
    if masquerade_present(netns, subnet)? {
        run_checked(netns, &rule_args("-D", subnet))?;
    }
    Ok(())
}

fn generic_args(op: &str, table: &str, chain: &str, args: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["-w", "-t", table, op, chain]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(args.iter().cloned());
    v
}

/// `ip6tables` for an IPv6 rule, else `iptables`.
fn program(ipv6: bool) -> &'static str {
    if ipv6 { "ip6tables" } else { "iptables" }
}

/// Appends `args` to `table`/`chain` in `netns` (with `ip6tables` when
/// `ipv6`) unless the same rule is already there (published ports,
/// `publish::portmap`).
pub fn add_rule(
    netns: Option<&str>,
    ipv6: bool,
    table: &str,
    chain: &str,
    args: &[String],
) -> Result<(), KernelError> {
    let program = program(ipv6);
    if xtables(program, netns, &generic_args("-C", table, chain, args))?
        .status
        .success()
    {
        return Ok(());
    }
    run_checked_with(program, netns, &generic_args("-A", table, chain, args))
}

/// Deletes the rule `args` from `table`/`chain` (with `ip6tables` when
/// `ipv6`); nothing to do when it or the namespace is gone.
pub fn remove_rule(
    netns: Option<&str>,
    ipv6: bool,
    table: &str,
    chain: &str,
    args: &[String],
) -> Result<(), KernelError> {
    if let Some(ns) = netns
        && !netns::exists(ns)
    {
        return Ok(());
    }
    let program = program(ipv6);
    if xtables(program, netns, &generic_args("-C", table, chain, args))?
        .status
        .success()
    {
        run_checked_with(program, netns, &generic_args("-D", table, chain, args))?;
    }
    Ok(())
}
