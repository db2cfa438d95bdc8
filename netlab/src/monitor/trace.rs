//! `netlab trace`: switches the port program's frame events on
//! (`TRACE_FRAMES`), prints one line per frame (port names, the namespace
//! behind each port, EtherType names, drop reasons by name) until Ctrl-C or
//! SIGTERM, and switches them off again.
//!
//! The events come through the lab's `events` ring buffer, like
//! `netlab monitor`'s, so the two take turns: one reader per lab
//! (see [`super::gate`]).

use std::{
    io::Write,
    net::{Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use anyhow::Context as _;
use netlab_common::{
    counters::Counter,
    ether::{ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6},
    events::{
        EVENT_FRAME, Event6, FRAME_ARP_ANSWERED, FRAME_DROPPED, FRAME_FLOODED, FRAME_ND_ANSWERED,
        FRAME_UNICAST,
    },
    switch::TRACE_FRAMES,
};

use super::{gate, open_ring, stop_on_signals, stopped, wait_for_records};
use crate::inspect::{
    Lab,
    decode::{IfNames, mac},
};

/// Turns frame events into lines.
struct Printer {
    names: IfNames,
    /// Port device → its owner (an endpoint namespace, a container, the
    /// gateway).
    owners: Vec<(String, String)>,
}

impl Printer {
    /// `veth-1-br (ns1)`; `if9` when the ifindex is unknown.
    fn port(&self, ifindex: u32) -> String {
        let name = self.names.name(ifindex);
        match self.owners.iter().find(|(dev, _)| *dev == name) {
            Some((_, owner)) => format!("{name} ({owner})"),
            None => name,
        }
    }

    /// One frame event as a line (without the time), e.g.
    /// `port veth-1-br (ns1): 02:.. > 02:.. type 0x0800 IPv4: unicast to port veth-2-br (ns2)`;
    /// `None` for any other event.
    fn line(&self, record: &Event6) -> Option<String> {
        let e = &record.event;
        if e.kind != EVENT_FRAME {
            return None;
        }
        let port = self.port(e.ifindex);
        let src = mac(&e.src_mac);
        if e.outcome == FRAME_ARP_ANSWERED {
            let ip = Ipv4Addr::from(e.daddr.to_ne_bytes());
            return Some(format!("port {port}: {src} asks who-has {ip}: answered"));
        }
        if e.outcome == FRAME_ND_ANSWERED {
            let ip = Ipv6Addr::from(record.daddr6);
            return Some(format!("port {port}: {src} asks who-has {ip}: answered"));
        }
        let what = match e.outcome {
            FRAME_UNICAST => format!("unicast to port {}", self.port(e.reason)),
            FRAME_FLOODED => format!("flooded to {} ports", e.reason),
            FRAME_DROPPED => format!("dropped, reason {}", reason(e.reason)),
            other => format!("outcome {other} ({})", e.reason),
        };
        Some(format!(
            "port {port}: {src} > {} type {}: {what}",
            mac(&e.dst_mac),
            ethertype(e.ethertype)
        ))
    }
}

/// A drop reason, sent as its `Counter` index: its name.
fn reason(index: u32) -> String {
    Counter::ALL
        .get(index as usize)
        .map_or_else(|| index.to_string(), |c| c.name().to_string())
}

fn ethertype(t: u16) -> String {
    let name = match t {
        ETH_P_IP => " IPv4",
        ETH_P_ARP => " ARP",
        ETH_P_IPV6 => " IPv6",
        ETH_P_8021Q => " VLAN",
        _ => "",
    };
    format!("{t:#06x}{name}")
}

/// Wall-clock `HH:MM:SS.mmm` (UTC) of the moment a line is printed.
fn now_utc() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s % 3600) / 60,
        s % 60,
        d.subsec_millis()
    )
}

