//! The lab file (TOML) and its validation into a [`LabPlan`].
//!
//! Every field is optional; the defaults are the walkthrough's lab (three
//! namespaces on 192.168.28.0/24, gateway `vbridge` at .5) in a sandbox.
//! Unknown fields are rejected, so a typo never silently becomes a default.
//!
//! ```toml
//! name = "netlab"                 # lab name: state file, pins, sandbox namespace names
//!                                 # ([A-Za-z0-9_-], at most 32 bytes)
//! datapath = "ebpf"               # "ebpf" (default) | "kernel"; `up --datapath` overrides
//! subnet = "192.168.28.0/24"      # the lab subnet (prefix length 8..=30)
//! gateway = "192.168.28.5"        # default: host .5 of the subnet
//! gateway_device = "vbridge"      # holds the gateway address on the host side
//! gateway_port = "vbridge-p"      # eBPF datapath: the switch port peered with vbridge
//! switch = "tc"                   # eBPF datapath: "tc" (default) | "xdp": the switch also as an
//!                                 # XDP program on every port (redirects through a devmap, GRO
//!                                 # turned on in the namespaces' veths and vbridge for NAPI)
//!                                 # (default: "<gateway_device>-p")
//!
//! # Shorthand instead of [[namespaces]]: `namespace_count` namespaces named
//! # "<namespace_prefix>1".. (prefix default "ns"), addresses allocated in order.
//! # namespace_count = 3
//! # namespace_prefix = "ns"
//!
//! [host]
//! mode = "sandbox"                # "sandbox" (default) | "root" (the machine's own namespace)
//! namespace = "<name>-host"       # sandbox only: the namespace playing the host
//! internet_namespace = "<name>-inet" # sandbox only: the namespace playing the internet
//! uplink = "uplink"               # sandbox: created; root: must already exist
//! uplink_address = "203.0.113.1/24"   # sandbox only: the host side of the uplink
//! internet_address = "203.0.113.2/24" # sandbox only: the internet server, on `inet0`
//! allow_host_access = false       # eBPF datapath: may the namespaces reach the host side's
//!                                 # other addresses (the uplink's, in root mode the machine's)?
//!                                 # The gateway address is always reachable, and traffic
//!                                 # routed through the host (NAT) is not affected. The kernel
//!                                 # datapath (the walkthrough) has no such rule: there the
//!                                 # namespaces always reach every host address.
//! uplink_xdp = false              # eBPF datapath: drop what can only be dropped (unsolicited,
//!                                 # lab sources, malformed) in XDP on the uplink, before an skb
//!                                 # exists. Native XDP only: where the device refuses it, netlab
//!                                 # says so in one line and the TC ingress filters alone.
//!                                 # Default: true in root mode (a real device), false in the
//!                                 # sandbox (a veth: no gain, and its peer loses GSO).
//!
//! [[namespaces]]                  # default: ns1..ns3 at .1 .2 .3
//! name = "ns1"
//! address = "192.168.28.1"        # default: next free host address, skipping the gateway
//! veth = "veth-1"                 # default: veth-N (N = position, 1-based), inside the namespace
//! peer = "veth-1-br"              # default: veth-N-br, on the host side
//! publish = ["8080:80"]           # published ports (crate::publish); default none
//!
//! [publish]                       # the same by namespace name (namespace_count labs)
//! ns2 = ["5353:53/udp"]
//!
//! [nat]                           # the eBPF datapath's source NAT
//! port_min = 20000                # ports / ICMP ids handed out, inclusive (>= 1024)
//! port_max = 29999
//! max_entries = 65536
//! tcp_established_timeout = 432000 # seconds
//! tcp_closing_timeout = 120
//! tcp_syn_timeout = 120
//! udp_timeout = 30
//! icmp_timeout = 30
//! ```
//!
//! Validation ([`LabConfig::resolve`]) reports every problem at once, each
//! naming the field and the offending value. Checks that need the running
//! system (a namespace name already taken, the root-mode uplink missing) are
//! done by [`crate::lab`] before anything is created.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::containers::Containers;
use crate::datapath::{DatapathKind, NatTimeouts};

/// Linux IFNAMSIZ is 16 including the terminating NUL.
pub const MAX_IFNAME_LEN: usize = 15;
/// Lab names end up in file names, pin paths and namespace names.
pub const MAX_LAB_NAME_LEN: usize = 32;
/// Namespace names are file names under /run/netns; keep them readable.
pub const MAX_NETNS_NAME_LEN: usize = 64;
pub const DEFAULT_LAB_NAME: &str = "netlab";

