//! The switch port program under BPF_PROG_TEST_RUN: the real object loaded
//! into the real kernel (verifier included), maps filled with made-up
//! ifindexes, crafted frames in, verdicts, counters and output bytes out.
//!
//! How the ingress port is chosen: the program reads
//! `__sk_buff.ingress_ifindex`, which test_run takes from the `ctx_in` we
//! pass (the device stays loopback). Redirect helpers only record the
//! target under test_run and return TC_ACT_REDIRECT; `bpf_clone_redirect`
//! (flooding) really transmits, on the device with that ifindex in the
//! caller's namespace. So every test runs on a thread inside a private
//! network namespace (`netlab_tests::private_netns`), where the lab's port
//! ifindexes are throwaway veth devices created with exactly those
//! indexes, and [`TestSwitch`] refuses to load anywhere else: a frame can
//! never leave on one of the machine's own interfaces.

use netlab::bpf::{
    loader::PORT_PROGRAM,
    maps::{HostAddrs, SwitchMaps},
};
use netlab_common::{
    counters::Counter,
    events::{
        EVENT_ARP_ANSWERED, EVENT_DROP, EVENT_FDB_LEARNED, EVENT_FRAME, EVENTS_MAP, Event,
        FRAME_ARP_ANSWERED, FRAME_DROPPED, FRAME_UNICAST, PROGRAM_PORT,
    },
    maps::PORT_SLOTS_SIZE,
    switch::{
        FDB_FLAG_LEARNED, FDB_FLAG_STATIC, FdbKey, HOST_ADDR_BROADCAST, HOST_ADDR_LOCAL,
        PORT_KIND_ENDPOINT, PORT_KIND_GATEWAY, SwitchConfig, TRACE_EVENTS, TRACE_FRAMES,
    },
};
use netlab_tests::{
    harness::{Loaded, port_info},
    packets::{self, ARP_REPLY, BROADCAST, ETH_P_ARP, ETH_P_IP, Mac},
    private_netns::{add_veth_port, assert_private_netns, in_private_netns, tx_packets},
};

use netlab::bpf::verdict::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT};

// The made-up lab: two endpoints and the gateway, on veth devices of the
// test's private namespace created with these ifindexes.
const A_DEV: &str = "swa";
const B_DEV: &str = "swb";
const GW_DEV: &str = "swgw";
const VBRIDGE_DEV: &str = "swvbr";
const A_IF: u32 = 101;
const B_IF: u32 = 102;
const GW_IF: u32 = 103;
/// `vbridge`: where frames for the gateway are delivered.
const VBRIDGE_IF: u32 = 104;
const A_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const B_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const GW_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x05];
const A_IP: [u8; 4] = [10, 99, 0, 1];
const B_IP: [u8; 4] = [10, 99, 0, 2];
const GW_IP: [u8; 4] = [10, 99, 0, 5];
/// Another address of the host side (the sandbox uplink's), its subnet's
/// broadcast address, and an address beyond the host (the internet).
const HOST_IP: [u8; 4] = [203, 0, 113, 1];
const HOST_BROADCAST: [u8; 4] = [203, 0, 113, 255];
const OUTSIDE_IP: [u8; 4] = [203, 0, 113, 2];

/// The port program loaded with its maps pinned in a private directory
/// (the shared harness, removed on drop).
struct TestSwitch {
    loaded: Loaded,
    maps: SwitchMaps,
}

impl TestSwitch {
    fn new(name: &str) -> Self {
        assert_private_netns("the switch port program under test_run");
        let loaded = Loaded::new("sw", name, None, &[PORT_PROGRAM]);
        let maps = SwitchMaps::open(loaded.dir()).expect("maps");
        Self { loaded, maps }
    }

    /// The standard made-up lab: A and B endpoints, the gateway, with veth
    /// devices as their ports (and as `vbridge`).
    fn lab(name: &str) -> Self {
        for (dev, ifindex) in [
            (A_DEV, A_IF),
            (B_DEV, B_IF),
            (GW_DEV, GW_IF),
            (VBRIDGE_DEV, VBRIDGE_IF),
        ] {
            add_veth_port(dev, Some(ifindex));
        }
        let mut sw = Self::new(name);
        sw.port(A_IF, A_IF, PORT_KIND_ENDPOINT, A_MAC, A_IP, 0);
        sw.port(B_IF, B_IF, PORT_KIND_ENDPOINT, B_MAC, B_IP, 1);
        sw.port(GW_IF, VBRIDGE_IF, PORT_KIND_GATEWAY, GW_MAC, GW_IP, 2);
        sw
    }

    /// Registers a port the way the control plane does.
    fn port(&mut self, ifindex: u32, deliver: u32, kind: u8, mac: Mac, ip: [u8; 4], slot: u32) {
        let info = port_info(ifindex, deliver, kind, mac, ip, slot);
        self.maps.write_port(&info).unwrap();
    }

