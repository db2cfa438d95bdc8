//! The bench's vocabulary: what is compared ([`BenchDatapath`]), where the
//! traffic goes ([`Path`]), what is run ([`Workload`]), what is read from
//! it ([`Metric`]) and what is reported ([`Figure`], a metric of a
//! workload). The names here are the ids in the JSON, the table and the
//! command line.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the three things being compared.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum BenchDatapath {
    /// netlab's lab on the Linux bridge + iptables MASQUERADE (the baseline).
    Kernel,
    /// netlab's lab on the eBPF switch + eBPF NAT, TC programs only (the
    /// product's reference path; the uplink XDP program is switched off).
    Ebpf,
    /// The same lab with XDP wherever netlab has it: the switch as an XDP
    /// program on every port (`switch = "xdp"`) and the uplink XDP filter.
    #[serde(rename = "ebpf-xdp")]
    #[value(name = "ebpf-xdp")]
    EbpfXdp,
    /// Two namespaces joined by a bare veth pair: no switching, no NAT, the
    /// ceiling any datapath can reach on this machine.
    Direct,
}

impl BenchDatapath {
    pub const ALL: [BenchDatapath; 4] = [Self::Kernel, Self::Ebpf, Self::EbpfXdp, Self::Direct];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Ebpf => "ebpf",
            Self::EbpfXdp => "ebpf-xdp",
            Self::Direct => "direct",
        }
    }

    /// Whether the datapath has a way out to an "internet" through NAT.
    pub fn has_nat(self) -> bool {
        !matches!(self, Self::Direct)
    }
}

impl fmt::Display for BenchDatapath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the traffic goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// Namespace to namespace on the lab subnet (switching only).
    Ns,
    /// Namespace to the internet namespace through the gateway and source NAT.
    Inet,
    /// Namespace to the internet namespace's IPv6 address through the
    /// gateway and NAT66 (ip6tables MASQUERADE on the kernel datapath).
    Inet6,
    /// The internet namespace to a published port of a namespace, at the
    /// uplink address (destination NAT).
    Published,
}

/// One kind of measurement.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
pub enum Workload {
    /// ns→ns TCP throughput, one stream (iperf3).
    #[serde(rename = "ns_tcp_1")]
    #[value(name = "ns_tcp_1")]
    NsTcp1,
    /// ns→ns TCP throughput, two parallel streams (iperf3 -P 2).
    #[serde(rename = "ns_tcp_2")]
    #[value(name = "ns_tcp_2")]
    NsTcp2,
    /// ns→ns UDP 64-byte datagrams, received packets/s (iperf3 -u -l 64 -b 0).
    #[serde(rename = "ns_udp_64")]
    #[value(name = "ns_udp_64")]
    NsUdp64,
    /// ns→ns TCP ping-pong, round-trip p50/p99 and transactions/s (sockperf).
    #[serde(rename = "ns_rr")]
    #[value(name = "ns_rr")]
    NsRr,
    /// ns→internet TCP throughput through NAT, one stream.
    #[serde(rename = "inet_tcp_1")]
    #[value(name = "inet_tcp_1")]
    InetTcp1,
    /// The same over IPv6, through NAT66 (ip6tables MASQUERADE on the
    /// kernel datapath).
    #[serde(rename = "inet6_tcp_1")]
    #[value(name = "inet6_tcp_1")]
    Inet6Tcp1,
    /// ns→internet UDP 64-byte datagrams through NAT.
    #[serde(rename = "inet_udp_64")]
    #[value(name = "inet_udp_64")]
    InetUdp64,
    /// The same over IPv6 (64-byte payload), through NAT66.
    #[serde(rename = "inet6_udp_64")]
    #[value(name = "inet6_udp_64")]
    Inet6Udp64,
    /// ns→internet TCP ping-pong through NAT.
    #[serde(rename = "inet_rr")]
    #[value(name = "inet_rr")]
    InetRr,
    /// ns→internet new TCP connections per second through NAT.
    #[serde(rename = "inet_conn_rate")]
    #[value(name = "inet_conn_rate")]
    InetConnRate,
    /// The same with the NAT table first filled with `PREFILL_FLOWS` UDP flows.
    #[serde(rename = "inet_conn_rate_prefilled")]
    #[value(name = "inet_conn_rate_prefilled")]
    InetConnRatePrefilled,
    /// internet→published port (uplink address) TCP ping-pong, through DNAT.
    #[serde(rename = "pub_rr")]
    #[value(name = "pub_rr")]
    PubRr,
    /// internet→published port new TCP connections per second, through DNAT.
    #[serde(rename = "pub_conn_rate")]
    #[value(name = "pub_conn_rate")]
    PubConnRate,
    /// Unsolicited 64-byte UDP from the internet to a lab address, as fast
    /// as one pinned sender can (sendmmsg): packets/s the host side's uplink
    /// takes in and disposes of (kernel: forwards; eBPF: drops).
    #[serde(rename = "inet_flood")]
    #[value(name = "inet_flood")]
    InetFlood,
}

impl Workload {
    /// Every workload, in report order: each IPv6 row right after its
    /// IPv4 counterpart.
    pub const ALL: [Workload; 14] = [
        Self::NsTcp1,
        Self::NsTcp2,
        Self::NsUdp64,
        Self::NsRr,
        Self::InetTcp1,
        Self::Inet6Tcp1,
        Self::InetUdp64,
        Self::Inet6Udp64,
        Self::InetRr,
        Self::InetConnRate,
        Self::InetConnRatePrefilled,
        Self::PubRr,
        Self::PubConnRate,
        Self::InetFlood,
    ];