/// The lab file as written: every field optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabConfig {
    pub name: Option<String>,
    pub datapath: Option<DatapathKind>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub gateway_device: Option<String>,
    pub gateway_port: Option<String>,
    pub namespace_count: Option<u32>,
    pub namespace_prefix: Option<String>,
    pub host: Option<HostConfig>,
    pub namespaces: Option<Vec<NamespaceConfig>>,
    pub nat: Option<NatConfig>,
    /// Published ports by namespace name (for `namespace_count` labs);
    /// `[[namespaces]] publish` says the same per namespace.
    pub publish: Option<std::collections::BTreeMap<String, Vec<String>>>,
    pub switch: Option<SwitchHook>,
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    /// Namespaces play the host and the internet; nothing touches the machine.
    #[default]
    Sandbox,
    /// The host side is the network namespace netlab runs in (on a machine
    /// its root namespace, in a container the container's), and the uplink
    /// is a device there. `"current"` says the same.
    #[serde(alias = "current")]
    Root,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub mode: Option<HostMode>,
    pub namespace: Option<String>,
    pub internet_namespace: Option<String>,
    pub uplink: Option<String>,
    pub uplink_address: Option<String>,
    pub internet_address: Option<String>,
    pub allow_host_access: Option<bool>,
    pub uplink_xdp: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    pub name: String,
    pub address: Option<String>,
    pub veth: Option<String>,
    pub peer: Option<String>,
    /// Published ports: `["8080:80/tcp", "127.0.0.1:9000:9000"]`.
    pub publish: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    // Wider than u16 so an out-of-range value gets our message, naming the field.
    pub port_min: Option<u32>,
    pub port_max: Option<u32>,
    pub max_entries: Option<u32>,
    pub tcp_established_timeout: Option<u64>,
    pub tcp_closing_timeout: Option<u64>,
    pub tcp_syn_timeout: Option<u64>,
    pub udp_timeout: Option<u64>,
    pub icmp_timeout: Option<u64>,
}

/// The resolved lab: every name, address and MAC decided. This is what the
/// topology builds, and what the state file records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    pub name: String,
    pub datapath: DatapathKind,
    /// The lab subnet, host bits cleared.
    pub subnet: Ipv4Cidr,
    pub gateway: Ipv4Addr,
    pub gateway_device: String,
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
    pub publications: Vec<crate::publish::Publication>,
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
    /// Set on `veth`: 02:4e:<IPv4 bytes>, readable at a glance.
    pub mac: [u8; 6],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSettings {
    pub port_min: u16,
    pub port_max: u16,
    pub max_entries: u32,
    pub timeouts: NatTimeouts,
}

impl Default for NatSettings {
    fn default() -> Self {
        Self {
            port_min: 20000,
            port_max: 29999,
            max_entries: 65536,
            timeouts: NatTimeouts::default(),
        }
    }
}

/// One validation failure: which field, which value, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?}: {}", self.field, self.value, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read lab file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lab file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("invalid lab:\n  {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, for tests and for callers that want to match on fields.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(p) => p,
            _ => &[],
        }
    }
}

/// 02:4e:<a.b.c.d>: the MAC netlab gives the interface holding `ip`.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x4e, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Collects problems while validating.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(
        &mut self,
        field: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) {
        self.0.push(Problem {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        });
    }
}

/// Interface name rules of the kernel (dev_valid_name) plus `lo`, which
/// every namespace already has.
pub fn interface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("an interface name cannot be empty".into())
    } else if name.len() > MAX_IFNAME_LEN {
        Some(format!(
            "interface names are at most {MAX_IFNAME_LEN} bytes (IFNAMSIZ - 1), this one has {}",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not interface names".into())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("interface names cannot contain '/', ':' or whitespace".into())
    } else if name == "lo" {
        Some("`lo` is the loopback device every namespace already has".into())
    } else {
        None
    }
}

/// Namespace names become files in /run/netns.
pub fn netns_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("a namespace name cannot be empty".into())
    } else if name.len() > MAX_NETNS_NAME_LEN {
        Some(format!(
            "namespace names are at most {MAX_NETNS_NAME_LEN} bytes"
        ))
    } else if name.starts_with('.') {
        Some("namespace names cannot start with '.'".into())
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("namespace names may only contain A-Z a-z 0-9 . _ -".into())
    } else {
        None
    }
}

pub fn lab_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("the lab name cannot be empty".into())
    } else if name.len() > MAX_LAB_NAME_LEN {
        Some(format!("lab names are at most {MAX_LAB_NAME_LEN} bytes"))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        Some("lab names may only contain A-Z a-z 0-9 _ -".into())
    } else {
        None
    }
}

fn parse_ip(p: &mut Problems, field: &str, value: &str) -> Option<Ipv4Addr> {
    match value.parse::<Ipv4Addr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            p.push(field, value, "not an IPv4 address (e.g. 192.168.28.1)");
            None
        }
    }
}

fn parse_cidr(p: &mut Problems, field: &str, value: &str) -> Option<Ipv4Cidr> {
    match value.parse::<Ipv4Cidr>() {
        Ok(c) => Some(c),
        Err(e) => {
            p.push(field, value, e);
            None
        }
    }
}

