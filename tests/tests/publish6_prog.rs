//! Published IPv6 ports (DNAT66) in the uplink programs under
//! BPF_PROG_TEST_RUN: crafted IPv6 frames in, the verdict and the
//! rewritten frame out, every checksum recomputed from scratch by the
//! IPv6 oracle (`packets::verify_checksums6`, tests/src/packets/checksum6.rs). The first packet to a
//! published port creates both directions of the translation
//! (`nat6_reply`, `nat6_orig`, flagged DNAT); the rest of the client's
//! packets are restored like replies, the service's answers leave with
//! the published address and port, a tuple already taken is never
//! overwritten, and unpublishing drops the port's translations.
//!
//! Each test loads its own copy of the object with its maps pinned in its
//! own directory (removed on drop). No packet leaves the test.

use std::net::Ipv6Addr;

use netlab::bpf::verdict::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TCX_NEXT};
use netlab::nat;
use netlab::plan::{NatPlan, NatTimeouts, PublishedPort6};
use netlab_common::counters::Counter;
use netlab_common::nat::NAT_ENTRY_DNAT;
use netlab_common::nat6::{NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6Entry, Nat6Key};
use netlab_tests::harness::Loaded;
use netlab_tests::packets::*;

const EGRESS: &str = nat::EGRESS_PROGRAM;
const INGRESS: &str = nat::INGRESS_PROGRAM;

const EXTERNAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 1);
const REMOTE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 2);
const OTHER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x203, 0x113, 0, 0, 0, 9);
const NS1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x192, 0x168, 0x28, 0, 0, 0, 1);
const NS2: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x192, 0x168, 0x28, 0, 0, 0, 2);

const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];
const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const INET_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x22];

fn plan() -> NatPlan {
    NatPlan {
        uplink_dev: "uplink".into(),
        subnet: std::net::Ipv4Addr::new(192, 168, 28, 0),
        prefix_len: 24,
        port_min: 40000,
        port_max: 40999,
        max_entries: 4096,
        timeouts: NatTimeouts::default(),
        subnet6: Some("fd00:192:168:28::/64".parse().unwrap()),
    }
}

/// The uplink programs loaded, the NAT (both families) configured, no
/// fast path (so a restored packet goes to the host stack: TC_ACT_OK).
struct Lab6 {
    loaded: Loaded,
}

impl Lab6 {
    fn new(name: &str) -> Self {
        let plan = plan();
        let loaded = Loaded::new("pub6", name, Some(&plan), &[EGRESS, INGRESS]);
        let external4 = std::net::Ipv4Addr::new(203, 0, 113, 1);
        nat::configure(loaded.dir(), &plan, external4, GATEWAY_MAC, false).expect("configure");
        assert!(
            nat::configure6(loaded.dir(), &plan, Some(EXTERNAL6), GATEWAY_MAC, false)
                .expect("configure6"),
            "NAT66 configured"
        );
        Self { loaded }
    }

    fn publish(&self, ports: &[(Option<Ipv6Addr>, u16, u8, Ipv6Addr, u16)]) -> usize {
        let ports: Vec<PublishedPort6> = ports
            .iter()
            .map(
                |&(host_address, host_port, protocol, address, port)| PublishedPort6 {
                    host_address,
                    host_port,
                    protocol,
                    address,
                    port,
                },
            )
            .collect();
        nat::sync_published6(self.loaded.dir(), &ports).expect("sync nat6_publish")
    }

    fn run(&self, prog: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        self.loaded.run_tc(prog, frame, None).expect("test run")
    }

    fn counter(&self, c: Counter) -> u64 {
        self.loaded.counter(c)
    }

    /// Every entry of a NAT66 map.
    fn entries(&self, map: &str) -> Vec<(Nat6Key, Nat6Entry)> {
        let map = self.loaded.ebpf().map(map).expect("the map");
        let hash: aya::maps::HashMap<_, Nat6Key, Nat6Entry> =
            aya::maps::HashMap::try_from(map).expect("a hash map");
        hash.iter().map(|e| e.expect("an entry")).collect()
    }
}

