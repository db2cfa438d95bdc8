//! `netlab trace`: one typed `EVENT_FRAME` per frame into the `events`
//! ring buffer, written only while `TRACE_FRAMES` is set in
//! `switch_config`, so tracing costs the port program one bit test per
//! frame when off and can be switched without reloading.
//!
//! The record is filled in a function that is never inlined: it exists
//! once in the program as a BPF subprogram, behind the caller's bit test,
//! instead of text formatting in the fast path (aya-log did that, at
//! ~400 instructions per log site).

use netlab_common::events::{
    EVENT_FRAME, FRAME_ARP_ANSWERED, FRAME_DROPPED, FRAME_FLOODED, FRAME_UNICAST, PROGRAM_PORT,
};

use super::{Frame, Outcome};
use crate::events::reserve;

/// The event of one frame that came in on `ingress`.
#[inline(always)]
pub fn frame(ingress: u32, frame: &Frame, outcome: &Outcome) {
    let (kind, n) = match *outcome {
        Outcome::Unicast { to, .. } => (FRAME_UNICAST, to),
        Outcome::ArpAnswered { ip, .. } => (FRAME_ARP_ANSWERED, u32::from_ne_bytes(ip)),
        // Traced as what it is on the wire: a unicast back out of the
        // port it came in on (the frame event has no IPv6 field).
        Outcome::NdAnswered { .. } => (FRAME_UNICAST, ingress),
        Outcome::Flooded { copies, .. } => (FRAME_FLOODED, copies),
        Outcome::Dropped(reason) => (FRAME_DROPPED, reason as u32),
    };
    write(ingress, frame, kind, n);
}

#[inline(never)]
fn write(ingress: u32, frame: &Frame, outcome: u8, n: u32) {
    let Some(mut entry) = reserve(EVENT_FRAME, PROGRAM_PORT) else {
        return;
    };
    // SAFETY: `reserve` initialised the record.
    let event = unsafe { entry.assume_init_mut() };
    event.ifindex = ingress;
    event.src_mac = frame.src;
    event.dst_mac = frame.dst;
    event.ethertype = frame.ethertype;
    event.outcome = outcome;
    if outcome == FRAME_ARP_ANSWERED {
        // The address asked for, in network order like every address.
        event.daddr = n;
    } else {
        event.reason = n;
    }
    entry.submit(0);
}
