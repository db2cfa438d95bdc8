//! The plan layer: what a lab should be, as plain data. The lab file
//! (`crate::config`) resolves into a [`LabPlan`]; the topology, the two
//! datapaths, the NAT control, the benchmark and the published-port code
//! consume it (and what it derives: [`SwitchPlan`], [`NatPlan`],
//! [`PublishedPort`]). The state file records it.
//!
//! Nothing here imports `config`, `datapath`, `nat`, `publish` or `lab`:
//! the plan sits below all of them (see ARCHITECTURE.md §2.2). The name
//! and MAC rules it follows are `crate::names`.

mod containers;
mod lab;
mod nat;
mod port_spec;
mod problem;
mod publish;
mod switch;

pub use containers::{ContainerPlan, Containers, SHORT_ID_LEN};
pub use lab::{DatapathKind, EndpointPlan, HostPlan, Ipv6Plan, LabPlan, SandboxPlan, SwitchHook};
pub use nat::{
    NAT_PORT_FLOOR, NatPlan, NatSettings, NatTimeouts, nat_entries_problem, nat_port_problem,
    nat_range_problem, nat_timeout_problem,
};
pub use port_spec::{PortRange, PortSpec, Protocol, Publication};
pub use problem::Problem;
pub use publish::{
    MAX_PUBLISHED_PORTS, PublishedPort, PublishedPort6, check_publications, expand, expand6,
    planned_host_addresses,
};
pub use switch::{PortPlan, PortRole, SwitchPlan};