/// A frame arriving on the uplink from the internet side.
fn in_frame(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    frame6(UPLINK_MAC, INET_MAC, &ipv6_packet(src, dst, proto, l4))
}

/// A frame leaving through the uplink (routed by the host stack).
fn out_frame(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    frame6(INET_MAC, UPLINK_MAC, &ipv6_packet(src, dst, proto, l4))
}

fn syn_in(sport: u16, dport: u16) -> Vec<u8> {
    in_frame(
        REMOTE6,
        EXTERNAL6,
        PROTO_TCP,
        &tcp6(REMOTE6, EXTERNAL6, sport, dport, TCP_SYN, b""),
    )
}

/// Runs the ingress on `frame`, expects it restored (TC_ACT_OK, to the
/// host stack) with correct checksums; the packet as it left.
fn restored(lab: &Lab6, frame: &[u8]) -> Ipv6View {
    let (verdict, out) = lab.run(INGRESS, frame);
    assert_eq!(verdict, TC_ACT_OK, "ingress verdict");
    assert_eq!(out.len(), frame.len());
    verify_checksums6(&out).unwrap_or_else(|e| panic!("ingress output: {e}"))
}

/// Runs the egress on `frame`, expects it translated with correct
/// checksums; the packet as it left.
fn translated(lab: &Lab6, frame: &[u8]) -> Ipv6View {
    let (verdict, out) = lab.run(EGRESS, frame);
    assert_eq!(verdict, TC_ACT_OK, "egress verdict");
    assert_eq!(out.len(), frame.len());
    verify_checksums6(&out).unwrap_or_else(|e| panic!("egress output: {e}"))
}

#[test]
fn the_first_packet_creates_the_translation_and_the_reply_is_restored() {
    let lab = Lab6::new("first");
    assert_eq!(
        lab.publish(&[(None, 8080, 6, NS1, 80), (None, 5353, 17, NS2, 53)]),
        0
    );

    // In: the client's SYN to the published port reaches NS1:80 with its
    // source untouched (the service sees the real client).
    let ip = restored(&lab, &syn_in(40123, 8080));
    assert_eq!((ip.src, ip.sport_or_id()), (REMOTE6, 40123));
    assert_eq!((ip.dst, ip.dport()), (NS1, 80));
    assert_eq!(lab.counter(Counter::DnatCreated), 1);
    // Both directions are in the maps, flagged DNAT.
    let replies = lab.entries(NAT6_REPLY_MAP);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let (k, v) = replies[0];
    assert_eq!((k.saddr, k.daddr), (REMOTE6.octets(), EXTERNAL6.octets()));
    assert_eq!((v.addr, u16::from_be(v.port)), (NS1.octets(), 80));
    assert_ne!(v.flags & NAT_ENTRY_DNAT, 0);
    let origs = lab.entries(NAT6_ORIG_MAP);
    assert_eq!(origs.len(), 1, "{origs:?}");
    assert_eq!(origs[0].0, k.orig_key(&v));
    assert_eq!(
        (origs[0].1.addr, u16::from_be(origs[0].1.port)),
        (EXTERNAL6.octets(), 8080)
    );

    // The rest of the flow: the next client packet finds the translation
    // (no second creation).
    let ack = in_frame(
        REMOTE6,
        EXTERNAL6,
        PROTO_TCP,
        &tcp6(REMOTE6, EXTERNAL6, 40123, 8080, TCP_ACK, b"GET /"),
    );
    let ip = restored(&lab, &ack);
    assert_eq!((ip.dst, ip.dport()), (NS1, 80));
    assert_eq!(lab.counter(Counter::DnatCreated), 1);

    // Out: the service's answer leaves with the published address and
    // port, to the client as it was.
    let answer = out_frame(
        NS1,
        REMOTE6,
        PROTO_TCP,
        &tcp6(NS1, REMOTE6, 80, 40123, TCP_SYN | TCP_ACK, b""),
    );
    let x = translated(&lab, &answer);
    assert_eq!((x.src, x.sport_or_id()), (EXTERNAL6, 8080));
    assert_eq!((x.dst, x.dport()), (REMOTE6, 40123));
    assert_eq!(lab.counter(Counter::NatCreated), 0, "no SNAT was involved");

    // UDP, to the other namespace, both ways.
    let query = in_frame(
        REMOTE6,
        EXTERNAL6,
        PROTO_UDP,
        &udp6(REMOTE6, EXTERNAL6, 5000, 5353, b"query"),
    );
    let q = restored(&lab, &query);
    assert_eq!((q.src, q.dst, q.dport()), (REMOTE6, NS2, 53));
    let reply = out_frame(
        NS2,
        REMOTE6,
        PROTO_UDP,
        &udp6(NS2, REMOTE6, 53, 5000, b"answer"),
    );
    let x = translated(&lab, &reply);
    assert_eq!((x.src, x.sport_or_id(), x.dport()), (EXTERNAL6, 5353, 5000));
    assert_eq!(lab.counter(Counter::DnatCreated), 2);

    // Unpublished: both translations of both ports go, and the next
    // packet is the host's, untouched.
    assert_eq!(lab.publish(&[]), 2);
    assert!(lab.entries(NAT6_REPLY_MAP).is_empty());
    assert!(lab.entries(NAT6_ORIG_MAP).is_empty());
    let (verdict, out) = lab.run(INGRESS, &query);
    assert_eq!((verdict, out), (TCX_NEXT, query.clone()));
}

