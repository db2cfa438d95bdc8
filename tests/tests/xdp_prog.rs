//! The uplink XDP program (`netlab_uplink_xdp`) under BPF_PROG_TEST_RUN:
//! crafted frames in, the verdict, the (untouched) frame and the counters
//! out. Each case also runs through the uplink TC ingress program, which
//! must refuse exactly what XDP refuses (one rule, two hooks), counted
//! under its own reasons.
//!
//! Each test loads its own copy of the object with its maps pinned in its
//! own directory (`/sys/fs/bpf/netlab-test-xdp-<pid>-<name>`, removed on
//! drop). No packet leaves the test: XDP test runs only return a verdict.

use std::net::Ipv4Addr;

use netlab::{
    datapath::xdp::UPLINK_XDP_PROGRAM,
    nat,
    plan::{NatPlan, NatTimeouts},
};
use netlab_common::counters::Counter;
use netlab_tests::{
    harness::{Loaded, moved},
    packets::*,
};

use netlab::bpf::verdict::{TC_ACT_SHOT, TCX_NEXT, XDP_DROP, XDP_PASS};

const EXTERNAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const OTHER_HOST_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const LAB_1: Ipv4Addr = Ipv4Addr::new(10, 113, 9, 1);
const LAB_9: Ipv4Addr = Ipv4Addr::new(10, 113, 9, 9);

const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
const INET_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x22];
const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];

fn plan() -> NatPlan {
    NatPlan {
        uplink_dev: "uplink".into(),
        subnet: Ipv4Addr::new(10, 113, 9, 0),
        prefix_len: 24,
        port_min: 40000,
        port_max: 40999,
        max_entries: 1024,
        timeouts: NatTimeouts::default(),
        subnet6: None,
    }
}

/// One loaded object (XDP + TC ingress) with its pins (the shared
/// harness).
struct XdpLab {
    loaded: Loaded,
}

impl XdpLab {
    /// `nat_enabled: false` leaves `nat_config` as the loader made it
    /// (all zero: NAT off).
    fn new(name: &str, nat_enabled: bool) -> Self {
        let loaded = Loaded::new(
            "xdp",
            name,
            Some(&plan()),
            &[UPLINK_XDP_PROGRAM, nat::INGRESS_PROGRAM],
        );
        if nat_enabled {
            nat::configure(loaded.dir(), &plan(), EXTERNAL, GATEWAY_MAC, true).expect("configure");
        }
        Self { loaded }
    }

    fn xdp(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        self.loaded
            .run_xdp(UPLINK_XDP_PROGRAM, frame, None)
            .expect("XDP test run")
    }

    fn tc(&self, frame: &[u8]) -> u32 {
        self.loaded
            .run_tc(nat::INGRESS_PROGRAM, frame, None)
            .expect("TC test run")
            .0
    }

    fn counters(&self) -> Vec<u64> {
        self.loaded.counters()
    }
}

fn frame_from(ip: &Ip, l4: &[u8]) -> Vec<u8> {
    ethernet(UPLINK_MAC, INET_MAC, ETH_P_IP, &ipv4(ip, l4))
}

fn udp_frame(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    frame_from(
        &Ip::new(src, dst, PROTO_UDP),
        &udp(src, dst, 5353, dport, b"unsolicited", true),
    )
}

/// One case: the frame, XDP's verdict and counter, TC's verdict and counter.
struct Case {
    what: &'static str,
    frame: Vec<u8>,
    xdp: (u32, Counter),
    /// None: BPF_PROG_TEST_RUN refuses the frame for TC (not run).
    tc: Option<(u32, Counter)>,
}