/// Checks a lab address: inside the subnet, not its network or broadcast.
fn lab_address_problem(subnet: &Ipv4Cidr, ip: Ipv4Addr) -> Option<String> {
    if !subnet.contains(ip) {
        Some(format!("outside the lab subnet {subnet}"))
    } else if ip == subnet.network() {
        Some(format!("{ip} is the network address of {subnet}"))
    } else if ip == subnet.broadcast() {
        Some(format!("{ip} is the broadcast address of {subnet}"))
    } else {
        None
    }
}

impl LabConfig {
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Validates everything that can be checked without the running system
    /// and decides every default.
    pub fn resolve(&self) -> Result<LabPlan, ConfigError> {
        let mut p = Problems::default();

        let name = self.name.clone().unwrap_or_else(|| DEFAULT_LAB_NAME.into());
        if let Some(why) = lab_name_problem(&name) {
            p.push("name", &name, why);
        }
        let datapath = self.datapath.unwrap_or_default();

        let subnet_text = self.subnet.as_deref().unwrap_or("192.168.28.0/24");
        let subnet = parse_cidr(&mut p, "subnet", subnet_text).and_then(|c| {
            if !(8..=30).contains(&c.prefix_len) {
                p.push("subnet", subnet_text, "prefix length must be 8..=30");
                None
            } else if c.addr != c.network() {
                p.push(
                    "subnet",
                    subnet_text,
                    format!("host bits set; did you mean {}?", c.trunc()),
                );
                None
            } else {
                Some(c)
            }
        });

        let gateway = match (&self.gateway, subnet) {
            (Some(text), _) => parse_ip(&mut p, "gateway", text),
            // The walkthrough's .5, wherever the subnet is. Checked: in a
            // /30 at the top of the address space it does not exist (and
            // in any /30 it lies outside, reported just below).
            (None, Some(s)) => match u32::from(s.network()).checked_add(5) {
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
        if let (Some(s), Some(gw)) = (subnet, gateway)
            && let Some(why) = lab_address_problem(&s, gw)
        {
            p.push("gateway", gw, why);
        }

        let gateway_device = self
            .gateway_device
            .clone()
            .unwrap_or_else(|| "vbridge".into());
        if let Some(why) = interface_name_problem(&gateway_device) {
            p.push("gateway_device", &gateway_device, why);
        }
        let gateway_port_field = if self.gateway_port.is_some() {
            "gateway_port"
        } else {
            "gateway_port (default: gateway_device + \"-p\")"
        };
        let gateway_port = self
            .gateway_port
            .clone()
            .unwrap_or_else(|| format!("{gateway_device}-p"));
        if let Some(why) = interface_name_problem(&gateway_port) {
            p.push(gateway_port_field, &gateway_port, why);
        }

        let host = self.resolve_host(&mut p, &name, subnet);
        let endpoints = self.resolve_endpoints(&mut p, subnet, gateway);
        let nat = self.resolve_nat(&mut p);

        // Names that must be unique across the lab.
        let mut netns_names: HashMap<String, String> = HashMap::new();
        let mut host_ifnames: HashMap<String, String> = HashMap::new();
        let claim = |map: &mut HashMap<String, String>,
                     p: &mut Problems,
                     field: String,
                     value: &str,
                     what: &str| {
            if let Some(first) = map.get(value) {
                p.push(
                    field,
                    value,
                    format!("duplicate {what}: also used by {first}"),
                );
            } else {
                map.insert(value.to_string(), field);
            }
        };
        claim(
            &mut host_ifnames,
            &mut p,
            "gateway_device".into(),
            &gateway_device,
            "host-side interface name",
        );
        claim(
            &mut host_ifnames,
            &mut p,
            "gateway_port".into(),
            &gateway_port,
            "host-side interface name",
        );
        match &host {
            Some(HostPlan::Sandbox(s)) => {
                claim(
                    &mut netns_names,
                    &mut p,
                    "host.namespace".into(),
                    &s.namespace,
                    "namespace name",
                );
                claim(
                    &mut netns_names,
                    &mut p,
                    "host.internet_namespace".into(),
                    &s.internet_namespace,
                    "namespace name",
                );
                claim(
                    &mut host_ifnames,
                    &mut p,
                    "host.uplink".into(),
                    &s.uplink,
                    "host-side interface name",
                );
            }
            Some(HostPlan::Root { uplink }) => {
                claim(
                    &mut host_ifnames,
                    &mut p,
                    "host.uplink".into(),
                    uplink,
                    "host-side interface name",
                );
            }
            None => {}
        }
        for (i, e) in endpoints.iter().enumerate() {
            claim(
                &mut netns_names,
                &mut p,
                format!("namespaces[{i}].name"),
                &e.namespace,
                "namespace name",
            );
            claim(
                &mut host_ifnames,
                &mut p,
                format!("namespaces[{i}].peer"),
                &e.peer,
                "host-side interface name",
            );
        }

        if p.0.is_empty() {
            let root_mode = matches!(host, Some(HostPlan::Root { .. }));
            let mut plan = LabPlan {
                name,
                datapath,
                subnet: subnet.expect("checked"),
                gateway: gateway.expect("checked"),
                gateway_device,
                gateway_port,
                host: host.expect("checked"),
                allow_host_access: self
                    .host
                    .as_ref()
                    .and_then(|h| h.allow_host_access)
                    .unwrap_or(false),
                // Default: on where the uplink is the machine's device (root
                // mode: native XDP runs before an skb exists), off on the
                // sandbox's veth uplink, where the skb exists already and
                // XDP on the veth costs the internet side its GSO (README,
                // "XDP against TC": no gain on the flood, downloads 4x slower).
                uplink_xdp: self
                    .host
                    .as_ref()
                    .and_then(|h| h.uplink_xdp)
                    .unwrap_or(root_mode),
                switch: self.switch.unwrap_or_default(),
                endpoints,
                nat,
                containers: Containers::default(),
                publications: Vec::new(),
            };
            let new = self.publications(&mut p);
            p.0.extend(crate::publish::check(
                &plan,
                &[],
                &new,
                crate::publish::planned_host_addresses(&plan).as_deref(),
            ));
            plan.publications = new.into_iter().map(|(_, x)| x).collect();
            if p.0.is_empty() {
                Ok(plan)
            } else {
                Err(ConfigError::Invalid(p.0))
            }
        } else {
            Err(ConfigError::Invalid(p.0))
        }
    }

    /// The lab file's published ports, parsed, each with its field.
    fn publications(&self, p: &mut Problems) -> Vec<(String, crate::publish::Publication)> {
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
                Ok(spec) => Some((field, crate::publish::Publication { namespace, spec })),
                Err(why) => {
                    p.push(field, &text, why);
                    None
                }
            })
            .collect()
    }