    /// Stable identifier (JSON, SVG, table).
    pub fn id(self) -> &'static str {
        match self {
            Self::NsTcp1 => "ns_tcp_1",
            Self::NsTcp2 => "ns_tcp_2",
            Self::NsUdp64 => "ns_udp_64",
            Self::NsRr => "ns_rr",
            Self::InetTcp1 => "inet_tcp_1",
            Self::Inet6Tcp1 => "inet6_tcp_1",
            Self::InetUdp64 => "inet_udp_64",
            Self::Inet6Udp64 => "inet6_udp_64",
            Self::InetRr => "inet_rr",
            Self::InetConnRate => "inet_conn_rate",
            Self::InetConnRatePrefilled => "inet_conn_rate_prefilled",
            Self::PubRr => "pub_rr",
            Self::PubConnRate => "pub_conn_rate",
            Self::InetFlood => "inet_flood",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::NsTcp1 => "ns→ns TCP, 1 stream",
            Self::NsTcp2 => "ns→ns TCP, 2 streams",
            Self::NsUdp64 => "ns→ns UDP 64 B",
            Self::NsRr => "ns→ns TCP ping-pong",
            Self::InetTcp1 => "ns→inet TCP, 1 stream (NAT)",
            Self::Inet6Tcp1 => "ns→inet IPv6 TCP, 1 stream (NAT66)",
            Self::InetUdp64 => "ns→inet UDP 64 B (NAT)",
            Self::Inet6Udp64 => "ns→inet IPv6 UDP 64 B (NAT66)",
            Self::InetRr => "ns→inet TCP ping-pong (NAT)",
            Self::InetConnRate => "ns→inet new TCP conns (NAT)",
            Self::InetConnRatePrefilled => "ns→inet new TCP conns, NAT table prefilled",
            Self::PubRr => "inet→published port TCP ping-pong (DNAT)",
            Self::PubConnRate => "inet→published port new TCP conns (DNAT)",
            Self::InetFlood => "inet→lab unsolicited UDP 64 B flood",
        }
    }

    pub fn path(self) -> Path {
        match self {
            Self::NsTcp1 | Self::NsTcp2 | Self::NsUdp64 | Self::NsRr => Path::Ns,
            Self::PubRr | Self::PubConnRate => Path::Published,
            Self::Inet6Tcp1 | Self::Inet6Udp64 => Path::Inet6,
            _ => Path::Inet,
        }
    }

    /// The figures this workload produces.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Self::NsTcp1 | Self::NsTcp2 | Self::InetTcp1 | Self::Inet6Tcp1 => {
                &[Metric::BitsPerSecond]
            }
            Self::NsUdp64 | Self::InetUdp64 | Self::Inet6Udp64 | Self::InetFlood => {
                &[Metric::PacketsPerSecond]
            }
            Self::NsRr | Self::InetRr | Self::PubRr => &[
                Metric::RttP50Us,
                Metric::RttP99Us,
                Metric::TransactionsPerSecond,
            ],
            Self::InetConnRate | Self::InetConnRatePrefilled | Self::PubConnRate => {
                &[Metric::ConnectionsPerSecond]
            }
        }
    }

    /// Why the workload does not apply to a datapath, if it does not.
    pub fn skip_reason(self, datapath: BenchDatapath) -> Option<&'static str> {
        (self.path() != Path::Ns && !datapath.has_nat())
            .then_some("no gateway/NAT on a bare veth pair")
    }
}

/// One number a workload reports. The JSON keys are `id()`; values are in
/// base units (bit/s, packet/s, microseconds, 1/s).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    BitsPerSecond,
    PacketsPerSecond,
    RttP50Us,
    RttP99Us,
    TransactionsPerSecond,
    ConnectionsPerSecond,
}

impl Metric {
    pub fn id(self) -> &'static str {
        match self {
            Self::BitsPerSecond => "bits_per_second",
            Self::PacketsPerSecond => "packets_per_second",
            Self::RttP50Us => "rtt_p50_us",
            Self::RttP99Us => "rtt_p99_us",
            Self::TransactionsPerSecond => "transactions_per_second",
            Self::ConnectionsPerSecond => "connections_per_second",
        }
    }

    /// Latency: lower is better; everything else: higher is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Self::RttP50Us | Self::RttP99Us)
    }

    /// Display unit and the factor from the base unit to it.
    pub fn display_unit(self) -> (&'static str, f64) {
        match self {
            Self::BitsPerSecond => ("Gbit/s", 1e-9),
            Self::PacketsPerSecond => ("kpkt/s", 1e-3),
            Self::RttP50Us | Self::RttP99Us => ("µs", 1.0),
            Self::TransactionsPerSecond => ("ktrans/s", 1e-3),
            Self::ConnectionsPerSecond => ("conn/s", 1.0),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::BitsPerSecond => "throughput",
            Self::PacketsPerSecond => "received packets/s",
            Self::RttP50Us => "round trip p50",
            Self::RttP99Us => "round trip p99",
            Self::TransactionsPerSecond => "transactions/s",
            Self::ConnectionsPerSecond => "connections/s",
        }
    }
}

/// A figure = one metric of one workload: one row of the table, one panel of
/// the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Figure {
    pub workload: Workload,
    pub metric: Metric,
}

impl Figure {
    /// `"<workload>.<metric>"`, e.g. `ns_tcp_1.bits_per_second`.
    pub fn id(self) -> String {
        format!("{}.{}", self.workload.id(), self.metric.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_ids_everywhere() {
        use clap::ValueEnum;
        for w in Workload::ALL {
            assert_eq!(serde_json::to_value(w).unwrap(), w.id());
            assert_eq!(w.to_possible_value().unwrap().get_name(), w.id());
        }
        for m in [
            Metric::BitsPerSecond,
            Metric::RttP50Us,
            Metric::ConnectionsPerSecond,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.id());
        }
        for d in BenchDatapath::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
    }
}
