//! Source NAT on the uplink (DESIGN.md §2).
//!
//! * [`egress`] (uplink TC egress): packets from the masqueraded subnet leave
//!   with the external address and a port/echo id from the configured range;
//! * [`ingress`] (uplink TC ingress): replies (and ICMP errors quoting a
//!   translated packet) get the original destination back and are delivered
//!   to the host stack or, on the fast path, straight into the endpoint's
//!   namespace;
//! * [`frag`]: the later fragments of a datagram (no L4 header) get the
//!   translation of its first fragment.
//!
//! The host's own traffic is never touched: the port range is reserved on
//! the host (`ip_local_reserved_ports`), so a packet to the external address
//! with no reply entry is the host's.

mod alloc;
mod egress;
mod frag;
mod icmp_error;
pub(crate) mod inbound;
mod ingress;
mod maps;
pub(crate) mod parse;
mod state;

pub use egress::egress;
pub use ingress::ingress;

use aya_ebpf::bindings::{TC_ACT_OK, TC_ACT_SHOT};
use netlab_common::counters::Counter;

use crate::counters::count;

/// Counts `reason` and drops the packet.
#[inline(always)]
fn drop_packet(reason: Counter) -> i32 {
    count(reason);
    TC_ACT_SHOT
}

/// Counts the packet as the host's own and lets it through untouched.
#[inline(always)]
fn pass_host() -> i32 {
    count(Counter::NatPassHost);
    TC_ACT_OK
}

/// What both uplink programs start with: the NAT configuration and the
/// packet's IPv4 header. `Err` is the verdict when there is nothing to
/// translate: NAT disabled (pass), not IPv4 (the host's), or a malformed
/// IPv4 header (dropped and counted).
#[inline(always)]
fn config_and_ipv4(
    ctx: &aya_ebpf::programs::TcContext,
) -> Result<(netlab_common::nat::NatConfig, parse::Ipv4), i32> {
    let cfg = config().ok_or(TC_ACT_OK)?;
    match parse::parse_ipv4(ctx) {
        parse::Parsed::NotIpv4 => Err(pass_host()),
        parse::Parsed::Malformed => Err(drop_packet(Counter::NatDropMalformed)),
        parse::Parsed::Ipv4(ip) => Ok((cfg, ip)),
    }
}

/// The NAT configuration, if the control plane has enabled it.
#[inline(always)]
pub(crate) fn config() -> Option<netlab_common::nat::NatConfig> {
    let cfg = maps::NAT_CONFIG.get(0)?;
    if cfg.flags & netlab_common::nat::NAT_FLAG_ENABLED == 0 {
        return None;
    }
    Some(*cfg)
}

/// Current time on the clock userspace reads as CLOCK_MONOTONIC.
#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() }
}
