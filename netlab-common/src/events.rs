//! The datapath's event stream (`netlab monitor`): one typed record per
//! event, written by every program into the `events` BPF ring buffer.
//!
//! Events are off unless a monitor listens: the programs emit only while
//! [`crate::switch::TRACE_EVENTS`] is set in `switch_config`, and only on
//! the paths that are events (a drop, a new translation, a learned MAC, an
//! answered ARP request): a packet that is simply forwarded never reads the
//! flag. A record that does not fit in the ring buffer is counted in
//! `Counter::EventsLost`, so losses are reported, never silent.
//!
//! IPv6: a drop of an IPv6 packet and a NAT66 flow event are the same
//! kinds (`EVENT_DROP`, `EVENT_NAT_*`), written as an [`Event6`]: the
//! family is the record's, not the kind's, so `monitor --type nat` and
//! every filter see both families.
//!
//! The drop reasons are the counters' ([`crate::counters::Counter`]): one
//! list of reasons for `netlab stats`, `netlab monitor` and the metrics.

use crate::user_pod;

// Pin name of the ring buffer, declared in the map table.
pub use crate::maps::EVENTS_MAP;
/// Size of the ring buffer in bytes (a power of two, a multiple of the
/// page size). Each record takes `size_of::<Event>()` plus an 8-byte
/// header: 4096 events fit, a burst far larger than one poll round sees.
pub const EVENTS_RING_SIZE: u32 = 256 * 1024;

/// A packet was dropped; `reason` says why.
pub const EVENT_DROP: u8 = 1;
/// A new NAT translation: `saddr:sport -> daddr:dport` (the original
/// tuple) leaves as `xaddr:xport`.
pub const EVENT_NAT_CREATED: u8 = 2;
/// No translation could be made for the original tuple (`reason`:
/// `NatDropNoPort`, the port range is exhausted, or `NatDropMapFull`); the
/// packet was dropped. Counts as a drop and as a NAT event.
pub const EVENT_NAT_EXHAUSTED: u8 = 3;
/// A translation expired (reported by the control plane's sweep, which
/// injects it into the same ring buffer: see `netlab_event_inject`).
pub const EVENT_NAT_EXPIRED: u8 = 4;
/// A source MAC was learned (or moved) on port `ifindex`.
pub const EVENT_FDB_LEARNED: u8 = 5;
/// An ARP request from `saddr` (MAC `src_mac`) for `daddr` was answered.
pub const EVENT_ARP_ANSWERED: u8 = 6;
/// One frame through the switch and what became of it (`netlab trace`):
/// `ifindex` the ingress port, the MACs and EtherType, `outcome` a
/// FRAME_*, `reason` its number. Written by the port program only while
/// [`crate::switch::TRACE_FRAMES`] is set, for every frame.
pub const EVENT_FRAME: u8 = 7;

/// A neighbour solicitation was answered by the switch's ND responder: an
/// [`Event6`] naming the asker (`saddr6`, `src_mac`) and the address asked
/// for (`daddr6`, and the MAC it resolves to as `dst_mac`), like
/// EVENT_ARP_ANSWERED for IPv4.
pub const EVENT_ND_ANSWERED: u8 = 8;

/// `Event::outcome` of an EVENT_FRAME: redirected to one port (`reason`:
/// its ifindex).
pub const FRAME_UNICAST: u8 = 1;
/// An ARP request answered in place (`daddr`: the address asked for).
pub const FRAME_ARP_ANSWERED: u8 = 2;
/// Flooded (`reason`: the number of copies sent).
pub const FRAME_FLOODED: u8 = 3;
/// Dropped (`reason`: the `Counter` index, as for EVENT_DROP).
pub const FRAME_DROPPED: u8 = 4;
/// A neighbour solicitation answered in place: an [`Event6`] whose
/// `daddr6` is the address asked for (the IPv6 twin of
/// FRAME_ARP_ANSWERED).
pub const FRAME_ND_ANSWERED: u8 = 5;

/// `Event::program`: which program emitted the event.
pub const PROGRAM_PORT: u8 = 1;
pub const PROGRAM_NAT_EGRESS: u8 = 2;
pub const PROGRAM_NAT_INGRESS: u8 = 3;
/// The control plane (through `netlab_event_inject`).
pub const PROGRAM_CONTROL: u8 = 4;
/// The uplink's XDP filter (`netlab_uplink_xdp`).
pub const PROGRAM_UPLINK_XDP: u8 = 5;
/// The XDP switch (`netlab_xdp_port`).
pub const PROGRAM_XDP_PORT: u8 = 6;

/// One event. Addresses and ports in network byte order (as in the
/// packet), like every map key; fields an event kind does not use are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Event {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC, nanoseconds.
    pub ts_ns: u64,
    /// EVENT_*.
    pub kind: u8,
    /// PROGRAM_*.
    pub program: u8,
    /// IP protocol of the packet (IPv6: the first header's Next Header;
    /// 0: not IP).
    pub proto: u8,
    /// EVENT_FRAME: what became of the frame (FRAME_*); otherwise 0.
    pub outcome: u8,
    /// Drops and exhausted ranges: the `Counter` index; EVENT_FRAME: the
    /// outcome's number (see FRAME_*); otherwise 0.
    pub reason: u32,
    /// The interface the program runs on (a switch port's ingress, the
    /// uplink); for learned MACs, the port the MAC now lives behind.
    pub ifindex: u32,
    /// EtherType, host order (0: unknown).
    pub ethertype: u16,
    pub _pad1: u16,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// IPv4 (ARP: the protocol addresses); 0 in an [`Event6`].
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    /// NAT: the translated source address and port (created, expired).
    pub xaddr: u32,
    pub xport: u16,
    pub _pad2: u16,
}

