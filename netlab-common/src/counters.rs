//! Counter indices shared by the programs and `netlab stats`.

use crate::user_pod;

/// Why a packet was counted. Index into the `counters` per-CPU array.
/// Keep `ALL` and `name()` in step when adding one.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Frames seen on a switch port's ingress.
    PortRx = 0,
    /// Unicast redirected into an endpoint namespace (bpf_redirect_peer).
    RedirectPeer,
    /// Unicast delivered to the host stack through `vbridge`.
    ToHost,
    /// Broadcast/multicast/unknown unicast flooded (counted once per frame).
    Flooded,
    /// Copies sent by flooding (one per target port).
    FloodCopies,
    /// ARP requests answered by the program.
    ArpAnswered,
    /// Frames with a source MAC/IPv4 that is not the port's endpoint's.
    DropSpoofed,
    /// Frames shorter than an Ethernet header.
    DropRunt,
    /// Truncated headers behind a valid Ethernet header (ARP, IPv4).
    DropTruncated,
    /// Ingress on an interface the ports map does not know.
    DropUnknownPort,
    /// A redirect helper failed.
    DropRedirectFailed,
    /// Frame addressed back to the port it came from.
    DropHairpin,
    /// Non-IPv4/ARP EtherTypes switched by MAC (IPv6, VLAN, ...).
    OtherEtherType,
    /// Source MACs learned.
    Learned,
    /// IPv4 from an endpoint to one of the host's own addresses other than
    /// the gateway's (`host_addrs`), while the lab does not allow host access.
    DropHostAccess,
    /// Frames from an endpoint that still carry a VLAN tag (had two or
    /// more; the kernel strips one) addressed to the gateway port: the host
    /// stack would strip the tags and bypass the checks.
    DropTaggedToHost,
    /// Frames from an endpoint with more VLAN tags than the source check
    /// looks through (two after the kernel's own stripping).
    DropTooManyTags,
    // --- NAT (uplink) ---
    /// New translations created.
    NatCreated,
    /// Egress packets translated with an existing entry.
    NatHit,
    /// Ingress replies translated back.
    NatReversed,
    /// Ingress replies delivered straight to the endpoint's port.
    NatFastPath,
    /// ICMP errors quoting a translated packet, translated.
    NatIcmpError,
    /// Uplink packets that are not the lab's (host's own), passed.
    NatPassHost,
    /// No free port/id in the range.
    NatDropNoPort,
    /// The NAT maps were full.
    NatDropMapFull,
    /// A masqueraded source with a protocol the NAT does not translate.
    NatDropUnknownProto,
    /// Later (non-first) fragments from a masqueraded source whose first
    /// fragment was not translated (not seen yet, dropped, or expired).
    NatDropFragment,
    /// Truncated or malformed IPv4/L4 headers on the uplink.
    NatDropMalformed,
    /// Inbound packets to the lab subnet with no translation.
    NatDropUnsolicited,
    /// Later fragments (either direction) translated like their datagram's
    /// first fragment (`nat_frags`).
    NatFragTranslated,
    /// Later fragments to the external address with no recorded first
    /// fragment: passed to the host (its own datagram, or a reply whose
    /// first fragment has not arrived).
    NatFragUntracked,
    /// Translations created by a packet to a published port (`nat_publish`).
    DnatCreated,
    /// A packet to a published port whose translation would overwrite a
    /// masqueraded flow of the namespace with the same tuple: dropped.
    DnatDropConflict,
    /// Connections and datagrams of lab sockets to a published port at a
    /// host address, sent straight to the namespace by the socket hooks.
    SockPublished,
    /// UDP answers whose source the socket hook reported as the published
    /// address and port.
    SockRestored,
    // --- events (`netlab monitor`) ---
    /// Events that found the `events` ring buffer full (the monitor did
    /// not keep up): reported by `netlab monitor` as "lost: N".
    EventsLost,
    /// Inbound packets claiming a lab source address (the lab's own
    /// traffic leaves translated), dropped by the uplink TC ingress.
    NatDropLabSource,
    // --- uplink XDP (before the skb; see also the TC counters above) ---
    /// Passed on to the kernel (and the uplink TC ingress).
    XdpPass,
    /// Dropped at XDP: to the lab subnet with no translation.
    XdpDropUnsolicited,
    /// Dropped at XDP: claiming a lab source address.
    XdpDropLabSource,
    /// Dropped at XDP: truncated or malformed IPv4/L4 headers.
    XdpDropMalformed,
    // --- switch port XDP (datapath "ebpf-xdp"; drops use the reasons above) ---
    /// Frames seen by the XDP port program.
    XdpPortRx,
    /// Unicast redirected to a port through the devmap.
    XdpPortRedirect,
    /// Broadcast/multicast/unknown unicast flooded through the devmap
    /// (one per frame; the copies are the kernel's).
    XdpPortFlood,
    /// Passed on to the TC port program (ARP, VLAN tags, learning or
    /// tracing on, a target missing from the devmap).
    XdpPortToTc,
}

