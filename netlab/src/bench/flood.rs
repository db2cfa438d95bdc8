//! The inbound flood: the internet namespace sends unsolicited 64-byte UDP
//! datagrams at a lab address as fast as one sender pinned to one CPU can
//! (`sendmmsg`, batches of [`BATCH`]), and the figure is how many packets
//! per second the host side's uplink takes in: its `rx_packets`, which for
//! a veth counts every frame its peer handed over, whether the host then
//! forwards it (kernel datapath: the walkthrough has no filter), drops it
//! in the TC ingress or drops it in XDP. What a datapath cannot keep up
//! with is refused at the veth (ring or backlog full) and not counted.
//!
//! Hand-written rather than iperf3: iperf3 needs a server and a
//! connection, and unsolicited traffic has neither.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::catalog::Metric;
use super::nsexec::{NsCpu, ip};
use super::workload::Measured;

/// Datagrams per `sendmmsg` call.
const BATCH: usize = 64;
/// The datagrams' payload: 64 bytes, like the `*_udp_64` workloads.
const PAYLOAD: usize = 64;
/// A port nothing listens on (discard).
const PORT: u16 = 9;

/// Floods `target` from `sender` (in the internet namespace, pinned) for
/// `secs` seconds; counts what the uplink `uplink` in `host_ns` received.
/// A route from the internet namespace to `target` through
/// `uplink_address` is added for the run and removed after.
pub fn inbound_flood(
    sender: &NsCpu,
    host_ns: &str,
    uplink: &str,
    uplink_address: Ipv4Addr,
    target: Ipv4Addr,
    secs: u64,
) -> anyhow::Result<Measured> {
    let route = format!("{target}/32");
    let via = uplink_address.to_string();
    ip(&["-n", &sender.netns, "route", "replace", &route, "via", &via])?;
    let result = (|| -> anyhow::Result<Measured> {
        let before = rx_packets(host_ns, uplink)?;
        let start = Instant::now();
        let sent = sender.run_in("bench-flood", move || {
            send_for(target, Duration::from_secs(secs))
        })?;
        let seconds = start.elapsed().as_secs_f64();
        let after = rx_packets(host_ns, uplink)?;
        let mut m = Measured::default();
        let received = after.saturating_sub(before);
        m.values
            .push((Metric::PacketsPerSecond, received as f64 / seconds));
        m.details.insert("sent".into(), sent as f64);
        m.details.insert("received".into(), received as f64);
        m.details
            .insert("sent_per_second".into(), sent as f64 / seconds);
        m.details.insert("seconds".into(), seconds);
        Ok(m)
    })();
    let removed = ip(&["-n", &sender.netns, "route", "del", &route]);
    let m = result?;
    removed?;
    Ok(m)
}

/// Sends 64-byte datagrams to `target` until `duration` passed; returns
/// how many the kernel took. Runs on the calling thread (already in the
/// internet namespace and pinned).
fn send_for(target: Ipv4Addr, duration: Duration) -> anyhow::Result<u64> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").context("UDP socket")?;
    let dest = SocketAddrV4::new(target, PORT);
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: PORT.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*dest.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut payload = [0u8; PAYLOAD];
    let mut iov = [libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: PAYLOAD,
    }];
    // SAFETY: all-zero is a valid mmsghdr; the pointers are set below.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for m in &mut msgs {
        m.msg_hdr.msg_name = (&addr as *const libc::sockaddr_in).cast_mut().cast();
        m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        m.msg_hdr.msg_iov = iov.as_mut_ptr();
        m.msg_hdr.msg_iovlen = 1;
    }
    let fd = socket.as_raw_fd();
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut calls: u64 = 0;
    while start.elapsed() < duration {
        // SAFETY: `msgs` holds BATCH valid headers pointing at live buffers
        // (`addr`, `iov`, `payload` outlive the call).
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), BATCH as u32, 0) };
        if n > 0 {
            sent += n as u64;
        }
        calls += 1;
        if calls.is_multiple_of(1024) && super::interrupt::check().is_err() {
            break;
        }
    }
    Ok(sent)
}

/// `rx_packets` of `dev` in the namespace `ns`, from /proc/net/dev read on
/// a thread inside it (`/proc/thread-self`: the thread's namespace, not
/// the process's).
fn rx_packets(ns: &str, dev: &str) -> anyhow::Result<u64> {
    let dev = dev.to_owned();
    NsCpu::new(ns, 0).run_in("bench-rx-count", move || {
        let text = std::fs::read_to_string("/proc/thread-self/net/dev")
            .context("reading /proc/thread-self/net/dev")?;
        parse_rx_packets(&text, &dev)
    })
}

/// The receive packet count of `dev` in a /proc/net/dev text.
fn parse_rx_packets(text: &str, dev: &str) -> anyhow::Result<u64> {
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == dev {
            // Receive: bytes packets errs drop ...
            let packets = rest
                .split_whitespace()
                .nth(1)
                .context("short /proc/net/dev line")?;
            return packets.parse().context("rx packets");
        }
    }
    bail!("{dev} is not in /proc/net/dev")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_packets_are_read_from_proc_net_dev() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n    \
             lo:       0       0    0    0    0     0          0         0        0       0\n\
             uplink: 123456    789    0    0    0     0          0         0     4242      17\n";
        assert_eq!(parse_rx_packets(text, "uplink").unwrap(), 789);
        assert_eq!(parse_rx_packets(text, "lo").unwrap(), 0);
        assert!(parse_rx_packets(text, "eth0").is_err());
    }
}