    fn resolve_host(
        &self,
        p: &mut Problems,
        lab: &str,
        subnet: Option<Ipv4Cidr>,
    ) -> Option<HostPlan> {
        let h = self.host.clone().unwrap_or_default();
        let uplink = h.uplink.clone().unwrap_or_else(|| "uplink".into());
        if let Some(why) = interface_name_problem(&uplink) {
            p.push("host.uplink", &uplink, why);
        }
        match h.mode.unwrap_or_default() {
            HostMode::Root => {
                for (field, value) in [
                    ("host.namespace", &h.namespace),
                    ("host.internet_namespace", &h.internet_namespace),
                    ("host.uplink_address", &h.uplink_address),
                    ("host.internet_address", &h.internet_address),
                ] {
                    if let Some(v) = value {
                        p.push(field, v, "only meaningful with host.mode = \"sandbox\"");
                    }
                }
                if h.uplink.is_none() {
                    p.push(
                        "host.uplink",
                        "",
                        "root mode needs the name of an existing uplink device (e.g. eth0)",
                    );
                }
                Some(HostPlan::Root { uplink })
            }
            HostMode::Sandbox => {
                let namespace = h.namespace.clone().unwrap_or_else(|| format!("{lab}-host"));
                let internet_namespace = h
                    .internet_namespace
                    .clone()
                    .unwrap_or_else(|| format!("{lab}-inet"));
                for (field, value) in [
                    ("host.namespace", &namespace),
                    ("host.internet_namespace", &internet_namespace),
                ] {
                    if let Some(why) = netns_name_problem(value) {
                        p.push(field, value, why);
                    }
                }
                let ua_text = h.uplink_address.as_deref().unwrap_or("203.0.113.1/24");
                let ia_text = h.internet_address.as_deref().unwrap_or("203.0.113.2/24");
                let ua = parse_cidr(p, "host.uplink_address", ua_text);
                let ia = parse_cidr(p, "host.internet_address", ia_text);
                if let Some(ua) = ua {
                    if ua.addr == ua.network() || ua.addr == ua.broadcast() || ua.prefix_len > 30 {
                        p.push(
                            "host.uplink_address",
                            ua_text,
                            "needs a host address in a /30 or larger",
                        );
                    }
                    if let Some(s) = subnet
                        && ua.overlaps(&s)
                    {
                        p.push(
                            "host.uplink_address",
                            ua_text,
                            format!("overlaps the lab subnet {s}"),
                        );
                    }
                }
                if let (Some(ua), Some(ia)) = (ua, ia) {
                    if !ua.contains(ia.addr) || ua.prefix_len != ia.prefix_len {
                        p.push(
                            "host.internet_address",
                            ia_text,
                            format!("must be on the uplink's subnet {}", ua.trunc()),
                        );
                    } else if ia.addr == ua.addr {
                        p.push(
                            "host.internet_address",
                            ia_text,
                            "same address as host.uplink_address",
                        );
                    } else if ia.addr == ia.network() || ia.addr == ia.broadcast() {
                        p.push(
                            "host.internet_address",
                            ia_text,
                            "network or broadcast address",
                        );
                    }
                }
                Some(HostPlan::Sandbox(SandboxPlan {
                    namespace,
                    internet_namespace,
                    uplink,
                    uplink_address: ua?,
                    internet_device: "inet0".into(),
                    internet_address: ia?,
                }))
            }
        }
    }

