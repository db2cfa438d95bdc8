//! The made-up lab both port programs run in, and the frames and
//! expectations the cases share.

pub use std::net::Ipv6Addr;

pub use aya::maps::DevMapHash;
pub use netlab::{
    bpf::{
        loader::PORT_PROGRAM,
        maps::SwitchMaps,
        maps6::{HostAddrs6, SwitchMaps6},
        verdict::{TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_DROP, XDP_PASS, XDP_REDIRECT},
    },
    datapath::xdp::PORT_XDP_PROGRAM,
    names::link_local_for,
};
pub use netlab_common::{
    counters::Counter,
    maps::XDP_PORTS_MAP,
    switch::{HOST_ADDR_LOCAL, PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, Port6},
};
pub use netlab_tests::{
    harness::{Loaded, moved, port_info},
    packets::{self, Mac, *},
    private_netns::{add_veth_port, assert_private_netns, in_private_netns},
};

pub const A_IF: u32 = 121;
pub const B_IF: u32 = 122;
pub const GW_IF: u32 = 123;
pub const VBRIDGE_IF: u32 = 124;
/// An endpoint port without IPv6 (no `ports6` entry).
pub const C_IF: u32 = 125;
pub const A_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 1];
pub const B_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 2];
pub const GW_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 5];
pub const C_MAC: Mac = [0x02, 0x4e, 10, 162, 0, 3];

pub fn global(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x10, 0x162, 0, 0, 0, 0, last)
}
pub fn a() -> Ipv6Addr {
    global(1)
}
pub fn b() -> Ipv6Addr {
    global(2)
}
pub fn gw() -> Ipv6Addr {
    global(5)
}
pub fn ll(mac: Mac) -> Ipv6Addr {
    link_local_for(mac)
}
/// Another address of the host side, and one beyond it.
pub fn host_other() -> Ipv6Addr {
    "2001:db8:203:113::1".parse().unwrap()
}
pub fn outside() -> Ipv6Addr {
    "2001:db8:203:113::2".parse().unwrap()
}

/// What one program did with a frame: its verdict, the frame after, and
/// the counters that moved (by name).
#[derive(Debug)]
pub struct Run {
    pub verdict: u32,
    pub out: Vec<u8>,
    pub moved: Vec<(&'static str, u64)>,
}

/// Both port programs loaded from one object (one set of maps), and the
/// made-up lab: endpoints A and B with IPv6, C without, the gateway.
pub struct Switch6 {
    pub loaded: Loaded,
}

impl Switch6 {
    pub fn new(name: &str) -> Self {
        assert_private_netns("the port programs under test_run");
        for (dev, ifindex) in [
            ("s6a", A_IF),
            ("s6b", B_IF),
            ("s6gw", GW_IF),
            ("s6vbr", VBRIDGE_IF),
            ("s6c", C_IF),
        ] {
            add_veth_port(dev, Some(ifindex));
        }
        let mut loaded = Loaded::new("sw6", name, None, &[PORT_PROGRAM, PORT_XDP_PROGRAM]);
        let mut maps = SwitchMaps::open(loaded.dir()).expect("maps");
        let mut maps6 = SwitchMaps6::open(loaded.dir()).expect("IPv6 maps");
        let ports = [
            (
                A_IF,
                A_IF,
                PORT_KIND_ENDPOINT,
                A_MAC,
                [10, 162, 0, 1],
                0,
                Some(a()),
            ),
            (
                B_IF,
                B_IF,
                PORT_KIND_ENDPOINT,
                B_MAC,
                [10, 162, 0, 2],
                1,
                Some(b()),
            ),
            (
                GW_IF,
                VBRIDGE_IF,
                PORT_KIND_GATEWAY,
                GW_MAC,
                [10, 162, 0, 5],
                2,
                Some(gw()),
            ),
            (
                C_IF,
                C_IF,
                PORT_KIND_ENDPOINT,
                C_MAC,
                [10, 162, 0, 3],
                3,
                None,
            ),
        ];
        for (ifindex, deliver, kind, mac, ip, slot, v6) in ports {
            maps.write_port(&port_info(ifindex, deliver, kind, mac, ip, slot))
                .unwrap();
            let addrs = v6.map(|g| Port6 {
                global: g.octets(),
                link_local: ll(mac).octets(),
            });
            maps6
                .write_port(ifindex, mac, kind == PORT_KIND_ENDPOINT, addrs)
                .unwrap();
        }
        let mut devmap: DevMapHash<_> =
            DevMapHash::try_from(loaded.ebpf_mut().map_mut(XDP_PORTS_MAP).unwrap()).unwrap();
        for i in [A_IF, B_IF, GW_IF, C_IF] {
            devmap.insert(i, i, None, 0).expect("devmap entry");
        }
        HostAddrs6::open(loaded.dir())
            .unwrap()
            .sync(&[(host_other(), HOST_ADDR_LOCAL)].into_iter().collect())
            .unwrap();
        Self { loaded }
    }

