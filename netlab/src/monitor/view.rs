//! One event as `netlab monitor` shows it: decoded (names, addresses in
//! order, local time), filtered, printed as a line of text or of JSON.
//!
//! JSON shape (one object per line; fields that do not apply to an event
//! are left out, never null):
//!
//! ```text
//! {"time":"2026-11-30T15:04:05.123456+01:00", "ts_ns":123,       always
//!  "type":"drop|nat|fdb|arp", "event":"drop|nat_created|nat_exhausted|
//!  nat_expired|fdb_learned|arp_answered", "program":"port|nat_egress|
//!  nat_ingress|control",                                          always
//!  "reason":"drop_spoofed",            drops and exhausted ranges (a counter name)
//!  "ifindex":5, "port":"veth-1-br",    the interface the program runs on
//!  "namespace":"ns1",                  the endpoint namespace concerned (or "gateway")
//!  "ethertype":"0x0800", "proto":"udp",
//!  "src_mac":"..", "dst_mac":"..", "src":"10.0.0.1", "dst":"..", "sport":1, "dport":2,
//!  "translated_src":"203.0.113.1", "translated_sport":20001}     NAT created/expired
//! ```
//!
//! IPv6 packets and NAT66 flows have the same shape: `ethertype` is
//! `0x86dd`, the addresses are IPv6 in their standard (RFC 5952) form,
//! `proto` may be `icmpv6`, and the text form writes `[addr]:port`.
//!
//! ICMP and ICMPv6: `sport` is the echo identifier; `icmp_type`/`icmp_code` replace
//! `dport`. Losses are their own line: `{"time":..,"type":"lost","lost":N,
//! "lost_total":M}`.

use std::net::{IpAddr, Ipv6Addr};

use netlab_common::{
    counters::Counter,
    ether::{ETH_P_ARP, ETH_P_IP, ETH_P_IPV6},
    events::{
        EVENT_ARP_ANSWERED, EVENT_DROP, EVENT_FDB_LEARNED, EVENT_NAT_CREATED, EVENT_NAT_EXHAUSTED,
        EVENT_NAT_EXPIRED, EVENT_ND_ANSWERED, Event6, PROGRAM_CONTROL, PROGRAM_NAT_EGRESS,
        PROGRAM_NAT_INGRESS, PROGRAM_PORT, PROGRAM_UPLINK_XDP, PROGRAM_XDP_PORT,
    },
    nat::IPPROTO_ICMP,
    nat6::IPPROTO_ICMPV6,
};
use serde::Serialize;

use crate::inspect::decode;

/// `--type`: the kinds of event to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// Dropped packets (with their reason); includes NAT exhaustion.
    Drop,
    /// NAT flows created, expired, or not created (range exhausted).
    Nat,
    /// MACs learned by the switch.
    Fdb,
    /// ARP requests answered by the switch.
    Arp,
    /// IPv6 neighbour solicitations answered by the switch.
    Nd,
}

/// The types an event kind belongs to; the first is the one it is listed
/// as. An exhausted range is a NAT event whose packet was dropped.
pub fn types_of(kind: u8) -> &'static [EventType] {
    match kind {
        EVENT_DROP => &[EventType::Drop],
        EVENT_NAT_EXHAUSTED => &[EventType::Nat, EventType::Drop],
        EVENT_NAT_CREATED | EVENT_NAT_EXPIRED => &[EventType::Nat],
        EVENT_FDB_LEARNED => &[EventType::Fdb],
        EVENT_ARP_ANSWERED => &[EventType::Arp],
        EVENT_ND_ANSWERED => &[EventType::Nd],
        _ => &[],
    }
}

pub fn event_name(kind: u8) -> &'static str {
    match kind {
        EVENT_DROP => "drop",
        EVENT_NAT_CREATED => "nat_created",
        EVENT_NAT_EXHAUSTED => "nat_exhausted",
        EVENT_NAT_EXPIRED => "nat_expired",
        EVENT_FDB_LEARNED => "fdb_learned",
        EVENT_ARP_ANSWERED => "arp_answered",
        EVENT_ND_ANSWERED => "nd_answered",
        _ => "unknown",
    }
}

fn program_name(p: u8) -> &'static str {
    match p {
        PROGRAM_PORT => "port",
        PROGRAM_NAT_EGRESS => "nat_egress",
        PROGRAM_NAT_INGRESS => "nat_ingress",
        PROGRAM_CONTROL => "control",
        PROGRAM_UPLINK_XDP => "uplink_xdp",
        PROGRAM_XDP_PORT => "xdp_port",
        _ => "unknown",
    }
}

