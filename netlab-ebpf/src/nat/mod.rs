//! Source NAT on the uplink (netlab/doc/ARCHITECTURE.md §3.2-§3.4).
//!
//! * [`egress`] (uplink TC egress): packets from the masqueraded subnet leave
//!   with the external address and a port/echo id from the configured range;
//! * [`ingress`] (uplink TC ingress): replies (and ICMP errors quoting a
//!   translated packet) get the original destination back and are delivered
//!   to the host stack or, on the fast path, straight into the endpoint's
//!   namespace;
//! * [`dnat`]: the first packet to a published port creates a translation
//!   in the same maps, so the rest of the flow is restored like replies;
//! * [`sock`]: cgroup socket hooks that send the lab's own connections to a
//!   published port (host side, hairpin) straight to the namespace;
//! * [`frag`]: the later fragments of a datagram (no L4 header) get the
//!   translation of its first fragment;
//! * [`v6`]: NAT66, the same for IPv6 on its own maps; both programs
//!   dispatch on the EtherType, IPv4 first.
//!
//! The host's own traffic is never touched: the port range is reserved on
//! the host (`ip_local_reserved_ports`), so a packet to the external address
//! with no reply entry is the host's.
//!
//! The uplink is the user's device and its tcx hooks may hold other
//! programs: traffic that is not the lab's is handed to the next program in
//! the chain ([`TCX_NEXT`]) instead of ending it, so a firewall or monitor
//! attached after netlab still sees the host's packets. The lab's own
//! packets (translated, or dropped) end the chain here.

mod alloc;
mod dnat;
mod egress;
mod frag;
mod icmp_error;
pub(crate) mod inbound;
mod ingress;
pub(crate) mod parse;
mod rewrite;
pub mod sock;
mod state;
pub(crate) mod v6;

/// Entry of `netlab_uplink_egress`: the EtherType picks the family. Each
/// half is a function of its own (a BPF-to-BPF call): the kernel allows
/// 512 bytes of stack for a whole call chain, and the IPv4 half's frame
/// alone takes most of it, so the IPv6 half must not sit on top of it.
#[inline(always)]
pub fn egress(ctx: TcContext) -> i32 {
    if parse::is_ipv6(&ctx) {
        return v6::egress(&ctx);
    }
    ipv4_egress(ctx.skb.skb)
}

/// Entry of `netlab_uplink_ingress` (see [`egress`]).
#[inline(always)]
pub fn ingress(ctx: TcContext) -> i32 {
    if parse::is_ipv6(&ctx) {
        return v6::ingress(&ctx);
    }
    ipv4_ingress(ctx.skb.skb)
}

#[inline(never)]
fn ipv4_egress(skb: *mut __sk_buff) -> i32 {
    egress::egress(TcContext::new(skb))
}

#[inline(never)]
fn ipv4_ingress(skb: *mut __sk_buff) -> i32 {
    ingress::ingress(TcContext::new(skb))
}

use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_SHOT, TC_ACT_UNSPEC},
    programs::TcContext,
};
use netlab_common::counters::Counter;

use crate::{counters::count, events};

/// Counts `reason` and drops the packet (an event for `netlab monitor`
/// when one listens).
#[inline(always)]
fn drop_packet(ctx: &aya_ebpf::programs::TcContext, reason: Counter) -> i32 {
    count(reason);
    events::nat_drop(ctx, reason);
    TC_ACT_SHOT
}

/// Counts `reason` (no port, full maps) and drops the packet whose flow
/// `key` could not be translated; its event names the flow.
#[inline(always)]
fn drop_untranslated(key: &netlab_common::nat::NatKey, reason: Counter) -> i32 {
    count(reason);
    events::nat_flow(
        netlab_common::events::EVENT_NAT_EXHAUSTED,
        key,
        &netlab_common::nat::NatEntry::default(),
        reason as u32,
    );
    TC_ACT_SHOT
}

/// `TCX_NEXT`: not ours, let the rest of the tcx chain decide (with no
/// program after this one the kernel passes the packet, as for TC_ACT_OK).
pub(crate) const TCX_NEXT: i32 = TC_ACT_UNSPEC;

/// Counts the packet as the host's own and hands it on untouched.
#[inline(always)]
fn pass_host() -> i32 {
    count(Counter::NatPassHost);
    TCX_NEXT
}

/// What both uplink programs start with: the NAT configuration and the
/// packet's IPv4 header. `Err` is the verdict when there is nothing to
/// translate: NAT disabled (next program), not IPv4 (the host's), or a
/// malformed IPv4 header (dropped and counted).
#[inline(always)]
fn config_and_ipv4(
    ctx: &aya_ebpf::programs::TcContext,
) -> Result<(netlab_common::nat::NatConfig, parse::Ipv4), i32> {
    let cfg = config().ok_or(TCX_NEXT)?;
    match parse::parse_ipv4(ctx) {
        parse::Parsed::NotIpv4 => Err(pass_host()),
        parse::Parsed::Malformed => Err(drop_packet(ctx, Counter::NatDropMalformed)),
        parse::Parsed::Ipv4(ip) => Ok((cfg, ip)),
    }
}

/// The NAT configuration, if the control plane has enabled it.
#[inline(always)]
pub(crate) fn config() -> Option<netlab_common::nat::NatConfig> {
    let cfg = crate::maps::NAT_CONFIG.get(0)?;
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
