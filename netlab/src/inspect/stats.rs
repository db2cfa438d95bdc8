//! `netlab stats`: the datapath's counters by reason and per port, and
//! with `--watch` their rates per second.

use std::time::{Duration, Instant};

use netlab_common::{
    counters::Counter,
    maps::{COUNTERS_MAP, PORT_STATS_MAP, PORTS_MAP},
};
use serde::Serialize;

use super::{Lab, decode};
use crate::plan::PortRole;

/// Counter name → value, in counter order (JSON: an object).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Named(pub Vec<(&'static str, f64)>);

/// Counts print as integers, rates (fractional) rounded to 0.01.
fn number(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        serde_json::json!(v as i64)
    } else {
        serde_json::json!((v * 100.0).round() / 100.0)
    }
}

fn ser_number<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    number(*v).serialize(s)
}

impl Serialize for Named {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, number(*v))))
    }
}

/// One switch port's statistics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortRow {
    pub port: String,
    pub ifindex: u32,
    /// The endpoint namespace behind it, or "gateway".
    pub owner: Option<String>,
    pub role: PortRole,
    pub slot: u32,
    pub mac: String,
    pub ipv4: String,
    /// The port's IPv6 addresses (global first, then link-local; empty
    /// without IPv6), as `fdb` shows them.
    pub ipv6: Vec<String>,
    #[serde(serialize_with = "ser_number")]
    pub rx_packets: f64,
    #[serde(serialize_with = "ser_number")]
    pub rx_bytes: f64,
    #[serde(serialize_with = "ser_number")]
    pub tx_packets: f64,
    #[serde(serialize_with = "ser_number")]
    pub tx_bytes: f64,
    #[serde(serialize_with = "ser_number")]
    pub drops: f64,
}

/// Counters and port statistics (or their rates per second).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Set for `--watch` samples: the values are per second over this interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<f64>,
    pub counters: Named,
    pub ports: Vec<PortRow>,
}

pub fn read(lab: &Lab) -> anyhow::Result<Stats> {
    for map in [COUNTERS_MAP, PORT_STATS_MAP, PORTS_MAP] {
        super::maps::open(lab, map)?.check_layout()?;
    }
    let counters = crate::datapath::ebpf::counters(&lab.name)?
        .into_iter()
        .map(|(c, v)| (c.name(), v as f64))
        .collect();
    let names = lab.ifnames();
    let ports = crate::datapath::ebpf::ports(&lab.name)?;
    let port_macs = ports.iter().map(|p| (p.ifindex, p.mac)).collect();
    let addrs = super::addrs::by_mac(lab, &port_macs);
    let ports = ports
        .into_iter()
        .map(|p| {
            let port = names.name(p.ifindex);
            PortRow {
                ipv6: addrs
                    .get(&p.mac)
                    .map(super::addrs::MacAddrs::ipv6_strings)
                    .unwrap_or_default(),
                owner: lab.port_owner(&port),
                port,
                ifindex: p.ifindex,
                role: p.role,
                slot: p.slot,
                mac: decode::mac(&p.mac),
                ipv4: p.ipv4.to_string(),
                rx_packets: p.stats.rx_packets as f64,
                rx_bytes: p.stats.rx_bytes as f64,
                tx_packets: p.stats.tx_packets as f64,
                tx_bytes: p.stats.tx_bytes as f64,
                drops: p.stats.drops as f64,
            }
        })
        .collect();
    Ok(Stats {
        interval_s: None,
        counters: Named(counters),
        ports,
    })
}

/// Per-second rates between two readings `dt` apart (counters that went
/// backwards — a port re-created in a slot — count from zero).
pub fn rates(prev: &Stats, now: &Stats, dt: Duration) -> Stats {
    let secs = dt.as_secs_f64().max(1e-3);
    let rate = |a: f64, b: f64| if b >= a { (b - a) / secs } else { b / secs };
    let counters = now
        .counters
        .0
        .iter()
        .map(|(k, v)| {
            let before = prev
                .counters
                .0
                .iter()
                .find(|(p, _)| p == k)
                .map_or(0.0, |x| x.1);
            (*k, rate(before, *v))
        })
        .collect();
    let ports = now
        .ports
        .iter()
        .map(|p| {
            let b = prev
                .ports
                .iter()
                .find(|q| q.ifindex == p.ifindex && q.slot == p.slot);
            let z = |f: fn(&PortRow) -> f64| b.map_or(0.0, f);
            PortRow {
                rx_packets: rate(z(|q| q.rx_packets), p.rx_packets),
                rx_bytes: rate(z(|q| q.rx_bytes), p.rx_bytes),
                tx_packets: rate(z(|q| q.tx_packets), p.tx_packets),
                tx_bytes: rate(z(|q| q.tx_bytes), p.tx_bytes),
                drops: rate(z(|q| q.drops), p.drops),
                ..p.clone()
            }
        })
        .collect();
    Stats {
        interval_s: Some(secs),
        counters: Named(counters),
        ports,
    }
}

