//! What a report says about its run: the settings, the machine it ran on,
//! and the method behind every figure, in words (`--json`'s `settings`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::plan::Plan;
use super::report::{Cpus, Method, Settings};
use super::workload;

/// The run's settings as the report records them: the plan, the machine
/// (kernel, CPU model, tool versions) and the method.
pub fn describe(plan: &Plan) -> Settings {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let tools: BTreeMap<String, String> = ["iperf3", "sockperf"]
        .into_iter()
        .filter_map(|t| workload::tool_version(t).map(|v| (t.to_string(), v)))
        .collect();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    Settings {
        rounds: plan.rounds,
        duration_secs: plan.duration_secs,
        quick: plan.quick,
        datapaths: plan.datapaths.clone(),
        workloads: plan.workloads.clone(),
        cpus: Cpus {
            client: plan.client_cpu,
            server: plan.server_cpu,
        },
        kernel,
        cpu_model,
        tools,
        started_at,
        method: method(),
    }
}

/// How every figure is measured, in words, for the report.
pub fn method() -> Method {
    Method {
        order: "labs built once; per round, per workload, every datapath in turn \
                (A B C A B C …); servers restarted every round"
            .into(),
        warmup: "one 1 s iperf3 TCP run per datapath (ns→ns, and ns→internet where \
                 there is NAT), discarded"
            .into(),
        tcp: "iperf3 -J -t DURATION [-P 2]; end.sum_received.bits_per_second".into(),
        udp: format!(
            "iperf3 -u -l {} -b 0; received datagrams/s = (end.sum_received.packets − \
             lost_packets) / end.sum_received.seconds",
            workload::UDP_DATAGRAM_BYTES
        ),
        request_response: format!(
            "sockperf ping-pong --tcp -m {} --full-rtt (one message in flight); \
             round-trip percentiles; transactions/s = replies / valid run time",
            workload::RR_MESSAGE_BYTES
        ),
        connection_rate: "one client thread, sequential connections for DURATION: \
                          connect (1 s timeout), read 1 byte sent by the server, close with \
                          SO_LINGER 0 (RST); successes per second, failures counted"
            .into(),
        prefill: format!(
            "before every prefilled run: {} UDP flows, one 16-byte datagram each, from \
             {} consecutive source ports (from {}) to {} UDP sink ports (from {}) on the \
             internet namespace; identical for every datapath; NAT table size recorded in \
             nat_entries_before/after (kernel: nf_conntrack_count in the host namespace; \
             ebpf: keys in the pinned NAT hash maps)",
            workload::PREFILL_FLOWS,
            workload::PREFILL_FLOWS / workload::PREFILL_DST_PORTS as u32,
            workload::PREFILL_SRC_PORT_BASE,
            workload::PREFILL_DST_PORTS,
            workload::PREFILL_DST_PORT_BASE
        ),
        ipv6: format!(
            "inet6_tcp_1 and inet6_udp_64 are inet_tcp_1 and inet_udp_64 (same iperf3 runs, \
             same {}-byte UDP payload) to the internet namespace's IPv6 address, through \
             NAT66 (ebpf) or ip6tables MASQUERADE (kernel); before the warm-up, a TCP \
             connection over IPv6 from the client namespace to the internet namespace must \
             complete within {} s, and a datapath where it does not (or whose IPv6 warm-up \
             fails) is reported \"IPv6 unavailable\" for these workloads instead of a figure",
            workload::UDP_DATAGRAM_BYTES,
            super::ipv6::PROBE_TIMEOUT.as_secs()
        ),
    }
}
