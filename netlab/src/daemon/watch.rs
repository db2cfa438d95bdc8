//! The uplink's and the host's addresses, followed from inside the host
//! namespace by a thread that listens to rtnetlink events.

use std::{
    net::Ipv4Addr,
    os::fd::AsFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
};

use anyhow::Context;
use nix::{
    sched::CloneFlags,
    sys::{
        socket::{
            AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv,
            setsockopt, socket, sockopt::ReceiveTimeout,
        },
        time::TimeVal,
    },
};

use super::log::say;
use crate::{datapath::ebpf, netns};

/// rtnetlink multicast groups (linux/rtnetlink.h): link and IPv4 address
/// changes are what can change the uplink's address; IPv6 address changes
/// too change what `host_addrs6` must block.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

/// Starts a thread inside the host namespace that reports the uplink's
/// IPv4 address at start and after every rtnetlink link/address event, and
/// on the same occasions syncs `host_addrs` and `host_addrs6` with the
/// host's addresses.
pub fn spawn_address_watcher(
    host_netns: Option<String>,
    uplink: String,
    host_access: ebpf::HostAccess,
    tx: mpsc::Sender<Option<Ipv4Addr>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let ns_fd = host_netns.as_deref().map(netns::open).transpose()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("uplink-watch".into())
        .spawn(move || {
            // This thread lives in the host namespace until the daemon
            // exits; it is never reused for anything else.
            let setup = || -> anyhow::Result<std::os::fd::OwnedFd> {
                if let Some(fd) = &ns_fd {
                    nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
                        .context("cannot enter the host namespace")?;
                }
                // The socket is opened after setns, so it belongs to the
                // host namespace and hears its events.
                let sock = socket(
                    AddressFamily::Netlink,
                    SockType::Raw,
                    SockFlag::SOCK_CLOEXEC,
                    SockProtocol::NetlinkRoute,
                )?;
                bind(
                    std::os::fd::AsRawFd::as_raw_fd(&sock),
                    &NetlinkAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR),
                )?;
                setsockopt(&sock, ReceiveTimeout, &TimeVal::new(0, 200_000))?;
                Ok(sock)
            };
            let sock = match setup() {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut buf = vec![0u8; 64 * 1024];
            let mut report = true;
            let mut blocked = None;
            while !stop.load(Ordering::SeqCst) {
                if report {
                    follow_host_addresses(&host_access, &mut blocked);
                    let addr = ebpf::uplink_ipv4(&uplink).ok();
                    if tx.send(addr).is_err() {
                        return;
                    }
                }
                // Any event may concern the uplink; re-reading the address
                // is cheaper and more robust than decoding every message.
                report = matches!(
                    recv(std::os::fd::AsRawFd::as_raw_fd(&sock), &mut buf, MsgFlags::empty()),
                    Ok(n) if n > 0
                );
            }
        })?;
    ready_rx
        .recv()
        .context("the address watcher did not start")??;
    Ok(handle)
}

/// Brings `host_addrs` and `host_addrs6` in step with the host's addresses (on the watcher
/// thread, inside the host namespace); says so when the count changed.
fn follow_host_addresses(access: &ebpf::HostAccess, last: &mut Option<usize>) {
    if !access.dir.exists() {
        return; // the lab is going down; the main loop exits
    }
    match ebpf::sync_host_access(access) {
        Ok(n) if *last != Some(n) => {
            *last = Some(n);
            if !access.allowed {
                say(&format!(
                    "host access: {n} host addresses closed to the namespaces"
                ));
            }
        }
        Ok(_) => {}
        Err(e) => say(&format!("cannot update the host addresses: {e}")),
    }
}
