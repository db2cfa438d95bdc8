//! One client function per throughput and ping-pong workload (iperf3,
//! sockperf), run in the client namespace pinned to the client CPU.

use std::net::IpAddr;
use std::time::Duration;

use super::measured::Measured;
use super::servers::{IPERF3_PORT, SOCKPERF_PORT, strings};
use crate::bench::{catalog::Metric, nsexec::NsCpu, parse};

/// sockperf ping-pong message size.
pub const RR_MESSAGE_BYTES: u32 = 64;
/// iperf3 UDP datagram size.
pub const UDP_DATAGRAM_BYTES: u32 = 64;

/// Generous bound for a client run: its duration plus connect and teardown.
fn client_timeout(secs: u64) -> Duration {
    Duration::from_secs(secs + 20)
}

/// iperf3 client, retried briefly while the server still tears down the
/// previous test ("the server is busy").
fn iperf3_client(
    client: &NsCpu,
    server: IpAddr,
    secs: u64,
    extra: &[&str],
) -> anyhow::Result<String> {
    let mut args = strings(&[
        "-c",
        &server.to_string(),
        "-p",
        &IPERF3_PORT.to_string(),
        "-J",
        "-t",
        &secs.to_string(),
        "--connect-timeout",
        "3000",
    ]);
    args.extend(strings(extra));
    let mut attempt = 0;
    loop {
        let out = client
            .command("iperf3", &args)?
            .output(client_timeout(secs))?;
        let busy = out.contains("server is busy");
        if !busy || attempt >= 5 {
            return Ok(out);
        }
        attempt += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// TCP throughput with `streams` parallel streams (iperf3 -P), as received.
/// `server` is an IPv4 or an IPv6 address (the iperf3 servers listen on
/// both).
pub fn tcp_throughput(
    client: &NsCpu,
    server: IpAddr,
    streams: u32,
    secs: u64,
) -> anyhow::Result<Measured> {
    let out = iperf3_client(client, server, secs, &["-P", &streams.to_string()])?;
    let tcp = parse::iperf3_tcp(&out)?;
    let mut m = Measured::default();
    m.values.push((Metric::BitsPerSecond, tcp.bits_per_second));
    m.details
        .insert("retransmits".into(), tcp.retransmits as f64);
    Ok(m)
}

/// UDP 64-byte datagrams sent as fast as possible (iperf3 -u -l 64 -b 0):
/// datagrams received per second at the server. The payload is 64 bytes
/// over IPv4 and IPv6 alike (the IPv6 frame is 20 bytes longer).
pub fn udp_small_packets(client: &NsCpu, server: IpAddr, secs: u64) -> anyhow::Result<Measured> {
    let len = UDP_DATAGRAM_BYTES.to_string();
    let out = iperf3_client(client, server, secs, &["-u", "-l", &len, "-b", "0"])?;
    let udp = parse::iperf3_udp(&out)?;
    let mut m = Measured::default();
    m.values
        .push((Metric::PacketsPerSecond, udp.packets_per_second));
    m.details
        .insert("sent_packets".into(), udp.sent_packets as f64);
    m.details
        .insert("received_packets".into(), udp.received_packets as f64);
    m.details
        .insert("lost_packets".into(), udp.lost_packets as f64);
    Ok(m)
}

/// TCP ping-pong, one 64-byte message in flight (sockperf --full-rtt).
pub fn request_response(client: &NsCpu, server: IpAddr, secs: u64) -> anyhow::Result<Measured> {
    request_response_at(client, server, SOCKPERF_PORT, secs)
}

/// [`request_response`] against `server:port` (a published port).
pub fn request_response_at(
    client: &NsCpu,
    server: IpAddr,
    port: u16,
    secs: u64,
) -> anyhow::Result<Measured> {
    let args = strings(&[
        "ping-pong",
        "--tcp",
        "-i",
        &server.to_string(),
        "-p",
        &port.to_string(),
        "-t",
        &secs.to_string(),
        "-m",
        &RR_MESSAGE_BYTES.to_string(),
        "--full-rtt",
    ]);
    let out = client
        .command("sockperf", &args)?
        .output(client_timeout(secs))?;
    let pp = parse::sockperf_pingpong(&out)?;
    let mut m = Measured::default();
    m.values.push((Metric::RttP50Us, pp.rtt_p50_us));
    m.values.push((Metric::RttP99Us, pp.rtt_p99_us));
    m.values
        .push((Metric::TransactionsPerSecond, pp.transactions_per_second));
    m.details.insert("rtt_avg_us".into(), pp.rtt_avg_us);
    m.details
        .insert("observations".into(), pp.observations as f64);
    Ok(m)
}
