//! The two datapaths behind one topology.
//!
//! The topology code (lab/topology modules) builds namespaces, veths and
//! addresses; a datapath then joins the ports: the kernel one with a Linux
//! bridge and iptables MASQUERADE, the eBPF one with TC programs and maps.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

pub mod ebpf;
pub mod kernel;
pub mod xdp;

/// Which datapath joins the ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatapathKind {
    /// Linux bridge + iptables MASQUERADE: the walkthrough, the baseline.
    Kernel,
    /// TC programs (aya) switching frames and doing source NAT.
    #[default]
    Ebpf,
}

/// A switch port's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    /// `veth-N-br`: the host end of an endpoint namespace's veth pair.
    Endpoint,
    /// `vbridge-p`: the peer of `vbridge`, which holds the gateway address.
    Gateway,
}

/// One switch port, as the topology created it. All devices named here live
/// in the host-side namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPlan {
    /// The device the port program is attached to (TC ingress).
    pub port_dev: String,
    pub role: PortRole,
    /// The MAC behind the port: the endpoint's interface in its namespace, or
    /// `vbridge`'s for the gateway port.
    pub mac: [u8; 6],
    /// The IPv4 address behind the port (endpoint's, or the gateway's).
    pub ipv4: Ipv4Addr,
    /// Endpoint: the namespace name (for display). Gateway: None.
    pub namespace: Option<String>,
    /// Gateway only: the device frames are delivered to with
    /// `bpf_redirect(.., BPF_F_INGRESS)` (`vbridge`). Endpoint ports deliver
    /// with `bpf_redirect_peer` on `port_dev` itself.
    pub deliver_dev: Option<String>,
    /// Endpoint only: the namespace's end of the veth pair (in
    /// `namespace`), where the XDP switch's redirects arrive. Absent in
    /// state files written before the XDP switch existed.
    #[serde(default)]
    pub peer_dev: Option<String>,
}

/// Per-protocol NAT timeouts in seconds (defaults follow the kernel's
/// conntrack: nf_conntrack_tcp_timeout_established etc.).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatTimeouts {
    pub tcp_established: u64,
    pub tcp_closing: u64,
    pub tcp_syn: u64,
    pub udp: u64,
    pub icmp: u64,
}

impl Default for NatTimeouts {
    fn default() -> Self {
        Self {
            tcp_established: 432_000,
            tcp_closing: 120,
            tcp_syn: 120,
            udp: 30,
            icmp: 30,
        }
    }
}

/// The source NAT on the uplink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatPlan {
    /// The uplink device in the host-side namespace (TC egress + ingress).
    pub uplink_dev: String,
    /// Masqueraded subnet.
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    /// Source ports / ICMP ids handed out, inclusive.
    pub port_min: u16,
    pub port_max: u16,
    /// Entries in each NAT map.
    pub max_entries: u32,
    pub timeouts: NatTimeouts,
}

/// Everything the eBPF datapath needs, computed from the lab by the
/// topology code after it created the devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchPlan {
    /// Lab name: pins live in `/sys/fs/bpf/netlab/<lab>/`.
    pub lab: String,
    /// The host-side namespace (None: the machine's root namespace). All
    /// datapath work runs on a thread inside it.
    pub host_netns: Option<String>,
    /// Endpoint ports and the gateway port.
    pub ports: Vec<PortPlan>,
    /// None when the lab has no uplink to masquerade through.
    pub nat: Option<NatPlan>,
    /// false: the switch drops IPv4 from endpoints to the host namespace's
    /// own addresses other than the gateway's (`host_addrs`, filled at
    /// install and kept in step by the daemon). true: the map stays empty.
    pub allow_host_access: bool,
    /// `[host] uplink_xdp`: attach the uplink XDP program (native mode;
    /// where the device refuses, the TC ingress filters alone).
    pub uplink_xdp: bool,
    /// `switch = "xdp"`: the switch also runs as an XDP program on every
    /// port (the TC port program stays behind it).
    pub switch_xdp: bool,
    /// Published ports (`nat_publish`), expanded port by port.
    #[serde(default)]
    pub published: Vec<PublishedPort>,
}

/// One published host port, as the datapaths consume it (the lab file's
/// ranges expanded port for port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    /// None: every address of the host side.
    pub host_address: Option<Ipv4Addr>,
    pub host_port: u16,
    /// IP protocol number (6 or 17).
    pub protocol: u8,
    /// The namespace's address and port.
    pub address: Ipv4Addr,
    pub port: u16,
}