#[test]
fn a_published_address_is_matched_before_every_address() {
    let lab = Lab6::new("addr");
    // 8080 on every address leads to NS1, on one other address to NS2:
    // the exact address wins for packets to it.
    lab.publish(&[(None, 8080, 6, NS1, 80), (Some(OTHER6), 8080, 6, NS2, 81)]);
    let ip = restored(&lab, &syn_in(40001, 8080));
    assert_eq!((ip.dst, ip.dport()), (NS1, 80));
    // A packet to OTHER6 is not to the NAT's external address: the host's
    // (the uplink ingress translates the external address only).
    let other = in_frame(
        REMOTE6,
        OTHER6,
        PROTO_TCP,
        &tcp6(REMOTE6, OTHER6, 40002, 8080, TCP_SYN, b""),
    );
    let (verdict, out) = lab.run(INGRESS, &other);
    assert_eq!((verdict, out), (TCX_NEXT, other.clone()));
    // Only on the external address: published there, reaches NS2.
    lab.publish(&[(Some(EXTERNAL6), 9090, 6, NS2, 81)]);
    let ip = restored(&lab, &syn_in(40003, 9090));
    assert_eq!((ip.dst, ip.dport()), (NS2, 81));
    // A port nobody published: the host's, untouched.
    let (verdict, _) = lab.run(INGRESS, &syn_in(40004, 7777));
    assert_eq!(verdict, TCX_NEXT);
    assert_eq!(lab.counter(Counter::DnatCreated), 2);
}

#[test]
fn a_published_port_never_overwrites_a_masqueraded_flow() {
    let lab = Lab6::new("clash");
    lab.publish(&[(None, 8080, 6, NS1, 80)]);
    // NS1 talks from port 80 to the client's port 40999 (masqueraded)...
    let out = out_frame(
        NS1,
        REMOTE6,
        PROTO_TCP,
        &tcp6(NS1, REMOTE6, 80, 40999, TCP_SYN, b""),
    );
    let x = translated(&lab, &out);
    assert_eq!(x.src, EXTERNAL6);
    assert_eq!(lab.counter(Counter::NatCreated), 1);
    // ...so a client connection from 40999 to the published port would
    // take over that tuple: dropped and counted instead.
    let (verdict, _) = lab.run(INGRESS, &syn_in(40999, 8080));
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::DnatDropConflict), 1);
    assert_eq!(lab.counter(Counter::DnatCreated), 0);
    // The masqueraded flow keeps its entries.
    assert_eq!(lab.entries(NAT6_ORIG_MAP).len(), 1);
    // Another client port is fine.
    let ip = restored(&lab, &syn_in(41000, 8080));
    assert_eq!((ip.dst, ip.dport()), (NS1, 80));
}

