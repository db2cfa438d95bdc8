//! `netlab daemon --metrics ADDR`: the datapath in the Prometheus text
//! format (0.0.4), read afresh from the pinned maps on every scrape.
//!
//! | metric | labels | from |
//! |---|---|---|
//! | `netlab_datapath_total` | `reason` | the `counters` map (`netlab stats`), every reason incl. drops |
//! | `netlab_port_{rx,tx}_{packets,bytes}_total`, `netlab_port_drops_total` | `port`, `owner` | `port_stats` |
//! | `netlab_map_entries`, `netlab_map_max_entries` | `map` | every pinned table (`netlab map list`) |
//! | `netlab_nat_flows` | `family` (`ipv4`, `ipv6`), `proto`, `state` | the NAT tables, IPv4 and NAT66 (`netlab nat list`) |
//! | `netlab_program_runs_total`, `netlab_program_run_time_seconds_total` | `program` | the kernel's BPF run-time statistics |
//!
//! The counter values are the ones `netlab stats --json` prints (the same
//! reading code). Run-time statistics are switched on (`BPF_ENABLE_STATS`,
//! as the bench does) for as long as the daemon serves metrics: they cost
//! two clock reads per program run, so they are off without `--metrics`.

pub mod server;

use std::collections::BTreeMap;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use crate::{
    inspect::{self, stats::Stats},
    nat::NatTables,
};

/// One reading of everything exported.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub stats: Option<Stats>,
    /// (map, entries, max entries).
    pub maps: Vec<(String, u64, u64)>,
    /// (family, proto, state) → flows.
    pub flows: BTreeMap<(&'static str, String, String), u64>,
    /// program → (runs, run time in ns).
    pub programs: BTreeMap<String, (u64, u64)>,
}

impl Snapshot {
    /// Reads the lab's maps and programs.
    pub fn read(lab_name: &str) -> anyhow::Result<Self> {
        let lab = inspect::ebpf_lab(lab_name)?;
        let stats = inspect::stats::read(&lab)?;
        let maps = inspect::maps::list(&lab)?
            .into_iter()
            .filter(|m| m.map_type != "ringbuf")
            .map(|m| (m.name, m.entries as u64, u64::from(m.max_entries)))
            .collect();
        let mut flows = BTreeMap::new();
        if lab.dir.join(netlab_common::nat::NAT_ORIG_MAP).exists() {
            for f in NatTables::open(&lab.dir)?.flows()? {
                *flows
                    .entry((f.family(), f.proto().to_string(), f.state().to_string()))
                    .or_insert(0) += 1;
            }
        }
        let programs = inspect::programs::run_totals(&lab.dir, lab.plan.uplink())
            .into_iter()
            .map(|(name, t)| (name, (t.runs, t.run_ns)))
            .collect();
        Ok(Self {
            stats: Some(stats),
            maps,
            flows,
            programs,
        })
    }