fn num(v: f64, rate: bool) -> String {
    if rate {
        format!("{v:.1}/s")
    } else {
        format!("{}", v as u64)
    }
}

/// Counters (non-zero ones, unless `all`) and the port table.
pub fn render(s: &Stats, all: bool) -> String {
    use comfy_table::{Cell, Color};
    let rate = s.interval_s.is_some();
    let color = super::color_enabled();
    let mut c = super::table(["counter", if rate { "per second" } else { "value" }]);
    let mut hidden = 0;
    for (name, v) in &s.counters.0 {
        if *v == 0.0 && !all && !rate {
            hidden += 1;
            continue;
        }
        let mut cell = Cell::new(num(*v, rate));
        if color && *v > 0.0 && (name.starts_with("drop") || name.starts_with("nat_drop")) {
            cell = cell.fg(Color::Red);
        }
        c.add_row(vec![Cell::new(name), cell]);
    }
    let mut p = super::table([
        "port",
        "behind",
        "slot",
        "rx packets",
        "rx bytes",
        "tx packets",
        "tx bytes",
        "drops",
    ]);
    for r in &s.ports {
        p.add_row(vec![
            r.port.clone(),
            r.owner.clone().unwrap_or_else(|| "-".into()),
            r.slot.to_string(),
            num(r.rx_packets, rate),
            num(r.rx_bytes, rate),
            num(r.tx_packets, rate),
            num(r.tx_bytes, rate),
            num(r.drops, rate),
        ]);
    }
    let note = if hidden > 0 {
        format!("({hidden} counters at zero not shown; --all shows them)\n")
    } else {
        String::new()
    };
    format!("{c}\n{note}{p}\n")
}

/// `stats --watch SECS`: a sample every `interval` until interrupted.
/// Tables redraw in place on a terminal; `json` prints one JSON object per
/// line (rates per second).
pub fn watch(lab: &Lab, interval: Duration, json: bool, all: bool) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stdout().is_terminal();
    let mut prev = read(lab)?;
    let mut at = Instant::now();
    loop {
        std::thread::sleep(interval);
        let now = read(lab)?;
        let t = Instant::now();
        let r = rates(&prev, &now, t - at);
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(&r)?)?;
        } else {
            if tty {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(
                out,
                "lab {}: rates over the last {:.1}s (Ctrl-C stops)",
                lab.name,
                r.interval_s.unwrap_or_default()
            )?;
            write!(out, "{}", render(&r, all))?;
        }
        out.flush()?;
        (prev, at) = (now, t);
    }
}

/// Every counter's name and meaning, in counter order (JSON: an object),
/// as the counters' one declaration (`netlab_common::counters!`) states
/// them: `netlab stats --explain`.
#[derive(Debug)]
pub struct Meanings(pub Vec<(&'static str, &'static str)>);

impl Serialize for Meanings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().copied())
    }
}

pub fn meanings() -> Meanings {
    Meanings(
        Counter::ALL
            .iter()
            .map(|c| (c.name(), c.meaning()))
            .collect(),
    )
}

/// Two columns: the name, then the meaning wrapped to `MEANING_WIDTH`.
pub fn render_meanings(m: &Meanings) -> String {
    const MEANING_WIDTH: usize = 72;
    let name_width = m.0.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (name, meaning) in &m.0 {
        let mut lines = vec![String::new()];
        for word in meaning.split_whitespace() {
            let last = lines.last_mut().expect("never empty");
            if !last.is_empty() && last.len() + 1 + word.len() > MEANING_WIDTH {
                lines.push(word.to_string());
            } else {
                if !last.is_empty() {
                    last.push(' ');
                }
                last.push_str(word);
            }
        }
        for (i, line) in lines.iter().enumerate() {
            let label = if i == 0 { *name } else { "" };
            out.push_str(&format!("{label:<name_width$}  {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_names_the_ipv6_counters() {
        let m = meanings();
        for name in [
            "nd_answered",
            "drop_ra_guard",
            "drop_nd_spoof",
            "drop_ipv6_malformed",
            "nat_drop_ext_headers",
        ] {
            let meaning =
                m.0.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, m)| *m)
                    .unwrap_or_else(|| panic!("{name} missing from --explain"));
            assert!(!meaning.is_empty(), "{name} has no meaning");
            assert!(render_meanings(&m).contains(name));
        }
    }
}