    fn resolve_endpoints(
        &self,
        p: &mut Problems,
        subnet: Option<Ipv4Cidr>,
        gateway: Option<Ipv4Addr>,
    ) -> Vec<EndpointPlan> {
        let listed: Vec<NamespaceConfig> = match (&self.namespaces, self.namespace_count) {
            (Some(_), Some(n)) => {
                p.push(
                    "namespace_count",
                    n,
                    "use either namespace_count or [[namespaces]], not both",
                );
                return Vec::new();
            }
            (Some(list), None) => {
                if self.namespace_prefix.is_some() {
                    p.push(
                        "namespace_prefix",
                        self.namespace_prefix.as_deref().unwrap_or_default(),
                        "only used with namespace_count",
                    );
                }
                list.clone()
            }
            (None, count) => {
                let count = count.unwrap_or(3);
                let prefix = self.namespace_prefix.as_deref().unwrap_or("ns");
                if count > 1000 {
                    p.push("namespace_count", count, "at most 1000 namespaces");
                    return Vec::new();
                }
                (1..=count)
                    .map(|i| NamespaceConfig {
                        name: format!("{prefix}{i}"),
                        ..Default::default()
                    })
                    .collect()
            }
        };
        if listed.is_empty() {
            p.push("namespaces", "[]", "a lab needs at least one namespace");
        }

        // Explicit addresses first, so defaults skip them.
        let mut used: HashMap<Ipv4Addr, String> = HashMap::new();
        if let Some(gw) = gateway {
            used.insert(gw, "gateway".into());
        }
        let mut explicit: Vec<Option<Ipv4Addr>> = Vec::new();
        for (i, ns) in listed.iter().enumerate() {
            let field = format!("namespaces[{i}].address");
            let ip = ns.address.as_deref().and_then(|a| parse_ip(p, &field, a));
            if let (Some(ip), Some(s)) = (ip, subnet) {
                if let Some(why) = lab_address_problem(&s, ip) {
                    p.push(&field, ip, why);
                } else if let Some(first) = used.get(&ip) {
                    p.push(
                        &field,
                        ip,
                        format!("duplicate address: also used by {first}"),
                    );
                } else {
                    used.insert(ip, field.clone());
                }
            }
            explicit.push(ip);
        }

        let mut free = subnet
            .into_iter()
            // Lazily: a /8 has 16 million hosts and only a few are needed.
            .flat_map(|s| s.hosts());
        let mut out = Vec::new();
        for (i, ns) in listed.iter().enumerate() {
            let index = i as u32 + 1;
            if let Some(why) = netns_name_problem(&ns.name) {
                p.push(format!("namespaces[{i}].name"), &ns.name, why);
            }
            let veth = ns.veth.clone().unwrap_or_else(|| format!("veth-{index}"));
            let peer = ns
                .peer
                .clone()
                .unwrap_or_else(|| format!("veth-{index}-br"));
            if let Some(why) = interface_name_problem(&veth) {
                p.push(format!("namespaces[{i}].veth"), &veth, why);
            }
            if let Some(why) = interface_name_problem(&peer) {
                p.push(format!("namespaces[{i}].peer"), &peer, why);
            }
            let address = match explicit[i] {
                Some(ip) => Some(ip),
                None if ns.address.is_some() => None, // already reported
                None => {
                    let next = free.find(|ip| !used.contains_key(ip));
                    match next {
                        Some(ip) => {
                            used.insert(ip, format!("namespaces[{i}]"));
                            Some(ip)
                        }
                        None if subnet.is_some() => {
                            p.push(
                                format!("namespaces[{i}].address"),
                                "",
                                "no free address left in the subnet",
                            );
                            None
                        }
                        None => None,
                    }
                }
            };
            if let Some(address) = address {
                out.push(EndpointPlan {
                    index,
                    namespace: ns.name.clone(),
                    veth,
                    peer,
                    address,
                    mac: mac_for(address),
                });
            }
        }
        out
    }

