//! `netlab check`: the walkthrough's three goals as a table. Every endpoint
//! namespace pings every other one, the gateway (the host), and the
//! internet server (sandbox only; root mode shows n/a, netlab never sends
//! traffic outside the lab on its own). With IPv6, each namespace has a
//! second row, `<ns> (IPv6)`: the same goals over IPv6 (`ping -6`), to
//! the others' `address6`, `gateway6` and the internet server's IPv6
//! address; where the lab's IPv6 cannot leave (`up` and `status` say why)
//! the internet cell is n/a.
//!
//! Each cell is one `ping -c 1 -W 1` run inside the source namespace.

use std::net::IpAddr;
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

/// The address family a probe uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub from: String,
    /// Column label: a namespace name, "gateway" or "internet".
    pub to: String,
    pub family: Family,
    pub address: Option<IpAddr>,
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
        // One row per source and family, in probe order.
        let mut sources: Vec<(&str, Family)> = Vec::new();
        for p in &self.probes {
            if !sources.contains(&(p.from.as_str(), p.family)) {
                sources.push((&p.from, p.family));
            }
        }
        for (src, family) in sources {
            let label = match family {
                Family::Ipv4 => src.to_string(),
                Family::Ipv6 => format!("{src} (IPv6)"),
            };
            let mut row = vec![Cell::new(label)];
            for col in &self.columns {
                let cell = match self
                    .probes
                    .iter()
                    .find(|p| p.from == src && p.family == family && &p.to == col)
                {
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

/// One ping from inside `ns` (`ping -6` for an IPv6 target).
pub fn ping(ns: &str, target: IpAddr) -> Outcome {
    let mut cmd = Command::new("ping");
    if target.is_ipv6() {
        cmd.arg("-6");
    }
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
    // IPv6's internet cell only where the lab's IPv6 can leave.
    let internet6 = plan
        .internet_server6()
        .filter(|_| crate::health::ipv6_egress_problem(plan).is_none());
    for src in &plan.endpoints {
        let probe = |to: &str, family, address: Option<IpAddr>| Probe {
            from: src.namespace.clone(),
            to: to.into(),
            family,
            address,
            outcome: Outcome::NotApplicable,
        };
        for dst in plan
            .endpoints
            .iter()
            .filter(|d| d.namespace != src.namespace)
        {
            probes.push(probe(
                &dst.namespace,
                Family::Ipv4,
                Some(dst.address.into()),
            ));
        }
        probes.push(probe("gateway", Family::Ipv4, Some(plan.gateway.into())));
        probes.push(probe(
            "internet",
            Family::Ipv4,
            plan.internet_server().map(IpAddr::from),
        ));
        let (Some(v6), Some(_)) = (plan.ipv6, src.address6) else {
            continue;
        };
        for dst in plan
            .endpoints
            .iter()
            .filter(|d| d.namespace != src.namespace)
        {
            probes.push(probe(
                &dst.namespace,
                Family::Ipv6,
                dst.address6.map(IpAddr::from),
            ));
        }
        probes.push(probe("gateway", Family::Ipv6, Some(v6.gateway.into())));
        probes.push(probe("internet", Family::Ipv6, internet6.map(IpAddr::from)));
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
                family: Family::Ipv6,
                address: None,
                outcome: Outcome::NotApplicable,
            }],
        };
        assert!(r.all_ok());
        r.probes[0].outcome = Outcome::Fail { reason: "x".into() };
        assert!(!r.all_ok());
        let table = r.table(false).to_string();
        assert!(
            table.contains("FAIL") && table.contains("ns1 (IPv6)"),
            "{table}"
        );
    }
}
