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
mod tests {
    use super::*;
    use netlab_common::events::Event;
    use std::{collections::BTreeMap, net::Ipv4Addr};

    /// An IPv4 record as the monitor reads it.
    fn v4(event: Event) -> Event6 {
        Event6 {
            event,
            ..Default::default()
        }
    }

    fn names() -> Names {
        Names {
            ifnames: decode::IfNames(BTreeMap::from([
                (5, "veth-1-br".into()),
                (9, "uplink".into()),
            ])),
            port_owners: vec![("veth-1-br".into(), "ns1".into())],
            endpoints: vec![
                (Ipv4Addr::new(10, 0, 0, 1).into(), "ns1".into()),
                ("fd00:10:0:0::1".parse().unwrap(), "ns1".into()),
            ],
        }
    }

    fn raw(a: [u8; 4]) -> u32 {
        u32::from_ne_bytes(a)
    }

    #[test]
    fn a_spoofed_drop_names_its_port_and_namespace() {
        let e = Event {
            kind: EVENT_DROP,
            program: PROGRAM_PORT,
            reason: Counter::DropSpoofed as u32,
            ifindex: 5,
            ethertype: 0x0800,
            proto: 17,
            src_mac: [2, 0, 0, 0, 0, 9],
            dst_mac: [2, 0, 0, 0, 0, 5],
            saddr: raw([10, 0, 0, 99]),
            daddr: raw([10, 0, 0, 5]),
            sport: 1234u16.to_be(),
            dport: 53u16.to_be(),
            ..Default::default()
        };
        let v = view(&v4(e), &names(), "t".into()).unwrap();
        assert_eq!(v.reason, Some("drop_spoofed"));
        assert_eq!(v.namespace.as_deref(), Some("ns1"));
        assert_eq!(v.port.as_deref(), Some("veth-1-br"));
        assert_eq!((v.sport, v.dport), (Some(1234), Some(53)));
        assert_eq!(
            text(&v),
            "t drop          drop_spoofed on veth-1-br (ns1): udp 10.0.0.99:1234 > 10.0.0.5:53"
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["type"], "drop");
        assert_eq!(json["src"], "10.0.0.99");
        assert!(json.get("translated_src").is_none(), "{json}");

        let mut f = Filter {
            types: vec![EventType::Nat],
            ..Default::default()
        };
        assert!(!f.matches(&v));
        f.types = vec![EventType::Drop];
        assert!(f.matches(&v));
        f.proto = Some(6);
        assert!(!f.matches(&v));
        f.proto = Some(17);
        f.namespace = Some("ns2".into());
        assert!(!f.matches(&v));
    }

    #[test]
    fn nat_events_carry_the_translation_and_exhaustion_is_also_a_drop() {
        let e = Event {
            kind: EVENT_NAT_CREATED,
            program: PROGRAM_NAT_EGRESS,
            ethertype: 0x0800,
            proto: 6,
            saddr: raw([10, 0, 0, 1]),
            daddr: raw([203, 0, 113, 2]),
            sport: 40000u16.to_be(),
            dport: 80u16.to_be(),
            xaddr: raw([203, 0, 113, 1]),
            xport: 20001u16.to_be(),
            ..Default::default()
        };
        let v = view(&v4(e), &names(), "t".into()).unwrap();
        assert_eq!(v.namespace.as_deref(), Some("ns1"));
        assert_eq!(v.translated_sport, Some(20001));
        assert!(text(&v).ends_with("tcp 10.0.0.1:40000 > 203.0.113.2:80 as 203.0.113.1:20001"));

        let ex = Event {
            kind: EVENT_NAT_EXHAUSTED,
            reason: Counter::NatDropNoPort as u32,
            ..e
        };
        let v = view(&v4(ex), &names(), "t".into()).unwrap();
        assert_eq!(v.event_type, EventType::Nat);
        assert_eq!(v.reason, Some("nat_drop_no_port"));
        assert_eq!(v.translated_src, None);
        let drops = Filter {
            types: vec![EventType::Drop],
            ..Default::default()
        };
        assert!(drops.matches(&v));
    }