    fn resolve_nat(&self, p: &mut Problems) -> NatSettings {
        let d = NatSettings::default();
        let Some(n) = &self.nat else { return d };
        let port_min = n.port_min.unwrap_or(d.port_min.into());
        let port_max = n.port_max.unwrap_or(d.port_max.into());
        for (field, v) in [("nat.port_min", port_min), ("nat.port_max", port_max)] {
            if v > 65535 {
                p.push(field, v, "ports are at most 65535");
            } else if v < 1024 {
                p.push(
                    field,
                    v,
                    "below 1024: privileged ports are not handed out by the NAT",
                );
            }
        }
        if port_min > port_max {
            p.push(
                "nat.port_max",
                port_max,
                format!("the range is reversed/empty: nat.port_min is {port_min}"),
            );
        }
        let max_entries = n.max_entries.unwrap_or(d.max_entries);
        if max_entries == 0 {
            p.push("nat.max_entries", 0, "must be at least 1");
        }
        let t = d.timeouts;
        let mut timeout = |field: &str, v: Option<u64>, default: u64| {
            let v = v.unwrap_or(default);
            if v == 0 {
                p.push(
                    field,
                    0,
                    "a timeout of 0 seconds would expire entries at once",
                );
            }
            v
        };
        let timeouts = NatTimeouts {
            tcp_established: timeout(
                "nat.tcp_established_timeout",
                n.tcp_established_timeout,
                t.tcp_established,
            ),
            tcp_closing: timeout(
                "nat.tcp_closing_timeout",
                n.tcp_closing_timeout,
                t.tcp_closing,
            ),
            tcp_syn: timeout("nat.tcp_syn_timeout", n.tcp_syn_timeout, t.tcp_syn),
            udp: timeout("nat.udp_timeout", n.udp_timeout, t.udp),
            icmp: timeout("nat.icmp_timeout", n.icmp_timeout, t.icmp),
        };
        NatSettings {
            port_min: port_min.min(65535) as u16,
            port_max: port_max.min(65535) as u16,
            max_entries,
            timeouts,
        }
    }
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

    /// The gateway device's MAC: 02:4e:<gateway IPv4>.
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

    /// Plans one more endpoint (`netlab attach NAME IP`): same rules as the
    /// lab file, against what the lab already has.
    pub fn plan_endpoint(
        &self,
        namespace: &str,
        address: Ipv4Addr,
    ) -> Result<EndpointPlan, ConfigError> {
        let mut p = Problems::default();
        if let Some(why) = netns_name_problem(namespace) {
            p.push("namespace", namespace, why);
        }
        if self.namespaces().iter().any(|n| n == namespace) {
            p.push(
                "namespace",
                namespace,
                format!("already part of lab {}", self.name),
            );
        }
        if let Some(why) = lab_address_problem(&self.subnet, address) {
            p.push("address", address, why);
        } else if address == self.gateway {
            p.push("address", address, "that is the gateway's address");
        } else if let Some(e) = self.endpoints.iter().find(|e| e.address == address) {
            p.push(
                "address",
                address,
                format!("already used by namespace {}", e.namespace),
            );
        } else if let Some(c) = self.containers.by_address(address) {
            p.push(
                "address",
                address,
                format!("already used by container {}", c.label()),
            );
        }
        let index = self.endpoints.iter().map(|e| e.index).max().unwrap_or(0) + 1;
        let veth = format!("veth-{index}");
        let peer = format!("veth-{index}-br");
        let taken = [
            self.gateway_device.as_str(),
            self.gateway_port.as_str(),
            self.uplink(),
        ];
        if taken.contains(&peer.as_str()) || self.endpoints.iter().any(|e| e.peer == peer) {
            p.push(
                "peer",
                &peer,
                "interface name already used on the host side",
            );
        }
        if let Some(why) = interface_name_problem(&peer) {
            p.push("peer", &peer, why);
        }
        if p.0.is_empty() {
            Ok(EndpointPlan {
                index,
                namespace: namespace.to_string(),
                veth,
                peer,
                address,
                mac: mac_for(address),
            })
        } else {
            Err(ConfigError::Invalid(p.0))
        }
    }
}

