//! The two datapaths behind one topology.
//!
//! The topology code (lab/topology modules) builds namespaces, veths and
//! addresses; a datapath then joins the ports: the kernel one with a Linux
//! bridge and iptables MASQUERADE, the eBPF one with TC programs and maps.
//! What they build comes from the plan (`crate::plan`: `SwitchPlan`,
//! `PortPlan`, `NatPlan`), which sits below them.

pub mod ebpf;
pub mod kernel;
pub mod xdp;