    /// The Prometheus text format.
    pub fn encode(self) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One metric family: `rows` of (labels, value).
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    rows: Vec<(Labels<'_>, M)>,
) -> std::fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, metric) in rows {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        if let Some(stats) = &self.stats {
            family(
                &mut enc,
                "netlab_datapath",
                "Datapath counters by reason (drops included), as netlab stats shows them",
                MetricType::Counter,
                stats
                    .counters
                    .0
                    .iter()
                    .map(|(name, v)| (vec![("reason", *name)], ConstCounter::new(*v as u64)))
                    .collect(),
            )?;
            let port_rows = |f: fn(&inspect::stats::PortRow) -> f64| {
                stats
                    .ports
                    .iter()
                    .map(|p| {
                        (
                            vec![
                                ("port", p.port.as_str()),
                                ("owner", p.owner.as_deref().unwrap_or("")),
                            ],
                            ConstCounter::new(f(p) as u64),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            for (name, help, f) in [
                (
                    "netlab_port_rx_packets",
                    "Frames that entered the switch on this port",
                    (|p| p.rx_packets) as fn(&inspect::stats::PortRow) -> f64,
                ),
                (
                    "netlab_port_rx_bytes",
                    "Bytes that entered the switch on this port",
                    |p| p.rx_bytes,
                ),
                (
                    "netlab_port_tx_packets",
                    "Frames the switch sent out of this port",
                    |p| p.tx_packets,
                ),
                (
                    "netlab_port_tx_bytes",
                    "Bytes the switch sent out of this port",
                    |p| p.tx_bytes,
                ),
                (
                    "netlab_port_drops",
                    "Frames from this port that were dropped",
                    |p| p.drops,
                ),
            ] {
                family(&mut enc, name, help, MetricType::Counter, port_rows(f))?;
            }
        }
        let maps = |f: fn(&(String, u64, u64)) -> u64| {
            self.maps
                .iter()
                .map(|m| (vec![("map", m.0.as_str())], ConstGauge::new(f(m) as i64)))
                .collect::<Vec<_>>()
        };
        family(
            &mut enc,
            "netlab_map_entries",
            "Entries in use in each pinned map",
            MetricType::Gauge,
            maps(|m| m.1),
        )?;
        family(
            &mut enc,
            "netlab_map_max_entries",
            "Capacity of each pinned map",
            MetricType::Gauge,
            maps(|m| m.2),
        )?;
        family(
            &mut enc,
            "netlab_nat_flows",
            "NAT flows by address family, protocol and state",
            MetricType::Gauge,
            self.flows
                .iter()
                .map(|((family, proto, state), n)| {
                    (
                        vec![
                            ("family", *family),
                            ("proto", proto.as_str()),
                            ("state", state.as_str()),
                        ],
                        ConstGauge::new(*n as i64),
                    )
                })
                .collect(),
        )?;
        family(
            &mut enc,
            "netlab_program_runs",
            "Runs of each eBPF program (BPF run-time statistics, on while metrics are served)",
            MetricType::Counter,
            self.programs
                .iter()
                .map(|(p, (runs, _))| (vec![("program", p.as_str())], ConstCounter::new(*runs)))
                .collect(),
        )?;
        family(
            &mut enc,
            "netlab_program_run_time_seconds",
            "Time spent in each eBPF program",
            MetricType::Counter,
            self.programs
                .iter()
                .map(|(p, (_, ns))| {
                    (
                        vec![("program", p.as_str())],
                        ConstCounter::new(*ns as f64 / 1e9),
                    )
                })
                .collect(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::stats::{Named, PortRow};

    #[test]
    fn the_text_format_has_types_labels_and_totals() {
        let snap = Snapshot {
            stats: Some(Stats {
                interval_s: None,
                counters: Named(vec![("port_rx", 7.0), ("drop_spoofed", 2.0)]),
                ports: vec![PortRow {
                    port: "veth-1-br".into(),
                    ifindex: 5,
                    owner: Some("ns1".into()),
                    role: crate::plan::PortRole::Endpoint,
                    slot: 0,
                    mac: String::new(),
                    ipv4: String::new(),
                    ipv6: Vec::new(),
                    rx_packets: 3.0,
                    rx_bytes: 300.0,
                    tx_packets: 1.0,
                    tx_bytes: 100.0,
                    drops: 2.0,
                }],
            }),
            maps: vec![("fdb".into(), 4, 1024)],
            flows: BTreeMap::from([
                (("ipv4", "udp".into(), "-".into()), 2),
                (("ipv6", "icmpv6".into(), "-".into()), 1),
            ]),
            programs: BTreeMap::from([("netlab_port".into(), (10, 2_000_000_000))]),
        };
        let text = snap.encode().unwrap();
        for line in [
            "# TYPE netlab_datapath_total counter",
            "netlab_datapath_total{reason=\"drop_spoofed\"} 2",
            "netlab_port_rx_bytes_total{port=\"veth-1-br\",owner=\"ns1\"} 300",
            "# TYPE netlab_map_entries gauge",
            "netlab_map_max_entries{map=\"fdb\"} 1024",
            "netlab_nat_flows{family=\"ipv4\",proto=\"udp\",state=\"-\"} 2",
            "netlab_nat_flows{family=\"ipv6\",proto=\"icmpv6\",state=\"-\"} 1",
            "netlab_program_runs_total{program=\"netlab_port\"} 10",
            "netlab_program_run_time_seconds_total{program=\"netlab_port\"} 2.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in:\n{text}"
            );
        }
    }
}