    /// Runs `frame` as if it entered on port `ingress`: (verdict, frame after).
    fn try_run(
        &self,
        ingress: u32,
        frame: &[u8],
    ) -> Result<(u32, Vec<u8>), aya::programs::ProgramError> {
        self.loaded.run_tc(PORT_PROGRAM, frame, Some(ingress))
    }

    fn run(&self, ingress: u32, frame: &[u8]) -> (u32, Vec<u8>) {
        self.try_run(ingress, frame).expect("test_run")
    }

    fn count(&self, counter: Counter) -> u64 {
        self.loaded.counter(counter)
    }

    fn set_config(&mut self, config: SwitchConfig) {
        self.maps.set_config(config).unwrap();
    }

    /// Fills `host_addrs` the way the control plane does (empty: host
    /// access allowed).
    fn set_host_addrs(&self, addrs: &[([u8; 4], u8)]) {
        let wanted = addrs
            .iter()
            .map(|(ip, kind)| (u32::from_ne_bytes(*ip), *kind))
            .collect();
        HostAddrs::open(self.loaded.dir())
            .unwrap()
            .sync(&wanted)
            .expect("sync host_addrs");
    }
}

#[test]
fn the_ingress_port_comes_from_port_slots_only_while_its_slot_holds_it() {
    in_private_netns(|| {
        let mut sw = TestSwitch::lab("port-slots");
        let a_to_b = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, b"x");
        assert_eq!(sw.maps.port_slots.get(&A_IF, 0).unwrap(), 1, "slot 0, + 1");
        assert_eq!(sw.run(A_IF, &a_to_b).0, TC_ACT_REDIRECT);

        // A stale row (A's ifindex pointing at B's slot) is not believed:
        // taken as B, A's frame would be a spoof. The hash finds A.
        sw.maps.port_slots.set(A_IF, 2, 0).unwrap();
        assert_eq!(sw.run(A_IF, &a_to_b).0, TC_ACT_REDIRECT);
        // No row at all: the hash again.
        sw.maps.port_slots.set(A_IF, 0, 0).unwrap();
        assert_eq!(sw.run(A_IF, &a_to_b).0, TC_ACT_REDIRECT);
        assert_eq!(sw.count(Counter::DropSpoofed), 0);
        assert_eq!(
            sw.maps.port_stats(0).unwrap().rx_packets,
            3,
            "all on A's slot"
        );

        // A port whose ifindex is beyond the array (root mode): the hash.
        let big = PORT_SLOTS_SIZE + 7;
        let c_mac: Mac = [0x02, 0, 0, 0, 0, 0x0c];
        let c_ip = [10, 99, 0, 12];
        sw.port(big, big, PORT_KIND_ENDPOINT, c_mac, c_ip, 3);
        let c_to_b = packets::ipv4_udp(B_MAC, c_mac, c_ip, B_IP, b"x");
        assert_eq!(sw.run(big, &c_to_b).0, TC_ACT_REDIRECT);
        assert_eq!(sw.maps.port_stats(3).unwrap().rx_packets, 1);
        assert_eq!(sw.count(Counter::DropUnknownPort), 0);
    });
}

#[test]
fn arp_request_from_a_namespace_is_answered_back_into_it() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("arp-ns");
        let request = packets::arp_request(A_MAC, A_IP, B_IP);
        let (verdict, out) = sw.run(A_IF, &request);

        assert_eq!(
            verdict, TC_ACT_REDIRECT,
            "the reply goes back out of A's port"
        );
        let reply = packets::parse_arp(&out).expect("an ARP frame comes out");
        assert_eq!(reply.op, ARP_REPLY);
        assert_eq!(reply.eth_dst, A_MAC, "addressed to the requester");
        assert_eq!(reply.eth_src, B_MAC, "as if sent by the target");
        assert_eq!(reply.sha, B_MAC);
        assert_eq!(reply.spa, B_IP);
        assert_eq!(reply.tha, A_MAC);
        assert_eq!(reply.tpa, A_IP);
        assert_eq!(out.len(), request.len(), "rewritten in place");
        assert_eq!(sw.count(Counter::ArpAnswered), 1);
        assert_eq!(
            sw.count(Counter::Flooded),
            0,
            "the common case never floods"
        );

        // rx and tx both on A's slot: the reply left where the request came in.
        let stats = sw.maps.port_stats(0).unwrap();
        assert_eq!((stats.rx_packets, stats.tx_packets), (1, 1));
        assert_eq!(sw.maps.port_stats(1).unwrap().tx_packets, 0);
    });
}

#[test]
fn arp_for_the_gateway_and_from_the_host_are_answered() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("arp-gw");
        // A namespace asks for its default gateway.
        let (verdict, out) = sw.run(A_IF, &packets::arp_request(A_MAC, A_IP, GW_IP));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        let reply = packets::parse_arp(&out).unwrap();
        assert_eq!((reply.op, reply.sha, reply.spa), (ARP_REPLY, GW_MAC, GW_IP));

        // The host (through vbridge → gateway port) asks for an endpoint.
        let (verdict, out) = sw.run(GW_IF, &packets::arp_request(GW_MAC, GW_IP, B_IP));
        assert_eq!(verdict, TC_ACT_REDIRECT, "back to the host through vbridge");
        let reply = packets::parse_arp(&out).unwrap();
        assert_eq!(reply.op, ARP_REPLY);
        assert_eq!((reply.eth_dst, reply.eth_src), (GW_MAC, B_MAC));
        assert_eq!(
            (reply.sha, reply.spa, reply.tha, reply.tpa),
            (B_MAC, B_IP, GW_MAC, GW_IP)
        );
        assert_eq!(sw.count(Counter::ArpAnswered), 2);
    });
}

