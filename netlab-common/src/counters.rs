//! Counter indices shared by the programs and `netlab stats`.

use crate::user_pod;

/// Declares [`Counter`] from its rows: each row is the counter's meaning
/// (its doc comment) and `Variant = "name"`, the stable name `netlab
/// stats`, its JSON, `netlab monitor` and the metrics use. The index (the
/// row's position), `COUNT`, `ALL`, `name()` and `meaning()` follow, so
/// adding a counter is one row. Append new rows at the end: the index is
/// the slot in the pinned `counters` map, and a running lab keeps it.
macro_rules! counters {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, )+) => {
        /// Why a packet was counted. Index into the `counters` per-CPU array.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Counter {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Counter {
            /// Every counter, in index order.
            pub const ALL: [Counter; Self::COUNT as usize] = [$(Counter::$variant),+];

            /// How many counters there are (the `counters` map's size).
            pub const COUNT: u32 = [$(Counter::$variant),+].len() as u32;

            /// Stable name used by `netlab stats` and its JSON.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Counter::$variant => $name, )+
                }
            }

            /// What the counter counts (its row's doc comment, one line).
            pub const fn meaning(self) -> &'static str {
                match self {
                    $( Counter::$variant => concat!($($doc),+).trim_ascii(), )+
                }
            }
        }
    };
}

