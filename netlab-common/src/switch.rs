//! The L2 switch's map types.

use crate::user_pod;

/// A port's role in the switch.
pub const PORT_KIND_ENDPOINT: u8 = 1;
/// The gateway port: the peer of `vbridge`, whose frames go to the host stack.
pub const PORT_KIND_GATEWAY: u8 = 2;

/// FDB entry set by the control plane; never overridden by learning.
pub const FDB_FLAG_STATIC: u8 = 1;
/// FDB entry learned from a source MAC.
pub const FDB_FLAG_LEARNED: u8 = 2;
/// FDB entry added by hand (`netlab fdb add`): not static, so learning may
/// move it and `netlab fdb del` may remove it.
pub const FDB_FLAG_MANUAL: u8 = 4;

/// `host_addrs` value: an address assigned to one of the host's interfaces.
pub const HOST_ADDR_LOCAL: u8 = 1;
/// `host_addrs` value: the broadcast address of such an address's subnet
/// (the host stack delivers it locally too).
pub const HOST_ADDR_BROADCAST: u8 = 2;

/// FDB key: a MAC address padded to 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FdbKey {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

impl FdbKey {
    pub const fn new(mac: [u8; 6]) -> Self {
        Self { mac, _pad: [0; 2] }
    }
}

/// Where a MAC lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FdbEntry {
    /// The switch port (`veth-N-br` or the gateway's peer), in the host namespace.
    pub port_ifindex: u32,
    /// PORT_KIND_*.
    pub kind: u8,
    /// FDB_FLAG_*.
    pub flags: u8,
    /// The port's slot (`PortInfo::slot`): the switch reads the target from
    /// `flood_ports[slot]` (an array) instead of a second `ports` lookup, and
    /// uses the entry only while that slot holds `port_ifindex`.
    pub slot: u16,
}

/// A switch port, keyed by its ifindex in the host namespace.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortInfo {
    /// The port device (`veth-N-br`, or `vbridge-p` for the gateway).
    pub ifindex: u32,
    /// Where frames *to* this port are sent: for an endpoint port the port
    /// itself (`bpf_redirect_peer` lands them in the namespace); for the
    /// gateway port the `vbridge` device (`bpf_redirect` with BPF_F_INGRESS).
    pub deliver_ifindex: u32,
    /// The IPv4 address behind the port (network order): the endpoint's, or
    /// the gateway's. Source check for endpoint ports.
    pub ipv4: u32,
    /// Index into the flood list and the per-port statistics.
    pub slot: u32,
    /// The MAC behind the port (endpoint's interface, or `vbridge`).
    pub mac: [u8; 6],
    /// PORT_KIND_*.
    pub kind: u8,
    pub _pad: u8,
}

/// An IPv4 address the switch knows (endpoints and the gateway).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Endpoint {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
    /// The switch port behind which the address lives.
    pub port_ifindex: u32,
}

/// The IPv6 addresses behind an endpoint port (`ports6`, keyed by the
/// port's ifindex): the IPv6 source check accepts these two (and `::` for
/// duplicate address detection) and nothing else.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Port6 {
    /// The endpoint's global (ULA) address from the lab's `subnet6`.
    pub global: [u8; 16],
    /// Its link-local address: the EUI-64 one the kernel derives from the
    /// endpoint's MAC (`names::link_local_for`).
    pub link_local: [u8; 16],
}

/// `SwitchConfig::trace` bit: the port program writes one EVENT_FRAME per
/// frame into the `events` ring buffer (`netlab trace`, see
/// `crate::events`).
pub const TRACE_FRAMES: u32 = 1;
/// `SwitchConfig::trace` bit: every program writes typed events into the
/// `events` ring buffer (`netlab monitor`, see `crate::events`).
pub const TRACE_EVENTS: u32 = 2;

/// Runtime switches, one entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SwitchConfig {
    /// TRACE_* bits: who is watching the datapath. (A field of bits rather
    /// than two fields so the pinned map keeps its layout.)
    pub trace: u32,
    /// Non-zero: learn unknown source MACs (never overrides static entries).
    pub learning: u32,
}

user_pod!(FdbKey, FdbEntry, PortInfo, Endpoint, Port6, SwitchConfig);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};

    #[test]
    fn layouts() {
        assert_eq!(size_of::<FdbKey>(), 8);
        assert_eq!(size_of::<FdbEntry>(), 8);
        assert_eq!(size_of::<PortInfo>(), 24);
        assert_eq!(align_of::<PortInfo>(), 4);
        assert_eq!(size_of::<Endpoint>(), 12);
        assert_eq!(size_of::<SwitchConfig>(), 8);
        assert_eq!(size_of::<Port6>(), 32);
    }
}
