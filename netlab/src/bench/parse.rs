//! Reading the tools' results: iperf3 `-J` JSON and sockperf's summary.
//!
//! Both tools exit 0 on some failures (iperf3 3.12 with `-J` on "connection
//! refused", sockperf 3.7 on a failed connect), so failure is recognised
//! from the output, never from the exit code alone.

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

/// iperf3 TCP test: what the receiver got.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TcpThroughput {
    /// `end.sum_received.bits_per_second`.
    pub bits_per_second: f64,
    /// `end.sum_sent.retransmits` (0 if absent).
    pub retransmits: u64,
}

/// iperf3 UDP test: datagrams that arrived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UdpRate {
    /// Received datagrams per second at the server.
    pub packets_per_second: f64,
    pub received_packets: u64,
    pub lost_packets: u64,
    pub sent_packets: u64,
    pub seconds: f64,
}

fn iperf3_json(text: &str) -> anyhow::Result<Value> {
    let json: Value = serde_json::from_str(text).context("iperf3 output is not JSON")?;
    if let Some(err) = json.get("error").and_then(Value::as_str) {
        bail!("iperf3: {err}");
    }
    Ok(json)
}

fn field<'a>(json: &'a Value, path: &[&str]) -> anyhow::Result<&'a Value> {
    let mut at = json;
    for key in path {
        at = at
            .get(key)
            .ok_or_else(|| anyhow!("iperf3 JSON has no {}", path.join(".")))?;
    }
    Ok(at)
}

fn number(json: &Value, path: &[&str]) -> anyhow::Result<f64> {
    field(json, path)?
        .as_f64()
        .ok_or_else(|| anyhow!("iperf3 JSON {} is not a number", path.join(".")))
}

/// `iperf3 -c ... -J` (TCP).
pub fn iperf3_tcp(text: &str) -> anyhow::Result<TcpThroughput> {
    let json = iperf3_json(text)?;
    let bits_per_second = number(&json, &["end", "sum_received", "bits_per_second"])?;
    let retransmits = number(&json, &["end", "sum_sent", "retransmits"]).unwrap_or(0.0) as u64;
    Ok(TcpThroughput {
        bits_per_second,
        retransmits,
    })
}

/// `iperf3 -c ... -u -J`. In iperf3 3.12 `end.sum_received.packets` is the
/// highest sequence number the server saw (i.e. it includes the lost ones)
/// and `lost_packets` the gaps, so received = packets − lost_packets; this
/// equals `bytes / datagram length` (checked by the fixture test). The
/// receiver's own `seconds` is the time base.
pub fn iperf3_udp(text: &str) -> anyhow::Result<UdpRate> {
    let json = iperf3_json(text)?;
    let packets = number(&json, &["end", "sum_received", "packets"])?;
    let lost = number(&json, &["end", "sum_received", "lost_packets"])?;
    let seconds = number(&json, &["end", "sum_received", "seconds"])?;
    let sent = number(&json, &["end", "sum_sent", "packets"]).unwrap_or(packets);
    if seconds <= 0.0 {
        bail!("iperf3 UDP result covers no time");
    }
    let received = (packets - lost).max(0.0);
    Ok(UdpRate {
        packets_per_second: received / seconds,
        received_packets: received as u64,
        lost_packets: lost as u64,
        sent_packets: sent as u64,
        seconds,
    })
}

/// sockperf ping-pong summary (run with `--full-rtt`, so the percentiles are
/// round trips, not the half-RTT sockperf reports by default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PingPong {
    pub rtt_p50_us: f64,
    pub rtt_p99_us: f64,
    pub rtt_avg_us: f64,
    /// Replies in the valid (post-warm-up) window per second of it.
    pub transactions_per_second: f64,
    pub observations: u64,
}

