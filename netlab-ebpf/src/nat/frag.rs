//! IPv4 fragments (the idea of Cilium's `bpf/lib/ipfrag.h`,
//! <https://github.com/cilium/cilium/blob/main/bpf/lib/ipfrag.h>).
//!
//! A datagram larger than the MTU is fragmented by its sender (a lab
//! namespace on the way out, the remote peer for replies); nothing on the
//! way reassembles it (no conntrack defrag in the eBPF datapath). Only the
//! first fragment carries the L4 header, so only it can be looked up in the
//! translation maps. It is translated like any packet, and records in
//! `nat_frags`, under the identity every fragment of the datagram shares
//! (addresses, IP id, protocol, plus the direction), the address the rest
//! of the datagram must get. A later fragment looks that up and gets the
//! same address, with only the IPv4 header checksum to fix: the L4 checksum
//! covers the whole datagram but sits in the first fragment, which already
//! got the (additive) correction for the address change.
//!
//! Rules when the first fragment was not seen (reordered, dropped, expired):
//! * out: the fragment is dropped and counted (`nat_drop_fragment`): a lab
//!   address must never leave the uplink;
//! * in: it is passed to the host and counted (`nat_frag_untracked`): it may
//!   be a fragment of the host's own datagram.
//!
//! Entries are not removed with the last fragment (fragments may arrive out
//! of order); the control plane removes them after the kernel's reassembly
//! timeout, and the LRU evicts the oldest when the map is full.

use aya_ebpf::{bindings::BPF_ANY, programs::TcContext};
use netlab_common::nat::{NatFragEntry, NatFragKey};

use super::parse::{IP_CHECK, IP_OFF, Ipv4};
use crate::{csum, maps::NAT_FRAGS};

/// The identity of the datagram `ip` belongs to, seen in direction `dir`
/// (`NAT_FRAG_OUT`/`NAT_FRAG_IN`).
#[inline(always)]
fn key(ip: &Ipv4, dir: u8) -> NatFragKey {
    NatFragKey {
        saddr: ip.saddr,
        daddr: ip.daddr,
        id: ip.id,
        proto: ip.proto,
        dir,
    }
}

/// Records that the later fragments of the datagram whose first fragment
/// is `ip` (as it arrived, before rewriting) get `addr`. A datagram with
/// the same identity seen before is replaced: the IP id was reused.
/// A failed update is not fatal: the later fragments then follow the rules
/// for an unseen first fragment.
#[inline(always)]
pub fn remember(ip: &Ipv4, dir: u8, addr: u32, now: u64) {
    let entry = NatFragEntry {
        addr,
        _pad: 0,
        last_seen_ns: now,
    };
    let _ = NAT_FRAGS.insert(key(ip, dir), entry, BPF_ANY as u64);
}

/// The address recorded for the datagram the later fragment `ip` belongs
/// to, refreshing the entry's last-seen time.
#[inline(always)]
pub fn lookup(ip: &Ipv4, dir: u8, now: u64) -> Option<u32> {
    let entry = NAT_FRAGS.get_ptr_mut(key(ip, dir))?;
    // SAFETY: map value pointer from the lookup; a racing CPU's store of
    // the same kind is as good as ours.
    unsafe {
        (*entry).last_seen_ns = now;
        Some((*entry).addr)
    }
}

/// Replaces the IPv4 address at `field_off` (source or destination) of a
/// later fragment with `to`, fixing the header checksum; the fragment holds
/// no L4 checksum.
#[inline(always)]
pub fn rewrite_address(
    ctx: &TcContext,
    field_off: usize,
    from: u32,
    to: u32,
) -> Result<(), csum::CsumError> {
    if from == to {
        return Ok(());
    }
    csum::l3_replace4(ctx, IP_OFF + IP_CHECK, from, to)?;
    ctx.store(IP_OFF + field_off, &to, 0)
        .map_err(|_| csum::CsumError)
}
