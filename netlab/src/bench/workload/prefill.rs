//! Filling the NAT table before the prefilled connection-rate workload:
//! many distinct UDP flows towards the internet side.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Instant;

use anyhow::bail;

use crate::bench::{interrupt, nsexec::NsCpu};

/// NAT table prefill: this many distinct UDP flows, sent before every
/// prefilled connection-rate measurement.
pub const PREFILL_FLOWS: u32 = 100_000;
/// The flows go to this many destination ports on the internet side (so no
/// single destination needs more than `PREFILL_FLOWS / PREFILL_DST_PORTS`
/// translated ports, whatever the NAT's allocation is keyed on).
pub const PREFILL_DST_PORTS: u16 = 5;
/// Prefill flows go to PREFILL_DST_PORTS ports from here, where UDP sinks
/// are bound (so the internet side answers with nothing, not ICMP errors).
pub const PREFILL_DST_PORT_BASE: u16 = 40001;
/// Prefill flows come from source ports starting here (below the default
/// ephemeral range, so they never meet the connection-rate client's ports).
pub const PREFILL_SRC_PORT_BASE: u16 = 10000;

/// Result of filling the NAT table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prefill {
    /// Datagrams handed to the kernel (one per flow).
    pub sent: u64,
    /// Flows that could not be sent (port in use, send error).
    pub errors: u64,
    pub seconds: f64,
}

/// Open `flows` distinct UDP flows towards the internet side: one datagram
/// from each of `flows / PREFILL_DST_PORTS` source ports (bound one after
/// another from PREFILL_SRC_PORT_BASE) to each of PREFILL_DST_PORTS sink
/// ports. Each flow creates one NAT entry (conntrack entry for the kernel
/// datapath, NAT map entry for the eBPF one); the method is the same for both.
pub fn prefill_udp_flows(client: &NsCpu, target: Ipv4Addr, flows: u32) -> anyhow::Result<Prefill> {
    let sources = flows.div_ceil(PREFILL_DST_PORTS as u32);
    if PREFILL_SRC_PORT_BASE as u32 + sources > 32768 {
        bail!("prefill of {flows} flows needs source ports beyond the ephemeral range start");
    }
    client.run_in("bench-prefill", move || {
        let start = Instant::now();
        let (mut sent, mut errors) = (0u64, 0u64);
        let payload = [0u8; 16];
        for i in 0..sources {
            if i % 1024 == 0 {
                interrupt::check()?;
            }
            let src = PREFILL_SRC_PORT_BASE + i as u16;
            let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, src)) else {
                errors += PREFILL_DST_PORTS as u64;
                continue;
            };
            for d in 0..PREFILL_DST_PORTS {
                if sent + errors >= flows as u64 {
                    break;
                }
                let dst = SocketAddrV4::new(target, PREFILL_DST_PORT_BASE + d);
                match socket.send_to(&payload, dst) {
                    Ok(_) => sent += 1,
                    Err(_) => errors += 1,
                }
            }
        }
        Ok(Prefill {
            sent,
            errors,
            seconds: start.elapsed().as_secs_f64(),
        })
    })
}