/// Drop ANSI colour sequences (`ESC [ ... m`) that sockperf puts around
/// some lines even when writing to a pipe.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number after `key=` in a `;`-separated sockperf line.
fn key_value(line: &str, key: &str) -> Option<f64> {
    let start = line.find(key)? + key.len();
    let rest = line[start..].trim_start_matches([' ', '=']);
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `sockperf ping-pong --tcp --full-rtt ...` standard output (sockperf 3.7).
pub fn sockperf_pingpong(text: &str) -> anyhow::Result<PingPong> {
    let text = strip_ansi(text);
    if let Some(err) = text.lines().find(|l| l.contains("ERROR")) {
        bail!("{}", err.trim());
    }
    let mut p50 = None;
    let mut p99 = None;
    let mut avg = None;
    let mut valid = None;
    let mut observations = None;
    for line in text.lines() {
        let line = line.trim_start_matches("sockperf:").trim();
        if let Some(rest) = line.strip_prefix("---> percentile ") {
            let (pct, value) = rest.split_once('=').context("sockperf percentile line")?;
            let value: f64 = value.trim().parse().context("sockperf percentile value")?;
            match pct.trim() {
                "50.000" => p50 = Some(value),
                "99.000" => p99 = Some(value),
                _ => {}
            }
        } else if line.starts_with("[Valid Duration]") {
            let run_time =
                key_value(line, "RunTime").context("sockperf [Valid Duration] RunTime")?;
            let received = key_value(line, "ReceivedMessages")
                .context("sockperf [Valid Duration] ReceivedMessages")?;
            valid = Some((run_time, received));
        } else if let Some(rest) = line.strip_prefix("====> avg-rtt") {
            avg = key_value(rest, "");
        } else if line.starts_with("====> avg-latency") {
            bail!("sockperf reported half round trips: run it with --full-rtt");
        } else if let Some(rest) = line.strip_prefix("Total ") {
            observations = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        }
    }
    let (run_time, received) = valid.context("sockperf output has no [Valid Duration] line")?;
    if run_time <= 0.0 || received <= 0.0 {
        bail!("sockperf measured nothing (RunTime={run_time}, ReceivedMessages={received})");
    }
    Ok(PingPong {
        rtt_p50_us: p50.context("sockperf output has no 50th percentile")?,
        rtt_p99_us: p99.context("sockperf output has no 99th percentile")?,
        rtt_avg_us: avg.context("sockperf output has no avg-rtt")?,
        transactions_per_second: received / run_time,
        observations: observations.unwrap_or(received as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on the development VM (iperf 3.12, sockperf 3.7) between two
    // namespaces joined by a veth pair.
    const TCP1: &str = include_str!("fixtures/iperf3_tcp_1stream.json");
    const TCP2: &str = include_str!("fixtures/iperf3_tcp_2streams.json");
    const UDP64: &str = include_str!("fixtures/iperf3_udp_64.json");
    const REFUSED: &str = include_str!("fixtures/iperf3_refused.json");
    const PINGPONG: &str = include_str!("fixtures/sockperf_pingpong_tcp_full_rtt.txt");
    const SOCKPERF_REFUSED: &str = include_str!("fixtures/sockperf_refused.txt");

    #[test]
    fn iperf3_tcp_one_and_two_streams() {
        let one = iperf3_tcp(TCP1).unwrap();
        // serde_json parses floats to within an ulp or so, not bit-exactly.
        assert!((one.bits_per_second - 11232785286.865543).abs() < 1e-3);
        assert_eq!(one.retransmits, 180);
        let two = iperf3_tcp(TCP2).unwrap();
        assert!((two.bits_per_second - 11259246739.838839).abs() < 1e-3);
        assert_eq!(two.retransmits, 3066);
    }

    #[test]
    fn iperf3_udp_received_rate() {
        let udp = iperf3_udp(UDP64).unwrap();
        assert_eq!(udp.received_packets, 488121 - 257840);
        assert_eq!(udp.lost_packets, 257840);
        assert_eq!(udp.sent_packets, 488720);
        // Received datagrams agree with the received bytes / 64.
        assert_eq!(udp.received_packets, 14737984 / 64);
        assert!((udp.packets_per_second - 230281.0 / 1.002744).abs() < 1e-6);
    }

    #[test]
    fn iperf3_error_is_an_error() {
        let err = iperf3_tcp(REFUSED).unwrap_err().to_string();
        assert!(err.contains("Connection refused"), "{err}");
        assert!(iperf3_udp(REFUSED).is_err());
        assert!(iperf3_tcp("not json").is_err());
        // A TCP result is not a UDP result.
        assert!(iperf3_udp(TCP1).is_err());
    }

    #[test]
    fn sockperf_full_rtt_summary() {
        let pp = sockperf_pingpong(PINGPONG).unwrap();
        assert_eq!(pp.rtt_p50_us, 4.929);
        assert_eq!(pp.rtt_p99_us, 177.294);
        assert_eq!(pp.rtt_avg_us, 22.299);
        assert_eq!(pp.observations, 24603);
        assert!((pp.transactions_per_second - 24603.0 / 0.550).abs() < 1e-6);
    }

    #[test]
    fn sockperf_errors() {
        let err = sockperf_pingpong(SOCKPERF_REFUSED).unwrap_err().to_string();
        assert!(err.contains("Connection refused"), "{err}");
        let half = PINGPONG.replace("avg-rtt", "avg-latency");
        assert!(sockperf_pingpong(&half).is_err());
        assert!(sockperf_pingpong("").is_err());
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("a\u{1b}[2;35mb\u{1b}[0mc"), "abc");
    }
}