/// serde default for flags that are on unless the file says otherwise.
fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<LabPlan, ConfigError> {
        LabConfig::from_toml(text, "test.toml")?.resolve()
    }

    /// Asserts that validation fails and one problem names `field` and `value`.
    fn rejects(text: &str, field: &str, value: &str) {
        match resolve(text) {
            Ok(plan) => panic!("accepted {text:?}: {plan:?}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    e.problems()
                        .iter()
                        .any(|p| p.field.starts_with(field) && p.value == value),
                    "expected a problem with {field} = {value:?}, got: {msg}"
                );
                assert!(msg.contains(field), "{msg}");
            }
        }
    }

    #[test]
    fn empty_file_is_the_walkthrough() {
        let plan = resolve("").unwrap();
        assert_eq!(plan.name, "netlab");
        assert_eq!(plan.datapath, DatapathKind::Ebpf);
        assert_eq!(plan.subnet.to_string(), "192.168.28.0/24");
        assert_eq!(plan.gateway, Ipv4Addr::new(192, 168, 28, 5));
        assert_eq!(plan.gateway_device, "vbridge");
        assert_eq!(plan.gateway_port, "vbridge-p");
        assert_eq!(plan.gateway_mac(), [2, 0x4e, 192, 168, 28, 5]);
        let names: Vec<_> = plan
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.namespace.as_str(),
                    e.veth.as_str(),
                    e.peer.as_str(),
                    e.address.to_string(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("ns1", "veth-1", "veth-1-br", "192.168.28.1".to_string()),
                ("ns2", "veth-2", "veth-2-br", "192.168.28.2".to_string()),
                ("ns3", "veth-3", "veth-3-br", "192.168.28.3".to_string()),
            ]
        );
        assert_eq!(plan.endpoints[1].mac, [2, 0x4e, 192, 168, 28, 2]);
        let s = plan.sandbox().unwrap();
        assert_eq!(s.namespace, "netlab-host");
        assert_eq!(s.internet_namespace, "netlab-inet");
        assert_eq!(s.uplink, "uplink");
        assert_eq!(s.uplink_address.to_string(), "203.0.113.1/24");
        assert_eq!(s.internet_address.to_string(), "203.0.113.2/24");
        assert_eq!(plan.nat, NatSettings::default());
        assert!(!plan.allow_host_access, "host access is off by default");
        assert_eq!(
            plan.namespaces(),
            ["netlab-host", "netlab-inet", "ns1", "ns2", "ns3"]
        );
    }

    #[test]
    fn full_file_parses() {
        let plan = resolve(
            r#"
            name = "lab2"
            datapath = "kernel"
            subnet = "10.1.2.0/24"
            gateway = "10.1.2.254"
            gateway_device = "gw0"
            [host]
            namespace = "h"
            internet_namespace = "i"
            uplink = "up0"
            uplink_address = "198.51.100.1/24"
            internet_address = "198.51.100.9/24"
            allow_host_access = true
            [[namespaces]]
            name = "a"
            address = "10.1.2.1"
            [[namespaces]]
            name = "b"
            veth = "eth0"
            peer = "b-br"
            [nat]
            port_min = 40000
            port_max = 40010
            max_entries = 128
            udp_timeout = 5
            "#,
        )
        .unwrap();
        assert_eq!(plan.datapath, DatapathKind::Kernel);
        assert_eq!(plan.gateway_port, "gw0-p");
        assert_eq!(plan.endpoints[1].address, Ipv4Addr::new(10, 1, 2, 2));
        assert_eq!(plan.endpoints[1].veth, "eth0");
        assert_eq!(plan.endpoints[1].peer, "b-br");
        assert_eq!(plan.nat.port_min, 40000);
        assert_eq!(plan.nat.timeouts.udp, 5);
        assert_eq!(plan.nat.timeouts.icmp, 30);
        assert_eq!(plan.host_netns(), Some("h"));
        assert!(plan.allow_host_access);
    }

    #[test]
    fn default_addresses_skip_gateway_and_explicit_ones() {
        let plan = resolve(
            r#"
            subnet = "10.0.0.0/29"
            gateway = "10.0.0.2"
            [[namespaces]]
            name = "a"
            [[namespaces]]
            name = "b"
            address = "10.0.0.3"
            [[namespaces]]
            name = "c"
            "#,
        )
        .unwrap();
        let ips: Vec<_> = plan
            .endpoints
            .iter()
            .map(|e| e.address.to_string())
            .collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.3", "10.0.0.4"]);
    }

    #[test]
    fn shorthand_and_default_gateway_follow_the_subnet() {
        let plan = resolve("name = \"t1\"\nsubnet = \"10.77.1.0/24\"\nnamespace_count = 2\nnamespace_prefix = \"t1-ns\"").unwrap();
        assert_eq!(plan.gateway, Ipv4Addr::new(10, 77, 1, 5));
        assert_eq!(
            plan.namespaces(),
            ["t1-host", "t1-inet", "t1-ns1", "t1-ns2"]
        );
    }

    #[test]
    fn rejects_unknown_fields() {
        let e = resolve("nmae = \"x\"").unwrap_err();
        assert!(e.to_string().contains("nmae"), "{e}");
        let e = resolve("[host]\nmdoe = \"root\"").unwrap_err();
        assert!(e.to_string().contains("mdoe"), "{e}");
        let e = resolve("[[namespaces]]\nname = \"a\"\naddr = \"1.2.3.4\"").unwrap_err();
        assert!(e.to_string().contains("addr"), "{e}");
    }

    #[test]
    fn rejects_long_and_bad_interface_names() {
        rejects(
            "gateway_device = \"abcdefghijklmnop\"",
            "gateway_device",
            "abcdefghijklmnop",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\nveth = \"a/b\"",
            "namespaces[0].veth",
            "a/b",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\npeer = \"a b\"",
            "namespaces[0].peer",
            "a b",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\npeer = \"a:b\"",
            "namespaces[0].peer",
            "a:b",
        );
        // vbridge-long-1 is 14 bytes, its default port adds 2.
        rejects(
            "gateway_device = \"vbridge-long-1\"",
            "gateway_port",
            "vbridge-long-1-p",
        );
        rejects(
            "[host]\nuplink = \"uplink-with-long-name\"",
            "host.uplink",
            "uplink-with-long-name",
        );
    }

    #[test]
    fn rejects_addresses_outside_or_reserved() {
        rejects(
            "[[namespaces]]\nname = \"a\"\naddress = \"192.168.29.1\"",
            "namespaces[0].address",
            "192.168.29.1",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.0\"",
            "namespaces[0].address",
            "192.168.28.0",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.255\"",
            "namespaces[0].address",
            "192.168.28.255",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\naddress = \"banana\"",
            "namespaces[0].address",
            "banana",
        );
        rejects("gateway = \"10.0.0.1\"", "gateway", "10.0.0.1");
        rejects("gateway = \"192.168.28.255\"", "gateway", "192.168.28.255");
        rejects("subnet = \"192.168.28.1/24\"", "subnet", "192.168.28.1/24");
        rejects("subnet = \"192.168.28.0/31\"", "subnet", "192.168.28.0/31");
        rejects(
            "subnet = \"203.0.113.0/24\"",
            "host.uplink_address",
            "203.0.113.1/24",
        );
        rejects(
            "[host]\ninternet_address = \"198.51.100.2/24\"",
            "host.internet_address",
            "198.51.100.2/24",
        );
    }

    #[test]
    fn rejects_duplicates() {
        rejects(
            "[[namespaces]]\nname = \"a\"\n[[namespaces]]\nname = \"a\"",
            "namespaces[1].name",
            "a",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.9\"\n[[namespaces]]\nname = \"b\"\naddress = \"192.168.28.9\"",
            "namespaces[1].address",
            "192.168.28.9",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\naddress = \"192.168.28.5\"",
            "namespaces[0].address",
            "192.168.28.5",
        );
        rejects(
            "[[namespaces]]\nname = \"a\"\npeer = \"vbridge\"",
            "namespaces[0].peer",
            "vbridge",
        );
        rejects(
            "[[namespaces]]\nname = \"netlab-host\"",
            "namespaces[0].name",
            "netlab-host",
        );
        rejects(
            "namespace_count = 2\n[[namespaces]]\nname = \"a\"",
            "namespace_count",
            "2",
        );
    }

    #[test]
    fn rejects_bad_nat_ranges() {
        rejects(
            "[nat]\nport_min = 30000\nport_max = 20000",
            "nat.port_max",
            "20000",
        );
        rejects("[nat]\nport_min = 80", "nat.port_min", "80");
        rejects("[nat]\nport_max = 70000", "nat.port_max", "70000");
        rejects("[nat]\nmax_entries = 0", "nat.max_entries", "0");
        rejects("[nat]\nudp_timeout = 0", "nat.udp_timeout", "0");
    }

    #[test]
    fn rejects_bad_names_and_root_mode_gaps() {
        rejects("name = \"my lab\"", "name", "my lab");
        rejects(
            "[[namespaces]]\nname = \"../etc\"",
            "namespaces[0].name",
            "../etc",
        );
        rejects("[host]\nmode = \"root\"", "host.uplink", "");
        rejects(
            "[host]\nmode = \"root\"\nuplink = \"eth0\"\nnamespace = \"x\"",
            "host.namespace",
            "x",
        );
        let plan = resolve("[host]\nmode = \"root\"\nuplink = \"eth0\"").unwrap();
        assert_eq!(plan.host_netns(), None);
        assert_eq!(plan.internet_server(), None);
        assert_eq!(plan.namespaces(), ["ns1", "ns2", "ns3"]);
    }

    #[test]
    fn plans_an_attached_endpoint() {
        let plan = resolve("").unwrap();
        let e = plan
            .plan_endpoint("ns4", Ipv4Addr::new(192, 168, 28, 4))
            .unwrap();
        assert_eq!(
            (e.index, e.veth.as_str(), e.peer.as_str()),
            (4, "veth-4", "veth-4-br")
        );
        assert!(
            plan.plan_endpoint("ns4", Ipv4Addr::new(192, 168, 28, 1))
                .is_err()
        );
        assert!(
            plan.plan_endpoint("ns4", Ipv4Addr::new(192, 168, 28, 5))
                .is_err()
        );
        assert!(
            plan.plan_endpoint("ns1", Ipv4Addr::new(192, 168, 28, 9))
                .is_err()
        );
        assert!(
            plan.plan_endpoint("ns4", Ipv4Addr::new(10, 0, 0, 1))
                .is_err()
        );
    }
}
