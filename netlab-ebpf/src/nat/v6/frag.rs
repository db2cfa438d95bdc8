//! IPv6 fragments: the IPv4 rule (`nat::frag`) on `nat6_frags`. A
//! datagram is identified by its addresses, the Fragment header's 32-bit
//! identification and upper-layer protocol (RFC 8200 §4.5), plus the
//! direction. Its first fragment is translated like any packet and
//! records the address the later ones get; a later fragment has no
//! checksum to fix (no IPv6 header checksum; the L4 checksum sits in the
//! first fragment, which got the correction for the whole datagram).
//!
//! Without a recorded first fragment: out, dropped (`nat_drop_fragment`:
//! a lab address must never leave the uplink); in, passed to the host
//! (`nat_frag_untracked`: it may be the host's own datagram's).

use aya_ebpf::bindings::BPF_ANY;
use netlab_common::nat6::{Nat6FragEntry, Nat6FragKey};

use aya_ebpf::programs::TcContext;

use super::parse::{Ipv6, load_addrs};
use crate::maps::NAT6_FRAGS;
use crate::nat::parse::IP_OFF;

/// The datagram's identity in direction `dir`, addresses not yet filled
/// in (the caller copies them where they are); `None`: not a fragment.
#[inline(always)]
fn key(ip: &Ipv6, dir: u8) -> Option<Nat6FragKey> {
    let frag = ip.frag.as_ref()?;
    Some(Nat6FragKey {
        saddr: [0; 16],
        daddr: [0; 16],
        id: frag.id,
        proto: frag.next,
        dir,
        _pad: [0; 2],
    })
}

/// Records that the later fragments of the datagram whose first fragment
/// is `ip` (`saddr`/`daddr`: as it arrived) get `addr`. Not fatal when
/// the update fails: the later fragments then follow the rule for an
/// unseen first fragment.
#[inline(always)]
pub fn remember(saddr: &[u8; 16], daddr: &[u8; 16], ip: &Ipv6, dir: u8, addr: &[u8; 16], now: u64) {
    let Some(mut key) = key(ip, dir) else {
        return;
    };
    key.saddr = *saddr;
    key.daddr = *daddr;
    let entry = Nat6FragEntry {
        addr: *addr,
        last_seen_ns: now,
    };
    let _ = NAT6_FRAGS.insert(key, entry, BPF_ANY as u64);
}

/// The address recorded for the datagram the later fragment `ip` belongs
/// to, refreshing the entry's last-seen time. `None` also when the
/// addresses cannot be read.
#[inline(always)]
pub fn lookup(ctx: &TcContext, ip: &Ipv6, dir: u8, now: u64) -> Option<[u8; 16]> {
    let mut key = key(ip, dir)?;
    if !load_addrs(ctx, IP_OFF, &mut key.saddr, &mut key.daddr) {
        return None;
    }
    let entry = NAT6_FRAGS.get_ptr_mut(key)?;
    // SAFETY: map value pointer from the lookup; a racing CPU's store of
    // the same kind is as good as ours.
    unsafe {
        (*entry).last_seen_ns = now;
        Some((*entry).addr)
    }
}
