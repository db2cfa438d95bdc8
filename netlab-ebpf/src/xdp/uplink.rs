//! Uplink XDP: drop, before an skb exists, what the uplink TC ingress
//! would drop without looking at any map: packets claiming a lab source,
//! packets to the lab subnet that are no translation's, and IPv4 or L4
//! headers too short for the NAT to read; for IPv6 (NAT66) the first two
//! rules, from the fixed header. Everything else (replies of NAT flows
//! included) is passed to the kernel; the TC ingress translates it.
//!
//! Why replies are not translated and redirected here: see the README
//! ("Uplink XDP"); the TC fast path already delivers them with
//! `bpf_redirect_peer`, and an XDP redirect into a veth needs NAPI on the
//! endpoint's side and costs the endpoint's GSO.

use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    programs::XdpContext,
};
use netlab_common::{counters::Counter, events::PROGRAM_UPLINK_XDP};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::Ipv4Hdr,
};

use super::ptr_at;
use crate::{
    counters::count,
    nat::{
        config,
        inbound::{self, Refusal},
        parse::{IP_OFF, IP_OFFSET_MASK},
        v6::{in_lab, parse::Ipv6Fixed},
    },
};

/// Entry point of `netlab_uplink_xdp`.
#[inline(always)]
pub fn uplink(ctx: &XdpContext) -> u32 {
    let verdict = if is_ipv6(ctx) {
        match crate::nat::v6::config() {
            Some(cfg) => verdict6(ctx, cfg),
            // NAT66 off: nothing of the lab's to protect; passed (and
            // counted while the IPv4 NAT is on, as before NAT66).
            None if config().is_some() => Ok(()),
            None => return XDP_PASS,
        }
    } else {
        let Some(cfg) = config() else {
            // NAT disabled: nothing of the lab's to protect.
            return XDP_PASS;
        };
        verdict(ctx, &cfg)
    };
    match verdict {
        Ok(()) => {
            count(Counter::XdpPass);
            XDP_PASS
        }
        Err(reason) => {
            count(reason);
            super::events::drop(ctx, PROGRAM_UPLINK_XDP, reason);
            XDP_DROP
        }
    }
}

#[inline(always)]
fn is_ipv6(ctx: &XdpContext) -> bool {
    // SAFETY: bounds checked by ptr_at.
    ptr_at::<EthHdr>(ctx, 0)
        .is_some_and(|eth| unsafe { (*eth).ether_type } == EtherType::Ipv6 as u16)
}

/// The IPv6 rule, what the TC ingress (`nat::v6`) drops from the fixed
/// header alone: a header it cannot read (too short, or a version other
/// than 6), a lab source, the lab prefix as the destination. Everything
/// else is passed: the TC ingress walks the extension headers and judges
/// the rest (the host's own IPv6 is not this program's to drop).
#[inline(always)]
fn verdict6(ctx: &XdpContext, cfg: &netlab_common::nat6::Nat6Config) -> Result<(), Counter> {
    let ip = ptr_at::<Ipv6Fixed>(ctx, IP_OFF).ok_or(Counter::XdpDropMalformed)?;
    // SAFETY: bounds checked by ptr_at.
    if unsafe { (*ip).vtc_flow[0] } >> 4 != 6 {
        return Err(Counter::XdpDropMalformed);
    }
    // SAFETY: bounds checked by ptr_at.
    let addrs = unsafe { &(*ip).addrs };
    if in_lab(cfg, &addrs.saddr) {
        return Err(Counter::XdpDropLabSource);
    }
    if in_lab(cfg, &addrs.daddr) {
        return Err(Counter::XdpDropUnsolicited);
    }
    Ok(())
}

/// `Err(counter)`: drop for that reason.
#[inline(always)]
fn verdict(ctx: &XdpContext, cfg: &netlab_common::nat::NatConfig) -> Result<(), Counter> {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        // Shorter than Ethernet: the kernel drops it (not ours to count).
        return Ok(());
    };
    // SAFETY: bounds checked by ptr_at.
    if unsafe { (*eth).ether_type } != EtherType::Ipv4 as u16 {
        return Ok(());
    }
    let ip = ptr_at::<Ipv4Hdr>(ctx, IP_OFF).ok_or(Counter::XdpDropMalformed)?;
    // SAFETY: bounds checked by ptr_at.
    let ip = unsafe { *ip };
    let ihl = (ip.vihl & 0x0f) as usize;
    if ip.vihl >> 4 != 4 || ihl < 5 {
        return Err(Counter::XdpDropMalformed);
    }
    let saddr = u32::from_ne_bytes(ip.src_addr);
    let daddr = u32::from_ne_bytes(ip.dst_addr);
    if let Some(refusal) = inbound::refusal(cfg, saddr, daddr) {
        return Err(match refusal {
            Refusal::LabSource => Counter::XdpDropLabSource,
            Refusal::Unsolicited => Counter::XdpDropUnsolicited,
        });
    }
    if daddr != cfg.external || u16::from_be_bytes(ip.frags) & IP_OFFSET_MASK != 0 {
        // The host's, or a later fragment (no L4 header): TC decides.
        return Ok(());
    }
    let needed = inbound::l4_needed(ip.proto);
    if needed == 0 {
        // GRE, ESP, ... to the external address are the host's: the NAT
        // reads nothing of theirs, so no length of theirs is its to judge
        // (not even an IHL that runs past the packet).
        return Ok(());
    }
    let l4_end = IP_OFF + ihl * 4 + needed;
    if ctx.data() + l4_end > ctx.data_end() {
        return Err(Counter::XdpDropMalformed);
    }
    Ok(())
}
