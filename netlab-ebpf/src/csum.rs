//! Checksum updates for header rewrites.
//!
//! Fields in the packet that the kernel may also track in `skb->csum` /
//! `CHECKSUM_PARTIAL` state (the IP header checksum, the outer TCP/UDP/ICMP
//! checksum) are updated with the kernel helpers, which keep that state
//! coherent:
//!
//! * `bpf_l3_csum_replace` for the IPv4 header checksum where a quoted
//!   header is rewritten too (ICMP errors); the reply and translation paths
//!   compute it here and store it with the fields (`nat/rewrite.rs`);
//! * `bpf_l4_csum_replace` with `BPF_F_PSEUDO_HDR` when an address (part of
//!   the TCP/UDP pseudo header) changes, without it for a port/id change and
//!   for ICMP, which has no pseudo header;
//! * `BPF_F_MARK_MANGLED_0` for UDP: a zero checksum means "none" and stays
//!   zero; a computed zero is written as 0xffff.
//!
//! Checksums inside the payload of an ICMP error (the quoted header) are not
//! the kernel's business; they are updated with the pure RFC 1624 arithmetic
//! below and stored as plain bytes.
//!
//! All values are "raw": 16/32-bit words exactly as they sit in the packet
//! (network order), passed through as integers. Ones-complement sums do not
//! depend on byte order, so no swapping is needed.

use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR},
    programs::TcContext,
};

/// Failure of a checksum helper (the packet is then dropped, never sent with
/// a wrong checksum).
pub struct CsumError;

/// IPv4 header checksum at `check_off` after a 4-byte field changed.
#[inline(always)]
pub fn l3_replace4(ctx: &TcContext, check_off: usize, from: u32, to: u32) -> Result<(), CsumError> {
    ctx.l3_csum_replace(check_off, from as u64, to as u64, 4)
        .map_err(|_| CsumError)
}

/// L4 checksum at `check_off` after the IP source or destination address
/// changed (pseudo header). `udp`: a zero checksum stays zero.
#[inline(always)]
pub fn l4_replace_addr(
    ctx: &TcContext,
    check_off: usize,
    from: u32,
    to: u32,
    udp: bool,
) -> Result<(), CsumError> {
    let mut flags = BPF_F_PSEUDO_HDR as u64 | 4;
    if udp {
        flags |= BPF_F_MARK_MANGLED_0 as u64;
    }
    ctx.l4_csum_replace(check_off, from as u64, to as u64, flags)
        .map_err(|_| CsumError)
}

/// L4 checksum at `check_off` after a 2-byte field inside the L4 header (a
/// port, an ICMP id) changed. `udp`: a zero checksum stays zero.
#[inline(always)]
pub fn l4_replace2(
    ctx: &TcContext,
    check_off: usize,
    from: u16,
    to: u16,
    udp: bool,
) -> Result<(), CsumError> {
    let mut flags = 2u64;
    if udp {
        flags |= BPF_F_MARK_MANGLED_0 as u64;
    }
    ctx.l4_csum_replace(check_off, from as u64, to as u64, flags)
        .map_err(|_| CsumError)
}

/// `BPF_F_IPV6` (Linux 6.16, not in aya's bindings yet): the L4 update is
/// an IPv6 packet's, whose pseudo-header addresses are not covered by an
/// IP header checksum, so a `CHECKSUM_COMPLETE` skb's `csum` must not be
/// adjusted for them (the address and the checksum change cancel out).
const BPF_F_IPV6: u64 = 1 << 7;

/// L4 checksum (TCP, UDP, ICMPv6) at `check_off` after a 16-byte IPv6
/// address of the pseudo-header changed from `from` to `to`: the helper
/// given the difference ([`diff16`]), as Cilium does. `udp`: a zero
/// checksum stays zero.
#[inline(always)]
pub fn l4_replace_addr6(
    ctx: &TcContext,
    check_off: usize,
    from: &[u8; 16],
    to: &[u8; 16],
    udp: bool,
) -> Result<(), CsumError> {
    let mut flags = BPF_F_PSEUDO_HDR as u64 | BPF_F_IPV6;
    if udp {
        flags |= BPF_F_MARK_MANGLED_0 as u64;
    }
    ctx.l4_csum_replace(check_off, 0, diff16(from, to) as u64, flags)
        .map_err(|_| CsumError)
}

/// The ones-complement difference (a 32-bit `__wsum`, as `bpf_csum_diff`
/// returns) between two 16-byte fields: ~old + new, word by word.
#[inline(always)]
pub fn diff16(from: &[u8; 16], to: &[u8; 16]) -> u32 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < 16 {
        let old = u16::from_ne_bytes([from[i], from[i + 1]]);
        let new = u16::from_ne_bytes([to[i], to[i + 1]]);
        sum += !old as u32 + new as u32;
        i += 2;
    }
    fold(sum) as u32
}

/// [`replace2`] for a 16-byte field (an IPv6 address).
#[inline(always)]
pub fn replace16(check: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    !fold(!check as u32 + diff16(old, new))
}

/// Folds a 32-bit ones-complement accumulator to 16 bits.
#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// RFC 1624 eqn. 3: the checksum `check` after a 16-bit word of the covered
/// data changed from `old` to `new`: HC' = ~(~HC + ~m + m').
#[inline(always)]
pub fn replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold(!check as u32 + !old as u32 + new as u32)
}

/// [`replace2`] for a 32-bit field (two 16-bit words).
#[inline(always)]
pub fn replace4(check: u16, old: u32, new: u32) -> u16 {
    let c = replace2(check, old as u16, new as u16);
    replace2(c, (old >> 16) as u16, (new >> 16) as u16)
}
