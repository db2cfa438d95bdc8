//! The kernel datapath, the walkthrough itself: `vbridge` is a Linux bridge
//! holding the gateway address with the `veth-N-br` ends as its ports, and
//! `iptables -t nat -A POSTROUTING -s SUBNET -j MASQUERADE` in the host
//! namespace; with IPv6, what Docker does for it too: the bridge carries
//! IPv6 and `ip6tables -t nat -A POSTROUTING -s SUBNET6 -j MASQUERADE`.
//! Nothing more (no FORWARD rules, no br_netfilter settings), so it stays
//! the baseline the eBPF datapath is measured against.
//!
//! iptables is the one thing netlab shells out for: there is no stable
//! library for it, and the rule must be exactly what the walkthrough types.

use std::fmt;
use std::process::Command;
use std::str::FromStr;

use crate::cidr::{Ipv4Cidr, Ipv6Cidr};
use crate::netns::{self, NetnsError};
use crate::plan::LabPlan;
use crate::topology::{Netlink, TopologyError};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("cannot run iptables/ip6tables (the kernel datapath needs them)")]
    Spawn(#[source] std::io::Error),
    #[error("`{command}` failed ({status}): {stderr}")]
    Iptables {
        command: String,
        status: String,
        stderr: String,
    },
}

/// Creates the bridge `vbridge` (MAC 02:4e:<gateway>, gateway address),
/// still down (the caller applies the device's IPv6 settings, then brings
/// it up). Ports are added with [`enslave`]. Runs in the host namespace.
pub fn create_bridge(nl: &Netlink, plan: &LabPlan) -> Result<(), KernelError> {
    nl.create_bridge(&plan.gateway_device, Some(plan.gateway_mac()))?;
    nl.add_address(&plan.gateway_device, plan.gateway, plan.subnet.prefix_len)?;
    Ok(())
}

/// Makes `port` a port of the lab bridge.
pub fn enslave(nl: &Netlink, plan: &LabPlan, port: &str) -> Result<(), KernelError> {
    nl.set_controller(port, &plan.gateway_device)?;
    Ok(())
}

/// Which iptables a rule or table belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn from_ipv6(ipv6: bool) -> Self {
        if ipv6 { Family::Ipv6 } else { Family::Ipv4 }
    }

    /// The command: `iptables` or `ip6tables`.
    pub fn command(self) -> &'static str {
        match self {
            Family::Ipv4 => "iptables",
            Family::Ipv6 => "ip6tables",
        }
    }

    fn save_command(self) -> &'static str {
        match self {
            Family::Ipv4 => "iptables-save",
            Family::Ipv6 => "ip6tables-save",
        }
    }

    /// The nftables family its tables live in (iptables-nft).
    fn nft(self) -> &'static str {
        match self {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ip6",
        }
    }
}

/// A subnet the kernel datapath masquerades: the lab's IPv4 subnet or
/// its IPv6 one. The state file records it as text; either parses back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masqueraded {
    V4(Ipv4Cidr),
    V6(Ipv6Cidr),
}

impl Masqueraded {
    pub fn family(&self) -> Family {
        match self {
            Masqueraded::V4(_) => Family::Ipv4,
            Masqueraded::V6(_) => Family::Ipv6,
        }
    }

    /// Every subnet `plan` masquerades on the kernel datapath.
    pub fn of(plan: &LabPlan) -> Vec<Masqueraded> {
        let mut v = vec![Masqueraded::V4(plan.subnet)];
        v.extend(plan.ipv6.map(|v6| Masqueraded::V6(v6.subnet)));
        v
    }
}

impl fmt::Display for Masqueraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Masqueraded::V4(c) => c.fmt(f),
            Masqueraded::V6(c) => c.fmt(f),
        }
    }
}

impl FromStr for Masqueraded {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse().map(Masqueraded::V6)
        } else {
            s.parse().map(Masqueraded::V4)
        }
    }
}

