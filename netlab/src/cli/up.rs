//! `netlab up`: the lab file resolved to a plan, the lab built (or found
//! up, or repaired), what was built printed, and the control loop started.

use std::process::ExitCode;

use super::{
    args::Cli,
    context::{load_config, require_privileges},
};
use crate::{
    lab::{self, UpOutcome},
    names::DEFAULT_LAB_NAME,
    plan::{DatapathKind, LabPlan},
};

/// Runs `netlab up` with the flags of `Command::Up`.
pub fn run(
    cli: &Cli,
    datapath: Option<DatapathKind>,
    no_daemon: bool,
    metrics: Option<&str>,
    metrics_allow_remote: bool,
) -> anyhow::Result<ExitCode> {
    // Checked before anything is created.
    let metrics = metrics
        .map(|a| crate::metrics::server::parse_address(a, metrics_allow_remote))
        .transpose()?;
    let mut config = load_config(cli)?;
    if let Some(l) = &cli.lab {
        config.name = Some(l.clone());
    }
    let mut plan = config.resolve()?;
    if let Some(d) = datapath {
        plan.datapath = d;
    }
    require_privileges()?;
    let outcome = lab::up(&plan).map_err(|e| {
        let rolled_back = !matches!(
            e,
            lab::LabError::Conflict { .. }
                | lab::LabError::HalfBuilt(_)
                | lab::LabError::RollbackFailed { .. }
                | lab::LabError::State(_)
                | lab::LabError::CannotRepair { .. }
                | lab::LabError::RepairFailed { .. }
        );
        let e = anyhow::Error::new(e);
        if rolled_back {
            e.context(format!(
                "up failed; everything it had created for lab {} was removed",
                plan.name
            ))
        } else {
            e
        }
    })?;
    let (lab, running_datapath) = match &outcome {
        UpOutcome::Created(p) | UpOutcome::Repaired { plan: p, .. } => (p.name.clone(), p.datapath),
        UpOutcome::AlreadyUp(p) => (p.name.clone(), p.datapath),
    };
    match outcome {
        UpOutcome::Created(plan) => print_up(&plan),
        UpOutcome::Repaired { plan, repaired } => {
            println!("lab {} was up but missing parts; repaired:", plan.name);
            for r in repaired {
                println!("  {r}");
            }
        }
        UpOutcome::AlreadyUp(running) => {
            println!(
                "lab {} is already up ({:?} datapath); nothing changed",
                running.name, running.datapath
            );
            if running != plan {
                println!(
                    "note: it differs from the requested lab; run `netlab down` first to rebuild it"
                );
            }
        }
    }
    if running_datapath == DatapathKind::Ebpf {
        println!("{}", crate::supervise::after_up(&lab, no_daemon, metrics)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_up(plan: &LabPlan) {
    let dp = match plan.datapath {
        DatapathKind::Kernel => "kernel bridge + iptables",
        DatapathKind::Ebpf => "eBPF",
    };
    println!("lab {} is up ({dp} datapath)", plan.name);
    // " <address6>/<len>" where the lab has IPv6.
    let v6 = |a: Option<std::net::Ipv6Addr>| match (a, plan.ipv6) {
        (Some(a), Some(v6)) => format!(" {a}/{}", v6.subnet.prefix_len),
        _ => String::new(),
    };
    let cidr6 = |c: Option<crate::cidr::Ipv6Cidr>| c.map(|c| format!(" {c}")).unwrap_or_default();
    match plan.sandbox() {
        Some(s) => println!(
            "  host side: namespace {} (uplink {} {}{}), internet: namespace {} ({}{})",
            s.namespace,
            s.uplink,
            s.uplink_address,
            cidr6(s.uplink_address6),
            s.internet_namespace,
            s.internet_address,
            cidr6(s.internet_address6)
        ),
        None => println!(
            "  host side: this network namespace, the one netlab runs in (uplink {})",
            plan.uplink()
        ),
    }
    println!(
        "  gateway: {} {}/{}{}",
        plan.gateway_device,
        plan.gateway,
        plan.subnet.prefix_len,
        v6(plan.ipv6.map(|x| x.gateway))
    );
    for e in &plan.endpoints {
        println!(
            "  {}: {} {}/{}{} {} <-> {}",
            e.namespace,
            e.veth,
            e.address,
            plan.subnet.prefix_len,
            v6(e.address6),
            crate::names::format_mac(&e.mac),
            e.peer
        );
    }
    if let Some(why) = crate::health::ipv6_egress_problem(plan) {
        println!("  {why}");
    }
    println!(
        "try: netlab check{}",
        if plan.name == DEFAULT_LAB_NAME {
            String::new()
        } else {
            format!(" --lab {}", plan.name)
        }
    );
}
