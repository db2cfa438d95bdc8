//! `netlab check`: the walkthrough's three goals as a table. Every endpoint
//! namespace pings every other one, the gateway (the host), and the
//! internet server (sandbox only; root mode shows n/a, netlab never sends
//! traffic outside the lab on its own).
//!
//! Each cell is one `ping -c 1 -W 1` run inside the source namespace.

use std::net::Ipv4Addr;
use std::process::Command;

use comfy_table::{Cell, Color, Table};
use serde::Serialize;

use crate::netns;
use crate::plan::LabPlan;

/// How many pings run at once.
const PARALLEL_PINGS: usize = 16;

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Ok { rtt_ms: Option<f64> },
    Fail { reason: String },
    NotApplicable,
}

#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub from: String,
    /// Column label: a namespace name, "gateway" or "internet".
    pub to: String,
    pub address: Option<Ipv4Addr>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub lab: String,
    pub columns: Vec<String>,
    pub probes: Vec<Probe>,
}

impl CheckReport {
    pub fn all_ok(&self) -> bool {
        self.probes
            .iter()
            .all(|p| !matches!(p.outcome, Outcome::Fail { .. }))
    }

    pub fn failures(&self) -> impl Iterator<Item = &Probe> {
        self.probes
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Fail { .. }))
    }

    /// Rows = source namespaces, columns = targets.
    pub fn table(&self, color: bool) -> Table {
        let mut t = Table::new();
        t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        let mut header = vec![Cell::new("from \\ to")];
        header.extend(self.columns.iter().map(Cell::new));
        t.set_header(header);
        let mut sources: Vec<&str> = Vec::new();
        for p in &self.probes {
            if !sources.contains(&p.from.as_str()) {
                sources.push(&p.from);
            }
        }
        for src in sources {
            let mut row = vec![Cell::new(src)];
            for col in &self.columns {
                let cell = match self.probes.iter().find(|p| p.from == src && &p.to == col) {
                    None => Cell::new("-"),
                    Some(p) => match &p.outcome {
                        Outcome::Ok { rtt_ms } => {
                            let text = match rtt_ms {
                                Some(ms) => format!("ok {ms:.3} ms"),
                                None => "ok".into(),
                            };
                            let c = Cell::new(text);
                            if color { c.fg(Color::Green) } else { c }
                        }
                        Outcome::Fail { .. } => {
                            let c = Cell::new("FAIL");
                            if color { c.fg(Color::Red) } else { c }
                        }
                        Outcome::NotApplicable => Cell::new("n/a"),
                    },
                };
                row.push(cell);
            }
            t.add_row(row);
        }
        t
    }
}

/// The `time=0.045 ms` of a ping reply line.
fn parse_rtt(stdout: &str) -> Option<f64> {
    let rest = stdout.split("time=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// One ping from inside `ns`.
pub fn ping(ns: &str, target: Ipv4Addr) -> Outcome {
    let mut cmd = Command::new("ping");
    cmd.args(["-c", "1", "-W", "1", "-n", &target.to_string()]);
    if let Err(e) = netns::command_in(&mut cmd, ns, false) {
        return Outcome::Fail {
            reason: e.to_string(),
        };
    }
    match cmd.output() {
        Err(e) => Outcome::Fail {
            reason: format!("cannot run ping: {e}"),
        },
        Ok(out) if out.status.success() => Outcome::Ok {
            rtt_ms: parse_rtt(&String::from_utf8_lossy(&out.stdout)),
        },
        Ok(out) => Outcome::Fail {
            reason: format!(
                "no reply from {target} ({}){}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            ),
        },
    }
}

/// Runs every probe of the lab.
pub fn run(plan: &LabPlan) -> CheckReport {
    let mut columns: Vec<String> = plan.endpoints.iter().map(|e| e.namespace.clone()).collect();
    columns.push("gateway".into());
    columns.push("internet".into());

    let mut probes: Vec<Probe> = Vec::new();
    for src in &plan.endpoints {
        for dst in &plan.endpoints {
            if dst.namespace != src.namespace {
                probes.push(Probe {
                    from: src.namespace.clone(),
                    to: dst.namespace.clone(),
                    address: Some(dst.address),
                    outcome: Outcome::NotApplicable,
                });
            }
        }
        probes.push(Probe {
            from: src.namespace.clone(),
            to: "gateway".into(),
            address: Some(plan.gateway),
            outcome: Outcome::NotApplicable,
        });
        probes.push(Probe {
            from: src.namespace.clone(),
            to: "internet".into(),
            address: plan.internet_server(),
            outcome: Outcome::NotApplicable,
        });
    }
    for chunk in probes.chunks_mut(PARALLEL_PINGS) {
        std::thread::scope(|s| {
            for p in chunk.iter_mut() {
                if let Some(addr) = p.address {
                    s.spawn(move || p.outcome = ping(&p.from, addr));
                }
            }
        });
    }
    CheckReport {
        lab: plan.name.clone(),
        columns,
        probes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ping_rtt() {
        let out = "PING 192.168.28.2 (192.168.28.2) 56(84) bytes of data.\n64 bytes from 192.168.28.2: icmp_seq=1 ttl=64 time=0.045 ms\n";
        assert_eq!(parse_rtt(out), Some(0.045));
        assert_eq!(parse_rtt("nothing"), None);
    }

    #[test]
    fn failures_make_the_report_fail() {
        let mut r = CheckReport {
            lab: "x".into(),
            columns: vec!["gateway".into()],
            probes: vec![Probe {
                from: "ns1".into(),
                to: "gateway".into(),
                address: None,
                outcome: Outcome::NotApplicable,
            }],
        };
        assert!(r.all_ok());
        r.probes[0].outcome = Outcome::Fail { reason: "x".into() };
        assert!(!r.all_ok());
        assert!(r.table(false).to_string().contains("FAIL"));
    }
}
