//! The bench's result: raw samples, settings, summaries; rendered as a
//! terminal table and as JSON (field names are stable: `schema` names the
//! version).

use std::collections::BTreeMap;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use serde::Serialize;

use super::catalog::{BenchDatapath, Figure, Metric, Workload};
use super::lab::Endpoints;
use super::plan::Plan;
use super::stats::{RatioSummary, Summary, round_ratios};

pub const SCHEMA: &str = "netlab-bench/1";

/// The ratios reported, as (numerator, denominator).
pub const RATIOS: [(BenchDatapath, BenchDatapath); 3] = [
    (BenchDatapath::Ebpf, BenchDatapath::Kernel),
    (BenchDatapath::Ebpf, BenchDatapath::Direct),
    (BenchDatapath::EbpfXdp, BenchDatapath::Ebpf),
];

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub schema: &'static str,
    pub settings: Settings,
    pub labs: Vec<Endpoints>,
    /// Workload/datapath pairs that do not apply, and why.
    pub skipped: Vec<Skipped>,
    /// Every measurement, in the order taken (warm-up excluded).
    pub samples: Vec<Sample>,
    /// Measurements that failed; their figures have fewer samples.
    pub failures: Vec<Failure>,
    /// One entry per figure (workload × metric).
    pub summaries: Vec<FigureSummary>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub rounds: u32,
    pub duration_secs: u64,
    pub quick: bool,
    pub datapaths: Vec<BenchDatapath>,
    pub workloads: Vec<Workload>,
    pub cpus: Cpus,
    /// `uname -r`.
    pub kernel: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// First line of each tool's `--version`.
    pub tools: BTreeMap<String, String>,
    /// Seconds since the Unix epoch when the bench started.
    pub started_at: u64,
    pub method: Method,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Cpus {
    pub client: usize,
    pub server: usize,
}

/// How the figures are obtained, in words, for whoever reads the JSON later.
#[derive(Clone, Debug, Serialize)]
pub struct Method {
    pub order: String,
    pub warmup: String,
    pub tcp: String,
    pub udp: String,
    pub request_response: String,
    pub connection_rate: String,
    pub prefill: String,
    /// The `inet6_*` workloads: what differs from their IPv4 twins.
    pub ipv6: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub workload: Workload,
    pub datapath: BenchDatapath,
    pub kind: SkipKind,
    pub reason: String,
}

/// Why a workload/datapath pair has no figure although nothing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// The workload does not apply to the datapath (NAT on a bare veth
    /// pair), known before anything runs.
    NotApplicable,
    /// The lab built for the datapath has no working IPv6 path to the
    /// internet namespace (no IPv6 addresses, or no connection through
    /// its NAT66): found when the labs are up, said instead of a number.
    Ipv6Unavailable,
}

impl SkipKind {
    /// What the table and the chart show in place of the figure.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotApplicable => "n/a",
            Self::Ipv6Unavailable => "IPv6 unavailable",
        }
    }
}

impl BenchReport {
    /// What stands in place of a figure a datapath has no samples for:
    /// the reason it was skipped, else "failed".
    pub fn missing_label(&self, workload: Workload, datapath: BenchDatapath) -> &'static str {
        self.skipped
            .iter()
            .find(|s| s.workload == workload && s.datapath == datapath)
            .map_or("failed", |s| s.kind.label())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub round: u32,
    pub datapath: BenchDatapath,
    pub workload: Workload,
    /// Metric id (`bits_per_second`, ...) → value in base units.
    pub values: BTreeMap<String, f64>,
    /// Supporting numbers (retransmits, lost_packets, failures, nat_entries, ...).
    pub details: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub round: u32,
    pub datapath: BenchDatapath,
    pub workload: Workload,
    pub error: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FigureSummary {
    /// `<workload>.<metric>`.
    pub figure: String,
    pub workload: Workload,
    pub metric: Metric,
    pub title: String,
    /// Base unit of the values (`bit/s`, `packet/s`, `us`, `1/s`).
    pub unit: &'static str,
    pub higher_is_better: bool,
    /// Datapath → median/min/max/n; datapaths the workload skips are absent.
    pub datapaths: BTreeMap<BenchDatapath, Summary>,
    /// `"ebpf/kernel"`, `"ebpf/direct"` → per-round ratios and their median;
    /// present when both datapaths ran the workload.
    pub ratios: BTreeMap<String, RatioSummary>,
}

pub fn base_unit(metric: Metric) -> &'static str {
    match metric {
        Metric::BitsPerSecond => "bit/s",
        Metric::PacketsPerSecond => "packet/s",
        Metric::RttP50Us | Metric::RttP99Us => "us",
        Metric::TransactionsPerSecond | Metric::ConnectionsPerSecond => "1/s",
    }
}

/// `(round, value)` of one figure on one datapath.
fn series(samples: &[Sample], figure: Figure, datapath: BenchDatapath) -> Vec<(u32, f64)> {
    samples
        .iter()
        .filter(|s| s.workload == figure.workload && s.datapath == datapath)
        .filter_map(|s| s.values.get(figure.metric.id()).map(|v| (s.round, *v)))
        .collect()
}

