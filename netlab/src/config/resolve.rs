//! Resolution: the lab file becomes a [`LabPlan`], one step per part
//! (name, subnet, gateway, host side, endpoints, NAT, unique names,
//! published ports). Every step reports its problems and goes on, so one
//! run names them all.

use std::net::Ipv4Addr;

use super::error::ConfigError;
use super::problems::{Problems, UniqueNames, lab_address_problem};
use super::schema::LabConfig;
use crate::cidr::Ipv4Cidr;
use crate::names::{self, DEFAULT_LAB_NAME, interface_name_problem};
use crate::plan::{
    Containers, HostPlan, LabPlan, NatSettings, NatTimeouts, Publication, check_publications,
    nat_entries_problem, nat_port_problem, nat_range_problem, nat_timeout_problem,
    planned_host_addresses,
};

/// The walkthrough's subnet.
const DEFAULT_SUBNET: &str = "192.168.28.0/24";
/// The walkthrough's gateway is host .5 of the subnet.
const DEFAULT_GATEWAY_HOST: u32 = 5;
const DEFAULT_GATEWAY_DEVICE: &str = "vbridge";

/// The gateway device and its switch port, as named.
struct Gateway {
    address: Option<Ipv4Addr>,
    device: String,
    port: String,
}

impl LabConfig {
    /// Validates everything that can be checked without the running system
    /// and decides every default.
    pub fn resolve(&self) -> Result<LabPlan, ConfigError> {
        let mut p = Problems::default();
        let name = self.resolve_name(&mut p);
        let subnet = self.resolve_subnet(&mut p);
        let gateway = self.resolve_gateway(&mut p, subnet);
        let subnet6 = self.resolve_subnet6(&mut p, subnet);
        let host = self.resolve_host(&mut p, &name, subnet);
        let ipv6 = self.resolve_ipv6(&mut p, subnet, subnet6, gateway.address, host.as_ref());
        let mut endpoints = self.resolve_endpoints(&mut p, subnet, gateway.address);
        self.resolve_addresses6(&mut p, subnet, ipv6.as_ref(), &mut endpoints);
        let nat = self.resolve_nat(&mut p);
        claim_unique_names(&mut p, &gateway, host.as_ref(), &endpoints);
        if !p.is_empty() {
            return Err(ConfigError::Invalid(p.0));
        }
        let (Some(subnet), Some(address), Some(host)) = (subnet, gateway.address, host) else {
            unreachable!("a missing part is always reported as a problem");
        };
        let mut plan = LabPlan {
            name,
            datapath: self.datapath.unwrap_or_default(),
            subnet,
            gateway: address,
            gateway_device: gateway.device,
            ipv6,
            gateway_port: gateway.port,
            allow_host_access: self.allow_host_access(),
            uplink_xdp: self.uplink_xdp(&host),
            host,
            switch: self.switch.unwrap_or_default(),
            endpoints,
            nat,
            containers: Containers::default(),
            publications: Vec::new(),
        };
        plan.publications = self.resolve_publications(&mut p, &plan);
        if p.is_empty() {
            Ok(plan)
        } else {
            Err(ConfigError::Invalid(p.0))
        }
    }

    fn resolve_name(&self, p: &mut Problems) -> String {
        let name = self.name.clone().unwrap_or_else(|| DEFAULT_LAB_NAME.into());
        p.check("name", &name, names::lab_name_problem);
        name
    }

    fn resolve_subnet(&self, p: &mut Problems) -> Option<Ipv4Cidr> {
        let text = self.subnet.as_deref().unwrap_or(DEFAULT_SUBNET);
        let c = p.parse_cidr("subnet", text)?;
        if !(8..=30).contains(&c.prefix_len) {
            p.push("subnet", text, "prefix length must be 8..=30");
            None
        } else if c.addr != c.network() {
            p.push(
                "subnet",
                text,
                format!("host bits set; did you mean {}?", c.trunc()),
            );
            None
        } else {
            Some(c)
        }
    }

    fn resolve_gateway(&self, p: &mut Problems, subnet: Option<Ipv4Cidr>) -> Gateway {
        let address = match (&self.gateway, subnet) {
            (Some(text), _) => p.parse_ip("gateway", text),
            // The walkthrough's .5, wherever the subnet is. Checked: in a
            // /30 at the top of the address space it does not exist (and
            // in any /30 it lies outside, reported just below).
            (None, Some(s)) => match u32::from(s.network()).checked_add(DEFAULT_GATEWAY_HOST) {
                Some(gw) => Some(Ipv4Addr::from(gw)),
                None => {
                    p.push(
                        "gateway",
                        "",
                        format!("the default gateway (host .5) does not exist in {s}; set one"),
                    );
                    None
                }
            },
            (None, None) => None,
        };
        if let (Some(s), Some(gw)) = (subnet, address)
            && let Some(why) = lab_address_problem(&s, gw)
        {
            p.push("gateway", gw, why);
        }

        let device = self
            .gateway_device
            .clone()
            .unwrap_or_else(|| DEFAULT_GATEWAY_DEVICE.into());
        p.check("gateway_device", &device, interface_name_problem);
        let port_field = if self.gateway_port.is_some() {
            "gateway_port"
        } else {
            "gateway_port (default: gateway_device + \"-p\")"
        };
        let port = self
            .gateway_port
            .clone()
            .unwrap_or_else(|| names::gateway_port(&device));
        p.check(port_field, &port, interface_name_problem);
        Gateway {
            address,
            device,
            port,
        }
    }