    pub fn tc(&self, ingress: u32, frame: &[u8]) -> Run {
        let before = self.loaded.counters();
        let (verdict, out) = self
            .loaded
            .run_tc(PORT_PROGRAM, frame, Some(ingress))
            .expect("test_run");
        let moved = moved(&before, &self.loaded.counters());
        Run {
            verdict,
            out,
            moved,
        }
    }

    pub fn xdp(&self, ingress: u32, frame: &[u8]) -> Run {
        let before = self.loaded.counters();
        let (verdict, out) = self
            .loaded
            .run_xdp(PORT_XDP_PROGRAM, frame, Some(ingress))
            .expect("test_run");
        let moved = moved(&before, &self.loaded.counters());
        Run {
            verdict,
            out,
            moved,
        }
    }

    /// Both programs drop `frame` from `ingress` for `reason`, counted once
    /// each.
    pub fn dropped(&self, ingress: u32, frame: &[u8], reason: Counter, what: &str) {
        let tc = self.tc(ingress, frame);
        assert_eq!(tc.verdict, TC_ACT_SHOT, "TC, {what}: {tc:?}");
        assert_eq!(tc.moved, [("port_rx", 1), (reason.name(), 1)], "TC, {what}");
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_DROP, "XDP, {what}: {xdp:?}");
        assert_eq!(
            xdp.moved,
            sorted([(reason.name(), 1), ("xdp_port_rx", 1)]),
            "XDP, {what}"
        );
    }

    /// TC delivers `frame` as unicast (`counter`: to a namespace or the
    /// host) and XDP redirects it the same way.
    pub fn unicast(&self, ingress: u32, frame: &[u8], counter: Counter, what: &str) {
        let tc = self.tc(ingress, frame);
        assert_eq!(tc.verdict, TC_ACT_REDIRECT, "TC, {what}: {tc:?}");
        assert_eq!(tc.out, frame, "TC, {what}: switching rewrites nothing");
        assert_eq!(
            tc.moved,
            sorted([("port_rx", 1), (counter.name(), 1)]),
            "TC, {what}"
        );
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_REDIRECT, "XDP, {what}: {xdp:?}");
        assert_eq!(
            xdp.moved,
            sorted([
                (counter.name(), 1),
                ("xdp_port_redirect", 1),
                ("xdp_port_rx", 1)
            ]),
            "XDP, {what}"
        );
    }

    /// Both programs flood `frame` (TC: copies to the 3 other ports).
    pub fn flooded(&self, ingress: u32, frame: &[u8], what: &str) {
        let tc = self.tc(ingress, frame);
        assert_eq!(tc.verdict, TC_ACT_SHOT, "TC, {what}: {tc:?}");
        assert_eq!(
            tc.moved,
            [("port_rx", 1), ("flooded", 1), ("flood_copies", 3)],
            "TC, {what}"
        );
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_REDIRECT, "XDP, {what}: {xdp:?}");
        assert_eq!(
            xdp.moved,
            sorted([("flooded", 1), ("xdp_port_flood", 1), ("xdp_port_rx", 1)]),
            "XDP, {what}"
        );
    }

    /// The XDP program hands `frame` to TC and decides nothing.
    pub fn xdp_passes_to_tc(&self, ingress: u32, frame: &[u8], what: &str) {
        let xdp = self.xdp(ingress, frame);
        assert_eq!(xdp.verdict, XDP_PASS, "XDP, {what}: {xdp:?}");
        assert_eq!(xdp.out, frame, "XDP, {what}");
        assert_eq!(
            xdp.moved,
            [("xdp_port_rx", 1), ("xdp_port_to_tc", 1)],
            "XDP, {what}"
        );
    }
}

/// `moved` lists counters in index order: the expectation `v` put in the
/// same order.
pub fn sorted<const N: usize>(mut v: [(&'static str, u64); N]) -> Vec<(&'static str, u64)> {
    let index = |name: &str| Counter::ALL.iter().position(|c| c.name() == name);
    v.sort_by_key(|(name, _)| index(name));
    v.to_vec()
}

/// A UDP datagram over IPv6 in a frame.
pub fn udp_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ports: (u16, u16),
) -> Vec<u8> {
    eth6(
        dst_mac,
        src_mac,
        &ipv6_full(
            &Ip6::new(src, dst),
            17,
            &udp6(src, dst, ports.0, ports.1, b"payload"),
        ),
    )
}

pub fn echo(dst_mac: Mac, src_mac: Mac, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let m = icmpv6(src, dst, ICMPV6_ECHO_REQUEST, 0, &[0, 7, 0, 1, b'p', b'i']);
    eth6(
        dst_mac,
        src_mac,
        &ipv6_full(&Ip6::new(src, dst), PROTO_ICMPV6, &m),
    )
}
