//! The IPv6 generators reach every rule of the models they feed: a run of
//! the fuzzer whose frames never met a rule would prove nothing about it.
//! And every valid IPv6 frame they build is right by the oracle.

use std::collections::BTreeSet;

use netlab_common::nat::NAT_FRAG_OUT;
use netlab_common::nat6::Nat6FragKey;

use super::Rng;
use super::frames::Dir;
use super::frames6::{LAB_HOSTS6, REMOTES6, Translation6, valid_frame6};
use super::mutate::mutate;
use super::nat6_model::{Expect6, expect6};
use super::switch_frames6::ipv6_case;
use super::switch_model6::{HOST_ADDRS6, V6Verdict, example_tables, expect6 as switch_expect6};
use crate::packets::*;

const IP: usize = 14;

#[test]
fn the_switch_generator_reaches_every_rule() {
    let (ports, mut t) = example_tables();
    t.host_addrs6 = HOST_ADDRS6.to_vec();
    let mut seen = BTreeSet::new();
    for i in 0..6000 {
        let mut rng = Rng::for_case(1, 9, i);
        let from = ports[rng.below(3)];
        let to = *rng.pick(&ports);
        let (mut f, _) = ipv6_case(&mut rng, &from, &to, from.mac);
        if rng.chance(40) {
            crate::fuzz::mutate::mutate(&mut rng, &mut f);
        }
        if f.len() < IP + 40 || f[12..14] != ETH_P_IPV6.to_be_bytes() {
            continue;
        }
        seen.insert(match switch_expect6(&from, &f, IP, &t) {
            V6Verdict::Answer { .. } => "Answer".to_string(),
            other => format!("{other:?}"),
        });
    }
    for want in [
        "Drop(DropSpoofed)",
        "Drop(DropRaGuard)",
        "Drop(DropNdSpoof)",
        "Drop(DropIpv6Malformed)",
        "Drop(DropTruncated)",
        "Forward { to_host_addr: true }",
        "Forward { to_host_addr: false }",
    ] {
        assert!(seen.contains(want), "{want} never met: {seen:?}");
    }
    assert!(seen.contains("Answer"), "{seen:?}");
}

#[test]
fn the_nat66_generator_reaches_every_rule() {
    let known: Vec<Translation6> = [PROTO_TCP, PROTO_UDP, PROTO_ICMPV6]
        .iter()
        .enumerate()
        .map(|(i, &proto)| Translation6 {
            proto,
            lab: LAB_HOSTS6[i],
            lab_port: 1111,
            remote: REMOTES6[i],
            remote_port: if proto == PROTO_ICMPV6 { 0 } else { 80 },
            external_port: 40000 + i as u16,
        })
        .collect();
    let datagrams = [Nat6FragKey {
        saddr: LAB_HOSTS6[0].octets(),
        daddr: REMOTES6[0].octets(),
        id: 5u32.to_be(),
        proto: PROTO_UDP,
        dir: NAT_FRAG_OUT,
        _pad: [0; 2],
    }];
    let mut seen = BTreeSet::new();
    for i in 0..8000 {
        let mut rng = Rng::for_case(2, 9, i);
        let dir = if rng.chance(50) {
            Dir::Egress
        } else {
            Dir::Ingress
        };
        let (mut f, what) = valid_frame6(&mut rng, dir, &known, &datagrams);
        // Every valid frame but a jumbogram (payload length 0) is
        // right by the oracle.
        if f[18..20] != [0, 0] {
            verify_checksums6(&f).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        if rng.chance(50) {
            mutate(&mut rng, &mut f);
        }
        if f.len() < IP + 40 || f[12..14] != ETH_P_IPV6.to_be_bytes() {
            continue;
        }
        let e = expect6(dir, &f);
        let name = match e {
            Expect6::Drop(c) => format!("Drop({c:?})"),
            Expect6::Translate { frag: Some(_), .. } => "Translate first fragment".into(),
            other => format!("{other:?}")
                .split([' ', '('])
                .next()
                .unwrap()
                .to_string(),
        };
        seen.insert(format!("{dir:?} {name}"));
    }
    for want in [
        "Egress Translate",
        "Egress Translate first fragment",
        "Egress IcmpError",
        "Egress LaterFragment",
        "Egress Pass",
        "Egress Drop(NatDropExtHeaders)",
        "Egress Drop(NatDropMalformed)",
        "Egress Drop(NatDropUnknownProto)",
        "Ingress Reverse",
        "Ingress IcmpError",
        "Ingress Pass",
        "Ingress Drop(NatDropLabSource)",
        "Ingress Drop(NatDropUnsolicited)",
        "Ingress Drop(NatDropExtHeaders)",
        "Ingress Drop(NatDropMalformed)",
    ] {
        assert!(seen.contains(want), "{want} never met: {seen:?}");
    }
}
