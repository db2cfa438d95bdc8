//! The NAT programs fuzzed with IPv6 frames (NAT66): the same programs as
//! the IPv4 cases (`nat.rs` interleaves the two families in one run, so
//! each family's traffic also meets the other's state), the IPv6 maps,
//! the NAT66 model (`nat6_model`) and the uplink XDP filter's agreement.

use crate::{common::*, nat_lab::*, nat6_check::*};

pub(crate) const EGRESS6: &str = "netlab_uplink_egress (IPv6)";
pub(crate) const INGRESS6: &str = "netlab_uplink_ingress (IPv6)";
pub(crate) const XDP6: &str = "netlab_uplink_xdp (IPv6)";

/// Whether this build's NAT programs do NAT66 at all: the kernel's record
/// of the maps the egress program uses names the NAT66 table (so that a
/// build without it fails, saying so, rather than passing IPv6 through).
pub(crate) fn nat66_in_programs(lab: &NatLab) -> bool {
    lab.loaded
        .program_uses_map(nat::EGRESS_PROGRAM, NAT6_ORIG_MAP)
}

/// What the generator knows of the NAT66 state, refreshed when it moves.
#[derive(Default)]
pub(crate) struct Nat6State {
    pub(crate) known: Vec<Translation6>,
    pub(crate) datagrams: Vec<Nat6FragKey>,
    n_orig: i64,
    n_reply: i64,
    n_frags: i64,
}

impl NatLab {
    /// NAT66 on, for the fuzzer's IPv6 addresses, with the fast path and
    /// its one endpoint in `endpoints6`, written as the control plane does.
    pub(crate) fn configure6(&mut self) {
        let cfg = Nat6Config {
            subnet: frames6::SUBNET6.octets(),
            external: frames6::EXTERNAL6.octets(),
            prefix_len: frames6::PREFIX6_LEN,
            _pad: 0,
            port_min: frames::PORT_MIN,
            port_max: frames::PORT_MAX,
            gateway_mac: frames::GATEWAY_MAC,
            flags: NAT_FLAG_ENABLED | NAT_FLAG_FAST_PATH,
        };
        let mut config: aya::maps::Array<_, Nat6Config> =
            aya::maps::Array::try_from(self.ebpf_mut().map_mut(NAT6_CONFIG_MAP).unwrap()).unwrap();
        config.set(0, cfg, 0).expect("nat6_config");
        let mut endpoints: HashMap<_, [u8; 16], Endpoint> =
            HashMap::try_from(self.ebpf_mut().map_mut(ENDPOINTS6_MAP).unwrap()).unwrap();
        let e = Endpoint {
            mac: frames::FAST_PATH_MAC,
            _pad: [0; 2],
            port_ifindex: frames::FAST_PATH_IFINDEX,
        };
        endpoints
            .insert(frames6::FAST_PATH_HOST6.octets(), e, 0)
            .expect("endpoints6");
    }

    fn map6<K: aya::Pod, V: aya::Pod>(&self, name: &str) -> HashMap<&aya::maps::MapData, K, V> {
        HashMap::try_from(self.ebpf().map(name).expect(name)).unwrap()
    }

    pub(crate) fn lookup6(&self, name: &str, key: &Nat6Key) -> Option<Nat6Entry> {
        self.map6(name).get(key, 0).ok()
    }

    pub(crate) fn entries6(&self, name: &str) -> Vec<(Nat6Key, Nat6Entry)> {
        self.map6(name).iter().map(|r| r.expect(name)).collect()
    }

    pub(crate) fn frag_lookup6(&self, key: &Nat6FragKey) -> Option<Nat6FragEntry> {
        self.map6(NAT6_FRAGS_MAP).get(key, 0).ok()
    }

    pub(crate) fn frag_entries6(&self) -> Vec<(Nat6FragKey, Nat6FragEntry)> {
        self.map6(NAT6_FRAGS_MAP)
            .iter()
            .map(|r| r.expect("nat6_frags"))
            .collect()
    }

    fn clear6<K: aya::Pod, V: aya::Pod>(&mut self, name: &str) {
        let keys: Vec<K> = self
            .map6::<K, V>(name)
            .keys()
            .map(|k| k.expect(name))
            .collect();
        let mut map: HashMap<_, K, V> =
            HashMap::try_from(self.ebpf_mut().map_mut(name).unwrap()).unwrap();
        for k in keys {
            map.remove(&k).expect(name);
        }
    }
}

