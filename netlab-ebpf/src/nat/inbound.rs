//! What arrives on the uplink from outside and can only be dropped, decided
//! from the addresses alone. One rule for both receive programs: the TC
//! ingress ([`super::ingress`]) and the uplink XDP program (`crate::xdp`),
//! which applies it before the kernel builds an skb. Whatever the lab comes
//! to accept from outside (e.g. published ports) must be let through here.

use netlab_common::nat::NatConfig;

/// Why a packet from outside is refused.
#[derive(Clone, Copy)]
pub enum Refusal {
    /// Its source is a lab address: the lab's own traffic leaves
    /// translated, so nothing from outside can legitimately carry one.
    LabSource,
    /// Addressed to the lab subnet directly: the lab is reachable from
    /// outside only through translations (replies to the external address).
    Unsolicited,
}

/// The refusal for a packet from `saddr` to `daddr` (network order), if any.
#[inline(always)]
pub fn refusal(cfg: &NatConfig, saddr: u32, daddr: u32) -> Option<Refusal> {
    if saddr & cfg.mask == cfg.subnet {
        return Some(Refusal::LabSource);
    }
    if daddr != cfg.external && daddr & cfg.mask == cfg.subnet {
        return Some(Refusal::Unsolicited);
    }
    None
}

/// Bytes of L4 header the reverse NAT reads from a packet of `proto` to
/// the external address (0: it reads none, the packet is the host's). A
/// shorter packet is malformed.
#[inline(always)]
pub const fn l4_needed(proto: u8) -> usize {
    match proto {
        netlab_common::nat::IPPROTO_TCP => super::parse::TCP_MIN_LEN,
        netlab_common::nat::IPPROTO_UDP | netlab_common::nat::IPPROTO_ICMP => 8,
        _ => 0,
    }
}
