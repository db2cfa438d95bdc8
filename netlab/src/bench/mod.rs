//! `netlab bench`: the eBPF datapath against the kernel bridge + iptables
//! datapath and a bare veth pair, measured side by side (why so:
//! netlab/doc/ARCHITECTURE.md §9, "Benchmark"; figures: README.md,
//! Performance).
//!
//! Method: every datapath's lab is built once; a warm-up run; then for each
//! round, for each workload, each datapath in turn (A B C A B C …), so slow
//! drift of the machine (thermal, other load) hits all datapaths alike.
//! Every raw sample is kept; the summaries are medians with min–max, and
//! ratios are taken within a round and then their median reported.

pub mod catalog;
pub mod direct;
pub mod flood;
pub mod interrupt;
pub mod ipv6;
pub mod lab;
pub mod micro;
pub mod nattable;
pub mod nsexec;
pub mod parse;
pub mod plan;
pub mod progstats;
pub mod report;
pub mod settings;
pub mod stats;
pub mod svg;
pub mod workload;

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::progress::Progress;
use anyhow::{Context, bail};

pub use catalog::{BenchDatapath, Workload};
use lab::{BenchLab, Endpoints};
use nsexec::NsCpu;
pub use plan::{BenchArgs, Plan};
use report::{BenchReport, Failure, Sample, Settings, SkipKind, Skipped};
use workload::{Measured, Servers};

/// `netlab bench`: run, print the table, write `--json` / `--svg`.
/// Fails (after writing what it has) if any measurement failed.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.micro {
        return micro::run(args);
    }
    let plan = Plan::from_args(args)?;
    for path in [&args.json, &args.svg].into_iter().flatten() {
        check_writable(path)?;
    }
    let report = run_plan(&plan)?;
    println!("{}", report::table(&report));
    for line in report::notes(&report) {
        println!("{line}");
    }
    if let Some(costs) = report::program_costs(&report) {
        println!("\neBPF program cost per packet (kernel BPF run-time stats, median over rounds):");
        println!("{costs}");
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("raw samples and summaries: {}", path.display());
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg::render(&report))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("chart: {}", path.display());
    }
    if !report.failures.is_empty() {
        bail!(
            "{} measurement(s) failed (see above)",
            report.failures.len()
        );
    }
    Ok(())
}

