//! The resolved lab: every name, address and MAC decided. This is what the
//! topology builds and what the state file records (so its serde form is
//! the state file's: fields added later carry a default).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::containers::Containers;
use super::nat::NatSettings;
use super::port_spec::Publication;
use crate::cidr::{Ipv4Cidr, Ipv6Cidr};
use crate::names::mac_for;

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

/// Where the eBPF datapath's switch runs (`switch = ...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchHook {
    /// The TC port program on every port's tcx ingress (the reference).
    #[default]
    Tc,
    /// Also an XDP program on every port, before the skb: unicast through
    /// a devmap, floods by devmap broadcast; the TC program gets what it
    /// passes. Falls back to TC alone where a port refuses native XDP.
    Xdp,
}

/// The resolved lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    pub name: String,
    pub datapath: DatapathKind,
    /// The lab subnet, host bits cleared.
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    pub gateway_device: String,
    /// The lab's IPv6 side (`subnet6`); None when the lab file turns IPv6
    /// off (`subnet6 = "none"`) and in state files written before IPv6.
    #[serde(default)]
    pub ipv6: Option<Ipv6Plan>,
    /// eBPF datapath only: `gateway_device`'s veth peer, a switch port.
    pub gateway_port: String,
    pub host: HostPlan,
    /// `[host] allow_host_access`: false = the eBPF switch drops IPv4 from
    /// the namespaces to the host side's addresses other than the
    /// gateway's. Absent in state files written before it existed, which
    /// then read as the default.
    #[serde(default)]
    pub allow_host_access: bool,
    /// `[host] uplink_xdp` (default: true in root mode, false in the
    /// sandbox): the eBPF datapath attaches its uplink XDP program where
    /// the device supports native XDP. State files written before it
    /// existed read as true.
    #[serde(default = "default_true")]
    pub uplink_xdp: bool,
    /// `switch` (eBPF datapath): where the switch runs.
    #[serde(default)]
    pub switch: SwitchHook,
    pub endpoints: Vec<EndpointPlan>,
    pub nat: NatSettings,
    /// Containers attached by the CNI plugin (none in a lab file).
    #[serde(default, skip_serializing_if = "Containers::is_empty")]
    pub containers: Containers,
    /// Published ports (lab file, `netlab publish`). Absent in state files
    /// written before they existed.
    #[serde(default)]
    pub publications: Vec<Publication>,
}

/// The lab's IPv6 addressing: a prefix next to the IPv4 subnet, the
/// gateway's address in it (on `vbridge`, as the IPv4 one). Endpoints
/// carry their own address ([`EndpointPlan::address6`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Plan {
    /// The lab's IPv6 prefix, host bits cleared (/64../120).
    pub subnet: Ipv6Cidr,
    pub gateway: Ipv6Addr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum HostPlan {
    Sandbox(SandboxPlan),
    Root { uplink: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPlan {
    pub namespace: String,
    pub internet_namespace: String,
    pub uplink: String,
    pub uplink_address: Ipv4Cidr,
    /// The internet namespace's end of the uplink pair.
    pub internet_device: String,
    pub internet_address: Ipv4Cidr,
    /// The uplink's IPv6 address (documentation space, 2001:db8::/32);
    /// None when the lab has no IPv6.
    #[serde(default)]
    pub uplink_address6: Option<Ipv6Cidr>,
    /// The internet namespace's IPv6 address on the uplink pair.
    #[serde(default)]
    pub internet_address6: Option<Ipv6Cidr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPlan {
    /// N in `veth-N`: position in the lab (attach appends max + 1).
    pub index: u32,
    pub namespace: String,
    /// Inside the namespace.
    pub veth: String,
    /// On the host side; the switch/bridge port.
    pub peer: String,
    pub address: Ipv4Addr,
    /// Its global IPv6 address in the lab's `subnet6` (None: no IPv6).
    #[serde(default)]
    pub address6: Option<Ipv6Addr>,
    /// Set on `veth`: [`mac_for`] its address.
    pub mac: [u8; 6],
}

impl LabPlan {
    /// The namespace holding the host-side devices; None = root mode: the
    /// namespace netlab runs in (recorded at `up`, see crate::hostns).
    pub fn host_netns(&self) -> Option<&str> {
        match &self.host {
            HostPlan::Sandbox(s) => Some(&s.namespace),
            HostPlan::Root { .. } => None,
        }
    }

    pub fn uplink(&self) -> &str {
        match &self.host {
            HostPlan::Sandbox(s) => &s.uplink,
            HostPlan::Root { uplink } => uplink,
        }
    }

    pub fn sandbox(&self) -> Option<&SandboxPlan> {
        match &self.host {
            HostPlan::Sandbox(s) => Some(s),
            HostPlan::Root { .. } => None,
        }
    }

    /// The "internet server" the check pings; None in root mode.
    pub fn internet_server(&self) -> Option<Ipv4Addr> {
        self.sandbox().map(|s| s.internet_address.addr)
    }

    /// The internet server's IPv6 address; None in root mode or without
    /// IPv6.
    pub fn internet_server6(&self) -> Option<Ipv6Addr> {
        self.sandbox()
            .and_then(|s| s.internet_address6)
            .map(|c| c.addr)
    }

    /// The gateway device's MAC: [`mac_for`] the gateway address.
    pub fn gateway_mac(&self) -> [u8; 6] {
        mac_for(self.gateway)
    }

    /// Every namespace the lab creates (sandbox ones first).
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(s) = self.sandbox() {
            v.push(s.namespace.clone());
            v.push(s.internet_namespace.clone());
        }
        v.extend(self.endpoints.iter().map(|e| e.namespace.clone()));
        v
    }

    pub fn endpoint(&self, namespace: &str) -> Option<&EndpointPlan> {
        self.endpoints.iter().find(|e| e.namespace == namespace)
    }
}

/// serde default for flags that are on unless the file says otherwise.
fn default_true() -> bool {
    true
}