#[test]
fn arp_requests_nobody_here_can_answer_are_flooded_unchanged() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("arp-flood");
        let before = [A_DEV, B_DEV].map(tx_packets);
        for request in [
            // Unknown address.
            packets::arp_request(A_MAC, A_IP, [10, 99, 0, 77]),
            // Gratuitous ARP: announcing one's own address.
            packets::arp_request(A_MAC, A_IP, A_IP),
        ] {
            let (verdict, out) = sw.run(A_IF, &request);
            assert_eq!(
                verdict, TC_ACT_SHOT,
                "the original is dropped after flooding"
            );
            assert_eq!(out, request, "not rewritten");
        }
        // The host asking for the gateway's own address (a duplicate-address
        // probe) must not get a reply pretending someone else has it.
        let probe = packets::arp_request(GW_MAC, GW_IP, GW_IP);
        assert_eq!(sw.run(GW_IF, &probe).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::Flooded), 3);
        assert_eq!(sw.count(Counter::ArpAnswered), 0);

        // Each flood copied the frame to the two other ports: A's two
        // requests out of B's port and into vbridge, the host's probe out of
        // A's and B's ports (on this namespace's veth devices).
        assert_eq!(sw.count(Counter::FloodCopies), 6);
        assert_eq!(sw.count(Counter::DropRedirectFailed), 0);
        let after = [A_DEV, B_DEV].map(tx_packets);
        assert_eq!(after[0] - before[0], 1, "copies out of A's port");
        assert_eq!(after[1] - before[1], 3, "copies out of B's port");
    });
}

#[test]
fn known_unicast_is_redirected_to_its_port() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("unicast");
        let to_b = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, b"hello");
        let (verdict, out) = sw.run(A_IF, &to_b);
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(out, to_b, "switching does not touch the frame");
        assert_eq!(sw.count(Counter::RedirectPeer), 1);

        let to_gw = packets::ipv4_udp(GW_MAC, A_MAC, A_IP, [198, 51, 100, 1], b"out");
        assert_eq!(sw.run(A_IF, &to_gw).0, TC_ACT_REDIRECT);
        assert_eq!(sw.count(Counter::ToHost), 1);

        let from_host = packets::ipv4_udp(A_MAC, GW_MAC, [198, 51, 100, 1], A_IP, b"in");
        assert_eq!(sw.run(GW_IF, &from_host).0, TC_ACT_REDIRECT);
        assert_eq!(sw.count(Counter::RedirectPeer), 2);

        assert_eq!(sw.maps.port_stats(1).unwrap().tx_packets, 1, "B got one");
        assert_eq!(
            sw.maps.port_stats(2).unwrap().tx_packets,
            1,
            "the host got one"
        );
        assert_eq!(sw.count(Counter::DropSpoofed), 0);
    });
}

#[test]
fn a_frame_for_the_port_it_came_from_is_dropped() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("hairpin");
        let to_self = packets::ipv4_udp(GW_MAC, GW_MAC, GW_IP, [10, 99, 0, 9], b"x");
        assert_eq!(sw.run(GW_IF, &to_self).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropHairpin), 1);
        assert_eq!(sw.maps.port_stats(2).unwrap().drops, 1);
    });
}

#[test]
fn spoofed_sources_are_dropped_and_counted() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("spoof");
        let cases: [(&str, Vec<u8>); 4] = [
            // A pretends to be B at L2.
            (
                "source MAC",
                packets::ipv4_udp(GW_MAC, B_MAC, B_IP, GW_IP, b"x"),
            ),
            // A's MAC but B's address.
            (
                "IPv4 source",
                packets::ipv4_udp(GW_MAC, A_MAC, B_IP, GW_IP, b"x"),
            ),
            // ARP claiming B's address (cache poisoning).
            ("ARP sender IP", packets::arp_request(A_MAC, B_IP, GW_IP)),
            // ARP claiming another MAC in the body.
            (
                "ARP sender MAC",
                packets::ethernet(
                    BROADCAST,
                    A_MAC,
                    ETH_P_ARP,
                    &packets::arp_body(1, B_MAC, A_IP, [0; 6], GW_IP),
                ),
            ),
        ];
        for (i, (what, frame)) in cases.iter().enumerate() {
            let (verdict, _) = sw.run(A_IF, frame);
            assert_eq!(verdict, TC_ACT_SHOT, "{what}");
            assert_eq!(sw.count(Counter::DropSpoofed), i as u64 + 1, "{what}");
        }
        assert_eq!(sw.count(Counter::ArpAnswered), 0);
        assert_eq!(sw.maps.port_stats(0).unwrap().drops, 4);

        // 0.0.0.0 as the IPv4 source is refused too (no DHCP in the lab).
        let dhcp_like = packets::ipv4_udp(BROADCAST, A_MAC, [0; 4], [255; 4], b"x");
        assert_eq!(sw.run(A_IF, &dhcp_like).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropSpoofed), 5);

        // An RFC 5227 address probe (sender IP 0.0.0.0) is legitimate; asking
        // for B's address gets B's reply ("in use").
        let probe = packets::ethernet(
            BROADCAST,
            A_MAC,
            ETH_P_ARP,
            &packets::arp_body(1, A_MAC, [0; 4], [0; 6], B_IP),
        );
        let (verdict, out) = sw.run(A_IF, &probe);
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(packets::parse_arp(&out).unwrap().sha, B_MAC);
        assert_eq!(sw.count(Counter::DropSpoofed), 5);

        // The gateway port is the host: no source check there.
        let routed = packets::ipv4_udp(A_MAC, GW_MAC, [203, 0, 113, 2], A_IP, b"x");
        assert_eq!(sw.run(GW_IF, &routed).0, TC_ACT_REDIRECT);
    });
}

