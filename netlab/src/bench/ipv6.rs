//! The IPv6 workloads' precondition: a netlab lab must carry IPv6 from its
//! client namespace to the internet namespace, through its NAT66 (eBPF) or
//! ip6tables MASQUERADE (kernel), before a figure can be measured there.
//! Found once, when the labs are up: a datapath without such a path gets
//! "IPv6 unavailable: <why>" in place of its IPv6 figures (the table, the
//! chart, `--json`'s `skipped`), never a number and never a failed run —
//! the IPv4 figures of the same run stay good.

use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

use super::catalog::{BenchDatapath, Path, Workload};
use super::lab::Endpoints;
use super::nsexec::NsCpu;
use super::plan::Plan;
use super::report::{SkipKind, Skipped};
use super::{interrupt, workload};
use crate::progress::Progress;

/// How long a new lab may take before a TCP connection over IPv6 reaches
/// the internet namespace (neighbour discovery on both sides, the first
/// NAT66 entry). A working lab connects at the first try.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Datapath → why its lab carries no IPv6 to the internet namespace.
pub type Unavailable = BTreeMap<BenchDatapath, String>;

/// Whether the plan has a workload over IPv6.
pub fn wanted(plan: &Plan) -> bool {
    plan.workloads.iter().any(|w| w.path() == Path::Inet6)
}

/// Probes every lab with an internet side (nothing when no IPv6 workload
/// is planned): a TCP connection from the client namespace to the internet
/// namespace's IPv6 address. Each lab that fails is listed with the reason
/// and announced on the progress bar.
pub fn probe_all(
    plan: &Plan,
    endpoints: &[Endpoints],
    bar: &Progress,
) -> anyhow::Result<Unavailable> {
    let mut unavailable = Unavailable::new();
    if !wanted(plan) {
        return Ok(unavailable);
    }
    for ep in endpoints.iter().filter(|ep| ep.internet.is_some()) {
        bar.set_message(format!("IPv6 probe {}", ep.datapath));
        let result = probe(plan, ep, PROBE_TIMEOUT);
        interrupt::check()?;
        if let Err(why) = result {
            mark(&mut unavailable, bar, ep.datapath, format!("{why:#}"));
        }
    }
    Ok(unavailable)
}

/// One lab's probe: the addresses netlab gave it, then a TCP connection
/// over IPv6 to the internet namespace within `within`; the error says
/// which is missing.
pub fn probe(plan: &Plan, ep: &Endpoints, within: Duration) -> anyhow::Result<()> {
    let inet = ep.internet.as_ref().context("no internet side")?;
    let target = inet.address6.with_context(|| {
        format!(
            "netlab gave lab {} no IPv6 address for the internet namespace",
            ep.lab
        )
    })?;
    ep.client_address6.with_context(|| {
        format!(
            "netlab gave {} (lab {}) no IPv6 address",
            ep.client_namespace, ep.lab
        )
    })?;
    // The accept loop the connection-rate workload uses, on IPv6 only and
    // only for the probe (the round's servers are not running yet).
    let server_ns = NsCpu::new(&inet.namespace, plan.server_cpu);
    let server = workload::AcceptServer::start_at(
        &server_ns,
        (Ipv6Addr::UNSPECIFIED, workload::ACCEPT_PORT).into(),
    )?;
    let client = NsCpu::new(&ep.client_namespace, plan.client_cpu);
    let target = SocketAddr::new(target.into(), workload::ACCEPT_PORT);
    let connected = workload::connects_within(&client, target, within)
        .with_context(|| format!("from {} through the lab's NAT", ep.client_namespace));
    server.stop()?;
    connected
}

/// The IPv6 part of the warm-up: one short TCP run through the lab's NAT66
/// per datapath whose probe passed. One that fails there is unavailable
/// too (with iperf3's words), rather than failing the whole run.
pub fn warm_up(
    plan: &Plan,
    ep: &Endpoints,
    unavailable: &mut Unavailable,
    bar: &Progress,
) -> anyhow::Result<()> {
    if !wanted(plan) || unavailable.contains_key(&ep.datapath) {
        return Ok(());
    }
    let Some(target) = ep.internet.as_ref().and_then(|i| i.address6) else {
        return Ok(());
    };
    let client = NsCpu::new(&ep.client_namespace, plan.client_cpu);
    let result = workload::tcp_throughput(&client, target.into(), 1, 1);
    interrupt::check()?;
    if let Err(e) = result {
        let why = format!("warm-up through NAT66 failed: {e:#}");
        mark(unavailable, bar, ep.datapath, why);
    }
    Ok(())
}

fn mark(unavailable: &mut Unavailable, bar: &Progress, datapath: BenchDatapath, why: String) {
    bar.println(format!(
        "{datapath}: {}: {why}",
        SkipKind::Ipv6Unavailable.label()
    ));
    unavailable.insert(datapath, why);
}

/// Whether `workload` cannot run on `datapath` for want of IPv6.
pub fn blocks(unavailable: &Unavailable, workload: Workload, datapath: BenchDatapath) -> bool {
    workload.path() == Path::Inet6 && unavailable.contains_key(&datapath)
}

/// The skipped list's entries for the IPv6 workloads of unavailable
/// datapaths.
pub fn skipped(plan: &Plan, unavailable: &Unavailable) -> Vec<Skipped> {
    let mut out = Vec::new();
    for &workload in &plan.workloads {
        for datapath in plan.datapaths_for(workload) {
            if let Some(why) = unavailable
                .get(&datapath)
                .filter(|_| blocks(unavailable, workload, datapath))
            {
                out.push(Skipped {
                    workload,
                    datapath,
                    kind: SkipKind::Ipv6Unavailable,
                    reason: format!("{}: {why}", SkipKind::Ipv6Unavailable.label()),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::BenchArgs;

    #[test]
    fn only_the_ipv6_workloads_of_an_unavailable_datapath_are_skipped() {
        let plan = Plan::from_args(&BenchArgs::default()).unwrap();
        assert!(wanted(&plan));
        let mut unavailable = Unavailable::new();
        unavailable.insert(BenchDatapath::Ebpf, "no route".into());
        let skipped = skipped(&plan, &unavailable);
        let pairs: Vec<_> = skipped.iter().map(|s| (s.workload, s.datapath)).collect();
        assert_eq!(
            pairs,
            [
                (Workload::Inet6Tcp1, BenchDatapath::Ebpf),
                (Workload::Inet6Udp64, BenchDatapath::Ebpf)
            ]
        );
        for s in &skipped {
            assert_eq!(s.kind, SkipKind::Ipv6Unavailable);
            assert_eq!(s.reason, "IPv6 unavailable: no route");
        }
        assert!(!blocks(
            &unavailable,
            Workload::InetUdp64,
            BenchDatapath::Ebpf
        ));
        assert!(!blocks(
            &unavailable,
            Workload::Inet6Udp64,
            BenchDatapath::Kernel
        ));
    }

    #[test]
    fn no_ipv6_workload_no_probe() {
        let args = BenchArgs {
            workloads: vec![Workload::InetUdp64],
            ..Default::default()
        };
        assert!(!wanted(&Plan::from_args(&args).unwrap()));
    }
}