fn reason_name(index: u32) -> Option<&'static str> {
    Counter::ALL.get(index as usize).map(|c| c.name())
}

/// An event decoded for printing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventView {
    pub time: String,
    pub ts_ns: u64,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub event: &'static str,
    pub program: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethertype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translated_src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translated_sport: Option<u16>,
    /// Raw protocol number, for filtering.
    #[serde(skip)]
    pub proto_number: u8,
    /// Raw kind, for filtering.
    #[serde(skip)]
    pub kind: u8,
}

/// What the decoder knows about the lab.
pub struct Names {
    pub ifnames: decode::IfNames,
    /// Port device → endpoint namespace (or "gateway").
    pub port_owners: Vec<(String, String)>,
    /// Endpoint address (IPv4, IPv6 global and link-local) → namespace.
    pub endpoints: Vec<(IpAddr, String)>,
}

impl Names {
    fn owner_of_port(&self, port: &str) -> Option<String> {
        self.port_owners
            .iter()
            .find(|(dev, _)| dev == port)
            .map(|(_, ns)| ns.clone())
    }

    fn owner_of_address(&self, a: IpAddr) -> Option<String> {
        self.endpoints
            .iter()
            .find(|(addr, _)| *addr == a)
            .map(|(_, ns)| ns.clone())
    }
}

/// Decodes `record` (an IPv4 or ARP [`netlab_common::events::Event`], or
/// an IPv6 one); `time` is its wall-clock time, already formatted.
pub fn view(record: &Event6, names: &Names, time: String) -> Option<EventView> {
    let e = &record.event;
    let event_type = *types_of(e.kind).first()?;
    let v6 = e.ethertype == ETH_P_IPV6;
    let ip = e.ethertype == ETH_P_IP || v6;
    let nonzero_ip = |raw: u32| (raw != 0).then(|| IpAddr::from(decode::ipv4(raw)));
    let nonzero_ip6 =
        |raw: &[u8; 16]| (*raw != [0; 16]).then(|| IpAddr::from(Ipv6Addr::from(*raw)));
    let (src, dst) = if v6 {
        (nonzero_ip6(&record.saddr6), nonzero_ip6(&record.daddr6))
    } else if e.ethertype == ETH_P_IP || e.ethertype == ETH_P_ARP {
        (nonzero_ip(e.saddr), nonzero_ip(e.daddr))
    } else {
        (None, None)
    };
    let port = (e.ifindex != 0).then(|| names.ifnames.name(e.ifindex));
    // The namespace concerned: behind the switch port the frame came in
    // on; for the NAT, the lab endpoint among the addresses.
    let namespace = match e.program {
        PROGRAM_PORT => port.as_deref().and_then(|p| names.owner_of_port(p)),
        _ => src
            .and_then(|a| names.owner_of_address(a))
            .or_else(|| dst.and_then(|a| names.owner_of_address(a))),
    };
    // An answered solicitation names who asked for what; its ICMPv6
    // header is the advertisement's.
    let nd = e.kind == EVENT_ND_ANSWERED;
    let l4 = ip && !nd && matches!(e.proto, 6 | 17);
    let icmp = !nd
        && ((e.ethertype == ETH_P_IP && e.proto == IPPROTO_ICMP)
            || (v6 && e.proto == IPPROTO_ICMPV6));
    let [icmp_type, icmp_code] = decode::port(e.dport).to_be_bytes();
    let nat_xlat = matches!(e.kind, EVENT_NAT_CREATED | EVENT_NAT_EXPIRED);
    let macs = e.src_mac != [0; 6] || e.dst_mac != [0; 6];
    Some(EventView {
        time,
        ts_ns: e.ts_ns,
        event_type,
        event: event_name(e.kind),
        program: program_name(e.program),
        reason: matches!(e.kind, EVENT_DROP | EVENT_NAT_EXHAUSTED)
            .then(|| reason_name(e.reason))
            .flatten(),
        ifindex: (e.ifindex != 0).then_some(e.ifindex),
        port,
        namespace,
        ethertype: (e.ethertype != 0).then(|| format!("{:#06x}", e.ethertype)),
        proto: (ip && !nd).then(|| decode::proto(e.proto)),
        src_mac: (macs || e.kind == EVENT_FDB_LEARNED).then(|| decode::mac(&e.src_mac)),
        dst_mac: macs.then(|| decode::mac(&e.dst_mac)),
        src,
        dst,
        // The echo identifier: what an ICMP flow is keyed by. A drop of
        // another ICMP message has none (the bytes are the message's own).
        sport: (l4 || (icmp && (e.kind != EVENT_DROP || is_echo(v6, icmp_type))))
            .then(|| decode::port(e.sport)),
        dport: l4.then(|| decode::port(e.dport)),
        // Only packet events carry the ICMP header; NAT flow events carry
        // the flow's key (echo id, no type).
        icmp_type: (icmp && e.kind == EVENT_DROP).then_some(icmp_type),
        icmp_code: (icmp && e.kind == EVENT_DROP).then_some(icmp_code),
        translated_src: nat_xlat.then(|| {
            if v6 {
                IpAddr::from(Ipv6Addr::from(record.xaddr6))
            } else {
                IpAddr::from(decode::ipv4(e.xaddr))
            }
        }),
        translated_sport: nat_xlat.then(|| decode::port(e.xport)),
        proto_number: if ip { e.proto } else { 0 },
        kind: e.kind,
    })
}