impl Nat6State {
    /// Re-reads the translations and datagrams after a case moved them;
    /// empties the maps beyond [`MAX_FLOWS`].
    fn refresh(&mut self, lab: &mut NatLab, orig: i64, reply: i64, frags: i64) {
        if (orig, reply) != (self.n_orig, self.n_reply) {
            if orig as usize > MAX_FLOWS {
                lab.clear6::<Nat6Key, Nat6Entry>(NAT6_ORIG_MAP);
                lab.clear6::<Nat6Key, Nat6Entry>(NAT6_REPLY_MAP);
            }
            let orig = lab.entries6(NAT6_ORIG_MAP);
            self.known = orig
                .iter()
                .map(|(k, v)| nat6_model::translation_of6(k, v.port))
                .collect();
            self.n_orig = orig.len() as i64;
            self.n_reply = lab.entries6(NAT6_REPLY_MAP).len() as i64;
        }
        if frags != self.n_frags {
            if frags as usize > MAX_FLOWS {
                lab.clear6::<Nat6FragKey, Nat6FragEntry>(NAT6_FRAGS_MAP);
            }
            self.datagrams = lab.frag_entries6().into_iter().map(|(k, _)| k).collect();
            self.n_frags = self.datagrams.len() as i64;
        }
    }
}

/// One IPv6 case: the model's expectation resolved against the maps, the
/// XDP filter (ingress), the TC program, the checks. Failures are pushed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn case6(
    lab: &mut NatLab,
    st: &mut Nat6State,
    dir: Dir,
    frame: &[u8],
    origin: &str,
    index: u64,
    counters: &mut Vec<u64>,
    tallies: &mut BTreeMap<&'static str, Tally>,
    failures: &mut Vec<Failure>,
) {
    let (program, name) = match dir {
        Dir::Egress => (nat::EGRESS_PROGRAM, EGRESS6),
        Dir::Ingress => (nat::INGRESS_PROGRAM, INGRESS6),
    };
    let map_of_dir = if dir == Dir::Egress {
        NAT6_ORIG_MAP
    } else {
        NAT6_REPLY_MAP
    };
    let mut expect = nat6_model::expect6(dir, frame);
    let found = match expect {
        Expect6::Translate { key, .. } => lab.lookup6(NAT6_ORIG_MAP, &key),
        Expect6::Reverse { key, .. } | Expect6::IcmpError { key, .. } => {
            lab.lookup6(map_of_dir, &key)
        }
        Expect6::LaterFragment { key } => lab.frag_lookup6(&key).map(|e| Nat6Entry {
            addr: e.addr,
            ..Default::default()
        }),
        _ => None,
    };
    match expect {
        Expect6::Reverse { .. } if found.is_none() => expect = Expect6::Pass,
        Expect6::IcmpError { .. } if found.is_none() => expect = nat6_model::not_ours6(dir),
        Expect6::LaterFragment { .. } if found.is_none() => {
            expect = nat6_model::fragment_not_tracked6(dir)
        }
        _ => {}
    }
    let frag_key = match expect {
        Expect6::Translate { frag, .. } | Expect6::Reverse { frag, .. } => frag,
        Expect6::LaterFragment { key } => Some(key),
        _ => None,
    };
    let frag_before = frag_key.and_then(|k| lab.frag_lookup6(&k));
    let mut fail = |program: &'static str, problems: Vec<String>| {
        failures.push(Failure {
            program,
            index,
            origin: origin.to_string(),
            frame: frame.to_vec(),
            problems,
        });
    };

    if dir == Dir::Ingress {
        let tally = tallies.entry(XDP6).or_default();
        let problems = check_xdp6(lab, frame, &expect, counters, tally);
        tally.cases += 1;
        if !problems.is_empty() {
            tally.failures += 1;
            fail(XDP6, problems);
        }
    }
    let result = lab.run(program, frame);
    let after = lab.counters();
    let orig_now = lab.entries6(NAT6_ORIG_MAP).len() as i64;
    let reply_now = lab.entries6(NAT6_REPLY_MAP).len() as i64;
    let frags_now = lab.frag_entries6().len() as i64;
    let seen = Observed6 {
        result,
        counter_delta: after
            .iter()
            .zip(counters.iter())
            .map(|(a, b)| *a as i64 - *b as i64)
            .collect(),
        orig_delta: orig_now - st.n_orig,
        reply_delta: reply_now - st.n_reply,
        frag_delta: frags_now - st.n_frags,
        frag_before,
        frag_after: frag_key.and_then(|k| lab.frag_lookup6(&k)),
    };
    *counters = after;
    let tally = tallies.entry(name).or_default();
    tally.cases += 1;
    let problems = check_nat6_case(lab, dir, frame, expect, found, &seen, tally);
    if !problems.is_empty() {
        tally.failures += 1;
        fail(name, problems);
    }
    st.refresh(lab, orig_now, reply_now, frags_now);
}

