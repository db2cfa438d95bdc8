//! Published ports over IPv6 (DNAT66) on the uplink ingress: `dnat` with
//! 16-byte addresses, in the NAT66's maps.
//!
//! A TCP or UDP packet to `<host IPv6 address>:<published port>` that no
//! translation knows yet creates one in `nat6_orig`/`nat6_reply`, flagged
//! `NAT_ENTRY_DNAT`, exactly as the IPv4 one does:
//!
//! * `nat6_reply[client → published]` = the namespace's `address6` and
//!   port: this packet and the rest of the client's are restored by the
//!   NAT66 ingress like replies to a masqueraded flow;
//! * `nat6_orig[namespace → client]` = the published address and port: the
//!   service's answers leave through the NAT66 egress translated like any
//!   masqueraded packet.
//!
//! The client's address is never rewritten (the service sees the real
//! source). A tuple `nat6_orig` already holds for something else (a
//! masqueraded flow of the namespace from that port to the client, or
//! another publication to the same namespace port from the same client
//! port) keeps it: the packet is dropped and counted
//! (`dnat_drop_conflict`), the same rule as IPv4.
//!
//! The NAT66 ingress calls [`inbound6`] where the IPv4 ingress calls
//! `nat::dnat::inbound`: for a TCP/UDP packet to the external address
//! that `nat6_reply` does not know. A function of its own (not inlined):
//! its keys and entries are not on the ingress's stack, which the
//! kernel's 512 bytes per call chain must hold.

use aya_ebpf::bindings::BPF_NOEXIST;
use netlab_common::{
    counters::Counter,
    nat::{IPPROTO_TCP, NAT_ENTRY_DNAT, NAT_STATE_NONE},
    nat6::{Nat6Entry, Nat6Key, Publish6Entry, Publish6Key},
};

use crate::counters::count;
use crate::maps::{NAT6_ORIG, NAT6_PUBLISH, NAT6_REPLY};
use crate::nat::state::next_tcp_state;

// What [`inbound6`] decided: plain numbers, not an enum, because it is a
// BPF-to-BPF call and an enum with a payload in a call's signature gives
// BTF the kernel refuses (see `nat::v6`).
/// Not a published port: the host's.
pub const NOT_PUBLISHED: u32 = 0;
/// A new translation: `out` holds the entry to restore the destination to.
pub const TRANSLATED: u32 = 1;
/// The tuple belongs to something else: drop (`dnat_drop_conflict`).
pub const CONFLICT: u32 = 2;
/// The maps refused the entry: drop (`nat_drop_map_full`).
pub const MAP_FULL: u32 = 3;

/// The published IPv6 port `key` (the client's tuple as it arrives) leads
/// to, if any: the exact host address first, then every address (zero).
#[inline(always)]
fn lookup6(key: &Nat6Key) -> Option<Publish6Entry> {
    let mut pk = Publish6Key {
        addr: key.daddr,
        port: key.dport,
        proto: key.proto,
        _pad: 0,
    };
    // SAFETY: copied out at once.
    if let Some(found) = unsafe { NAT6_PUBLISH.get(pk) } {
        return Some(*found);
    }
    pk.addr = [0; 16];
    // SAFETY: copied out at once.
    unsafe { NAT6_PUBLISH.get(pk) }.copied()
}

/// Creates the translation of an IPv6 packet to a published port. `key`
/// is the packet's tuple (TCP/UDP), `tcp_flags` its TCP flags (ignored
/// for UDP). On [`TRANSLATED`], `out` is the `nat6_reply` entry: the
/// namespace's address and port.
#[inline(never)]
pub fn inbound6(key: &Nat6Key, tcp_flags: u8, now: u64, out: &mut Nat6Entry) -> u32 {
    let Some(target) = lookup6(key) else {
        return NOT_PUBLISHED;
    };
    let state = if key.proto == IPPROTO_TCP {
        next_tcp_state(NAT_STATE_NONE, tcp_flags)
    } else {
        NAT_STATE_NONE
    };
    *out = Nat6Entry {
        addr: target.addr,
        port: target.port,
        state,
        flags: NAT_ENTRY_DNAT,
        _pad: 0,
        last_seen_ns: now,
    };
    let to_client = Nat6Entry {
        addr: key.daddr,
        port: key.dport,
        state,
        flags: NAT_ENTRY_DNAT,
        _pad: 0,
        last_seen_ns: now,
    };
    let orig_key = key.orig_key(out);
    if NAT6_ORIG
        .insert(orig_key, to_client, BPF_NOEXIST as u64)
        .is_err()
    {
        // This flow's own translation (another CPU created it a moment
        // ago, or its reply entry went first): complete it. Anything else
        // holding the tuple keeps it.
        // SAFETY: copied out at once.
        return match unsafe { NAT6_ORIG.get(orig_key) }.copied() {
            Some(e)
                if e.flags & NAT_ENTRY_DNAT != 0
                    && e.addr == to_client.addr
                    && e.port == to_client.port =>
            {
                match NAT6_REPLY.insert(key, *out, 0) {
                    Ok(()) => TRANSLATED,
                    Err(_) => MAP_FULL,
                }
            }
            Some(_) => CONFLICT,
            None => MAP_FULL,
        };
    }
    if NAT6_REPLY.insert(key, *out, 0).is_err() {
        let _ = NAT6_ORIG.remove(orig_key);
        return MAP_FULL;
    }
    count(Counter::DnatCreated);
    TRANSLATED
}