#[test]
fn truncated_frames_of_every_length_get_a_defined_verdict() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("truncated");
        let mut arp = packets::arp_request(A_MAC, A_IP, B_IP);
        arp.resize(60, 0); // Ethernet minimum, padded like on the wire
        let mut udp = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, &[0x55; 18]);
        udp.resize(60, 0);

        let mut truncated_drops = 0;
        let mut refused = 0;
        for len in 0..=60 {
            for (name, full, header_end) in [("ARP", &arp, 42), ("IPv4", &udp, 34)] {
                match sw.try_run(A_IF, &full[..len]) {
                    // The kernel refuses some test input before the program
                    // runs: anything shorter than an Ethernet header, and (on
                    // this 6.18 kernel) an IPv4 EtherType with less than an IPv4
                    // header. A full header is never refused.
                    Err(e) => {
                        assert!(len < header_end, "{name} len {len}: {e:?}");
                        let einval = matches!(&e, aya::programs::ProgramError::SyscallError(s)
                        if s.io_error.raw_os_error() == Some(libc::EINVAL));
                        assert!(einval, "{name} len {len}: {e:?}");
                        refused += 1;
                    }
                    Ok((verdict, _)) => {
                        assert!(len >= 14, "{name} len {len}: kernel ran a runt");
                        if len < header_end {
                            truncated_drops += 1;
                            assert_eq!(verdict, TC_ACT_SHOT, "{name} len {len}");
                            assert_eq!(
                                sw.count(Counter::DropTruncated),
                                truncated_drops,
                                "{name} len {len}"
                            );
                        } else {
                            assert_eq!(
                                verdict, TC_ACT_REDIRECT,
                                "{name} len {len}: complete header"
                            );
                        }
                    }
                }
            }
        }
        // Every truncated ARP frame ran and was dropped by the program's rule;
        // truncated IPv4 is covered on a real port in switch_netns.rs.
        assert!(truncated_drops >= 42 - 14, "{truncated_drops}");
        assert_eq!(refused + truncated_drops, 2 * 14 + (42 - 14) + (34 - 14));
        assert_eq!(sw.count(Counter::DropSpoofed), 0);
        assert_eq!(sw.count(Counter::ArpAnswered), 60 - 42 + 1);
    });
}

#[test]
fn vlan_and_other_ethertypes_are_switched_by_mac() {
    // IPv6 has rules of its own now: switch6_prog.rs.
    in_private_netns(|| {
        let sw = TestSwitch::lab("other");
        // Under test_run nothing strips the tag (on a real port the kernel
        // would): this is what a double-tagged frame looks like to the program.
        let ip = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, b"x");
        let tagged = packets::vlan(B_MAC, A_MAC, 10, ETH_P_IP, &ip[14..]);
        assert_eq!(
            sw.run(A_IF, &tagged).0,
            TC_ACT_REDIRECT,
            "VLAN-tagged unicast"
        );
        let lldp_like = packets::ethernet(B_MAC, A_MAC, 0x88cc, &[0u8; 46]);
        assert_eq!(
            sw.run(A_IF, &lldp_like).0,
            TC_ACT_REDIRECT,
            "unknown EtherType"
        );
        let multicast = packets::ethernet([0x01, 0x80, 0xc2, 0, 0, 0xe], A_MAC, 0x88cc, &[0; 46]);
        assert_eq!(sw.run(A_IF, &multicast).0, TC_ACT_SHOT, "flooded");

        assert_eq!(sw.count(Counter::OtherEtherType), 3);
        assert_eq!(sw.count(Counter::RedirectPeer), 2);
        assert_eq!(sw.count(Counter::ToHost), 0);
        assert_eq!(sw.count(Counter::Flooded), 1);
        assert_eq!(
            sw.count(Counter::DropTruncated) + sw.count(Counter::DropSpoofed),
            0
        );

        // ...but the MAC check still applies to them.
        let spoofed = packets::ethernet(GW_MAC, B_MAC, 0x88cc, &[0u8; 46]);
        assert_eq!(sw.run(A_IF, &spoofed).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropSpoofed), 1);
    });
}