fn cases() -> Vec<Case> {
    let short_udp = frame_from(&Ip::new(REMOTE, EXTERNAL, PROTO_UDP), &[0, 53, 0x9c]);
    let short_tcp = frame_from(
        &Ip::new(REMOTE, EXTERNAL, PROTO_TCP),
        &tcp(REMOTE, EXTERNAL, 80, 40001, TCP_ACK, b"")[..12],
    );
    let mut ihl4 = udp_frame(REMOTE, EXTERNAL, 40001);
    ihl4[14] = 0x44;
    let mut version6 = udp_frame(REMOTE, EXTERNAL, 40001);
    version6[14] = 0x65;
    let mut later_fragment = Ip::new(REMOTE, EXTERNAL, PROTO_UDP);
    later_fragment.frag = 0x0010; // offset 128 bytes, no L4 header
    let drop_unsolicited = (XDP_DROP, Counter::XdpDropUnsolicited);
    let drop_lab_source = (XDP_DROP, Counter::XdpDropLabSource);
    let drop_malformed = (XDP_DROP, Counter::XdpDropMalformed);
    let pass = (XDP_PASS, Counter::XdpPass);
    vec![
        Case {
            what: "UDP to a lab address",
            frame: udp_frame(REMOTE, LAB_1, 7),
            xdp: drop_unsolicited,
            tc: Some((TC_ACT_SHOT, Counter::NatDropUnsolicited)),
        },
        Case {
            what: "TCP SYN to a lab address nobody has",
            frame: frame_from(
                &Ip::new(REMOTE, LAB_9, PROTO_TCP),
                &tcp(REMOTE, LAB_9, 4000, 22, TCP_SYN, b""),
            ),
            xdp: drop_unsolicited,
            tc: Some((TC_ACT_SHOT, Counter::NatDropUnsolicited)),
        },
        Case {
            what: "ICMP echo request to a lab address",
            frame: frame_from(
                &Ip::new(REMOTE, LAB_1, PROTO_ICMP),
                &icmp_echo(8, 7, 1, b"ping"),
            ),
            xdp: drop_unsolicited,
            tc: Some((TC_ACT_SHOT, Counter::NatDropUnsolicited)),
        },
        Case {
            what: "a lab source to the external address",
            frame: udp_frame(LAB_1, EXTERNAL, 40001),
            xdp: drop_lab_source,
            tc: Some((TC_ACT_SHOT, Counter::NatDropLabSource)),
        },
        Case {
            what: "a lab source to another host",
            frame: udp_frame(LAB_9, REMOTE, 53),
            xdp: drop_lab_source,
            tc: Some((TC_ACT_SHOT, Counter::NatDropLabSource)),
        },
        Case {
            what: "IHL 4",
            frame: ihl4,
            xdp: drop_malformed,
            tc: Some((TC_ACT_SHOT, Counter::NatDropMalformed)),
        },
        Case {
            what: "IP version 6 behind the IPv4 EtherType",
            frame: version6,
            xdp: drop_malformed,
            tc: Some((TC_ACT_SHOT, Counter::NatDropMalformed)),
        },
        Case {
            what: "UDP to the external address, 3 bytes of header",
            frame: short_udp,
            xdp: drop_malformed,
            tc: Some((TC_ACT_SHOT, Counter::NatDropMalformed)),
        },
        Case {
            what: "TCP to the external address, 12 bytes of header",
            frame: short_tcp,
            xdp: drop_malformed,
            tc: Some((TC_ACT_SHOT, Counter::NatDropMalformed)),
        },
        Case {
            what: "a UDP reply to the external address (no flow: the host's)",
            frame: udp_frame(REMOTE, EXTERNAL, 40001),
            xdp: pass,
            tc: Some((TCX_NEXT, Counter::NatPassHost)),
        },
        Case {
            what: "TCP to another host address",
            frame: frame_from(
                &Ip::new(REMOTE, OTHER_HOST_ADDR, PROTO_TCP),
                &tcp(REMOTE, OTHER_HOST_ADDR, 80, 4000, TCP_ACK, b"x"),
            ),
            xdp: pass,
            tc: Some((TCX_NEXT, Counter::NatPassHost)),
        },
        Case {
            what: "a later fragment to the external address (no L4 header)",
            frame: frame_from(&later_fragment, b"rest"),
            xdp: pass,
            tc: Some((TCX_NEXT, Counter::NatFragUntracked)),
        },
        Case {
            what: "GRE to the external address, short",
            frame: frame_from(&Ip::new(REMOTE, EXTERNAL, 47), &[0, 0]),
            xdp: pass,
            tc: Some((TCX_NEXT, Counter::NatPassHost)),
        },
        Case {
            // Found by the fuzzer: GRE whose IHL (8) runs past the packet.
            // Not the NAT's to read, so not XDP's to judge either.
            what: "GRE to the external address, IHL past the end",
            frame: {
                let mut f = frame_from(&Ip::new(REMOTE, EXTERNAL, 47), &[0; 4]);
                f[14] = 0x48;
                f
            },
            xdp: pass,
            tc: Some((TCX_NEXT, Counter::NatPassHost)),
        },
        Case {
            what: "ARP",
            // A request cut short after the sender's addresses.
            frame: ethernet(
                BROADCAST,
                INET_MAC,
                ETH_P_ARP,
                &arp_body(
                    ARP_REQUEST,
                    INET_MAC,
                    REMOTE.octets(),
                    [0; 6],
                    EXTERNAL.octets(),
                )[..18],
            ),
            xdp: pass,
            tc: Some((TCX_NEXT, Counter::NatPassHost)),
        },
        Case {
            what: "IPv4 EtherType, 10 bytes of IPv4 header",
            frame: {
                let mut f = udp_frame(REMOTE, EXTERNAL, 1);
                f.truncate(14 + 10);
                f
            },
            xdp: drop_malformed,
            // BPF_PROG_TEST_RUN refuses such a frame for TC.
            tc: None,
        },
    ]
}

/// Every case: XDP's verdict and exactly one counter, the frame untouched;
/// TC's verdict and exactly its counter.
#[test]
fn xdp_drops_what_tc_would_drop_and_passes_the_rest() {
    let lab = XdpLab::new("rules", true);
    for case in cases() {
        let before = lab.counters();
        let (verdict, out) = lab.xdp(&case.frame);
        let after = lab.counters();
        assert_eq!(verdict, case.xdp.0, "{}: XDP verdict", case.what);
        assert_eq!(out, case.frame, "{}: XDP changed the frame", case.what);
        assert_eq!(
            moved(&before, &after),
            vec![(case.xdp.1.name(), 1)],
            "{}: XDP counters",
            case.what
        );
        let Some((tc_verdict, tc_counter)) = case.tc else {
            continue;
        };
        let verdict = lab.tc(&case.frame);
        let after_tc = lab.counters();
        assert_eq!(verdict, tc_verdict, "{}: TC verdict", case.what);
        assert_eq!(
            moved(&after, &after_tc),
            vec![(tc_counter.name(), 1)],
            "{}: TC counters",
            case.what
        );
    }
}

/// With the NAT not configured (nothing of a lab to protect), everything
/// passes and nothing is counted.
#[test]
fn xdp_passes_everything_while_nat_is_off() {
    let lab = XdpLab::new("off", false);
    for case in cases() {
        let before = lab.counters();
        let (verdict, out) = lab.xdp(&case.frame);
        assert_eq!(verdict, XDP_PASS, "{}", case.what);
        assert_eq!(out, case.frame, "{}", case.what);
        assert_eq!(moved(&before, &lab.counters()), vec![], "{}", case.what);
    }
}
