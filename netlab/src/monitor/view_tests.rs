//! Tests of `monitor/view.rs`: how events are shown.

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
