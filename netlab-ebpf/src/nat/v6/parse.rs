//! IPv6 header parsing for NAT66: the fixed header, then the extension
//! header chain walked with a bound (ARCHITECTURE.md §3.8). Values are
//! copied into locals right away: the checksum and store helpers
//! invalidate packet pointers.

use aya_ebpf::{helpers::bpf_skb_load_bytes, programs::TcContext};
use netlab_common::counters::Counter;

use crate::nat::parse::{IP_OFF, load_ptr};

/// Length of the fixed IPv6 header.
pub const IP6_HLEN: usize = 40;
/// Offsets of fixed-header fields, relative to the IPv6 header.
pub const IP6_HOP_LIMIT: usize = 7;
pub const IP6_SADDR: usize = 8;
pub const IP6_DADDR: usize = 24;

/// Extension headers the walk passes before it gives up: the switch's
/// bound too. Real traffic carries at most a hop-by-hop and a fragment
/// header; a longer chain is dropped (`nat_drop_ext_headers`), as RFC 9098
/// reports routers commonly do, rather than translated half-read.
pub const EXT_HEADERS_MAX: usize = 4;

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;

/// ICMPv6 types (RFC 4443) the NAT reads.
pub const ICMP6_DEST_UNREACH: u8 = 1;
pub const ICMP6_PARAM_PROB: u8 = 4;
pub const ICMP6_ECHO_REQUEST: u8 = 128;
pub const ICMP6_ECHO_REPLY: u8 = 129;

/// An ICMPv6 error (1 unreachable, 2 packet too big, 3 time exceeded, 4
/// parameter problem): it quotes the packet that caused it.
#[inline(always)]
pub const fn is_icmp6_error(icmp_type: u8) -> bool {
    icmp_type >= ICMP6_DEST_UNREACH && icmp_type <= ICMP6_PARAM_PROB
}

/// The fixed header as it sits in the packet.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv6Fixed {
    pub vtc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub next: u8,
    pub hop_limit: u8,
    pub addrs: Addrs,
}

/// Source and destination, as they sit in the packet (and at the start of
/// a `Nat6Key`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Addrs {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

/// The fixed header at `off`, if the packet holds one of version 6: a
/// pointer into the packet (valid until the next store or helper call),
/// so that the 40 bytes are read where needed, not copied to the stack
/// (the IPv6 half of a program has little of it to spare).
#[inline(always)]
pub fn fixed_at(ctx: &TcContext, off: usize) -> Option<*const Ipv6Fixed> {
    let p = load_ptr::<Ipv6Fixed>(ctx, off)?;
    // SAFETY: bounds checked by load_ptr.
    (unsafe { (*p).vtc_flow[0] } >> 4 == 6).then_some(p)
}

/// A fragment header's fields the NAT needs.
#[derive(Clone, Copy)]
pub struct Frag {
    /// Identification, as it sits in the packet.
    pub id: u32,
    /// The fragment header's next header: the upper-layer protocol every
    /// fragment of the datagram names (with the addresses and the id, the
    /// datagram's identity).
    pub next: u8,
}

/// An IPv6 packet as the NAT sees it (the addresses stay in the packet:
/// see [`fixed_at`]).
#[derive(Clone, Copy)]
pub struct Ipv6 {
    pub hop_limit: u8,
    /// The upper-layer protocol (behind the extension headers).
    pub proto: u8,
    /// Offset of the upper-layer header (absent in a later fragment).
    pub l4_off: usize,
    /// Set for a fragment (offset 0 with more to come, or a later one);
    /// an atomic fragment (offset 0, no more) is a whole datagram.
    pub frag: Option<Frag>,
    /// Not the first fragment: no upper-layer header in this packet.
    pub later_fragment: bool,
}

/// The fixed IPv6 header behind the Ethernet header; `Err` when it is
/// truncated or not version 6.
#[inline(always)]
pub fn header(ctx: &TcContext) -> Result<*const Ipv6Fixed, Counter> {
    fixed_at(ctx, IP_OFF).ok_or(Counter::NatDropMalformed)
}

/// Copies the 16-byte address at `off` into `dst` with
/// `bpf_skb_load_bytes`. Not a plain copy through a packet pointer: LLVM
/// splits a copy of align-1 bytes into one register per byte and spills
/// them, which costs the IPv6 half hundreds of bytes of its 512-byte stack.
#[inline(always)]
pub fn load16(ctx: &TcContext, off: usize, dst: &mut [u8; 16]) -> bool {
    // SAFETY: the helper checks the offset against the packet and writes
    // exactly 16 bytes to `dst`.
    unsafe {
        bpf_skb_load_bytes(
            ctx.skb.skb as *const _,
            off as u32,
            dst.as_mut_ptr() as *mut _,
            16,
        ) == 0
    }
}

/// [`load16`] of the fixed header's source and destination at `ip_off`.
#[inline(always)]
pub fn load_addrs(
    ctx: &TcContext,
    ip_off: usize,
    saddr: &mut [u8; 16],
    daddr: &mut [u8; 16],
) -> bool {
    load16(ctx, ip_off + IP6_SADDR, saddr) && load16(ctx, ip_off + IP6_DADDR, daddr)
}

