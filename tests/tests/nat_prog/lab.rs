//! The NAT programs' test lab: addresses, the plan, one loaded copy of
//! the object ([`NatLab`]) and the frames the tests send. Its imports are
//! re-exported: they are what every test module of this file uses.

pub(crate) use std::{net::Ipv4Addr, path::Path};

pub(crate) use aya::{Ebpf, maps::HashMap as BpfHashMap};
pub(crate) use netlab::{
    bpf::{key::ipv4_key, maps::SwitchMaps},
    nat::{self, FlowState, NatTable, Proto},
    plan::{NatPlan, NatTimeouts},
};
pub(crate) use netlab_common::{
    counters::Counter,
    nat::{
        IPPROTO_UDP, NAT_FRAG_IN, NAT_FRAG_OUT, NAT_FRAGS_MAP, NAT_ORIG_MAP, NAT_REPLY_MAP,
        NAT_STATE_NONE, NatEntry, NatFragEntry, NatFragKey, NatKey,
    },
};
pub(crate) use netlab_tests::{harness::Loaded, packets::*};

pub(crate) use netlab::bpf::verdict::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TCX_NEXT};

pub(crate) const EGRESS: &str = nat::EGRESS_PROGRAM;
pub(crate) const INGRESS: &str = nat::INGRESS_PROGRAM;

pub(crate) const EXTERNAL: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub(crate) const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub(crate) const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
pub(crate) const NS1: Ipv4Addr = Ipv4Addr::new(192, 168, 28, 1);
pub(crate) const NS2: Ipv4Addr = Ipv4Addr::new(192, 168, 28, 2);

pub(crate) const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x05];
pub(crate) const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
pub(crate) const INET_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x22];
pub(crate) const NS1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

pub(crate) const PORT_MIN: u16 = 40000;
pub(crate) const PORT_MAX: u16 = 40999;

pub(crate) fn plan(port_min: u16, port_max: u16) -> NatPlan {
    NatPlan {
        uplink_dev: "uplink".into(),
        subnet: Ipv4Addr::new(192, 168, 28, 0),
        prefix_len: 24,
        port_min,
        port_max,
        max_entries: 4096,
        timeouts: NatTimeouts::default(),
        subnet6: None,
    }
}

/// One loaded object with its pins (the shared harness; removed on drop).
pub(crate) struct NatLab {
    pub(crate) loaded: Loaded,
}

impl NatLab {
    pub(crate) fn new(name: &str) -> Self {
        Self::with_plan(name, &plan(PORT_MIN, PORT_MAX))
    }

    pub(crate) fn with_plan(name: &str, plan: &NatPlan) -> Self {
        Self::with_pins(name, plan, |_| {})
    }

    /// As [`NatLab::with_plan`], with `pin` run on the empty pin directory
    /// first: maps pinned there are adopted by name instead of created.
    pub(crate) fn with_pins(name: &str, plan: &NatPlan, pin: impl FnOnce(&Path)) -> Self {
        let mut lab = NatLab {
            loaded: Loaded::empty("nat", name),
        };
        pin(lab.pin_dir());
        lab.load(plan);
        nat::configure(lab.pin_dir(), plan, EXTERNAL, GATEWAY_MAC, true).expect("configure");
        lab
    }

    /// Loads (or reloads, re-adopting the pinned maps) the object.
    pub(crate) fn load(&mut self, plan: &NatPlan) {
        self.loaded.load(Some(plan), &[EGRESS, INGRESS]);
    }

    pub(crate) fn ebpf(&mut self) -> &mut Ebpf {
        self.loaded.ebpf_mut()
    }

    pub(crate) fn pin_dir(&self) -> &Path {
        self.loaded.dir()
    }

    /// The switch's maps: `endpoints` is the NAT fast path's table too.
    pub(crate) fn switch_maps(&self) -> SwitchMaps {
        SwitchMaps::open(self.pin_dir()).expect("switch maps")
    }

    /// Runs `prog` on `frame`: the verdict and the frame as the program left it.
    pub(crate) fn try_run(
        &self,
        prog: &str,
        frame: &[u8],
    ) -> Result<(u32, Vec<u8>), aya::programs::ProgramError> {
        self.loaded.run_tc(prog, frame, None)
    }

    pub(crate) fn run(&self, prog: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        self.try_run(prog, frame).expect("test run")
    }

    pub(crate) fn counter(&self, c: Counter) -> u64 {
        self.loaded.counter(c)
    }

    pub(crate) fn flows(&self) -> Vec<nat::NatFlow> {
        NatTable::open(self.pin_dir()).unwrap().flows().unwrap()
    }
}

/// A frame leaving through the uplink (from the host stack's routing).
pub(crate) fn out_frame(ip: &Ip, l4: &[u8]) -> Vec<u8> {
    ethernet(INET_MAC, UPLINK_MAC, ETH_P_IP, &ipv4(ip, l4))
}

/// A frame arriving on the uplink from the internet side.
pub(crate) fn in_frame(ip: &Ip, l4: &[u8]) -> Vec<u8> {
    ethernet(UPLINK_MAC, INET_MAC, ETH_P_IP, &ipv4(ip, l4))
}

pub(crate) fn tcp_out(src: Ipv4Addr, sport: u16, flags: u8) -> Vec<u8> {
    out_frame(
        &Ip::new(src, REMOTE, PROTO_TCP),
        &tcp(src, REMOTE, sport, 80, flags, b"GET /"),
    )
}

pub(crate) fn tcp_in(dport: u16, flags: u8) -> Vec<u8> {
    in_frame(
        &Ip::new(REMOTE, EXTERNAL, PROTO_TCP),
        &tcp(REMOTE, EXTERNAL, 80, dport, flags, b"HTTP/1.1"),
    )
}

/// Runs egress on `frame`, expects a translation, verifies checksums and
/// returns the translated packet.
pub(crate) fn translate_ok(lab: &NatLab, frame: &[u8]) -> Ipv4View {
    let (verdict, out) = lab.run(EGRESS, frame);
    assert_eq!(verdict, TC_ACT_OK);
    verify_checksums(&out).unwrap_or_else(|e| panic!("egress output: {e}"));
    let (_, _, ip) = parse_frame(&out).unwrap();
    assert_eq!(ip.src, EXTERNAL, "source must be the external address");
    assert_eq!(out.len(), frame.len());
    ip
}
