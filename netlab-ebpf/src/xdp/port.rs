//! The switch in XDP (datapath "ebpf-xdp"): the TC port program's source
//! checks and switching decision (the same functions, `switch::decide`),
//! before an skb exists. Unicast goes to the target port with
//! `bpf_redirect_map` through `xdp_ports` (a devmap: the frame is
//! transmitted on the port and arrives in its peer, the namespace's veth
//! or `vbridge`); floods with `BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS` to
//! every port in the devmap but the one it came from.
//!
//! IPv6 goes through the same header walk and first-hop rules as in the
//! TC program (`switch::ipv6`, generic over how the bytes are read): what
//! TC would drop is dropped here with the same reason.
//!
//! The TC port program stays attached behind it and gets what this one
//! passes (XDP_PASS): ARP (its sender check and responder), IPv6 neighbour
//! solicitations the ND responder may answer, VLAN-tagged frames, frames
//! while learning or tracing is on, ports or targets it does not know.
//! Those rules exist once, there.

use aya_ebpf::{
    bindings::{
        BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS,
        xdp_action::{XDP_DROP, XDP_PASS, XDP_REDIRECT},
    },
    programs::XdpContext,
};
use netlab_common::{counters::Counter, events::PROGRAM_XDP_PORT, switch::PortInfo};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::Ipv4Hdr,
};

use super::ptr_at;
use crate::{
    counters::count,
    maps::{self, XDP_PORTS},
    switch::{
        decide::{self, Decision, HostDst},
        ipv6::{self, Ipv6},
        is_vlan_tag, stats,
    },
};

/// What happened to a frame.
enum Outcome {
    /// For the TC port program.
    ToTc,
    Redirected,
    Flooded,
    Dropped(Counter),
}

/// Entry point of `netlab_xdp_port`.
#[inline(always)]
pub fn port(ctx: &XdpContext) -> u32 {
    count(Counter::XdpPortRx);
    let ingress = ctx.ingress_ifindex() as u32;
    let Some(port) = maps::port(ingress) else {
        count(Counter::XdpPortToTc);
        return XDP_PASS;
    };
    let config = maps::config();
    if config.learning != 0 || config.trace != 0 {
        count(Counter::XdpPortToTc);
        return XDP_PASS;
    }
    let len = (ctx.data_end() - ctx.data()) as u32;
    let outcome = match switch_frame(ctx, ingress, &port, len) {
        Ok(outcome) => outcome,
        Err(reason) => Outcome::Dropped(reason),
    };
    match outcome {
        Outcome::ToTc => {
            count(Counter::XdpPortToTc);
            return XDP_PASS;
        }
        Outcome::Redirected => count(Counter::XdpPortRedirect),
        Outcome::Flooded => {
            count(Counter::XdpPortFlood);
            count(Counter::Flooded);
        }
        Outcome::Dropped(reason) => {
            count(reason);
            super::events::drop(ctx, PROGRAM_XDP_PORT, reason);
            stats::rx(port.slot, len);
            stats::drop(port.slot);
            return XDP_DROP;
        }
    }
    stats::rx(port.slot, len);
    XDP_REDIRECT
}

#[inline(always)]
fn switch_frame(
    ctx: &XdpContext,
    ingress: u32,
    port: &PortInfo,
    len: u32,
) -> Result<Outcome, Counter> {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return Ok(Outcome::ToTc);
    };
    // SAFETY: bounds checked by ptr_at.
    let (dst, src, ethertype) = unsafe { ((*eth).dst_addr, (*eth).src_addr, (*eth).ether_type) };
    decide::check_mac_source(port, &src)?;
    let mut host_dst = HostDst::None;
    if ethertype == EtherType::Arp as u16 {
        // ARP goes to the TC program (its sender check and responder). An
        // answer sent back with XDP_TX into the veth was lost now and then
        // on this kernel (the namespace's neighbour entry stayed
        // INCOMPLETE and its connection timed out); ARP is rare enough
        // that XDP buys nothing there.
        return Ok(Outcome::ToTc);
    } else if ethertype == EtherType::Ipv4 as u16 {
        let ip = ptr_at::<Ipv4Hdr>(ctx, EthHdr::LEN).ok_or(Counter::DropTruncated)?;
        // SAFETY: bounds checked by ptr_at.
        let (s, d) = unsafe { ((*ip).src_addr, (*ip).dst_addr) };
        host_dst = decide::check_ipv4_source(port, s, d)?;
    } else if ethertype == EtherType::Ipv6 as u16 {
        host_dst = match ipv6::check(ctx, port, EthHdr::LEN)? {
            Ipv6::Switch(dst) => dst,
            // The responder writes the answer into the skb (TC).
            Ipv6::Solicit(_) => return Ok(Outcome::ToTc),
        };
    } else if is_vlan_tag(ethertype) {
        // Tags: the TC program's rules (it sees them as the kernel left them).
        return Ok(Outcome::ToTc);
    } else {
        count(Counter::OtherEtherType);
    }
    forward(ingress, &dst, host_dst, len)
}

/// Delivers as `decide::by_destination` says (never tagged: VLAN frames
/// went to the TC program): known unicast to its port through the devmap
/// (counted in the target's tx statistics), the rest flooded (the kernel
/// makes the copies: no per-port tx counts). A redirect the devmap refuses
/// (a port not in it) goes to the TC program.
#[inline(always)]
fn forward(ingress: u32, dst: &[u8; 6], host_dst: HostDst, len: u32) -> Result<Outcome, Counter> {
    match decide::by_destination(ingress, dst, host_dst, false)? {
        Decision::Unicast(target) => {
            if XDP_PORTS.redirect(target.ifindex, u64::from(XDP_PASS)) != XDP_REDIRECT {
                return Ok(Outcome::ToTc);
            }
            stats::tx(target.slot, len);
            count(decide::unicast_counter(&target));
            Ok(Outcome::Redirected)
        }
        Decision::Flood => {
            let flags = u64::from(BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) | u64::from(XDP_PASS);
            if XDP_PORTS.redirect(0, flags) != XDP_REDIRECT {
                return Ok(Outcome::ToTc);
            }
            Ok(Outcome::Flooded)
        }
    }
}