/// Walks the extension headers of the packet whose fixed header `h` is
/// (at most [`EXT_HEADERS_MAX`]). `Err`: drop for that reason — a
/// jumbogram (payload length 0) or a longer chain (`NatDropExtHeaders`),
/// a payload length beyond the frame or a header running past the payload
/// (`NatDropMalformed`).
#[inline(always)]
fn walk_chain(ctx: &TcContext) -> Result<Ipv6, Counter> {
    let h = header(ctx)?;
    // SAFETY: a pointer from `header`, read before any helper call.
    let (payload_len, next, hop_limit) = unsafe {
        (
            u16::from_be_bytes((*h).payload_len) as usize,
            (*h).next,
            (*h).hop_limit,
        )
    };
    if payload_len == 0 {
        // A jumbogram (RFC 2675) or a packet claiming no payload: neither
        // carries anything the NAT could translate.
        return Err(Counter::NatDropExtHeaders);
    }
    let end = IP_OFF + IP6_HLEN + payload_len;
    if end > ctx.len() as usize {
        return Err(Counter::NatDropMalformed);
    }
    let mut ip = Ipv6 {
        hop_limit,
        proto: next,
        l4_off: IP_OFF + IP6_HLEN,
        frag: None,
        later_fragment: false,
    };
    let mut i = 0;
    while i < EXT_HEADERS_MAX {
        match ip.proto {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                // Read with `bpf_skb_load_bytes`, not through a packet
                // pointer: LLVM turns the loop's variable offset into
                // pointer arithmetic the verifier refuses.
                let [next, len] = ctx
                    .load::<[u8; 2]>(ip.l4_off)
                    .map_err(|_| Counter::NatDropMalformed)?;
                ip.proto = next;
                ip.l4_off += (len as usize + 1) * 8;
            }
            NEXTHDR_FRAGMENT => {
                let f = ctx
                    .load::<[u8; 8]>(ip.l4_off)
                    .map_err(|_| Counter::NatDropMalformed)?;
                ip.proto = f[0];
                ip.l4_off += 8;
                let off_flags = u16::from_be_bytes([f[2], f[3]]);
                let offset = off_flags & 0xfff8;
                let more = off_flags & 1 != 0;
                if offset != 0 || more {
                    ip.frag = Some(Frag {
                        id: u32::from_ne_bytes([f[4], f[5], f[6], f[7]]),
                        next: f[0],
                    });
                }
                if offset != 0 {
                    // The rest of the chain and the upper-layer header are
                    // in the first fragment only.
                    ip.later_fragment = true;
                    return Ok(ip);
                }
            }
            _ => break,
        }
        i += 1;
    }
    if matches!(
        ip.proto,
        NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_FRAGMENT
    ) {
        return Err(Counter::NatDropExtHeaders);
    }
    if ip.l4_off > end {
        return Err(Counter::NatDropMalformed);
    }
    Ok(ip)
}

/// What [`walk`] returns when `out` holds the walked packet.
pub const WALKED: i32 = i32::MIN + 2;

/// [`walk_chain`] as its own function (BPF-to-BPF call: the walk's frame
/// is gone when the translation runs): fills `out` and returns
/// [`WALKED`], or drops the packet and returns the verdict. (No `Result`
/// across the call: its niche layout becomes BTF the kernel refuses.)
#[inline(never)]
pub fn walk(ctx: &TcContext, out: &mut Ipv6) -> i32 {
    match walk_chain(ctx) {
        Ok(ip) => {
            *out = ip;
            WALKED
        }
        Err(reason) => crate::nat::drop_packet(ctx, reason),
    }
}

/// Whether `addr` is link-scoped for the NAT: multicast (ff00::/8) or
/// link-local unicast (fe80::/10).
#[inline(always)]
pub fn link_scoped(addr: &[u8; 16]) -> bool {
    addr[0] == 0xff || (addr[0] == 0xfe && addr[1] & 0xc0 == 0x80)
}

/// Whether `addr` lies in the prefix `subnet`/`prefix_len` (`subnet`
/// already masked): two 64-bit compares.
#[inline(always)]
pub fn in_prefix(addr: &[u8; 16], subnet: &[u8; 16], prefix_len: u8) -> bool {
    let (hi_mask, lo_mask) = masks(prefix_len);
    let a_hi = u64::from_be_bytes(half(addr, 0));
    let a_lo = u64::from_be_bytes(half(addr, 8));
    let s_hi = u64::from_be_bytes(half(subnet, 0));
    let s_lo = u64::from_be_bytes(half(subnet, 8));
    a_hi & hi_mask == s_hi && a_lo & lo_mask == s_lo
}

#[inline(always)]
fn half(a: &[u8; 16], at: usize) -> [u8; 8] {
    [
        a[at],
        a[at + 1],
        a[at + 2],
        a[at + 3],
        a[at + 4],
        a[at + 5],
        a[at + 6],
        a[at + 7],
    ]
}

/// The prefix's mask as two host-order halves.
#[inline(always)]
fn masks(prefix_len: u8) -> (u64, u64) {
    let bits = |n: u32| -> u64 {
        match n {
            0 => 0,
            64.. => u64::MAX,
            n => u64::MAX << (64 - n),
        }
    };
    let len = prefix_len as u32;
    (bits(len.min(64)), bits(len.saturating_sub(64)))
}