#[test]
fn frames_on_an_unknown_port_pass_untouched() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("unknown");
        let frame = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, b"x");
        let (verdict, out) = sw.run(999, &frame);
        assert_eq!(verdict, TC_ACT_OK);
        assert_eq!(out, frame);
        assert_eq!(sw.count(Counter::DropUnknownPort), 1);
        assert_eq!(sw.count(Counter::PortRx), 1);
    });
}

#[test]
fn learning_is_off_by_default_and_never_overrides_static_entries() {
    in_private_netns(|| {
        let mut sw = TestSwitch::lab("learning");
        let stranger: Mac = [0x02, 0xaa, 0, 0, 0, 9];
        let from_stranger = packets::ipv4_udp(A_MAC, stranger, [10, 99, 0, 9], A_IP, b"x");
        let to_stranger = packets::ipv4_udp(stranger, A_MAC, A_IP, [10, 99, 0, 9], b"x");

        assert_eq!(sw.run(GW_IF, &from_stranger).0, TC_ACT_REDIRECT);
        assert!(
            sw.maps.fdb.get(&FdbKey::new(stranger), 0).is_err(),
            "learned while off"
        );
        assert_eq!(
            sw.run(A_IF, &to_stranger).0,
            TC_ACT_SHOT,
            "unknown unicast floods"
        );

        sw.set_config(SwitchConfig {
            trace: 0,
            learning: 1,
        });
        assert_eq!(sw.run(GW_IF, &from_stranger).0, TC_ACT_REDIRECT);
        let learned = sw.maps.fdb.get(&FdbKey::new(stranger), 0).expect("learned");
        assert_eq!(learned.port_ifindex, GW_IF);
        assert_eq!(learned.flags, FDB_FLAG_LEARNED);
        assert_eq!(sw.count(Counter::Learned), 1);
        assert_eq!(sw.run(A_IF, &to_stranger).0, TC_ACT_REDIRECT, "now known");

        // The host side sending with A's MAC does not move A's static entry.
        let impostor = packets::ipv4_udp(B_MAC, A_MAC, GW_IP, B_IP, b"x");
        sw.run(GW_IF, &impostor);
        let a = sw.maps.fdb.get(&FdbKey::new(A_MAC), 0).unwrap();
        assert_eq!((a.port_ifindex, a.flags), (A_IF, FDB_FLAG_STATIC));
        assert_eq!(sw.count(Counter::Learned), 1);
    });
}

/// The lab's event ring buffer (trace and monitor read the same one).
fn events_ring(sw: &TestSwitch) -> aya::maps::RingBuf<aya::maps::MapData> {
    let data = aya::maps::MapData::from_pin(sw.loaded.dir().join(EVENTS_MAP)).expect("events pin");
    aya::maps::RingBuf::try_from(aya::maps::Map::from_map_data(data).unwrap())
        .expect("a ring buffer")
}

#[test]
fn trace_events_follow_the_run_time_switch() {
    in_private_netns(|| {
        let mut sw = TestSwitch::lab("trace");
        let mut ring = events_ring(&sw);
        let frame = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, b"x");
        let spoofed = packets::ipv4_udp(B_MAC, A_MAC, [10, 99, 0, 77], B_IP, b"x");

        sw.run(A_IF, &frame);
        assert!(
            drain_events(&mut ring).is_empty(),
            "tracing is off by default"
        );

        sw.set_config(SwitchConfig {
            trace: TRACE_FRAMES,
            learning: 0,
        });
        assert_eq!(sw.run(A_IF, &frame).0, TC_ACT_REDIRECT);
        sw.run(A_IF, &packets::arp_request(A_MAC, A_IP, GW_IP));
        assert_eq!(sw.run(A_IF, &spoofed).0, TC_ACT_SHOT);
        let events = drain_events(&mut ring);
        assert_eq!(events.len(), 3, "one event per frame: {events:?}");
        assert!(
            events
                .iter()
                .all(|e| e.kind == EVENT_FRAME && e.program == PROGRAM_PORT && e.ifindex == A_IF)
        );
        let unicast = events[0];
        assert_eq!((unicast.outcome, unicast.reason), (FRAME_UNICAST, B_IF));
        assert_eq!((unicast.src_mac, unicast.dst_mac), (A_MAC, B_MAC));
        assert_eq!(unicast.ethertype, ETH_P_IP);
        let arp = events[1];
        assert_eq!(arp.outcome, FRAME_ARP_ANSWERED);
        assert_eq!(arp.daddr, u32::from_ne_bytes(GW_IP), "who-has 10.99.0.5");
        assert_eq!((arp.src_mac, arp.ethertype), (A_MAC, ETH_P_ARP));
        let dropped = events[2];
        assert_eq!(
            (dropped.outcome, dropped.reason),
            (FRAME_DROPPED, Counter::DropSpoofed as u32)
        );

        sw.set_config(SwitchConfig::default());
        sw.run(A_IF, &frame);
        assert!(
            drain_events(&mut ring).is_empty(),
            "off again without reloading"
        );
    });
}

