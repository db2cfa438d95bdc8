//! Header parsing shared by both directions. Values are read into locals
//! right away: the checksum and store helpers invalidate packet pointers.

use core::mem::size_of;

use aya_ebpf::programs::TcContext;
use network_types::{
    eth::{EthHdr, EtherType},
    ip::Ipv4Hdr,
};

use crate::hdr::ptr_at;

pub const ETH_HLEN: usize = 14;
pub const IP_OFF: usize = ETH_HLEN;
/// Offsets of IPv4 header fields, relative to the IPv4 header.
pub const IP_TTL: usize = 8;
pub const IP_CHECK: usize = 10;
pub const IP_SADDR: usize = 12;
pub const IP_DADDR: usize = 16;

/// Fragment offset bits of the IPv4 `frag_off` field (host order).
pub const IP_OFFSET_MASK: u16 = 0x1fff;
/// "More fragments" flag of the IPv4 `frag_off` field (host order).
const IP_MF: u16 = 0x2000;

/// Pointer to a `T` at `offset`, pulling non-linear data into the linear
/// area first when the packet is long enough but the headers are not all
/// linear (possible for forwarded GSO packets).
#[inline(always)]
pub fn load_ptr<T>(ctx: &TcContext, offset: usize) -> Option<*const T> {
    if let Some(p) = ptr_at::<T>(ctx, offset) {
        return Some(p);
    }
    let need = offset + size_of::<T>();
    if need > ctx.len() as usize || need > 0xffff {
        return None;
    }
    ctx.pull_data(need as u32).ok()?;
    ptr_at::<T>(ctx, offset)
}

/// An IPv4 header's fields the NAT needs. Addresses raw (network order).
#[derive(Clone, Copy)]
pub struct Ipv4 {
    /// Offset of the L4 header: IHL*4 behind the IPv4 header (options skipped).
    pub l4_off: usize,
    pub proto: u8,
    pub ttl: u8,
    pub saddr: u32,
    pub daddr: u32,
    /// The identification field (network order): with the addresses and
    /// the protocol, what ties a datagram's fragments together.
    pub id: u16,
    /// The first fragment of a fragmented datagram (MF set, offset 0): it
    /// carries the L4 header, its later fragments do not.
    pub first_fragment: bool,
    /// Not the first fragment: no L4 header in this packet.
    pub later_fragment: bool,
}

pub enum Parsed {
    /// Not IPv4 (ARP, IPv6, ...), or shorter than an Ethernet header.
    NotIpv4,
    /// IPv4 with a truncated header or an IHL below 5.
    Malformed,
    Ipv4(Ipv4),
}

/// Whether the frame's EtherType is IPv6's (NAT66's half of the program).
#[inline(always)]
pub fn is_ipv6(ctx: &TcContext) -> bool {
    // SAFETY: bounds checked by ptr_at.
    ptr_at::<EthHdr>(ctx, 0)
        .is_some_and(|eth| unsafe { (*eth).ether_type } == EtherType::Ipv6 as u16)
}

#[inline(always)]
pub fn parse_ipv4(ctx: &TcContext) -> Parsed {
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return Parsed::NotIpv4;
    };
    // SAFETY: bounds checked by ptr_at.
    if unsafe { (*eth).ether_type } != EtherType::Ipv4 as u16 {
        return Parsed::NotIpv4;
    }
    let Some(ip) = load_ptr::<Ipv4Hdr>(ctx, IP_OFF) else {
        return Parsed::Malformed;
    };
    // SAFETY: bounds checked by load_ptr.
    let ip = unsafe { *ip };
    let ihl = (ip.vihl & 0x0f) as usize;
    if ip.vihl >> 4 != 4 || ihl < 5 {
        return Parsed::Malformed;
    }
    let frag = u16::from_be_bytes(ip.frags);
    Parsed::Ipv4(Ipv4 {
        l4_off: IP_OFF + ihl * 4,
        proto: ip.proto,
        ttl: ip.ttl,
        saddr: u32::from_ne_bytes(ip.src_addr),
        daddr: u32::from_ne_bytes(ip.dst_addr),
        id: u16::from_ne_bytes(ip.id),
        first_fragment: frag & (IP_MF | IP_OFFSET_MASK) == IP_MF,
        later_fragment: frag & IP_OFFSET_MASK != 0,
    })
}

/// The first 8 bytes of an L4 header: ports (TCP/UDP) or type, code,
/// checksum, id (ICMP). All an ICMP error is guaranteed to quote.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct L4Head {
    pub w0: [u8; 2],
    pub w1: [u8; 2],
    pub w2: [u8; 2],
    pub w3: [u8; 2],
}

/// Offsets inside the L4 header.
pub const TCP_FLAGS: usize = 13;
pub const TCP_CHECK: usize = 16;
/// Enough TCP header to read the flags and the checksum.
pub const TCP_MIN_LEN: usize = 20;
pub const UDP_CHECK: usize = 6;
pub const ICMP_CHECK: usize = 2;
pub const ICMP_ID: usize = 4;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PARAMETER_PROBLEM: u8 = 12;

/// The TCP flags byte, if the packet holds a minimal TCP header at `l4_off`.
/// (Reads the whole header: single-byte bounds checks compile to a form the
/// verifier does not follow.)
#[inline(always)]
pub fn tcp_flags(ctx: &TcContext, l4_off: usize) -> Option<u8> {
    // SAFETY: bounds checked by load_ptr.
    load_ptr::<[u8; TCP_MIN_LEN]>(ctx, l4_off).map(|p| unsafe { (*p)[TCP_FLAGS] })
}