#[test]
fn a_published_flow_takes_the_fast_path_into_the_endpoint() {
    let plan = plan();
    let mut loaded = Loaded::new("pub6", "fast", Some(&plan), &[EGRESS, INGRESS]);
    nat::configure(
        loaded.dir(),
        &plan,
        std::net::Ipv4Addr::new(203, 0, 113, 1),
        GATEWAY_MAC,
        true,
    )
    .unwrap();
    nat::configure6(loaded.dir(), &plan, Some(EXTERNAL6), GATEWAY_MAC, true).unwrap();
    // NS1 behind a switch port: the restored packet goes straight there.
    let ns1_mac = [0x02, 0, 0, 0, 0, 0x01];
    {
        let map = loaded.ebpf_mut().map_mut("endpoints6").expect("endpoints6");
        let mut hash: aya::maps::HashMap<_, [u8; 16], netlab_common::switch::Endpoint> =
            aya::maps::HashMap::try_from(map).unwrap();
        let ep = netlab_common::switch::Endpoint {
            mac: ns1_mac,
            _pad: [0; 2],
            port_ifindex: 1,
        };
        hash.insert(NS1.octets(), ep, 0).unwrap();
    }
    let lab = Lab6 { loaded };
    lab.publish(&[(None, 8080, 6, NS1, 80)]);
    let frame = syn_in(40123, 8080);
    let (verdict, out) = lab.run(INGRESS, &frame);
    assert_eq!(verdict, TC_ACT_REDIRECT);
    let ip = verify_checksums6(&out).unwrap();
    assert_eq!((ip.dst, ip.dport(), ip.hop_limit), (NS1, 80, 63));
    assert_eq!(&out[0..12], &[ns1_mac, GATEWAY_MAC].concat()[..]);
    assert_eq!(lab.counter(Counter::NatFastPath), 1);
}

#[test]
fn icmpv6_errors_about_a_published_flow_are_translated_both_ways() {
    let lab = Lab6::new("icmp");
    lab.publish(&[(None, 5353, 17, NS2, 53)]);
    let router = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
    let query = in_frame(
        REMOTE6,
        EXTERNAL6,
        PROTO_UDP,
        &udp6(REMOTE6, EXTERNAL6, 5000, 5353, b"query"),
    );
    let as_received = restored(&lab, &query).packet;

    // Out: NS2 says "port unreachable" about the datagram as it got it;
    // the error leaves from the external address quoting the datagram as
    // the client sent it.
    let unreachable = out_frame(
        NS2,
        REMOTE6,
        PROTO_ICMPV6,
        &icmp6_error(NS2, REMOTE6, ICMP6_DEST_UNREACH, 4, 0, &as_received),
    );
    let e = translated(&lab, &unreachable);
    assert_eq!((e.src, e.dst), (EXTERNAL6, REMOTE6));
    assert_eq!(&e.l4()[8..], &query[14..], "quoted as the client sent it");

    // In: a router beyond the uplink says "too big" about NS2's answer as
    // it left (from the published address): NS2 gets it, quoting its
    // answer as it sent it.
    let answer = out_frame(
        NS2,
        REMOTE6,
        PROTO_UDP,
        &udp6(NS2, REMOTE6, 53, 5000, b"answer"),
    );
    let as_sent_out = translated(&lab, &answer).packet;
    let too_big = in_frame(
        router,
        EXTERNAL6,
        PROTO_ICMPV6,
        &icmp6_error(
            router,
            EXTERNAL6,
            ICMP6_PACKET_TOO_BIG,
            0,
            1280,
            &as_sent_out,
        ),
    );
    let r = restored(&lab, &too_big);
    assert_eq!((r.src, r.dst), (router, NS2));
    assert_eq!(&r.l4()[8..], &answer[14..], "quoted as NS2 sent it");
    assert!(lab.counter(Counter::NatIcmpError) >= 2);
}