impl Event {
    /// Size of a record in bytes (what `netlab_event_inject` copies).
    pub const SIZE: usize = core::mem::size_of::<Event>();

    /// The record as bytes (the control plane injects expiry events so).
    pub fn as_bytes(&self) -> &[u8; Self::SIZE] {
        // SAFETY: repr(C), no implicit padding (asserted below), plain data.
        unsafe { &*(core::ptr::from_ref(self).cast::<[u8; Self::SIZE]>()) }
    }

    /// Reads a record written by a program (`None` when too short).
    pub fn from_bytes(bytes: &[u8]) -> Option<Event> {
        if bytes.len() < Self::SIZE {
            return None;
        }
        // SAFETY: long enough; every bit pattern is a valid Event; the read
        // is unaligned because ring buffer records are only 8-aligned by
        // contract and slices carry no alignment at all.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
    }
}

/// An event about an IPv6 packet or NAT66 flow: an [`Event`] (its
/// `ethertype` `ETH_P_IPV6`, its IPv4 address fields 0) followed by the
/// IPv6 addresses. IPv4 and ARP events stay 56-byte [`Event`] records, so
/// the ring buffer holds as many of them as before; the record's length
/// says which of the two it is, and a reader that knows only [`Event`]
/// still reads the prefix of an IPv6 record (`Event::from_bytes` takes a
/// longer slice).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Event6 {
    pub event: Event,
    /// Source and destination, as in the packet.
    pub saddr6: [u8; 16],
    pub daddr6: [u8; 16],
    /// NAT66: the translated source address (created, expired).
    pub xaddr6: [u8; 16],
}

impl Event6 {
    /// Size of an IPv6 record in bytes.
    pub const SIZE: usize = core::mem::size_of::<Event6>();

    /// The record as bytes (the control plane injects NAT66 expiries so).
    pub fn as_bytes(&self) -> &[u8; Self::SIZE] {
        // SAFETY: repr(C), no implicit padding (asserted below), plain data.
        unsafe { &*(core::ptr::from_ref(self).cast::<[u8; Self::SIZE]>()) }
    }

    /// Reads any record: an IPv6 one whole; an IPv4 or ARP one (shorter)
    /// as its [`Event`] with the IPv6 addresses all zero. `None` when
    /// shorter than an [`Event`].
    pub fn from_record(bytes: &[u8]) -> Option<Event6> {
        if bytes.len() < Self::SIZE {
            return Event::from_bytes(bytes).map(|event| Event6 {
                event,
                ..Event6::default()
            });
        }
        // SAFETY: long enough; every bit pattern is valid; unaligned read
        // as in `Event::from_bytes`.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Event6>()) })
    }

    /// Whether the record carried IPv6 addresses.
    pub fn is_ipv6(&self) -> bool {
        self.event.ethertype == crate::ether::ETH_P_IPV6
    }
}

user_pod!(Event, Event6);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn layout() {
        assert_eq!(size_of::<Event>(), 56);
        assert_eq!(align_of::<Event>(), 8);
        assert_eq!(offset_of!(Event, kind), 8);
        assert_eq!(offset_of!(Event, reason), 12);
        assert_eq!(offset_of!(Event, ifindex), 16);
        assert_eq!(offset_of!(Event, ethertype), 20);
        assert_eq!(offset_of!(Event, src_mac), 24);
        assert_eq!(offset_of!(Event, dst_mac), 30);
        assert_eq!(offset_of!(Event, saddr), 36);
        assert_eq!(offset_of!(Event, sport), 44);
        assert_eq!(offset_of!(Event, xaddr), 48);
        assert_eq!(offset_of!(Event, xport), 52);
        // The sum of the fields: no implicit padding anywhere.
        assert_eq!(8 + 4 + 4 + 4 + 4 + 12 + 8 + 4 + 8, size_of::<Event>());
        assert_eq!(EVENTS_RING_SIZE % 4096, 0);
        assert!(EVENTS_RING_SIZE.is_power_of_two());
    }

    #[test]
    fn ipv6_records_extend_the_ipv4_one() {
        assert_eq!(size_of::<Event6>(), 104);
        assert_eq!(align_of::<Event6>(), 8);
        assert_eq!(offset_of!(Event6, saddr6), Event::SIZE);
        assert_eq!(offset_of!(Event6, xaddr6), Event::SIZE + 32);
        let e = Event6 {
            event: Event {
                kind: EVENT_NAT_EXPIRED,
                ethertype: crate::ether::ETH_P_IPV6,
                ..Default::default()
            },
            saddr6: [0xfd; 16],
            xaddr6: [0x20; 16],
            ..Default::default()
        };
        assert_eq!(Event6::from_record(e.as_bytes()), Some(e));
        assert!(e.is_ipv6());
        // An older reader sees the prefix; an IPv4 record reads with no
        // IPv6 addresses.
        assert_eq!(Event::from_bytes(e.as_bytes()), Some(e.event));
        let v4 = Event {
            kind: EVENT_DROP,
            ethertype: crate::ether::ETH_P_IP,
            saddr: 7,
            ..Default::default()
        };
        let read = Event6::from_record(v4.as_bytes()).unwrap();
        assert_eq!(read.event, v4);
        assert_eq!(read.saddr6, [0; 16]);
        assert!(!read.is_ipv6());
        assert_eq!(Event6::from_record(&[0; 8]), None);
    }

    #[test]
    fn bytes_round_trip() {
        let e = Event {
            ts_ns: 7,
            kind: EVENT_NAT_CREATED,
            saddr: 0x0102_0304,
            xport: 9,
            ..Default::default()
        };
        assert_eq!(Event::from_bytes(e.as_bytes()), Some(e));
        assert_eq!(Event::from_bytes(&e.as_bytes()[..10]), None);
    }
}