    fn resolve_nat(&self, p: &mut Problems) -> NatSettings {
        let d = NatSettings::default();
        let Some(n) = &self.nat else { return d };
        let port_min = n.port_min.unwrap_or(d.port_min.into());
        let port_max = n.port_max.unwrap_or(d.port_max.into());
        for (field, v) in [("nat.port_min", port_min), ("nat.port_max", port_max)] {
            if let Some(why) = nat_port_problem(v) {
                p.push(field, v, why);
            }
        }
        if let Some(why) = nat_range_problem(port_min, port_max) {
            p.push("nat.port_max", port_max, why);
        }
        let max_entries = n.max_entries.unwrap_or(d.max_entries);
        if let Some(why) = nat_entries_problem(max_entries) {
            p.push("nat.max_entries", max_entries, why);
        }
        let t = d.timeouts;
        let timeouts = NatTimeouts {
            tcp_established: n.tcp_established_timeout.unwrap_or(t.tcp_established),
            tcp_closing: n.tcp_closing_timeout.unwrap_or(t.tcp_closing),
            tcp_syn: n.tcp_syn_timeout.unwrap_or(t.tcp_syn),
            udp: n.udp_timeout.unwrap_or(t.udp),
            icmp: n.icmp_timeout.unwrap_or(t.icmp),
        };
        for (field, secs) in timeouts.fields() {
            if let Some(why) = nat_timeout_problem(secs) {
                p.push(field, secs, why);
            }
        }
        NatSettings {
            port_min: port_min.min(65535) as u16,
            port_max: port_max.min(65535) as u16,
            max_entries,
            timeouts,
        }
    }

    fn allow_host_access(&self) -> bool {
        self.host
            .as_ref()
            .and_then(|h| h.allow_host_access)
            .unwrap_or(false)
    }

    /// Default: on where the uplink is the machine's device (root mode:
    /// native XDP runs before an skb exists), off on the sandbox's veth
    /// uplink, where the skb exists already and XDP on the veth costs the
    /// internet side its GSO (README, "XDP against TC": no gain on the
    /// flood, downloads 4x slower).
    fn uplink_xdp(&self, host: &HostPlan) -> bool {
        self.host
            .as_ref()
            .and_then(|h| h.uplink_xdp)
            .unwrap_or(matches!(host, HostPlan::Root { .. }))
    }

    /// The lab file's published ports, parsed and checked against `plan`.
    fn resolve_publications(&self, p: &mut Problems, plan: &LabPlan) -> Vec<Publication> {
        let new = self.publications(p);
        p.0.extend(check_publications(
            plan,
            &[],
            &new,
            planned_host_addresses(plan).as_deref(),
        ));
        new.into_iter().map(|(_, x)| x).collect()
    }

    /// The lab file's published ports, parsed, each with its field.
    fn publications(&self, p: &mut Problems) -> Vec<(String, Publication)> {
        let mut listed: Vec<(String, String, String)> = Vec::new();
        for (i, ns) in self.namespaces.iter().flatten().enumerate() {
            for (j, spec) in ns.publish.iter().flatten().enumerate() {
                listed.push((
                    format!("namespaces[{i}].publish[{j}]"),
                    ns.name.clone(),
                    spec.clone(),
                ));
            }
        }
        for (ns, specs) in self.publish.iter().flatten() {
            for (j, spec) in specs.iter().enumerate() {
                listed.push((format!("publish.{ns}[{j}]"), ns.clone(), spec.clone()));
            }
        }
        listed
            .into_iter()
            .filter_map(|(field, namespace, text)| match text.parse() {
                Ok(spec) => Some((field, Publication { namespace, spec })),
                Err(why) => {
                    p.push(field, &text, why);
                    None
                }
            })
            .collect()
    }
}

/// Namespace names and host-side interface names must be unique across
/// the lab.
fn claim_unique_names(
    p: &mut Problems,
    gateway: &Gateway,
    host: Option<&HostPlan>,
    endpoints: &[crate::plan::EndpointPlan],
) {
    let mut names = UniqueNames::default();
    names.host_interface(p, "gateway_device".into(), &gateway.device);
    names.host_interface(p, "gateway_port".into(), &gateway.port);
    match host {
        Some(HostPlan::Sandbox(s)) => {
            names.namespace(p, "host.namespace".into(), &s.namespace);
            names.namespace(p, "host.internet_namespace".into(), &s.internet_namespace);
            names.host_interface(p, "host.uplink".into(), &s.uplink);
        }
        Some(HostPlan::Root { uplink }) => {
            names.host_interface(p, "host.uplink".into(), uplink);
        }
        None => {}
    }
    for (i, e) in endpoints.iter().enumerate() {
        names.namespace(p, format!("namespaces[{i}].name"), &e.namespace);
        names.host_interface(p, format!("namespaces[{i}].peer"), &e.peer);
    }
}