impl Counter {
    pub const COUNT: u32 = 45;

    pub const ALL: [Counter; Self::COUNT as usize] = [
        Counter::PortRx,
        Counter::RedirectPeer,
        Counter::ToHost,
        Counter::Flooded,
        Counter::FloodCopies,
        Counter::ArpAnswered,
        Counter::DropSpoofed,
        Counter::DropRunt,
        Counter::DropTruncated,
        Counter::DropUnknownPort,
        Counter::DropRedirectFailed,
        Counter::DropHairpin,
        Counter::OtherEtherType,
        Counter::Learned,
        Counter::DropHostAccess,
        Counter::DropTaggedToHost,
        Counter::DropTooManyTags,
        Counter::NatCreated,
        Counter::NatHit,
        Counter::NatReversed,
        Counter::NatFastPath,
        Counter::NatIcmpError,
        Counter::NatPassHost,
        Counter::NatDropNoPort,
        Counter::NatDropMapFull,
        Counter::NatDropUnknownProto,
        Counter::NatDropFragment,
        Counter::NatDropMalformed,
        Counter::NatDropUnsolicited,
        Counter::NatFragTranslated,
        Counter::NatFragUntracked,
        Counter::DnatCreated,
        Counter::DnatDropConflict,
        Counter::SockPublished,
        Counter::SockRestored,
        Counter::EventsLost,
        Counter::NatDropLabSource,
        Counter::XdpPass,
        Counter::XdpDropUnsolicited,
        Counter::XdpDropLabSource,
        Counter::XdpDropMalformed,
        Counter::XdpPortRx,
        Counter::XdpPortRedirect,
        Counter::XdpPortFlood,
        Counter::XdpPortToTc,
    ];

    /// Stable name used by `netlab stats` and its JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::PortRx => "port_rx",
            Counter::RedirectPeer => "redirect_peer",
            Counter::ToHost => "to_host",
            Counter::Flooded => "flooded",
            Counter::FloodCopies => "flood_copies",
            Counter::ArpAnswered => "arp_answered",
            Counter::DropSpoofed => "drop_spoofed",
            Counter::DropRunt => "drop_runt",
            Counter::DropTruncated => "drop_truncated",
            Counter::DropUnknownPort => "drop_unknown_port",
            Counter::DropRedirectFailed => "drop_redirect_failed",
            Counter::DropHairpin => "drop_hairpin",
            Counter::OtherEtherType => "other_ethertype",
            Counter::Learned => "learned",
            Counter::DropHostAccess => "drop_host_access",
            Counter::DropTaggedToHost => "drop_tagged_to_host",
            Counter::DropTooManyTags => "drop_too_many_tags",
            Counter::NatCreated => "nat_created",
            Counter::NatHit => "nat_hit",
            Counter::NatReversed => "nat_reversed",
            Counter::NatFastPath => "nat_fast_path",
            Counter::NatIcmpError => "nat_icmp_error",
            Counter::NatPassHost => "nat_pass_host",
            Counter::NatDropNoPort => "nat_drop_no_port",
            Counter::NatDropMapFull => "nat_drop_map_full",
            Counter::NatDropUnknownProto => "nat_drop_unknown_proto",
            Counter::NatDropFragment => "nat_drop_fragment",
            Counter::NatDropMalformed => "nat_drop_malformed",
            Counter::NatDropUnsolicited => "nat_drop_unsolicited",
            Counter::NatFragTranslated => "nat_frag_translated",
            Counter::NatFragUntracked => "nat_frag_untracked",
            Counter::DnatCreated => "dnat_created",
            Counter::DnatDropConflict => "dnat_drop_conflict",
            Counter::SockPublished => "sock_published",
            Counter::SockRestored => "sock_restored",
            Counter::EventsLost => "events_lost",
            Counter::NatDropLabSource => "nat_drop_lab_source",
            Counter::XdpPass => "xdp_pass",
            Counter::XdpDropUnsolicited => "xdp_drop_unsolicited",
            Counter::XdpDropLabSource => "xdp_drop_lab_source",
            Counter::XdpDropMalformed => "xdp_drop_malformed",
            Counter::XdpPortRx => "xdp_port_rx",
            Counter::XdpPortRedirect => "xdp_port_redirect",
            Counter::XdpPortFlood => "xdp_port_flood",
            Counter::XdpPortToTc => "xdp_port_to_tc",
        }
    }
}

/// Per-port statistics (per CPU), indexed by the port's slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: u64,
}

user_pod!(PortStats);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_dense_and_named_uniquely() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32);
            for other in &Counter::ALL[..i] {
                assert_ne!(other.name(), c.name());
            }
        }
        assert_eq!(core::mem::size_of::<PortStats>(), 40);
    }
}
