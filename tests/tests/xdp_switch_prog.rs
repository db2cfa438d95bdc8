//! The XDP port program (`netlab_xdp_port`, the `switch = "xdp"` flavour)
//! under BPF_PROG_TEST_RUN: the real object in the real kernel, its maps
//! filled as the control plane fills them, crafted frames in; verdicts,
//! frames (switching rewrites nothing) and counters out.
//!
//! `xdp_md.ingress_ifindex` must name a device of the caller's namespace
//! and devmap entries must be real devices, so every test runs on a thread
//! in a private network namespace with throwaway veth devices as ports
//! (`netlab_tests::private_netns`). Under test_run, XDP_REDIRECT is only
//! a verdict: no frame is sent.

use aya::maps::{DevMapHash, MapData};
use netlab::{bpf::maps::SwitchMaps, datapath::xdp::PORT_XDP_PROGRAM};
use netlab_common::{
    counters::Counter,
    maps::XDP_PORTS_MAP,
    switch::{PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, SwitchConfig},
};
use netlab_tests::{
    harness::{Loaded, port_info},
    packets::{self, BROADCAST, Mac},
    private_netns::{add_veth_port, assert_private_netns, in_private_netns},
};

use netlab::bpf::verdict::{XDP_DROP, XDP_PASS, XDP_REDIRECT};

const A_IF: u32 = 111;
const B_IF: u32 = 112;
const GW_IF: u32 = 113;
const A_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const B_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const GW_MAC: Mac = [0x02, 0, 0, 0, 0, 0x05];
const A_IP: [u8; 4] = [10, 113, 0, 1];
const B_IP: [u8; 4] = [10, 113, 0, 2];
const GW_IP: [u8; 4] = [10, 113, 0, 5];

/// The object loaded with its maps pinned in a private directory (the
/// shared harness, removed on drop) and a made-up lab: endpoints A, B and
/// the gateway, each port a veth device of the private namespace, all in
/// `xdp_ports`.
struct XdpSwitch {
    loaded: Loaded,
    maps: SwitchMaps,
}

impl XdpSwitch {
    fn new(name: &str) -> Self {
        assert_private_netns("the XDP port program under test_run");
        for (dev, ifindex) in [("xsa", A_IF), ("xsb", B_IF), ("xsgw", GW_IF)] {
            add_veth_port(dev, Some(ifindex));
        }
        let loaded = Loaded::new("xdpsw", name, None, &[PORT_XDP_PROGRAM]);
        let mut sw = Self {
            maps: SwitchMaps::open(loaded.dir()).expect("maps"),
            loaded,
        };
        sw.port(A_IF, PORT_KIND_ENDPOINT, A_MAC, A_IP, 0);
        sw.port(B_IF, PORT_KIND_ENDPOINT, B_MAC, B_IP, 1);
        sw.port(GW_IF, PORT_KIND_GATEWAY, GW_MAC, GW_IP, 2);
        let mut devmap = sw.devmap();
        for i in [A_IF, B_IF, GW_IF] {
            devmap.insert(i, i, None, 0).expect("devmap entry");
        }
        sw
    }

    fn devmap(&mut self) -> DevMapHash<&mut MapData> {
        DevMapHash::try_from(
            self.loaded
                .ebpf_mut()
                .map_mut(XDP_PORTS_MAP)
                .expect("xdp_ports"),
        )
        .unwrap()
    }

    fn port(&mut self, ifindex: u32, kind: u8, mac: Mac, ip: [u8; 4], slot: u32) {
        let info = port_info(ifindex, ifindex, kind, mac, ip, slot);
        self.maps.write_port(&info).unwrap();
    }

    fn run(&self, ingress: u32, frame: &[u8]) -> (u32, Vec<u8>) {
        self.loaded
            .run_xdp(PORT_XDP_PROGRAM, frame, Some(ingress))
            .expect("test_run")
    }

    fn count(&self, c: Counter) -> u64 {
        self.loaded.counter(c)
    }
}

fn udp(dst_mac: Mac, src_mac: Mac, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    packets::ipv4_udp(dst_mac, src_mac, src, dst, b"payload")
}

