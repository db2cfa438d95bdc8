//! IPv4 header rewrites in one store.
//!
//! The IPv4 header checksum covers only the header, and a field changed
//! together with its checksum leaves the header's ones-complement sum (and
//! so any `CHECKSUM_COMPLETE` value over it) unchanged: the new checksum
//! can be computed here (RFC 1624, `csum::replace*`) and written with the
//! changed fields in one `bpf_skb_store_bytes`, instead of one
//! `bpf_l3_csum_replace` plus one store per field (`bench --micro`: each
//! helper call is a measurable share of a reply's cost). The L4 checksum
//! stays with `bpf_l4_csum_replace`, which alone knows the skb's
//! checksum state (`csum.rs`).

use aya_ebpf::programs::TcContext;

use super::parse::{IP_OFF, IP_TTL};
use crate::{csum, hdr::ptr_at};

/// Bytes 8..20 of the IPv4 header: TTL, protocol, checksum, source,
/// destination (each as it sits in the packet).
#[repr(C)]
#[derive(Clone, Copy)]
struct Tail {
    ttl: u8,
    proto: u8,
    check: u16,
    saddr: u32,
    daddr: u32,
}

/// What to change; `None` leaves a field as it is.
#[derive(Clone, Copy, Default)]
pub struct Ipv4Change {
    pub ttl: Option<u8>,
    pub saddr: Option<u32>,
    pub daddr: Option<u32>,
}

/// Applies `change` to the IPv4 header, its checksum updated.
#[inline(never)]
pub fn ipv4(ctx: &TcContext, change: Ipv4Change) -> Result<(), csum::CsumError> {
    let p = ptr_at::<Tail>(ctx, IP_OFF + IP_TTL).ok_or(csum::CsumError)?;
    // SAFETY: bounds checked by ptr_at; copied out before the store.
    let mut t = unsafe { *p };
    if let Some(ttl) = change.ttl {
        // TTL and protocol share a 16-bit word of the checksum.
        let old = u16::from_ne_bytes([t.ttl, t.proto]);
        let new = u16::from_ne_bytes([ttl, t.proto]);
        t.check = csum::replace2(t.check, old, new);
        t.ttl = ttl;
    }
    if let Some(saddr) = change.saddr {
        t.check = csum::replace4(t.check, t.saddr, saddr);
        t.saddr = saddr;
    }
    if let Some(daddr) = change.daddr {
        t.check = csum::replace4(t.check, t.daddr, daddr);
        t.daddr = daddr;
    }
    ctx.store(IP_OFF + IP_TTL, &t, 0)
        .map_err(|_| csum::CsumError)
}