/// Every record waiting in the lab's event ring buffer.
fn drain_events(ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        out.push(Event::from_bytes(&item).expect("a whole event"));
    }
    out
}

#[test]
fn events_are_written_only_while_the_gate_is_open_and_losses_are_counted() {
    in_private_netns(|| {
        let mut sw = TestSwitch::lab("events");
        let mut ring = events_ring(&sw);
        let spoofed = packets::ipv4_udp(B_MAC, A_MAC, [10, 99, 0, 77], B_IP, b"x");
        let forwarded = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, b"x");

        assert_eq!(sw.run(A_IF, &spoofed).0, TC_ACT_SHOT);
        assert!(
            drain_events(&mut ring).is_empty(),
            "the gate is closed by default"
        );

        sw.set_config(SwitchConfig {
            trace: TRACE_EVENTS,
            learning: 0,
        });
        assert_eq!(sw.run(A_IF, &forwarded).0, TC_ACT_REDIRECT);
        assert_eq!(sw.run(A_IF, &spoofed).0, TC_ACT_SHOT);
        assert_eq!(
            sw.run(A_IF, &packets::arp_request(A_MAC, A_IP, GW_IP)).0,
            TC_ACT_REDIRECT
        );
        let events = drain_events(&mut ring);
        assert_eq!(events.len(), 2, "a forwarded frame is no event: {events:?}");
        let drop = events[0];
        assert_eq!((drop.kind, drop.program), (EVENT_DROP, PROGRAM_PORT));
        assert_eq!(drop.reason, Counter::DropSpoofed as u32);
        assert_eq!(drop.ifindex, A_IF);
        assert_eq!((drop.src_mac, drop.dst_mac), (A_MAC, B_MAC));
        assert_eq!(drop.saddr, u32::from_ne_bytes([10, 99, 0, 77]));
        assert_eq!(drop.daddr, u32::from_ne_bytes(B_IP));
        assert_eq!(
            (drop.proto, drop.sport, drop.dport),
            (17, 40000u16.to_be(), 7u16.to_be())
        );
        let arp = events[1];
        assert_eq!(arp.kind, EVENT_ARP_ANSWERED);
        assert_eq!(
            (arp.saddr, arp.daddr),
            (u32::from_ne_bytes(A_IP), u32::from_ne_bytes(GW_IP))
        );
        assert_eq!(
            (arp.src_mac, arp.dst_mac),
            (A_MAC, GW_MAC),
            "asker, then the answer"
        );
        assert!(arp.ts_ns >= drop.ts_ns);

        // A MAC the switch learns (behind the gateway port) is an event.
        sw.set_config(SwitchConfig {
            trace: TRACE_EVENTS,
            learning: 1,
        });
        let stranger: Mac = [0x02, 0, 0, 0, 0, 0x42];
        sw.run(
            GW_IF,
            &packets::ipv4_udp(A_MAC, stranger, GW_IP, A_IP, b"x"),
        );
        let learned = drain_events(&mut ring);
        assert_eq!(learned.len(), 1, "{learned:?}");
        assert_eq!(learned[0].kind, EVENT_FDB_LEARNED);
        assert_eq!((learned[0].src_mac, learned[0].ifindex), (stranger, GW_IF));
        sw.set_config(SwitchConfig {
            trace: TRACE_EVENTS,
            learning: 0,
        });

        // Nobody reads: the ring fills, and what does not fit is counted.
        let lost_before = sw.count(Counter::EventsLost);
        for _ in 0..5000 {
            sw.run(A_IF, &spoofed);
        }
        let lost = sw.count(Counter::EventsLost) - lost_before;
        let kept = drain_events(&mut ring).len() as u64;
        assert!(lost > 0, "5000 events fit in the ring buffer?");
        assert_eq!(
            kept + lost,
            5000,
            "every event is either in the ring or counted"
        );

        sw.set_config(SwitchConfig::default());
        sw.run(A_IF, &spoofed);
        assert!(
            drain_events(&mut ring).is_empty(),
            "closed again without reloading"
        );
    });
}