    fn ip6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    #[test]
    fn ipv6_drops_show_ipv6_addresses_and_icmpv6() {
        let e = Event6 {
            event: Event {
                kind: EVENT_DROP,
                program: PROGRAM_PORT,
                reason: Counter::DropRaGuard as u32,
                ifindex: 5,
                ethertype: ETH_P_IPV6,
                proto: IPPROTO_ICMPV6,
                src_mac: [2, 0, 0, 0, 0, 9],
                dst_mac: [0x33, 0x33, 0, 0, 0, 1],
                // Router Advertisement: type 134, code 0; hop limit 64,
                // flags 0 where an echo has its identifier.
                dport: u16::from_be_bytes([134, 0]).to_be(),
                sport: u16::from_be_bytes([64, 0]).to_be(),
                ..Default::default()
            },
            saddr6: ip6("fe80::4e:aff:fe00:1"),
            daddr6: ip6("ff02::1"),
            ..Default::default()
        };
        let v = view(&e, &names(), "t".into()).unwrap();
        assert_eq!(v.reason, Some("drop_ra_guard"));
        assert_eq!(v.proto.as_deref(), Some("icmpv6"));
        assert_eq!((v.icmp_type, v.icmp_code), (Some(134), Some(0)));
        assert_eq!(v.sport, None, "an RA has no echo identifier");
        assert_eq!(v.namespace.as_deref(), Some("ns1"));
        assert_eq!(
            text(&v),
            "t drop          drop_ra_guard on veth-1-br (ns1): icmpv6 fe80::4e:aff:fe00:1 > ff02::1 icmp type 134 code 0"
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["src"], "fe80::4e:aff:fe00:1");
        assert_eq!(json["dst"], "ff02::1");
        assert_eq!(json["ethertype"], "0x86dd");
        let f = Filter {
            proto: Some(IPPROTO_ICMPV6),
            ..Default::default()
        };
        assert!(f.matches(&v));
    }

    #[test]
    fn nat66_flow_events_name_the_namespace_and_the_translation() {
        let e = Event6 {
            event: Event {
                kind: EVENT_NAT_EXPIRED,
                program: PROGRAM_CONTROL,
                ethertype: ETH_P_IPV6,
                proto: 17,
                sport: 5000u16.to_be(),
                dport: 53u16.to_be(),
                xport: 20001u16.to_be(),
                ..Default::default()
            },
            saddr6: ip6("fd00:10::1"),
            daddr6: ip6("2001:db8:203:113::2"),
            xaddr6: ip6("2001:db8:203:113::1"),
        };
        let v = view(&e, &names(), "t".into()).unwrap();
        assert_eq!(v.event_type, EventType::Nat);
        assert_eq!(v.namespace.as_deref(), Some("ns1"));
        assert!(
            text(&v).ends_with(
                "udp [fd00:10::1]:5000 > [2001:db8:203:113::2]:53 as [2001:db8:203:113::1]:20001"
            ),
            "{}",
            text(&v)
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["translated_src"], "2001:db8:203:113::1");
        assert_eq!(json["translated_sport"], 20001);
    }

    #[test]
    fn answered_solicitations_say_who_asked_for_what() {
        let e = Event6 {
            event: Event {
                kind: EVENT_ND_ANSWERED,
                program: PROGRAM_PORT,
                ifindex: 5,
                ethertype: ETH_P_IPV6,
                proto: IPPROTO_ICMPV6,
                src_mac: [2, 0x4e, 10, 0, 0, 1],
                dst_mac: [2, 0x4e, 10, 0, 0, 2],
                ..Default::default()
            },
            saddr6: ip6("fd00:10::1"),
            daddr6: ip6("fd00:10::2"),
            ..Default::default()
        };
        let v = view(&e, &names(), "t".into()).unwrap();
        assert_eq!(v.event_type, EventType::Nd);
        assert_eq!((v.proto.as_deref(), v.sport), (None, None));
        assert_eq!(
            text(&v),
            "t nd_answered   on veth-1-br (ns1): fd00:10::1 (02:4e:0a:00:00:01) asked who has fd00:10::2: answered 02:4e:0a:00:00:02"
        );
        let f = Filter {
            types: vec![EventType::Nd],
            proto: Some(IPPROTO_ICMPV6),
            ..Default::default()
        };
        assert!(f.matches(&v));
    }
}
