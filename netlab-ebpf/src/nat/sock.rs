//! Published ports for the lab's own sockets: cgroup `connect4`,
//! `sendmsg4` and `recvmsg4` hooks (Cilium's socket LB).
//!
//! A connection from the host side to `<uplink address>:<published port>`
//! or to `127.0.0.1:<port>`, or from an endpoint namespace to the uplink
//! (or gateway) address — hairpin — never crosses the uplink's TC hooks:
//! the host side delivers it locally. Rather than translate such packets
//! on `lo` and on the gateway port (and masquerade them, as Docker does),
//! the hook rewrites the socket's destination once, at `connect` (TCP,
//! connected UDP) or per datagram at `sendmsg` (unconnected UDP), to the
//! namespace's address and port. The kernel then routes the connection
//! as any other: from another namespace straight over the switch (the
//! service sees the client's own address), from the namespace itself over
//! its loopback (its own address), from the host side through the gateway
//! (the gateway address). No packet is rewritten and no state is kept for
//! TCP; for unconnected UDP, `publish_socks` remembers where a socket's
//! datagrams were redirected so `recvmsg` reports the answers as coming
//! from the published address.
//!
//! Cgroup hooks run for every socket of the machine (the control plane
//! attaches them to the cgroup v2 root). They act only when the socket's
//! network namespace cookie is in `publish_netns` (the lab's host side and
//! endpoint namespaces) and the destination is a host address seen from
//! there (the uplink address, the gateway, and on the host side
//! 127.0.0.0/8); everything else returns untouched at the first lookup.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    programs::SockAddrContext,
};
use netlab_common::{
    counters::Counter,
    nat::{
        IPPROTO_TCP, IPPROTO_UDP, NAT_FLAG_ENABLED, PublishEntry, PublishKey, PublishSockEntry,
        PublishSockKey,
    },
};

use crate::counters::count;
use crate::maps::{NAT_CONFIG, NAT_PUBLISH, PUBLISH_NETNS, PUBLISH_SOCKS};

/// The verdict of a sock_addr program that lets the call proceed.
const ALLOW: i32 = 1;

/// 127.0.0.0/8 (network order).
const LOOPBACK_NET: u32 = u32::from_be_bytes([127, 0, 0, 0]).to_be();
const LOOPBACK_MASK: u32 = u32::from_be_bytes([255, 0, 0, 0]).to_be();

/// `connect4`: TCP and connected UDP.
#[inline(always)]
pub fn connect4(ctx: &SockAddrContext) -> i32 {
    redirect(ctx, false);
    ALLOW
}

/// `sendmsg4`: unconnected UDP, per datagram.
#[inline(always)]
pub fn sendmsg4(ctx: &SockAddrContext) -> i32 {
    redirect(ctx, true);
    ALLOW
}

/// `recvmsg4`: a UDP answer's source back to the published address.
#[inline(always)]
pub fn recvmsg4(ctx: &SockAddrContext) -> i32 {
    let sa = ctx.sock_addr;
    // SAFETY: the context pointer the kernel passed.
    let (addr, port) = unsafe { ((*sa).user_ip4, (*sa).user_port) };
    let key = PublishSockKey {
        // SAFETY: helper on the program's own context.
        cookie: unsafe { bpf_get_socket_cookie(ctx.as_ptr()) },
        addr,
        port: port as u16,
        _pad: 0,
    };
    // SAFETY: copied out at once.
    if let Some(published) = unsafe { PUBLISH_SOCKS.get(key) }.copied() {
        // SAFETY: recvmsg4 may write the reported source.
        unsafe {
            (*sa).user_ip4 = published.addr;
            (*sa).user_port = published.port as u32;
        }
        count(Counter::SockRestored);
    }
    ALLOW
}

/// Where a published port at `addr:port` leads, for a socket of a lab
/// namespace, if anywhere.
#[inline(always)]
fn published(ctx: &SockAddrContext, addr: u32, port: u16, proto: u8) -> Option<PublishEntry> {
    // SAFETY: helper on the program's own context.
    let cookie = unsafe { bpf_get_netns_cookie(ctx.as_ptr()) };
    // SAFETY: copied out at once.
    let netns = unsafe { PUBLISH_NETNS.get(cookie) }.copied()?;
    let cfg = NAT_CONFIG.get(0)?;
    if cfg.flags & NAT_FLAG_ENABLED == 0 {
        return None;
    }
    let host_address = addr == cfg.external
        || addr == netns.gateway
        || (netns.host != 0 && addr & LOOPBACK_MASK == LOOPBACK_NET);
    if !host_address {
        return None;
    }
    let mut key = PublishKey {
        addr,
        port,
        proto,
        _pad: 0,
    };
    // SAFETY: copied out at once.
    if let Some(found) = unsafe { NAT_PUBLISH.get(key) } {
        return Some(*found);
    }
    key.addr = 0;
    // SAFETY: copied out at once.
    unsafe { NAT_PUBLISH.get(key) }.copied()
}

#[inline(always)]
fn redirect(ctx: &SockAddrContext, remember: bool) {
    let sa = ctx.sock_addr;
    // SAFETY: the context pointer the kernel passed.
    let (addr, port, proto) = unsafe { ((*sa).user_ip4, (*sa).user_port, (*sa).protocol) };
    let proto = proto as u8;
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return;
    }
    let Some(target) = published(ctx, addr, port as u16, proto) else {
        return;
    };
    // SAFETY: connect4/sendmsg4 may write the destination.
    unsafe {
        (*sa).user_ip4 = target.addr;
        (*sa).user_port = target.port as u32;
    }
    if remember && proto == IPPROTO_UDP {
        let key = PublishSockKey {
            // SAFETY: helper on the program's own context.
            cookie: unsafe { bpf_get_socket_cookie(ctx.as_ptr()) },
            addr: target.addr,
            port: target.port,
            _pad: 0,
        };
        let value = PublishSockEntry {
            addr,
            port: port as u16,
            _pad: 0,
        };
        let _ = PUBLISH_SOCKS.insert(key, value, 0);
    }
    count(Counter::SockPublished);
}