#[test]
fn broadcast_is_copied_to_every_other_port_and_the_original_dropped() {
    in_private_netns(|| {
        // veth devices stand in for the ports: bpf_clone_redirect really
        // transmits, and the device counts what it sent (the copies land on
        // the peers, inside this throw-away namespace).
        let [p1, p2, p3] = ["swp1", "swp2", "swp3"].map(|dev| add_veth_port(dev, None));
        let mut sw = TestSwitch::new("flood");
        sw.port(p1, p1, PORT_KIND_ENDPOINT, A_MAC, A_IP, 0);
        // Slot 1 stays empty: holes left by a removed port are skipped.
        sw.port(p2, p2, PORT_KIND_ENDPOINT, B_MAC, B_IP, 2);
        sw.port(p3, p3, PORT_KIND_ENDPOINT, GW_MAC, GW_IP, 5);

        let broadcast = packets::ipv4_udp(BROADCAST, A_MAC, A_IP, [10, 99, 0, 255], b"all");
        let before = [tx_packets("swp1"), tx_packets("swp2"), tx_packets("swp3")];
        let (verdict, _) = sw.run(p1, &broadcast);
        assert_eq!(verdict, TC_ACT_SHOT, "the original is dropped");
        let after = [tx_packets("swp1"), tx_packets("swp2"), tx_packets("swp3")];
        assert_eq!(after[0], before[0], "no copy back to the ingress port");
        assert_eq!(after[1], before[1] + 1, "one copy out of port 2");
        assert_eq!(after[2], before[2] + 1, "one copy out of port 3");

        assert_eq!(sw.count(Counter::Flooded), 1);
        assert_eq!(sw.count(Counter::FloodCopies), 2);
        assert_eq!(sw.count(Counter::DropRedirectFailed), 0);
        assert_eq!(sw.maps.port_stats(2).unwrap().tx_packets, 1);
        assert_eq!(sw.maps.port_stats(5).unwrap().tx_packets, 1);
        assert_eq!(sw.maps.port_stats(0).unwrap().tx_packets, 0);

        // Unknown unicast floods the same way.
        let unknown = packets::ipv4_udp([0x02, 9, 9, 9, 9, 9], A_MAC, A_IP, B_IP, b"?");
        assert_eq!(sw.run(p1, &unknown).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::FloodCopies), 4);
    });
}

#[test]
fn ipv4_from_a_namespace_to_the_hosts_other_addresses_is_dropped() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("host-access");
        sw.set_host_addrs(&[
            (HOST_IP, HOST_ADDR_LOCAL),
            (HOST_BROADCAST, HOST_ADDR_BROADCAST),
        ]);

        // To the gateway MAC: the host's other addresses are closed...
        for (i, dst) in [HOST_IP, HOST_BROADCAST].into_iter().enumerate() {
            let frame = packets::ipv4_udp(GW_MAC, A_MAC, A_IP, dst, b"x");
            assert_eq!(sw.run(A_IF, &frame).0, TC_ACT_SHOT, "{dst:?}");
            assert_eq!(sw.count(Counter::DropHostAccess), i as u64 + 1);
        }
        assert_eq!(sw.count(Counter::ToHost), 0);
        assert_eq!(sw.maps.port_stats(0).unwrap().drops, 2);
        assert_eq!(sw.maps.port_stats(2).unwrap().tx_packets, 0);

        // ...the gateway address and everything routed beyond the host are not.
        for dst in [GW_IP, OUTSIDE_IP] {
            let frame = packets::ipv4_udp(GW_MAC, A_MAC, A_IP, dst, b"x");
            let (verdict, out) = sw.run(A_IF, &frame);
            assert_eq!(verdict, TC_ACT_REDIRECT, "{dst:?}");
            assert_eq!(out, frame);
        }
        assert_eq!(sw.count(Counter::ToHost), 2);

        // A broadcast frame would reach the host stack through the flood
        // copy to vbridge (which accepts a unicast IPv4 destination in an
        // L2 broadcast): dropped whole, nothing is copied anywhere.
        let before = tx_packets(B_DEV);
        let broadcast = packets::ipv4_udp(BROADCAST, A_MAC, A_IP, HOST_IP, b"x");
        assert_eq!(sw.run(A_IF, &broadcast).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropHostAccess), 3);
        assert_eq!(sw.count(Counter::Flooded), 0);
        assert_eq!(tx_packets(B_DEV), before);

        // Not host-bound: unicast between namespaces, and the host's own
        // frames into the lab, are not looked at.
        let to_b = packets::ipv4_udp(B_MAC, A_MAC, A_IP, HOST_IP, b"x");
        assert_eq!(sw.run(A_IF, &to_b).0, TC_ACT_REDIRECT);
        let from_host = packets::ipv4_udp(A_MAC, GW_MAC, HOST_IP, A_IP, b"x");
        assert_eq!(sw.run(GW_IF, &from_host).0, TC_ACT_REDIRECT);
        assert_eq!(sw.count(Counter::DropHostAccess), 3);

        // An empty map is the lab file's allow_host_access = true.
        sw.set_host_addrs(&[]);
        let frame = packets::ipv4_udp(GW_MAC, A_MAC, A_IP, HOST_IP, b"x");
        assert_eq!(sw.run(A_IF, &frame).0, TC_ACT_REDIRECT);
        assert_eq!(sw.count(Counter::DropHostAccess), 3);
        assert_eq!(sw.count(Counter::ToHost), 3);
        assert_eq!(sw.count(Counter::DropSpoofed), 0);
    });
}