pub fn run(lab: &Lab) -> anyhow::Result<()> {
    let owners = lab
        .plan
        .endpoints
        .iter()
        .map(|e| (e.peer.clone(), e.namespace.clone()))
        .chain(
            lab.plan
                .containers
                .attachments
                .iter()
                .map(|c| (c.peer.clone(), c.label())),
        )
        .chain([(lab.plan.gateway_port.clone(), "gateway".to_string())])
        .collect();
    let printer = Printer {
        names: lab.ifnames(),
        owners,
    };
    let mut ring = open_ring(&lab.dir, &lab.name)?;

    stop_on_signals()?;
    // Switched off again when dropped, so every way out (error, Ctrl-C)
    // does. What an earlier reader left unread is not news.
    let _listening = gate::Listening::claim(&lab.name, &lab.dir, TRACE_FRAMES, || {
        while ring.next().is_some() {}
        Ok(())
    })?;
    eprintln!(
        "tracing lab {}; Ctrl-C stops and switches tracing off",
        lab.name
    );
    let mut out = std::io::stdout().lock();
    let mut print = |ring: &mut aya::maps::RingBuf<aya::maps::MapData>| -> bool {
        while let Some(item) = ring.next() {
            let Some(line) = Event6::from_record(&item).and_then(|e| printer.line(&e)) else {
                continue;
            };
            drop(item);
            if writeln!(out, "{} {line}", now_utc()).is_err() {
                return false;
            }
        }
        out.flush().is_ok()
    };
    while !stopped() {
        wait_for_records(&ring).context("waiting for trace events")?;
        if !print(&mut ring) {
            break; // stdout closed (`| head`): a normal end
        }
    }
    // Events already in the buffer still get printed.
    std::thread::sleep(Duration::from_millis(50));
    print(&mut ring);
    eprintln!("tracing stopped; switched off for lab {}", lab.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer() -> Printer {
        let mut names = std::collections::BTreeMap::new();
        names.insert(5, "veth-1-br".to_string());
        names.insert(4, "veth-2-br".to_string());
        Printer {
            names: IfNames(names),
            owners: vec![("veth-1-br".into(), "ns1".into())],
        }
    }

    fn frame(ifindex: u32, ethertype: u16, outcome: u8, reason: u32) -> Event6 {
        Event6 {
            event: netlab_common::events::Event {
                kind: EVENT_FRAME,
                ifindex,
                ethertype,
                outcome,
                reason,
                src_mac: [0x02, 0x4e, 0x0a, 0x4f, 0x01, 0x01],
                dst_mac: [0x02, 0x4e, 0x0a, 0x4f, 0x01, 0x02],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn frame_events_are_lines() {
        let p = printer();
        assert_eq!(
            p.line(&frame(5, 0x0800, FRAME_UNICAST, 4)).unwrap(),
            "port veth-1-br (ns1): 02:4e:0a:4f:01:01 > 02:4e:0a:4f:01:02 type 0x0800 IPv4: unicast to port veth-2-br"
        );
        let mut arp = frame(9, 0x0806, FRAME_ARP_ANSWERED, 0);
        arp.event.daddr = u32::from_ne_bytes([10, 79, 1, 5]);
        assert_eq!(
            p.line(&arp).unwrap(),
            "port if9: 02:4e:0a:4f:01:01 asks who-has 10.79.1.5: answered"
        );
        assert_eq!(
            p.line(&frame(5, 0x0806, FRAME_FLOODED, 3)).unwrap(),
            "port veth-1-br (ns1): 02:4e:0a:4f:01:01 > 02:4e:0a:4f:01:02 type 0x0806 ARP: flooded to 3 ports"
        );
        assert_eq!(
            p.line(&frame(
                5,
                0x0800,
                FRAME_DROPPED,
                Counter::DropSpoofed as u32
            ))
            .unwrap(),
            "port veth-1-br (ns1): 02:4e:0a:4f:01:01 > 02:4e:0a:4f:01:02 type 0x0800 IPv4: dropped, reason drop_spoofed"
        );
        let mut nd = frame(5, 0x86dd, FRAME_ND_ANSWERED, 0);
        nd.daddr6 = "fd00:10:79:1::2".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(
            p.line(&nd).unwrap(),
            "port veth-1-br (ns1): 02:4e:0a:4f:01:01 asks who-has fd00:10:79:1::2: answered"
        );
        assert_eq!(
            p.line(&frame(5, 0x86dd, FRAME_UNICAST, 4)).unwrap(),
            "port veth-1-br (ns1): 02:4e:0a:4f:01:01 > 02:4e:0a:4f:01:02 type 0x86dd IPv6: unicast to port veth-2-br"
        );
        // Other events in the ring buffer are not frames.
        let drop = Event6 {
            event: netlab_common::events::Event {
                kind: netlab_common::events::EVENT_DROP,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(p.line(&drop), None);
    }
}
