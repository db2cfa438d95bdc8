//! netlab's eBPF programs. Entry points only; the logic lives in one module
//! per concern.
#![no_std]
#![no_main]

mod btf_map;
mod counters;
mod csum;
mod events;
mod hdr;
mod maps;
mod nat;
mod switch;
mod xdp;

use aya_ebpf::{
    macros::{cgroup_sock_addr, classifier, xdp},
    programs::{SockAddrContext, TcContext, XdpContext},
};

/// TC ingress (tcx) of every switch port: `veth-N-br` and the gateway port.
#[classifier]
pub fn netlab_port(ctx: TcContext) -> i32 {
    switch::port_ingress(&ctx)
}

/// TC egress of the uplink: source NAT (masquerade).
#[classifier]
pub fn netlab_uplink_egress(ctx: TcContext) -> i32 {
    nat::egress(ctx)
}

/// TC ingress of the uplink: reverse NAT of replies and ICMP errors.
#[classifier]
pub fn netlab_uplink_ingress(ctx: TcContext) -> i32 {
    nat::ingress(ctx)
}

/// Not attached anywhere: `netlab daemon` runs it with BPF_PROG_TEST_RUN
/// to put the NAT expiries its sweep finds into the event stream.
#[classifier]
pub fn netlab_event_inject(ctx: TcContext) -> i32 {
    events::inject(&ctx);
    aya_ebpf::bindings::TC_ACT_OK
}

/// cgroup connect4: the lab's sockets connecting to a published port.
#[cgroup_sock_addr(connect4)]
pub fn netlab_sock_connect4(ctx: SockAddrContext) -> i32 {
    nat::sock::connect4(&ctx)
}

/// cgroup sendmsg4: the lab's unconnected UDP to a published port.
#[cgroup_sock_addr(sendmsg4)]
pub fn netlab_sock_sendmsg4(ctx: SockAddrContext) -> i32 {
    nat::sock::sendmsg4(&ctx)
}

/// cgroup recvmsg4: answers reported from the published address.
#[cgroup_sock_addr(recvmsg4)]
pub fn netlab_sock_recvmsg4(ctx: SockAddrContext) -> i32 {
    nat::sock::recvmsg4(&ctx)
}

/// cgroup connect6: the lab's sockets connecting to a published IPv6 port.
#[cgroup_sock_addr(connect6)]
pub fn netlab_sock_connect6(ctx: SockAddrContext) -> i32 {
    nat::sock6::connect6(&ctx)
}

/// cgroup sendmsg6: the lab's unconnected UDP to a published IPv6 port.
#[cgroup_sock_addr(sendmsg6)]
pub fn netlab_sock_sendmsg6(ctx: SockAddrContext) -> i32 {
    nat::sock6::sendmsg6(&ctx)
}

/// cgroup recvmsg6: IPv6 answers reported from the published address.
#[cgroup_sock_addr(recvmsg6)]
pub fn netlab_sock_recvmsg6(ctx: SockAddrContext) -> i32 {
    nat::sock6::recvmsg6(&ctx)
}

/// XDP on the uplink's receive side: drops what can only be dropped
/// before an skb exists, passes the rest to the TC ingress.
#[xdp]
pub fn netlab_uplink_xdp(ctx: XdpContext) -> u32 {
    xdp::uplink::uplink(&ctx)
}

/// XDP of every switch port on the "ebpf-xdp" datapath: the switch before
/// an skb exists; what it passes goes on to `netlab_port`.
#[xdp]
pub fn netlab_xdp_port(ctx: XdpContext) -> u32 {
    xdp::port::port(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
