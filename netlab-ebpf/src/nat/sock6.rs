//! Published IPv6 ports for the lab's own sockets: cgroup `connect6`,
//! `sendmsg6` and `recvmsg6` hooks, the IPv6 twins of `sock` (same design,
//! same namespaces: `publish_netns`).
//!
//! A socket of a lab namespace addressing a host IPv6 address seen from
//! there — the uplink's (NAT66's external address), the gateway's
//! (`endpoints6` lists it with the gateway's MAC), and on the host side
//! `::1` — at a published port (`nat6_publish`) gets the namespace's
//! `address6` and port instead, once at `connect` or per datagram at
//! `sendmsg` (unconnected UDP, remembered in `publish_socks6` so that
//! `recvmsg` reports the answer from the published address). The kernel
//! then routes the connection as any other, which is what keeps the
//! client's address (hairpin) and makes `[::1]` work at all: IPv6 has no
//! `route_localnet`, so a packet from ::1 could never be DNATed off the
//! host, but a socket whose destination is rewritten before it picks a
//! source never has ::1 as its source.
//!
//! An IPv4-mapped destination (`::ffff:a.b.c.d`: a dual-stack socket
//! reaching an IPv4 address) is none of these addresses and passes
//! untouched: the kernel runs only the *6 hooks for an AF_INET6 socket,
//! so such a client reaches an IPv4 published port only through the
//! uplink (not translated here; documented in the README).

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    programs::SockAddrContext,
};
use netlab_common::{
    counters::Counter,
    nat::{IPPROTO_TCP, IPPROTO_UDP, NAT_FLAG_ENABLED},
    nat6::{Ipv6Bytes, Publish6Entry, Publish6Key, Publish6SockEntry, Publish6SockKey},
};

use crate::counters::count;
use crate::maps::{ENDPOINTS6, NAT6_CONFIG, NAT6_PUBLISH, PUBLISH_NETNS, PUBLISH_SOCKS6};

/// The verdict of a sock_addr program that lets the call proceed.
const ALLOW: i32 = 1;

/// `::1`.
const LOOPBACK6: Ipv6Bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// `connect6`: TCP and connected UDP.
#[inline(always)]
pub fn connect6(ctx: &SockAddrContext) -> i32 {
    redirect6(ctx, false);
    ALLOW
}

/// `sendmsg6`: unconnected UDP, per datagram.
#[inline(always)]
pub fn sendmsg6(ctx: &SockAddrContext) -> i32 {
    redirect6(ctx, true);
    ALLOW
}

/// The context's `user_ip6`, read a word at a time (the verifier's
/// access size for it).
#[inline(always)]
fn read_ip6(ctx: &SockAddrContext) -> Ipv6Bytes {
    let sa = ctx.sock_addr;
    let mut out = [0u8; 16];
    for i in 0..4 {
        // SAFETY: the context pointer the kernel passed; a 4-byte load.
        let w = unsafe { core::ptr::read_volatile(&raw const (*sa).user_ip6[i]) };
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    out
}

/// Writes `addr` into the context's `user_ip6`, a word at a time.
#[inline(always)]
fn write_ip6(ctx: &SockAddrContext, addr: &Ipv6Bytes) {
    let sa = ctx.sock_addr;
    for i in 0..4 {
        let w = u32::from_ne_bytes([
            addr[i * 4],
            addr[i * 4 + 1],
            addr[i * 4 + 2],
            addr[i * 4 + 3],
        ]);
        // SAFETY: connect6/sendmsg6/recvmsg6 may write the address; a
        // 4-byte store.
        unsafe { core::ptr::write_volatile(&raw mut (*sa).user_ip6[i], w) };
    }
}

/// `recvmsg6`: a UDP answer's source back to the published address.
#[inline(always)]
pub fn recvmsg6(ctx: &SockAddrContext) -> i32 {
    let addr = read_ip6(ctx);
    // SAFETY: the context pointer the kernel passed.
    let port = unsafe { (*ctx.sock_addr).user_port };
    let key = Publish6SockKey {
        // SAFETY: helper on the program's own context.
        cookie: unsafe { bpf_get_socket_cookie(ctx.as_ptr()) },
        addr,
        port: port as u16,
        _pad: [0; 6],
    };
    // SAFETY: copied out at once.
    if let Some(published) = unsafe { PUBLISH_SOCKS6.get(key) }.copied() {
        write_ip6(ctx, &published.addr);
        // SAFETY: recvmsg6 may write the reported source port.
        unsafe { (*ctx.sock_addr).user_port = published.port as u32 };
        count(Counter::SockRestored);
    }
    ALLOW
}

/// Where a published IPv6 port at `addr:port` leads, for a socket of a
/// lab namespace, if anywhere.
#[inline(always)]
fn published6(
    ctx: &SockAddrContext,
    addr: &Ipv6Bytes,
    port: u16,
    proto: u8,
) -> Option<Publish6Entry> {
    // SAFETY: helper on the program's own context.
    let cookie = unsafe { bpf_get_netns_cookie(ctx.as_ptr()) };
    // SAFETY: copied out at once.
    let netns = unsafe { PUBLISH_NETNS.get(cookie) }.copied()?;
    let cfg = NAT6_CONFIG.get(0)?;
    if cfg.flags & NAT_FLAG_ENABLED == 0 {
        return None;
    }
    let host_address = *addr == cfg.external
        || (netns.host != 0 && *addr == LOOPBACK6)
        // SAFETY: copied out at once.
        || unsafe { ENDPOINTS6.get(addr) }.is_some_and(|ep| ep.mac == cfg.gateway_mac);
    if !host_address {
        return None;
    }
    let mut key = Publish6Key {
        addr: *addr,
        port,
        proto,
        _pad: 0,
    };
    // SAFETY: copied out at once.
    if let Some(found) = unsafe { NAT6_PUBLISH.get(key) } {
        return Some(*found);
    }
    key.addr = [0; 16];
    // SAFETY: copied out at once.
    unsafe { NAT6_PUBLISH.get(key) }.copied()
}

#[inline(always)]
fn redirect6(ctx: &SockAddrContext, remember: bool) {
    let sa = ctx.sock_addr;
    // SAFETY: the context pointer the kernel passed.
    let (port, proto) = unsafe { ((*sa).user_port, (*sa).protocol) };
    let proto = proto as u8;
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return;
    }
    let addr = read_ip6(ctx);
    let Some(target) = published6(ctx, &addr, port as u16, proto) else {
        return;
    };
    write_ip6(ctx, &target.addr);
    // SAFETY: connect6/sendmsg6 may write the destination port.
    unsafe { (*sa).user_port = target.port as u32 };
    if remember && proto == IPPROTO_UDP {
        let key = Publish6SockKey {
            // SAFETY: helper on the program's own context.
            cookie: unsafe { bpf_get_socket_cookie(ctx.as_ptr()) },
            addr: target.addr,
            port: target.port,
            _pad: [0; 6],
        };
        let value = Publish6SockEntry {
            addr,
            port: port as u16,
            _pad: [0; 2],
        };
        let _ = PUBLISH_SOCKS6.insert(key, value, 0);
    }
    count(Counter::SockPublished);
}
