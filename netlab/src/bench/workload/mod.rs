//! The measurements: servers started in a namespace once per datapath per
//! round ([`servers`]), and one client function per workload
//! ([`clients`], [`connections`]), run in the client namespace pinned to
//! the client CPU; [`prefill`] fills the NAT table first where a workload
//! asks for it.

pub mod clients;
pub mod connections;
pub mod measured;
pub mod prefill;
pub mod servers;

pub use clients::{
    RR_MESSAGE_BYTES, UDP_DATAGRAM_BYTES, request_response, request_response_at, tcp_throughput,
    udp_small_packets,
};
pub use connections::{ACCEPT_PORT, AcceptServer, ConnRate, connection_rate, connects_within};
pub use measured::Measured;
pub use prefill::{
    PREFILL_DST_PORT_BASE, PREFILL_DST_PORTS, PREFILL_FLOWS, PREFILL_SRC_PORT_BASE, Prefill,
    prefill_udp_flows,
};
pub use servers::{IPERF3_PORT, SOCKPERF_PORT, Servers, check_tools, tool_version};