fn rule_args(op: &str, subnet: &Masqueraded) -> Vec<String> {
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

fn iptables(
    family: Family,
    netns: Option<&str>,
    args: &[String],
) -> Result<std::process::Output, KernelError> {
    let mut cmd = Command::new(family.command());
    cmd.args(args);
    if let Some(ns) = netns {
        netns::command_in(&mut cmd, ns, false)?;
    }
    cmd.output().map_err(KernelError::Spawn)
}

fn run_checked(family: Family, netns: Option<&str>, args: &[String]) -> Result<(), KernelError> {
    let out = iptables(family, netns, args)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(KernelError::Iptables {
            command: format!(
                "{}{} {}",
                netns
                    .map(|n| format!("ip netns exec {n} "))
                    .unwrap_or_default(),
                family.command(),
                args.join(" ")
            ),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// True when the MASQUERADE rule for `subnet` is present in `netns`.
pub fn masquerade_present(netns: Option<&str>, subnet: &Masqueraded) -> Result<bool, KernelError> {
    Ok(iptables(subnet.family(), netns, &rule_args("-C", subnet))?
        .status
        .success())
}

/// Appends the MASQUERADE rule in `netns` (None: netlab's own namespace).
pub fn add_masquerade(netns: Option<&str>, subnet: &Masqueraded) -> Result<(), KernelError> {
    run_checked(subnet.family(), netns, &rule_args("-A", subnet))
}

/// The `nat` table's lines of `iptables-save` (`ip6tables-save`) in
/// `netns` (from `*nat` to its `COMMIT`), or None when the table does not
/// exist. (`iptables-save -t nat` would print an empty table even when
/// there is none.)
fn saved_nat_table(
    family: Family,
    netns: Option<&str>,
) -> Result<Option<Vec<String>>, KernelError> {
    let mut cmd = Command::new(family.save_command());
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
pub fn nat_table_exists(family: Family, netns: Option<&str>) -> Result<bool, KernelError> {
    Ok(saved_nat_table(family, netns)?.is_some())
}

/// Deletes the `nat` table that `up` caused to exist, if it holds no rule
/// and no chain of anyone else's (`nft delete table ip nat`, the one
/// command that removes an iptables-nft table; `ip6 nat` for ip6tables).
/// With iptables-legacy, or without nft, the empty table stays: it
/// filters nothing.
pub fn remove_nat_table_if_empty(family: Family, netns: Option<&str>) -> Result<(), KernelError> {
    if let Some(ns) = netns
        && !netns::exists(ns)
    {
        return Ok(());
    }
    let Some(table) = saved_nat_table(family, netns)? else {
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
    cmd.args(["delete", "table", family.nft(), "nat"]);
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
pub fn remove_masquerade(netns: Option<&str>, subnet: &Masqueraded) -> Result<(), KernelError> {
    if let Some(ns) = netns
        && !netns::exists(ns)
    {
        return Ok(());
    }
    if masquerade_present(netns, subnet)? {
        run_checked(subnet.family(), netns, &rule_args("-D", subnet))?;
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

/// Appends `args` to `table`/`chain` in `netns` unless the same rule is
/// already there (published ports, `publish::portmap`).
pub fn add_rule(
    netns: Option<&str>,
    table: &str,
    chain: &str,
    args: &[String],
) -> Result<(), KernelError> {
    if iptables(Family::Ipv4, netns, &generic_args("-C", table, chain, args))?
        .status
        .success()
    {
        return Ok(());
    }
    run_checked(Family::Ipv4, netns, &generic_args("-A", table, chain, args))
}

/// Deletes the rule `args` from `table`/`chain`; nothing to do when it or
/// the namespace is gone.
pub fn remove_rule(
    netns: Option<&str>,
    table: &str,
    chain: &str,
    args: &[String],
) -> Result<(), KernelError> {
    if let Some(ns) = netns
        && !netns::exists(ns)
    {
        return Ok(());
    }
    if iptables(Family::Ipv4, netns, &generic_args("-C", table, chain, args))?
        .status
        .success()
    {
        run_checked(Family::Ipv4, netns, &generic_args("-D", table, chain, args))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masqueraded_subnets_parse_back_to_their_family() {
        let plan = crate::config::LabConfig::default().resolve().unwrap();
        let both = Masqueraded::of(&plan);
        assert_eq!(
            both.iter().map(|m| m.family()).collect::<Vec<_>>(),
            [Family::Ipv4, Family::Ipv6]
        );
        for m in both {
            assert_eq!(m.to_string().parse::<Masqueraded>(), Ok(m));
        }
        assert_eq!(
            rule_args("-A", &"fd00:192:168:28::/64".parse().unwrap()).join(" "),
            "-w -t nat -A POSTROUTING -s fd00:192:168:28::/64 -j MASQUERADE"
        );
        assert!("banana".parse::<Masqueraded>().is_err());
    }
}
