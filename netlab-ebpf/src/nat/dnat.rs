//! Published ports (destination NAT) on the uplink ingress.
//!
//! A packet to `<external address>:<published port>` that no translation
//! knows yet creates one, in the same two maps as the source NAT (flagged
//! `NAT_ENTRY_DNAT`):
//!
//! * `nat_reply[client → published]` = the namespace's address and port:
//!   this packet and the rest of the client's packets are restored by the
//!   ingress exactly like replies to a masqueraded flow (and delivered on
//!   the same fast path);
//! * `nat_orig[namespace → client]` = the published address and port: the
//!   service's answers leave through the uplink egress translated like any
//!   masqueraded packet.
//!
//! So the client's address is never rewritten (the service sees the real
//! source), ICMP errors about the flow are translated both ways by the
//! existing ICMP code, and expiry and `nat list` treat both kinds alike.
//!
//! A tuple `nat_orig` already holds for something else (the namespace
//! talks to the client from that very port in a masqueraded flow, or the
//! client reached the same namespace port through another publication
//! from the same source port) is not overwritten: the packet is dropped
//! and counted.

use aya_ebpf::bindings::BPF_NOEXIST;
use netlab_common::{
    counters::Counter,
    nat::{NAT_ENTRY_DNAT, NAT_STATE_NONE, NatEntry, NatKey, PublishKey},
};

use super::state::next_tcp_state;
use crate::counters::count;
use crate::maps::{NAT_ORIG, NAT_PUBLISH, NAT_REPLY};

/// What [`inbound`] decided.
pub enum Published {
    /// Not a published port: the host's.
    No,
    /// A new translation: restore the destination to this entry.
    Translate(NatEntry),
    /// Drop for this reason.
    Drop(Counter),
}

/// The published port `key` (the client's tuple as it arrives) leads to,
/// if any: the exact host address first, then "every address" (0).
#[inline(always)]
fn lookup(key: &NatKey) -> Option<netlab_common::nat::PublishEntry> {
    let mut pk = PublishKey {
        addr: key.daddr,
        port: key.dport,
        proto: key.proto,
        _pad: 0,
    };
    // SAFETY: copied out at once.
    if let Some(found) = unsafe { NAT_PUBLISH.get(pk) } {
        return Some(*found);
    }
    pk.addr = 0;
    // SAFETY: copied out at once.
    unsafe { NAT_PUBLISH.get(pk) }.copied()
}

/// Creates the translation of a packet to a published port. `key` is the
/// packet's tuple (TCP/UDP), `tcp_flags` its flags for TCP.
#[inline(always)]
pub fn inbound(key: &NatKey, now: u64, tcp_flags: Option<u8>) -> Published {
    let Some(target) = lookup(key) else {
        return Published::No;
    };
    let state = match tcp_flags {
        Some(flags) => next_tcp_state(NAT_STATE_NONE, flags),
        None => NAT_STATE_NONE,
    };
    let to_namespace = NatEntry {
        addr: target.addr,
        port: target.port,
        state,
        flags: NAT_ENTRY_DNAT,
        last_seen_ns: now,
    };
    let to_client = NatEntry {
        addr: key.daddr,
        port: key.dport,
        state,
        flags: NAT_ENTRY_DNAT,
        last_seen_ns: now,
    };
    let orig_key = key.orig_key(&to_namespace);
    if NAT_ORIG
        .insert(orig_key, to_client, BPF_NOEXIST as u64)
        .is_err()
    {
        // This flow's own translation (another CPU created it a moment
        // ago, or its reply entry went first): complete it. Anything else
        // holding the tuple (a masqueraded flow of the namespace, another
        // publication to the same namespace port) keeps it.
        // SAFETY: copied out at once.
        return match unsafe { NAT_ORIG.get(orig_key) }.copied() {
            Some(e)
                if e.flags & NAT_ENTRY_DNAT != 0
                    && e.addr == to_client.addr
                    && e.port == to_client.port =>
            {
                match NAT_REPLY.insert(key, to_namespace, 0) {
                    Ok(()) => Published::Translate(to_namespace),
                    Err(_) => Published::Drop(Counter::NatDropMapFull),
                }
            }
            Some(_) => Published::Drop(Counter::DnatDropConflict),
            None => Published::Drop(Counter::NatDropMapFull),
        };
    }
    if NAT_REPLY.insert(key, to_namespace, 0).is_err() {
        let _ = NAT_ORIG.remove(orig_key);
        return Published::Drop(Counter::NatDropMapFull);
    }
    count(Counter::DnatCreated);
    Published::Translate(to_namespace)
}
