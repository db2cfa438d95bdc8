//! The lab file (TOML) and its resolution into a
//! [`LabPlan`](crate::plan::LabPlan): the schema as written ([`schema`]),
//! resolution step by step (`resolve`, `host`, `endpoints`: defaults,
//! allocation, validation), and one more endpoint for a running lab
//! ([`plan_endpoint`]). The name and MAC rules
//! are `crate::names`; the plan types are `crate::plan`.
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
//! subnet6 = "fd00:192:168:28::/64" # the lab's IPv6 prefix (/64../120); default: the IPv4
//!                                 # subnet's first three octets as hex groups of the same
//!                                 # digits (10.161.0.0/16 → fd00:10:161:0::/64); "none": no IPv6
//! gateway6 = "fd00:192:168:28::5" # default: the gateway's IPv4 offset in subnet6 (::5)
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
//! uplink_address6 = "2001:db8:203:113::1/64"   # sandbox only, with IPv6 (RFC 3849 space)
//! internet_address6 = "2001:db8:203:113::2/64" # sandbox only, with IPv6
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
//! address6 = "fd00:192:168:28::1" # default: the IPv4 address's offset in subnet6
//! veth = "veth-1"                 # default: veth-N (N = position, 1-based), inside the namespace
//! peer = "veth-1-br"              # default: veth-N-br, on the host side
//! publish = ["8080:80"]           # published ports (see README, "Published ports"); default none
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
//! Resolution ([`LabConfig::resolve`]) reports every problem at once, each
//! naming the field and the offending value. Checks that need the running
//! system (a namespace name already taken, the root-mode uplink missing) are
//! done by `lab::check_environment` before anything is created.

mod attach;
mod endpoints;
mod error;
mod host;
mod ipv6;
mod problems;
mod resolve;
pub mod schema;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ipv6;

pub use attach::plan_endpoint;
pub use error::ConfigError;
pub use ipv6::{address6_for, derived_subnet6};
pub use schema::{HostConfig, HostMode, LabConfig, NamespaceConfig, NatConfig};
