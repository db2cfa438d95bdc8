//! NAT expiries into the event stream.
//!
//! Flows expire in userspace (the daemon's sweep deletes them), and
//! userspace cannot write into a BPF ring buffer. Rather than a second
//! channel the monitor would have to merge (and a second place to count
//! losses), the daemon hands each expiry to a tiny program of the same
//! object, `netlab_event_inject`, through BPF_PROG_TEST_RUN: the event is
//! the "packet", the program stamps and copies it into the ring buffer. So
//! one stream holds every event in order, and a full buffer counts the
//! expiry as lost like any other event. Nothing is loaded, and nothing
//! runs, while no monitor listens.

use std::{net::SocketAddrV4, path::PathBuf};

use anyhow::Context as _;
use aya::{
    Ebpf,
    programs::{SchedClassifier, TestRun, TestRunOptions},
};
use netlab_common::{
    ether::{ETH_P_IP, ETH_P_IPV6},
    events::{EVENT_NAT_EXPIRED, Event, Event6},
};

use crate::{
    bpf::loader::{load_classifier, load_object},
    nat::{AnyFlow, NatFlow},
    plan::NatPlan,
};

/// The program's name in the object.
pub const INJECT_PROGRAM: &str = "netlab_event_inject";

/// Reports expired flows to a listening monitor; loads the injector the
/// first time there is something to report.
pub struct ExpiryReporter {
    lab: String,
    pin_dir: PathBuf,
    nat: NatPlan,
    loaded: Option<Ebpf>,
}

fn raw(a: &SocketAddrV4) -> (u32, u16) {
    (crate::bpf::key::ipv4_key(*a.ip()), a.port().to_be())
}

/// The event for one expired flow (the original tuple and its translation).
pub fn expiry_event(flow: &NatFlow) -> Event {
    let proto = flow.proto.number();
    let (saddr, sport) = raw(&flow.orig_src);
    let (daddr, dport) = raw(&flow.remote);
    let (xaddr, xport) = raw(&flow.translated);
    Event {
        kind: EVENT_NAT_EXPIRED,
        proto,
        ethertype: ETH_P_IP,
        saddr,
        daddr,
        sport,
        dport,
        xaddr,
        xport,
        ..Event::default()
    }
}

/// The record for one expired flow of either family: an [`Event`]'s
/// bytes for IPv4, an [`Event6`]'s for NAT66 (the injector tells them
/// apart by their length).
pub fn expiry_record(flow: &AnyFlow) -> Vec<u8> {
    match flow {
        AnyFlow::V4(f) => expiry_event(f).as_bytes().to_vec(),
        AnyFlow::V6(f) => Event6 {
            event: Event {
                kind: EVENT_NAT_EXPIRED,
                proto: f.proto.number(),
                ethertype: ETH_P_IPV6,
                sport: f.orig_src.port().to_be(),
                dport: f.remote.port().to_be(),
                xport: f.translated.port().to_be(),
                ..Event::default()
            },
            saddr6: f.orig_src.ip().octets(),
            daddr6: f.remote.ip().octets(),
            xaddr6: f.translated.ip().octets(),
        }
        .as_bytes()
        .to_vec(),
    }
}

impl ExpiryReporter {
    pub fn new(lab: &str, pin_dir: PathBuf, nat: NatPlan) -> Self {
        Self {
            lab: lab.to_string(),
            pin_dir,
            nat,
            loaded: None,
        }
    }

    /// Whether a monitor listens (else expiries need not be built at all).
    pub fn wanted(&self) -> bool {
        super::gate::is_open(&self.lab)
    }

    fn program(&mut self) -> anyhow::Result<&SchedClassifier> {
        if self.loaded.is_none() {
            // The object's maps are the lab's pinned ones (re-adopted by
            // name), so the program writes into the lab's ring buffer.
            let mut ebpf = load_object(&self.pin_dir, &crate::nat::map_sizes(&self.nat))?;
            load_classifier(&mut ebpf, INJECT_PROGRAM)?;
            self.loaded = Some(ebpf);
        }
        let ebpf = self.loaded.as_ref().expect("loaded above");
        let program: &SchedClassifier = ebpf
            .program(INJECT_PROGRAM)
            .context("the injector is missing from the object")?
            .try_into()?;
        Ok(program)
    }

    /// Puts the expiry of each of `flows` into the event stream.
    pub fn report(&mut self, flows: &[AnyFlow]) -> anyhow::Result<()> {
        if flows.is_empty() || !self.wanted() {
            return Ok(());
        }
        let program = self.program()?;
        for flow in flows {
            let record = expiry_record(flow);
            program
                .test_run(TestRunOptions {
                    data_in: Some(&record),
                    ..TestRunOptions::default()
                })
                .context("cannot run the event injector")?;
        }
        Ok(())
    }
}