/// Refuse before a long run, not after it, when an output cannot be written.
pub(crate) fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write {}: {} is not a directory",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Build the labs, measure, tear the labs down (also on error and Ctrl-C),
/// and return the report.
pub fn run_plan(plan: &Plan) -> anyhow::Result<BenchReport> {
    let netlab_labs = plan.datapaths.iter().any(|d| *d != BenchDatapath::Direct);
    workload::check_tools(plan.datapaths.contains(&BenchDatapath::Direct))?;
    if netlab_labs {
        lab::netlab_binary()?;
    }
    let _sigint = interrupt::install()?;
    let settings = settings::describe(plan);
    let workdir = std::env::temp_dir().join(format!("netlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;
    let result = measure(plan, settings, &workdir);
    let _ = std::fs::remove_dir_all(&workdir);
    result
}

/// Progress and the collected samples.
struct Run<'a> {
    plan: &'a Plan,
    bar: Progress,
    samples: Vec<Sample>,
    failures: Vec<Failure>,
    nat: NatDrain,
    /// Datapaths whose lab carries no IPv6 to the internet namespace.
    unavailable6: ipv6::Unavailable,
}

fn measure(plan: &Plan, settings: Settings, workdir: &Path) -> anyhow::Result<BenchReport> {
    // Labs are dropped (brought down) when this function returns, whatever
    // the way out.
    let mut labs: Vec<(BenchDatapath, BenchLab)> = Vec::new();
    for &d in &plan.datapaths {
        interrupt::check()?;
        eprintln!("building the {d} lab …");
        let lab = BenchLab::create(&plan.prefix, d, workdir)
            .with_context(|| format!("building the {d} lab"))?;
        labs.push((d, lab));
    }
    let endpoints: Vec<Endpoints> = labs.iter().map(|(d, l)| l.endpoints(*d)).collect();

    let warmups = plan.datapaths.len() as u64;
    let total = warmups + plan.measurements_per_round() * plan.rounds as u64;
    // A bar on a terminal, a plain line every few seconds in a log.
    let bar = Progress::new("bench", Some(total));
    let nat = NatDrain {
        bar: bar.clone(),
        stuck: BTreeSet::new(),
    };
    // The kernel's per-program run-time statistics, on for this run only.
    let _bpf_stats = crate::bpf::runstats::enable();
    // Before any server runs (the probe listens on the accept port).
    let unavailable6 = ipv6::probe_all(plan, &endpoints, &bar)?;
    let mut run = Run {
        plan,
        bar,
        samples: Vec::new(),
        failures: Vec::new(),
        nat,
        unavailable6,
    };

    // Warm-up: one short TCP run per datapath (ARP, caches, CPU clocks),
    // through the NAT where there is one (and the NAT66, for the IPv6
    // workloads); discarded.
    {
        let servers = start_servers(plan, &endpoints)?;
        for ep in &endpoints {
            interrupt::check()?;
            run.bar.set_message(format!("warm-up {}", ep.datapath));
            let client = NsCpu::new(&ep.client_namespace, plan.client_cpu);
            workload::tcp_throughput(&client, ep.server_address.into(), 1, 1)
                .with_context(|| format!("warm-up on {}", ep.datapath))?;
            if let Some(inet) = &ep.internet {
                workload::tcp_throughput(&client, inet.address.into(), 1, 1)
                    .with_context(|| format!("warm-up through NAT on {}", ep.datapath))?;
            }
            ipv6::warm_up(plan, ep, &mut run.unavailable6, &run.bar)?;
            run.bar.inc(1);
        }
        drop(servers);
    }

    for round in 1..=plan.rounds {
        let servers = start_servers(plan, &endpoints)?;
        for &workload in &plan.workloads {
            for ep in endpoints
                .iter()
                .filter(|ep| workload.skip_reason(ep.datapath).is_none())
            {
                interrupt::check()?;
                if ipv6::blocks(&run.unavailable6, workload, ep.datapath) {
                    // Said once in the notes, counted for the bar.
                    run.bar.inc(1);
                    continue;
                }
                run.bar
                    .set_message(format!("round {round}: {} {}", ep.datapath, workload.id()));
                let before = progstats::has_programs(&ep.lab)
                    .then(|| progstats::snapshot(&ep.lab, lab::UPLINK_DEV));
                let mut result = measure_one(plan, workload, ep, &mut run.nat);
                if let (Ok(m), Some(before)) = (&mut result, before) {
                    let after = progstats::snapshot(&ep.lab, lab::UPLINK_DEV);
                    for (program, (ns, runs)) in progstats::per_run(&before, &after) {
                        m.details
                            .insert(format!("{}{program}", report::BPF_NS_PER_RUN), ns);
                        m.details.insert(format!("bpf_runs.{program}"), runs as f64);
                    }
                }
                interrupt::check()?;
                match result {
                    Ok(m) => run.samples.push(to_sample(round, ep.datapath, workload, m)),
                    Err(e) => {
                        run.bar.println(format!(
                            "round {round}: {} {} failed: {e:#}",
                            ep.datapath,
                            workload.id()
                        ));
                        run.failures.push(Failure {
                            round,
                            datapath: ep.datapath,
                            workload,
                            error: format!("{e:#}"),
                        });
                    }
                }
                run.bar.inc(1);
            }
        }
        drop(servers);
    }
    run.bar.finish_and_clear();

    let mut teardown_errors = Vec::new();
    for (d, lab) in labs.drain(..).rev() {
        if let BenchLab::Netlab(mut l) = lab
            && let Err(e) = l.down()
        {
            teardown_errors.push(format!("{d}: {e:#}"));
        }
    }
    if !teardown_errors.is_empty() {
        bail!(
            "bringing the bench labs down failed: {}",
            teardown_errors.join("; ")
        );
    }

    let mut skipped = skipped(run.plan);
    skipped.extend(ipv6::skipped(run.plan, &run.unavailable6));
    let summaries = report::summarize(run.plan, &run.samples);
    Ok(BenchReport {
        schema: report::SCHEMA,
        settings,
        labs: endpoints,
        skipped,
        samples: run.samples,
        failures: run.failures,
        summaries,
    })
}

/// The servers of every datapath for one round: lab-side (ns2) and
/// internet-side, pinned to the server CPU. Stopped by PID on drop.
fn start_servers(plan: &Plan, endpoints: &[Endpoints]) -> anyhow::Result<Vec<Servers>> {
    let mut all = Vec::new();
    let needs_inet = plan
        .workloads
        .iter()
        .any(|w| w.path() == catalog::Path::Inet);
    let needs_published = plan
        .workloads
        .iter()
        .any(|w| w.path() == catalog::Path::Published);
    for ep in endpoints {
        // The lab-side servers always run: the warm-up uses them.
        let ns = NsCpu::new(&ep.server_namespace, plan.server_cpu);
        let mut servers =
            Servers::start(&ns, false).with_context(|| format!("servers in {}", ns.netns))?;
        if needs_published && ep.internet.is_some() {
            // The published connection-rate target (the internet side has
            // its own for the NAT workloads).
            servers.start_accept(&ns)?;
        }
        all.push(servers);
        if let Some(inet) = &ep.internet {
            let ns = NsCpu::new(&inet.namespace, plan.server_cpu);
            all.push(
                Servers::start(&ns, needs_inet)
                    .with_context(|| format!("servers in {}", ns.netns))?,
            );
        }
    }
    Ok(all)
}

/// The un-prefilled connection rate must not inherit the previous round's
/// prefilled flows (kernel: unreplied UDP conntrack entries live 30 s), so
/// it first waits for the NAT table to drain below `DRAIN_BELOW` entries.
const DRAIN_BELOW: u64 = workload::PREFILL_FLOWS as u64 / 10;
/// Longest wait; a datapath whose table did not drain in time is not waited
/// for again (its expiry may not be running), and the sample records the
/// entries it started with.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

struct NatDrain {
    bar: Progress,
    stuck: BTreeSet<BenchDatapath>,
}

impl NatDrain {
    /// Wait for the table to drain; returns the seconds waited.
    fn wait(&mut self, ep: &Endpoints, host_ns: &str) -> anyhow::Result<f64> {
        let start = std::time::Instant::now();
        if self.stuck.contains(&ep.datapath) {
            return Ok(0.0);
        }
        while let Some(n) = nattable::entries(ep.datapath, &ep.lab, host_ns) {
            if n < DRAIN_BELOW {
                break;
            }
            if start.elapsed() > DRAIN_TIMEOUT {
                self.bar.println(format!(
                    "{}: NAT table still holds {n} entries after {DRAIN_TIMEOUT:?};                      measuring connection rate without waiting from now on",
                    ep.datapath
                ));
                self.stuck.insert(ep.datapath);
                break;
            }
            self.bar.set_message(format!(
                "{}: waiting for {n} NAT entries to expire",
                ep.datapath
            ));
            interrupt::check()?;
            std::thread::sleep(Duration::from_secs(1));
        }
        Ok(start.elapsed().as_secs_f64())
    }
}

/// One measurement of one workload on one datapath.
fn measure_one(
    plan: &Plan,
    workload: Workload,
    ep: &Endpoints,
    nat: &mut NatDrain,
) -> anyhow::Result<Measured> {
    let client = NsCpu::new(&ep.client_namespace, plan.client_cpu);
    let secs = plan.duration_secs;
    let server = ep.server_address.into();
    let inet = || {
        ep.internet
            .as_ref()
            .context("this datapath has no internet side")
    };
    let inet6 = || {
        inet()?
            .address6
            .context("this datapath's lab has no IPv6 internet address")
    };
    match workload {
        Workload::NsTcp1 => workload::tcp_throughput(&client, server, 1, secs),
        Workload::NsTcp2 => workload::tcp_throughput(&client, server, 2, secs),
        Workload::NsUdp64 => workload::udp_small_packets(&client, server, secs),
        Workload::NsRr => workload::request_response(&client, server, secs),
        Workload::InetTcp1 => workload::tcp_throughput(&client, inet()?.address.into(), 1, secs),
        Workload::InetUdp64 => workload::udp_small_packets(&client, inet()?.address.into(), secs),
        Workload::InetRr => workload::request_response(&client, inet()?.address.into(), secs),
        Workload::Inet6Tcp1 => workload::tcp_throughput(&client, inet6()?.into(), 1, secs),
        Workload::Inet6Udp64 => workload::udp_small_packets(&client, inet6()?.into(), secs),
        Workload::PubRr => {
            let client = NsCpu::new(&inet()?.namespace, plan.client_cpu);
            let uplink = lab::UPLINK_ADDR.into();
            workload::request_response_at(&client, uplink, lab::PUBLISHED_RR_PORT, secs)
        }
        Workload::PubConnRate => {
            let client = NsCpu::new(&inet()?.namespace, plan.client_cpu);
            let target = SocketAddrV4::new(lab::UPLINK_ADDR, lab::PUBLISHED_ACCEPT_PORT);
            let mut m = Measured::default();
            workload::connection_rate(&client, target, secs)?.record(&mut m);
            Ok(m)
        }
        Workload::InetConnRate | Workload::InetConnRatePrefilled => {
            let inet = inet()?;
            let mut m = Measured::default();
            if workload == Workload::InetConnRate {
                let waited = nat.wait(ep, &inet.host_namespace)?;
                m.details.insert("nat_drain_wait_seconds".into(), waited);
            }
            if workload == Workload::InetConnRatePrefilled {
                let p =
                    workload::prefill_udp_flows(&client, inet.address, workload::PREFILL_FLOWS)?;
                m.details.insert("prefill_sent".into(), p.sent as f64);
                m.details.insert("prefill_errors".into(), p.errors as f64);
                m.details.insert("prefill_seconds".into(), p.seconds);
            }
            if let Some(n) = nattable::entries(ep.datapath, &ep.lab, &inet.host_namespace) {
                m.details.insert("nat_entries_before".into(), n as f64);
            }
            let target = SocketAddrV4::new(inet.address, workload::ACCEPT_PORT);
            workload::connection_rate(&client, target, secs)?.record(&mut m);
            if let Some(n) = nattable::entries(ep.datapath, &ep.lab, &inet.host_namespace) {
                m.details.insert("nat_entries_after".into(), n as f64);
            }
            Ok(m)
        }
        Workload::InetFlood => {
            let inet = inet()?;
            let sender = NsCpu::new(&inet.namespace, plan.client_cpu);
            flood::inbound_flood(
                &sender,
                &inet.host_namespace,
                lab::UPLINK_DEV,
                lab::UPLINK_ADDR,
                ep.client_address,
                secs,
            )
        }
    }
}

fn to_sample(round: u32, datapath: BenchDatapath, workload: Workload, m: Measured) -> Sample {
    Sample {
        round,
        datapath,
        workload,
        values: m
            .values
            .into_iter()
            .map(|(k, v)| (k.id().to_string(), v))
            .collect(),
        details: m.details,
    }
}

/// The workload/datapath pairs of the plan that do not apply.
pub(crate) fn skipped(plan: &Plan) -> Vec<Skipped> {
    let mut out = Vec::new();
    for &workload in &plan.workloads {
        for &datapath in &plan.datapaths {
            if let Some(reason) = workload.skip_reason(datapath) {
                out.push(Skipped {
                    workload,
                    datapath,
                    kind: SkipKind::NotApplicable,
                    reason: reason.to_string(),
                });
            }
        }
    }
    out
}
