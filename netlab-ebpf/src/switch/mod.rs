//! The L2 switch: the program on the TC ingress of every switch port.
//!
//! Per frame: find the ingress port in `ports`; drop runts; check the source
//! (endpoint ports); answer ARP requests and IPv6 neighbour solicitations
//! for known addresses in place; then switch by destination MAC: known
//! unicast is redirected to its port, broadcast/multicast/unknown unicast
//! is flooded. IPv6 walks its header chain and, from an endpoint, passes
//! the source check, the RA guard and the ND spoof rules (ipv6.rs, nd.rs).
//! IPv4 and IPv6 from an endpoint that would reach the host stack (unicast
//! to the gateway port, or flooded) must not be addressed to the host's
//! other addresses (host.rs). VLAN-tagged and any other EtherType are
//! switched by MAC like on any L2 switch; a frame from an endpoint that
//! still carries a VLAN tag has its inner IPv4/IPv6/ARP source checked and
//! never reaches the host stack (vlan.rs).
//!
//! How the ingress port is found: `__sk_buff.ingress_ifindex`. On a tcx
//! ingress hook it is the port device's ifindex (the kernel sets `skb_iif`
//! before running the hook); under BPF_PROG_TEST_RUN it is whatever the
//! test passes in `ctx_in`, which keeps the program testable with made-up
//! ifindexes.

mod arp;
pub(crate) mod decide;
mod deliver;
pub(crate) mod host;
pub(crate) mod ipv6;
mod learn;
pub(crate) mod mac;
mod nd;
mod source;
pub(crate) mod stats;
mod trace;
mod vlan;

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    programs::TcContext,
};
use netlab_common::{
    counters::Counter,
    switch::{PORT_KIND_ENDPOINT, PortInfo, TRACE_EVENTS, TRACE_FRAMES},
};
use network_types::eth::{EthHdr, EtherType};

use decide::{Decision, HostDst};
/// What counts as a VLAN tag, for the XDP switch too (it passes tagged
/// frames to this program).
pub(crate) use vlan::is_tag as is_vlan_tag;

use crate::{
    counters::count,
    events,
    hdr::{make_linear, ptr_at},
    maps,
};

/// What happened to a frame; turned into a TC verdict and, when tracing,
/// into one frame event (trace.rs).
pub enum Outcome {
    /// Redirected to one port.
    Unicast { verdict: i32, to: u32 },
    /// An ARP request answered in place for `ip`.
    ArpAnswered { verdict: i32, ip: [u8; 4] },
    /// A neighbour solicitation answered in place (sent back out of the
    /// port it came in on).
    NdAnswered { verdict: i32 },
    /// Copies sent to `copies` ports; the original is dropped.
    Flooded { verdict: i32, copies: u32 },
    /// Dropped and counted for this reason.
    Dropped(Counter),
}

/// The addresses of the frame, kept for the trace event (packet pointers
/// are gone after a clone_redirect).
#[derive(Clone, Copy, Default)]
pub struct Frame {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// Host byte order.
    pub ethertype: u16,
}

/// Entry point of `netlab_port`.
#[inline(always)]
pub fn port_ingress(ctx: &TcContext) -> i32 {
    count(Counter::PortRx);
    // SAFETY: reading a field of the context the kernel handed us.
    let ingress = unsafe { (*ctx.skb.skb).ingress_ifindex };
    let Some(port) = maps::port(ingress) else {
        // Not a port of this switch: only possible if the program is
        // attached to a device the control plane does not (or no longer)
        // list. Pass the frame to the stack, as if no program were there,
        // rather than black-holing a device we do not own.
        count(Counter::DropUnknownPort);
        return TC_ACT_OK;
    };
    stats::rx(port.slot, ctx.len());
    let config = maps::config();

    let mut frame = Frame::default();
    let outcome = match switch_frame(ctx, ingress, &port, config.learning != 0, &mut frame) {
        Ok(outcome) => outcome,
        Err(reason) => Outcome::Dropped(reason),
    };
    let verdict = match outcome {
        Outcome::Unicast { verdict, .. }
        | Outcome::ArpAnswered { verdict, .. }
        | Outcome::NdAnswered { verdict }
        | Outcome::Flooded { verdict, .. } => verdict,
        Outcome::Dropped(reason) => {
            count(reason);
            stats::drop(port.slot);
            TC_ACT_SHOT
        }
    };
    if config.trace & TRACE_EVENTS != 0 {
        match outcome {
            Outcome::Dropped(reason) => events::port_drop(ctx, ingress, reason),
            Outcome::ArpAnswered { .. } => events::arp_answered(ctx, ingress),
            _ => {}
        }
    }
    if config.trace & TRACE_FRAMES != 0 {
        trace::frame(ingress, &frame, &outcome);
    }
    verdict
}

#[inline(always)]
fn switch_frame(
    ctx: &TcContext,
    ingress: u32,
    port: &PortInfo,
    learning: bool,
    frame: &mut Frame,
) -> Result<Outcome, Counter> {
    if (ctx.len() as usize) < EthHdr::LEN {
        return Err(Counter::DropRunt);
    }
    if !make_linear(ctx, EthHdr::LEN) {
        return Err(Counter::DropTruncated);
    }
    let eth = ptr_at::<EthHdr>(ctx, 0).ok_or(Counter::DropRunt)?;
    // SAFETY: bounds-checked by ptr_at just above.
    let (dst, src, ethertype) = unsafe { ((*eth).dst_addr, (*eth).src_addr, (*eth).ether_type) };
    *frame = Frame {
        dst,
        src,
        ethertype: u16::from_be(ethertype),
    };

    decide::check_mac_source(port, &src)?;

    // The IP destination of a frame from an endpoint: host.rs checks it
    // if the frame is headed for the host stack.
    let mut host_dst = HostDst::None;
    // A frame from an endpoint that still carries a VLAN tag: kept away
    // from the host stack (vlan.rs).
    let mut tagged = false;
    if ethertype == EtherType::Arp as u16 {
        if let arp::Arp::Answered { verdict, ip } = arp::handle(ctx, ingress, port)? {
            count(Counter::ArpAnswered);
            return Ok(Outcome::ArpAnswered { verdict, ip });
        }
    } else if ethertype == EtherType::Ipv4 as u16 {
        host_dst = source::check_ipv4(ctx, port, EthHdr::LEN)?;
    } else if ethertype == EtherType::Ipv6 as u16 {
        host_dst = match ipv6::tc_stage(ctx, port, EthHdr::LEN)? {
            ipv6::TcStage::Switch(dst) => dst,
            ipv6::TcStage::Answered(verdict) => {
                count(Counter::NdAnswered);
                return Ok(Outcome::NdAnswered { verdict });
            }
        };
    } else {
        if vlan::is_tag(ethertype) {
            vlan::check(ctx, port)?;
            tagged = port.kind == PORT_KIND_ENDPOINT;
        }
        count(Counter::OtherEtherType);
    }

    if learning {
        learn::learn(&src, ingress, port);
    }
    match decide::by_destination(ingress, &dst, host_dst, tagged)? {
        Decision::Unicast(target) => {
            let verdict = deliver::to_port(ctx, &target)?;
            count(decide::unicast_counter(&target));
            Ok(Outcome::Unicast {
                verdict,
                to: target.ifindex,
            })
        }
        Decision::Flood => {
            let (verdict, copies) = deliver::flood(ctx, ingress, tagged);
            Ok(Outcome::Flooded { verdict, copies })
        }
    }
}
