//! What the eBPF datapath is asked to build: its ports, the NAT, the
//! published ports, derived from the [`LabPlan`] alone.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::containers::ContainerPlan;
use super::lab::{EndpointPlan, LabPlan, SwitchHook};
use super::nat::NatPlan;
use super::publish::{PublishedPort, PublishedPort6};
use crate::netns;

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
    /// The global IPv6 address behind the port (None: no IPv6 there). Its
    /// link-local one is `names::link_local_for(mac)`.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
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
    /// Published IPv6 ports (`nat6_publish`), expanded port by port.
    #[serde(default)]
    pub published6: Vec<PublishedPort6>,
}

impl LabPlan {
    /// The switch port of one endpoint: its host-side veth end, carrying the
    /// MAC and address netlab gives the endpoint.
    pub fn port_plan(&self, e: &EndpointPlan) -> PortPlan {
        PortPlan {
            port_dev: e.peer.clone(),
            role: PortRole::Endpoint,
            mac: e.mac,
            ipv4: e.address,
            ipv6: e.address6,
            namespace: Some(e.namespace.clone()),
            deliver_dev: None,
            peer_dev: Some(e.veth.clone()),
        }
    }

    /// What the eBPF datapath needs. The MACs are the ones `up` sets
    /// (`names::mac_for`: `02:4e:<IPv4>`); apart from CNI containers whose namespace is gone,
    /// this is a pure function of the plan.
    pub fn switch_plan(&self) -> SwitchPlan {
        let mut ports: Vec<PortPlan> = self.endpoints.iter().map(|e| self.port_plan(e)).collect();
        // CNI containers are ports like endpoints (once their ADD finished),
        // so a re-install (repair) keeps them. One whose namespace is gone
        // (its runtime died before calling DEL) has no port left to link:
        // a re-install drops its map entries, and its DEL or GC removes the
        // rest.
        ports.extend(
            self.containers
                .attachments
                .iter()
                .filter(|c| c.complete && netns::exists(&c.netns))
                .map(ContainerPlan::port_plan),
        );
        ports.push(PortPlan {
            port_dev: self.gateway_port.clone(),
            role: PortRole::Gateway,
            mac: self.gateway_mac(),
            ipv4: self.gateway,
            ipv6: self.ipv6.map(|v6| v6.gateway),
            namespace: None,
            deliver_dev: Some(self.gateway_device.clone()),
            peer_dev: None,
        });
        SwitchPlan {
            lab: self.name.clone(),
            host_netns: self.host_netns().map(str::to_string),
            ports,
            nat: Some(NatPlan {
                uplink_dev: self.uplink().to_string(),
                subnet: self.subnet.network(),
                prefix_len: self.subnet.prefix_len,
                port_min: self.nat.port_min,
                port_max: self.nat.port_max,
                max_entries: self.nat.max_entries,
                timeouts: self.nat.timeouts,
                subnet6: self.ipv6.map(|v6| v6.subnet),
            }),
            allow_host_access: self.allow_host_access,
            uplink_xdp: self.uplink_xdp,
            switch_xdp: self.switch == SwitchHook::Xdp,
            published: self.published_ports(),
            published6: self.published_ports6(),
        }
    }
}

impl ContainerPlan {
    /// The switch port of a CNI container: its host-side veth end.
    pub fn port_plan(&self) -> PortPlan {
        PortPlan {
            port_dev: self.peer.clone(),
            role: PortRole::Endpoint,
            mac: self.mac,
            ipv4: self.address,
            // CNI containers get no IPv6 address (the plugin's IPAM is
            // IPv4 only), so their port sends none.
            ipv6: None,
            // The path: the datapath enters it (published ports' socket
            // hooks know a namespace by its cookie); `netns` resolves paths.
            namespace: Some(self.netns.clone()),
            deliver_dev: None,
            peer_dev: Some(self.ifname.clone()),
        }
    }
}