/// Summaries for every figure of the plan.
pub fn summarize(plan: &Plan, samples: &[Sample]) -> Vec<FigureSummary> {
    plan.figures()
        .into_iter()
        .map(|figure| {
            let mut datapaths = BTreeMap::new();
            for d in plan.datapaths_for(figure.workload) {
                let values: Vec<f64> = series(samples, figure, d).iter().map(|(_, v)| *v).collect();
                if let Some(summary) = Summary::of(&values) {
                    datapaths.insert(d, summary);
                }
            }
            let mut ratios = BTreeMap::new();
            for (num, den) in RATIOS {
                let runs: Vec<_> = plan.datapaths_for(figure.workload).collect();
                if runs.contains(&num) && runs.contains(&den) {
                    let r =
                        round_ratios(&series(samples, figure, num), &series(samples, figure, den));
                    ratios.insert(format!("{num}/{den}"), r);
                }
            }
            FigureSummary {
                figure: figure.id(),
                workload: figure.workload,
                metric: figure.metric,
                title: format!("{}: {}", figure.workload.title(), figure.metric.label()),
                unit: base_unit(figure.metric),
                higher_is_better: figure.metric.higher_is_better(),
                datapaths,
                ratios,
            }
        })
        .collect()
}

/// A value in the metric's display unit, with sensible precision.
pub fn display(metric: Metric, value: f64) -> String {
    let (_, factor) = metric.display_unit();
    let v = value * factor;
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The terminal table: one row per figure, `median (min–max)` per datapath,
/// then the median per-round ratios.
pub fn table(report: &BenchReport) -> Table {
    let datapaths = &report.settings.datapaths;
    let ratios: Vec<_> = RATIOS
        .iter()
        .filter(|(n, d)| datapaths.contains(n) && datapaths.contains(d))
        .collect();
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let mut header = vec![Cell::new("figure"), Cell::new("unit")];
    header.extend(
        datapaths
            .iter()
            .map(|d| Cell::new(format!("{d}\nmedian (min–max)"))),
    );
    header.extend(
        ratios
            .iter()
            .map(|(n, d)| Cell::new(format!("{n}/{d}\nmedian ratio"))),
    );
    table.set_header(header);
    for s in &report.summaries {
        let mut row = vec![Cell::new(&s.title), Cell::new(s.metric.display_unit().0)];
        for d in datapaths {
            let text = match s.datapaths.get(d) {
                Some(x) => format!(
                    "{} ({}–{})",
                    display(s.metric, x.median),
                    display(s.metric, x.min),
                    display(s.metric, x.max)
                ),
                None => report.missing_label(s.workload, *d).into(),
            };
            row.push(Cell::new(text).set_alignment(CellAlignment::Right));
        }
        for (n, d) in &ratios {
            let text = s
                .ratios
                .get(&format!("{n}/{d}"))
                .and_then(|r| r.median)
                .map(|m| format!("{m:.2}×"))
                .unwrap_or_else(|| "n/a".into());
            row.push(Cell::new(text).set_alignment(CellAlignment::Right));
        }
        table.add_row(row);
    }
    table
}

/// Sample detail key prefix of a program's average run time (ns per run),
/// followed by the program name.
pub const BPF_NS_PER_RUN: &str = "bpf_ns_per_run.";

/// The eBPF programs' own cost per packet on each workload (median over
/// rounds of the kernel's run-time statistics), or None when no sample
/// carries them.
pub fn program_costs(report: &BenchReport) -> Option<Table> {
    let mut per: BTreeMap<(Workload, String), Vec<f64>> = BTreeMap::new();
    for s in &report.samples {
        for (key, v) in &s.details {
            if let Some(program) = key.strip_prefix(BPF_NS_PER_RUN) {
                per.entry((s.workload, program.to_string()))
                    .or_default()
                    .push(*v);
            }
        }
    }
    if per.is_empty() {
        return None;
    }
    let programs: std::collections::BTreeSet<&String> = per.keys().map(|(_, p)| p).collect();
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let mut header = vec![Cell::new("workload (ebpf)")];
    header.extend(
        programs
            .iter()
            .map(|p| Cell::new(format!("{p}\nns/packet"))),
    );
    table.set_header(header);
    let workloads: std::collections::BTreeSet<Workload> = per.keys().map(|(w, _)| *w).collect();
    for w in workloads {
        let mut row = vec![Cell::new(w.id())];
        for p in &programs {
            let text = per
                .get(&(w, (*p).clone()))
                .and_then(|v| super::stats::median(v))
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "-".into());
            row.push(Cell::new(text).set_alignment(CellAlignment::Right));
        }
        table.add_row(row);
    }
    Some(table)
}

/// Lines under the table: what was skipped and what failed.
pub fn notes(report: &BenchReport) -> Vec<String> {
    let mut lines = Vec::new();
    let mut skipped: BTreeMap<(BenchDatapath, &str), Vec<&str>> = BTreeMap::new();
    for s in &report.skipped {
        skipped
            .entry((s.datapath, s.reason.as_str()))
            .or_default()
            .push(s.workload.id());
    }
    for ((d, reason), workloads) in skipped {
        lines.push(format!(
            "skipped for {d} ({reason}): {}",
            workloads.join(", ")
        ));
    }
    for f in &report.failures {
        lines.push(format!(
            "FAILED round {} {} {}: {}",
            f.round,
            f.datapath,
            f.workload.id(),
            f.error
        ));
    }
    lines.push(
        "ratios are medians of per-round ratios; for latency (µs) a ratio below 1 is better".into(),
    );
    lines
}