/// Runs the egress program on one IPv6 packet from the lab and returns the
/// verdict, whether the frame changed, and the counters that moved.
fn egress_once(name: &str, packet: &[u8]) -> (u32, bool, Vec<(&'static str, u64)>) {
    let mut lab = NatLab::new(name);
    assert!(nat66_in_programs(&lab), "this build does no NAT66");
    lab.configure6();
    let frame = packets::ipv6_frame_of(frames::INET_MAC, frames::UPLINK_MAC, packet);
    let before = lab.counters();
    let (verdict, out) = lab.run(nat::EGRESS_PROGRAM, &frame).expect("test run");
    let moved = netlab_tests::harness::moved(&before, &lab.counters());
    (verdict, out != frame, moved)
}

/// Found by the fuzzer (seed 0x6e65746c6162, egress case 3304): a lab
/// packet to a multicast or link-local destination was translated (a
/// NAT66 entry created, the source rewritten); the rule is that
/// link-local and multicast are never translated on the uplink.
#[test]
fn nat66_never_translates_a_lab_packet_to_multicast_or_link_local() {
    use netlab_tests::packets::{Ipv6Header, PROTO_UDP, ipv6_with, udp6};
    let lab_host = frames6::LAB_HOSTS6[2];
    for dst in [frames6::ALL_NODES, frames6::UPLINK_LL] {
        let p = ipv6_with(
            &Ipv6Header::new(lab_host, dst),
            PROTO_UDP,
            &udp6(lab_host, dst, 40269, 53, b"q"),
        );
        let (verdict, changed, moved) = egress_once("scope6", &p);
        assert!(
            !changed
                && !moved
                    .iter()
                    .any(|(c, _)| *c == "nat_created" || *c == "nat_hit"),
            "{dst}: translated (verdict {verdict}, counters {moved:?})"
        );
    }
}

/// Found by the fuzzer (seed 0x6e65746c6162, egress case 5845): a lab
/// packet of a protocol NAT66 does not translate, with fewer than 8 bytes
/// after its headers, was counted malformed; it is an unknown protocol
/// (nothing of it needs reading), as for IPv4.
#[test]
fn nat66_a_short_unknown_protocol_from_the_lab_is_unknown_not_malformed() {
    use netlab_tests::packets::{Ipv6Header, ipv6_with};
    let (src, dst) = (frames6::LAB_HOSTS6[0], frames6::REMOTES6[0]);
    let p = ipv6_with(&Ipv6Header::new(src, dst), 253, &[0xab; 6]);
    let (verdict, _, moved) = egress_once("proto6", &p);
    assert_eq!(
        (verdict, moved),
        (TC_ACT_SHOT, vec![("nat_drop_unknown_proto", 1)])
    );
}

/// Found by the fuzzer (seed 0x6e65746c6162, ingress case 5846): the
/// uplink XDP filter dropped an IPv6-EtherType frame whose version is not
/// 6 as a lab source (or unsolicited) where the TC ingress counts it
/// malformed; the filter drops for the TC ingress's reason.
#[test]
fn nat66_xdp_counts_a_version_other_than_6_as_the_tc_ingress_does() {
    use netlab_tests::packets::{Ipv6Header, PROTO_UDP, ipv6_frame_of, ipv6_with, udp6};
    let mut lab = NatLab::new("xdpver6");
    lab.configure6();
    let (src, dst) = (frames6::LAB_HOSTS6[1], frames6::EXTERNAL6);
    let mut p = ipv6_with(
        &Ipv6Header::new(src, dst),
        PROTO_UDP,
        &udp6(src, dst, 53, 40000, b"q"),
    );
    p[0] = 0x40; // version 4
    let frame = ipv6_frame_of(frames::UPLINK_MAC, frames::INET_MAC, &p);
    let before = lab.counters();
    let (verdict, _) = lab.run_xdp(&frame).expect("XDP test run");
    let moved = netlab_tests::harness::moved(&before, &lab.counters());
    assert_eq!(
        (verdict, moved),
        (XDP_DROP, vec![(Counter::XdpDropMalformed.name(), 1)])
    );
}
