//! The NAT66 program tests' lab: addresses, the plan, one loaded copy of
//! the object ([`Nat6Lab`]) and the frames the tests send.

pub(crate) use std::net::Ipv6Addr;

pub(crate) use netlab::{
    bpf::verdict::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TCX_NEXT},
    nat,
    plan::{NatPlan, NatTimeouts},
};
pub(crate) use netlab_common::{counters::Counter, nat6::Nat6Key};
pub(crate) use netlab_tests::{harness::Loaded, packets::*};

use aya::maps::HashMap as BpfHashMap;
use netlab_common::{nat6::Nat6Entry, switch::Endpoint};

pub(crate) const EGRESS: &str = nat::EGRESS_PROGRAM;
pub(crate) const INGRESS: &str = nat::INGRESS_PROGRAM;
pub(crate) const UPLINK_XDP: &str = netlab::datapath::xdp::UPLINK_XDP_PROGRAM;

pub(crate) fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

pub(crate) const SUBNET6: &str = "fd00:192:168:28::/64";
pub(crate) fn ns1() -> Ipv6Addr {
    a6("fd00:192:168:28::1")
}
pub(crate) fn ns2() -> Ipv6Addr {
    a6("fd00:192:168:28::2")
}
pub(crate) fn external() -> Ipv6Addr {
    a6("2001:db8:203:113::1")
}
pub(crate) fn remote() -> Ipv6Addr {
    a6("2001:db8:ffff::2")
}
/// A router beyond the uplink (the source of ICMPv6 errors).
pub(crate) fn router() -> Ipv6Addr {
    a6("2001:db8:99::9")
}

pub(crate) const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];
pub(crate) const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
pub(crate) const INET_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x22];
pub(crate) const NS1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

pub(crate) const PORT_MIN: u16 = 40000;
pub(crate) const PORT_MAX: u16 = 40999;

pub(crate) fn plan(port_min: u16, port_max: u16) -> NatPlan {
    NatPlan {
        uplink_dev: "uplink".into(),
        subnet: std::net::Ipv4Addr::new(192, 168, 28, 0),
        prefix_len: 24,
        port_min,
        port_max,
        max_entries: 4096,
        timeouts: NatTimeouts::default(),
        subnet6: Some(SUBNET6.parse().unwrap()),
    }
}

/// A NAT66 map's entries.
pub(crate) type Entries = Vec<(Nat6Key, Nat6Entry)>;

/// One loaded object with its pins, NAT and NAT66 configured as the
/// installer configures them.
pub(crate) struct Nat6Lab {
    pub(crate) loaded: Loaded,
}

impl Nat6Lab {
    pub(crate) fn new(name: &str) -> Self {
        Self::with_plan(name, &plan(PORT_MIN, PORT_MAX))
    }

    pub(crate) fn with_plan(name: &str, plan: &NatPlan) -> Self {
        let mut loaded = Loaded::empty("nat6", name);
        loaded.load(Some(plan), &[EGRESS, INGRESS, UPLINK_XDP]);
        let dir = loaded.dir().to_path_buf();
        nat::configure(
            &dir,
            plan,
            std::net::Ipv4Addr::new(203, 0, 113, 1),
            GATEWAY_MAC,
            true,
        )
        .expect("configure");
        assert_eq!(
            nat::configure6(&dir, plan, Some(external()), GATEWAY_MAC, true).expect("configure6"),
            plan.subnet6.is_some(),
            "NAT66 on exactly when the plan has subnet6"
        );
        Nat6Lab { loaded }
    }

    pub(crate) fn run(&self, prog: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        self.loaded.run_tc(prog, frame, None).expect("test run")
    }

    /// Every counter, for [`Nat6Lab::assert_moved`].
    /// Runs the uplink XDP program on `frame`: its verdict.
    pub(crate) fn run_xdp(&self, frame: &[u8]) -> u32 {
        self.loaded
            .run_xdp(UPLINK_XDP, frame, None)
            .expect("test run")
            .0
    }

    pub(crate) fn counters(&self) -> Vec<u64> {
        self.loaded.counters()
    }

    /// Asserts that between `before` and now exactly `expected` counters
    /// moved, by those amounts.
    pub(crate) fn assert_moved(&self, before: &[u64], expected: &[(Counter, u64)]) {
        let moved = netlab_tests::harness::moved(before, &self.counters());
        let mut want: Vec<(&str, u64)> = expected.iter().map(|(c, n)| (c.name(), *n)).collect();
        want.sort();
        let mut got = moved.clone();
        got.sort();
        assert_eq!(got, want, "counters moved");
    }

    /// Lists `addr` in `endpoints6` behind port `ifindex` (the switch's
    /// table, the fast path's too).
    pub(crate) fn set_endpoint6(&self, addr: Ipv6Addr, mac: [u8; 6], ifindex: u32) {
        let path = self.loaded.dir().join(netlab_common::maps::ENDPOINTS6_MAP);
        let data = aya::maps::MapData::from_pin(&path).expect("endpoints6 pin");
        let mut map = aya::maps::Map::HashMap(data);
        let mut h: BpfHashMap<&mut aya::maps::MapData, [u8; 16], Endpoint> =
            BpfHashMap::try_from(&mut map).expect("endpoints6");
        h.insert(
            addr.octets(),
            Endpoint {
                mac,
                _pad: [0; 2],
                port_ifindex: ifindex,
            },
            0,
        )
        .expect("endpoints6 insert");
    }

    /// The `nat6_orig` and `nat6_reply` entries.
    pub(crate) fn entries(&self) -> (Entries, Entries) {
        let read = |name: &str| {
            let data = aya::maps::MapData::from_pin(self.loaded.dir().join(name)).unwrap();
            let map = aya::maps::Map::LruHashMap(data);
            let h: BpfHashMap<&aya::maps::MapData, Nat6Key, Nat6Entry> =
                BpfHashMap::try_from(&map).unwrap();
            h.iter().map(Result::unwrap).collect::<Vec<_>>()
        };
        (
            read(netlab_common::nat6::NAT6_ORIG_MAP),
            read(netlab_common::nat6::NAT6_REPLY_MAP),
        )
    }
}

/// A frame leaving through the uplink.
pub(crate) fn out6(packet: &[u8]) -> Vec<u8> {
    frame6(INET_MAC, UPLINK_MAC, packet)
}

/// A frame arriving on the uplink.
pub(crate) fn in6(packet: &[u8]) -> Vec<u8> {
    frame6(UPLINK_MAC, INET_MAC, packet)
}

pub(crate) fn tcp_out(src: Ipv6Addr, sport: u16, flags: u8) -> Vec<u8> {
    out6(&ipv6_packet(
        src,
        remote(),
        PROTO_TCP,
        &tcp6(src, remote(), sport, 80, flags, b"GET /"),
    ))
}

pub(crate) fn tcp_in(dport: u16, flags: u8) -> Vec<u8> {
    in6(&ipv6_packet(
        remote(),
        external(),
        PROTO_TCP,
        &tcp6(remote(), external(), 80, dport, flags, b"HTTP/1.1"),
    ))
}

/// Runs egress on `frame`: translated, checksums right, same length, the
/// external address as source.
pub(crate) fn translate_ok(lab: &Nat6Lab, frame: &[u8]) -> Ipv6View {
    let (verdict, out) = lab.run(EGRESS, frame);
    assert_eq!(verdict, TC_ACT_OK, "egress verdict");
    assert_eq!(out.len(), frame.len());
    let v = verify_checksums6(&out).unwrap_or_else(|e| panic!("egress output: {e}"));
    assert_eq!(v.src, external(), "source must be the external address");
    v
}