#[test]
fn xdp_unicast_is_redirected_to_its_port_untouched() {
    in_private_netns(|| {
        let sw = XdpSwitch::new("unicast");
        let frame = udp(B_MAC, A_MAC, A_IP, B_IP);
        let (verdict, out) = sw.run(A_IF, &frame);
        assert_eq!(verdict, XDP_REDIRECT);
        assert_eq!(out, frame, "switching does not rewrite");
        let a_bytes = frame.len() as u64;
        // To the host: through the gateway port.
        let frame = udp(GW_MAC, B_MAC, B_IP, [203, 0, 113, 2]);
        assert_eq!(sw.run(B_IF, &frame).0, XDP_REDIRECT);
        assert_eq!(sw.count(Counter::XdpPortRedirect), 2);
        assert_eq!(sw.count(Counter::RedirectPeer), 1);
        assert_eq!(sw.count(Counter::ToHost), 1);
        assert_eq!(sw.count(Counter::XdpPortToTc), 0);
        let a = sw.maps.port_stats(0).unwrap();
        assert_eq!((a.rx_packets, a.rx_bytes), (1, a_bytes));
        let b = sw.maps.port_stats(1).unwrap();
        assert_eq!((b.tx_packets, b.tx_bytes), (1, a_bytes), "B's port sent it");
        assert_eq!(
            sw.maps.port_stats(2).unwrap().tx_packets,
            1,
            "the gateway's"
        );
    });
}

/// ARP is the TC program's (sender check, responder): passed untouched;
/// unknown unicast floods by devmap broadcast.
#[test]
fn xdp_leaves_arp_to_tc_and_floods_unknown_unicast() {
    in_private_netns(|| {
        let sw = XdpSwitch::new("arp");
        for request in [
            packets::arp_request(A_MAC, A_IP, B_IP),
            // A sender lie: still TC's to drop.
            packets::arp_request(A_MAC, B_IP, GW_IP),
        ] {
            assert_eq!(sw.run(A_IF, &request), (XDP_PASS, request.clone()));
        }
        assert_eq!(sw.count(Counter::XdpPortToTc), 2);
        assert_eq!(sw.count(Counter::DropSpoofed), 0);

        let unknown = udp([0x02, 0, 0, 0, 0, 0x77], A_MAC, A_IP, [10, 113, 0, 77]);
        let (verdict, out) = sw.run(A_IF, &unknown);
        assert_eq!(verdict, XDP_REDIRECT, "devmap broadcast");
        assert_eq!(out, unknown);
        assert_eq!(sw.count(Counter::XdpPortFlood), 1);
        assert_eq!(sw.count(Counter::Flooded), 1);
    });
}

#[test]
fn xdp_spoofed_sources_are_dropped() {
    in_private_netns(|| {
        let sw = XdpSwitch::new("spoof");
        // B's MAC from A's port; A's MAC with B's address.
        for frame in [
            udp(GW_MAC, B_MAC, B_IP, GW_IP),
            udp(GW_MAC, A_MAC, B_IP, GW_IP),
        ] {
            assert_eq!(sw.run(A_IF, &frame).0, XDP_DROP);
        }
        assert_eq!(sw.count(Counter::DropSpoofed), 2);
        assert_eq!(sw.maps.port_stats(0).unwrap().drops, 2);
        // The gateway port is not source-checked.
        assert_eq!(
            sw.run(GW_IF, &udp(A_MAC, GW_MAC, [203, 0, 113, 2], A_IP)).0,
            XDP_REDIRECT
        );
        // A frame back to its own port.
        assert_eq!(sw.run(A_IF, &udp(A_MAC, A_MAC, A_IP, A_IP)).0, XDP_DROP);
        assert_eq!(sw.count(Counter::DropHairpin), 1);
    });
}

#[test]
fn xdp_passes_to_tc_what_tc_handles() {
    in_private_netns(|| {
        let mut sw = XdpSwitch::new("to-tc");
        // VLAN-tagged.
        let tagged = packets::vlan(B_MAC, A_MAC, 7, packets::ETH_P_IP, &[0u8; 28]);
        assert_eq!(sw.run(A_IF, &tagged), (XDP_PASS, tagged.clone()));
        // Not a port.
        add_veth_port("xsz", Some(119));
        let frame = udp(B_MAC, A_MAC, A_IP, B_IP);
        assert_eq!(sw.run(119, &frame).0, XDP_PASS);
        // Learning or tracing on: the TC program's job.
        sw.maps
            .set_config(SwitchConfig {
                trace: 0,
                learning: 1,
            })
            .unwrap();
        assert_eq!(sw.run(A_IF, &frame).0, XDP_PASS);
        sw.maps.set_config(SwitchConfig::default()).unwrap();
        // A target missing from the devmap.
        let mut devmap = sw.devmap();
        devmap.remove(B_IF).unwrap();
        assert_eq!(sw.run(A_IF, &frame).0, XDP_PASS);
        assert_eq!(sw.count(Counter::XdpPortToTc), 4);
        assert_eq!(sw.count(Counter::XdpPortRedirect), 0);
        // Broadcast still floods to the ports that are there.
        let bcast = udp(BROADCAST, A_MAC, A_IP, [10, 113, 0, 255]);
        assert_eq!(sw.run(A_IF, &bcast).0, XDP_REDIRECT);
    });
}