/// ICMP echo request/reply (0, 8) or ICMPv6 echo request/reply (128, 129).
fn is_echo(v6: bool, icmp_type: u8) -> bool {
    if v6 {
        matches!(icmp_type, 128 | 129)
    } else {
        matches!(icmp_type, 0 | 8)
    }
}

/// `--type`, `--namespace`, `--port`, `--proto`, resolved and validated.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Empty: every type.
    pub types: Vec<EventType>,
    pub namespace: Option<String>,
    pub port: Option<String>,
    pub proto: Option<u8>,
}

impl Filter {
    pub fn matches(&self, v: &EventView) -> bool {
        (self.types.is_empty() || types_of(v.kind).iter().any(|t| self.types.contains(t)))
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| v.namespace.as_ref() == Some(ns))
            && self
                .port
                .as_ref()
                .is_none_or(|p| v.port.as_ref() == Some(p))
            && self.proto.is_none_or(|p| v.proto_number == p)
    }
}

/// `addr:port`, `[addr]:port` for IPv6 (as a socket address is written).
fn endpoint(addr: Option<IpAddr>, port: Option<u16>) -> String {
    match (addr, port) {
        (Some(a), Some(p)) => std::net::SocketAddr::new(a, p).to_string(),
        (Some(a), None) => a.to_string(),
        (None, _) => "?".into(),
    }
}

/// One line of text: `HH:MM:SS.micro type event [reason] on port (ns): summary`.
pub fn text(v: &EventView) -> String {
    let mut out = format!("{} {:<13}", v.time, v.event);
    if let Some(r) = v.reason {
        out.push_str(&format!(" {r}"));
    }
    match (&v.port, &v.namespace) {
        (Some(p), Some(ns)) => out.push_str(&format!(" on {p} ({ns})")),
        (Some(p), None) => out.push_str(&format!(" on {p}")),
        (None, Some(ns)) => out.push_str(&format!(" ({ns})")),
        (None, None) => {}
    }
    out.push(':');
    match v.kind {
        EVENT_FDB_LEARNED => {
            out.push_str(&format!(
                " {} now behind this port",
                v.src_mac.as_deref().unwrap_or("?")
            ));
        }
        EVENT_ARP_ANSWERED | EVENT_ND_ANSWERED => out.push_str(&format!(
            " {} ({}) asked who has {}: answered {}",
            endpoint(v.src, None),
            v.src_mac.as_deref().unwrap_or("?"),
            endpoint(v.dst, None),
            v.dst_mac.as_deref().unwrap_or("?"),
        )),
        _ => {
            if let Some(p) = &v.proto {
                out.push_str(&format!(
                    " {p} {} > {}",
                    endpoint(v.src, v.sport),
                    endpoint(v.dst, v.dport)
                ));
                if let (Some(t), Some(c)) = (v.icmp_type, v.icmp_code) {
                    out.push_str(&format!(" icmp type {t} code {c}"));
                }
            } else if let (Some(s), Some(d)) = (&v.src_mac, &v.dst_mac) {
                out.push_str(&format!(
                    " {s} > {d} type {}",
                    v.ethertype.as_deref().unwrap_or("?")
                ));
                if v.src.is_some() {
                    out.push_str(&format!(
                        " ({} > {})",
                        endpoint(v.src, None),
                        endpoint(v.dst, None)
                    ));
                }
            }
            if let Some(x) = v.translated_src {
                out.push_str(&format!(" as {}", endpoint(Some(x), v.translated_sport)));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