/// A frame from a namespace that still carries a VLAN tag when the program
/// sees it (it had two; the kernel strips one on a real port, test_run does
/// not, so these frames carry their tags whole) is switched by MAC between
/// namespaces with its inner source checked, and never reaches the host
/// stack, which would strip the tags and skip the host-access rule.
#[test]
fn vlan_tagged_frames_from_namespaces_never_reach_the_host() {
    in_private_netns(|| {
        let sw = TestSwitch::lab("vlan");
        sw.set_host_addrs(&[(HOST_IP, HOST_ADDR_LOCAL)]);
        let double = packets::double_tagged;

        // To the gateway MAC: dropped, whatever the inner destination, even
        // with a single tag left.
        for dst in [HOST_IP, GW_IP, OUTSIDE_IP] {
            let ip = packets::ipv4_udp(GW_MAC, A_MAC, A_IP, dst, b"x");
            assert_eq!(sw.run(A_IF, &double(&ip)).0, TC_ACT_SHOT, "{dst:?}");
        }
        let ip = packets::ipv4_udp(GW_MAC, A_MAC, A_IP, GW_IP, b"x");
        let single = packets::vlan(GW_MAC, A_MAC, 0, ETH_P_IP, &ip[14..]);
        assert_eq!(sw.run(A_IF, &single).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropTaggedToHost), 4);
        assert_eq!(sw.count(Counter::ToHost), 0);
        assert_eq!(sw.count(Counter::DropHostAccess), 0);
        assert_eq!(sw.maps.port_stats(0).unwrap().drops, 4);
        assert_eq!(sw.maps.port_stats(2).unwrap().tx_packets, 0);

        // Between namespaces: switched unchanged, IPv4 and ARP alike.
        let ip = packets::ipv4_udp(B_MAC, A_MAC, A_IP, B_IP, b"x");
        let reply = packets::ethernet(
            B_MAC,
            A_MAC,
            ETH_P_ARP,
            &packets::arp_body(ARP_REPLY, A_MAC, A_IP, B_MAC, B_IP),
        );
        for frame in [double(&ip), double(&reply)] {
            let (verdict, out) = sw.run(A_IF, &frame);
            assert_eq!(verdict, TC_ACT_REDIRECT);
            assert_eq!(out, frame);
        }
        assert_eq!(sw.count(Counter::RedirectPeer), 2);

        // ...but a spoofed inner IPv4 source or ARP sender is dropped.
        let spoofed_ip = packets::ipv4_udp(B_MAC, A_MAC, GW_IP, B_IP, b"x");
        let spoofed_arp = packets::ethernet(
            B_MAC,
            A_MAC,
            ETH_P_ARP,
            &packets::arp_body(ARP_REPLY, A_MAC, GW_IP, B_MAC, B_IP),
        );
        for frame in [double(&spoofed_ip), double(&spoofed_arp)] {
            assert_eq!(sw.run(A_IF, &frame).0, TC_ACT_SHOT);
        }
        let single = packets::vlan(B_MAC, A_MAC, 7, ETH_P_IP, &spoofed_ip[14..]);
        assert_eq!(sw.run(A_IF, &single).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropSpoofed), 3);
        // A tag too many to look through: dropped, the check cannot be done.
        let triple = packets::outer_tag(0, &double(&ip));
        assert_eq!(sw.run(A_IF, &triple).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropTooManyTags), 1);
        // A tagged header cut short is truncated, like an untagged one.
        let cut = double(&ip);
        assert_eq!(sw.run(A_IF, &cut[..30]).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::DropTruncated), 1);

        // Broadcast: copied to the other namespace only, not to vbridge.
        let before = tx_packets(B_DEV);
        let broadcast = packets::ipv4_udp(BROADCAST, A_MAC, A_IP, [10, 99, 0, 255], b"all");
        assert_eq!(sw.run(A_IF, &double(&broadcast)).0, TC_ACT_SHOT);
        assert_eq!(tx_packets(B_DEV), before + 1);
        assert_eq!(sw.count(Counter::Flooded), 1);
        assert_eq!(sw.count(Counter::FloodCopies), 1);
        assert_eq!(
            sw.maps.port_stats(1).unwrap().tx_packets,
            3,
            "two redirects, one copy"
        );
        assert_eq!(sw.maps.port_stats(2).unwrap().tx_packets, 0);
        // The same broadcast untagged reaches both (the rule is the tag's).
        assert_eq!(sw.run(A_IF, &broadcast).0, TC_ACT_SHOT);
        assert_eq!(sw.count(Counter::FloodCopies), 3);
        assert_eq!(sw.maps.port_stats(2).unwrap().tx_packets, 1);

        // The host's own tagged frames into the lab are switched as they are.
        let from_host = packets::ipv4_udp(A_MAC, GW_MAC, HOST_IP, A_IP, b"x");
        assert_eq!(sw.run(GW_IF, &double(&from_host)).0, TC_ACT_REDIRECT);
        assert_eq!(sw.count(Counter::DropTaggedToHost), 4);
        assert_eq!(sw.count(Counter::DropSpoofed), 3);
    });
}

/// The guard itself: outside a private namespace the port program is not
/// even loaded, so no test can flood frames onto the machine's devices.
#[test]
#[should_panic(expected = "may transmit frames")]
fn the_switch_is_never_run_outside_a_private_namespace() {
    TestSwitch::new("outside");
}