counters! {
    /// Frames seen on a switch port's ingress.
    PortRx = "port_rx",
    /// Unicast redirected into an endpoint namespace (bpf_redirect_peer).
    RedirectPeer = "redirect_peer",
    /// Unicast delivered to the host stack through `vbridge`.
    ToHost = "to_host",
    /// Broadcast/multicast/unknown unicast flooded (counted once per frame).
    Flooded = "flooded",
    /// Copies sent by flooding (one per target port).
    FloodCopies = "flood_copies",
    /// ARP requests answered by the program.
    ArpAnswered = "arp_answered",
    /// Frames with a source MAC/IPv4/IPv6 that is not the port's endpoint's.
    DropSpoofed = "drop_spoofed",
    /// Frames shorter than an Ethernet header.
    DropRunt = "drop_runt",
    /// Truncated headers behind a valid Ethernet header (ARP, IPv4, IPv6).
    DropTruncated = "drop_truncated",
    /// Ingress on an interface the ports map does not know.
    DropUnknownPort = "drop_unknown_port",
    /// A redirect helper failed.
    DropRedirectFailed = "drop_redirect_failed",
    /// Frame addressed back to the port it came from.
    DropHairpin = "drop_hairpin",
    /// Non-IPv4/IPv6/ARP EtherTypes switched by MAC (VLAN, ...).
    OtherEtherType = "other_ethertype",
    /// Source MACs learned.
    Learned = "learned",
    /// IPv4 from an endpoint to one of the host's own addresses other than
    /// the gateway's (`host_addrs`), while the lab does not allow host access.
    DropHostAccess = "drop_host_access",
    /// Frames from an endpoint that still carry a VLAN tag (had two or
    /// more; the kernel strips one) addressed to the gateway port: the host
    /// stack would strip the tags and bypass the checks.
    DropTaggedToHost = "drop_tagged_to_host",
    /// Frames from an endpoint with more VLAN tags than the source check
    /// looks through (two after the kernel's own stripping).
    DropTooManyTags = "drop_too_many_tags",
    // --- NAT (uplink) ---
    /// New translations created.
    NatCreated = "nat_created",
    /// Egress packets translated with an existing entry.
    NatHit = "nat_hit",
    /// Ingress replies translated back.
    NatReversed = "nat_reversed",
    /// Ingress replies delivered straight to the endpoint's port.
    NatFastPath = "nat_fast_path",
    /// ICMP errors quoting a translated packet, translated.
    NatIcmpError = "nat_icmp_error",
    /// Uplink packets that are not the lab's (host's own), passed.
    NatPassHost = "nat_pass_host",
    /// No free port/id in the range.
    NatDropNoPort = "nat_drop_no_port",
    /// The NAT maps were full.
    NatDropMapFull = "nat_drop_map_full",
    /// A masqueraded source with a protocol the NAT does not translate.
    NatDropUnknownProto = "nat_drop_unknown_proto",
    /// Later (non-first) fragments from a masqueraded source whose first
    /// fragment was not translated (not seen yet, dropped, or expired).
    NatDropFragment = "nat_drop_fragment",
    /// Truncated or malformed IPv4/L4 headers on the uplink.
    NatDropMalformed = "nat_drop_malformed",
    /// Inbound packets to the lab subnet with no translation.
    NatDropUnsolicited = "nat_drop_unsolicited",
    /// Later fragments (either direction) translated like their datagram's
    /// first fragment (`nat_frags`).
    NatFragTranslated = "nat_frag_translated",
    /// Later fragments to the external address with no recorded first
    /// fragment: passed to the host (its own datagram, or a reply whose
    /// first fragment has not arrived).
    NatFragUntracked = "nat_frag_untracked",
    /// Translations created by a packet to a published port (`nat_publish`).
    DnatCreated = "dnat_created",
    /// A packet to a published port whose translation would overwrite a
    /// masqueraded flow of the namespace with the same tuple: dropped.
    DnatDropConflict = "dnat_drop_conflict",
    /// Connections and datagrams of lab sockets to a published port at a
    /// host address, sent straight to the namespace by the socket hooks.
    SockPublished = "sock_published",
    /// UDP answers whose source the socket hook reported as the published
    /// address and port.
    SockRestored = "sock_restored",
    // --- events (`netlab monitor`) ---
    /// Events that found the `events` ring buffer full (the monitor did
    /// not keep up): reported by `netlab monitor` as "lost: N".
    EventsLost = "events_lost",
    /// Inbound packets claiming a lab source address (the lab's own
    /// traffic leaves translated), dropped by the uplink TC ingress.
    NatDropLabSource = "nat_drop_lab_source",
    // --- uplink XDP (before the skb; see also the TC counters above) ---
    /// Passed on to the kernel (and the uplink TC ingress).
    XdpPass = "xdp_pass",
    /// Dropped at XDP: to the lab subnet with no translation.
    XdpDropUnsolicited = "xdp_drop_unsolicited",
    /// Dropped at XDP: claiming a lab source address.
    XdpDropLabSource = "xdp_drop_lab_source",
    /// Dropped at XDP: truncated or malformed IPv4/L4 headers.
    XdpDropMalformed = "xdp_drop_malformed",
    // --- switch port XDP (datapath "ebpf-xdp"; drops use the reasons above) ---
    /// Frames seen by the XDP port program.
    XdpPortRx = "xdp_port_rx",
    /// Unicast redirected to a port through the devmap.
    XdpPortRedirect = "xdp_port_redirect",
    /// Broadcast/multicast/unknown unicast flooded through the devmap
    /// (one per frame; the copies are the kernel's).
    XdpPortFlood = "xdp_port_flood",
    /// Passed on to the TC port program (ARP, VLAN tags, learning or
    /// tracing on, a target missing from the devmap).
    XdpPortToTc = "xdp_port_to_tc",
    // --- IPv6 first-hop security (switch ports) ---
    /// Neighbour solicitations answered by the program (the ND responder).
    NdAnswered = "nd_answered",
    /// Router advertisements, redirects and DHCPv6 server messages from an
    /// endpoint port (RA guard, RFC 6105).
    DropRaGuard = "drop_ra_guard",
    /// Neighbour solicitations/advertisements from an endpoint claiming an
    /// address or link-layer address that is not its own.
    DropNdSpoof = "drop_nd_spoof",
    /// IPv6 from an endpoint with a payload length that disagrees with the
    /// frame, an extension header chain longer than the bound, or a
    /// hop-by-hop jumbogram.
    DropIpv6Malformed = "drop_ipv6_malformed",
    // --- NAT66 (uplink; the other NAT counters count both families) ---
    /// IPv6 on the uplink with an extension header chain longer than the
    /// bound, or a hop-by-hop jumbogram.
    NatDropExtHeaders = "nat_drop_ext_headers",
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
        // The names tests, metrics and scripts use stay what they were.
        assert_eq!(Counter::COUNT, 50);
        assert_eq!(Counter::PortRx as u32, 0);
        assert_eq!(Counter::EventsLost.name(), "events_lost");
        assert_eq!(Counter::XdpPortToTc as u32, 44);
        assert_eq!(Counter::XdpPortToTc.name(), "xdp_port_to_tc");
        assert_eq!(
            Counter::NatDropFragment.meaning(),
            "Later (non-first) fragments from a masqueraded source whose first \
             fragment was not translated (not seen yet, dropped, or expired)."
        );
    }
}
