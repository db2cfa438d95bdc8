//! Source-NAT map types (the uplink programs, `netlab nat list`).
//!
//! Two LRU hash maps hold every translation, one per direction, so that each
//! program needs exactly one lookup per packet:
//!
//! * `nat_orig`: the tuple as it leaves a lab namespace (uplink egress) →
//!   the translated source (external address, port/id);
//! * `nat_reply`: the tuple as the reply arrives on the uplink (ingress:
//!   source = remote, destination = external address and translated port) →
//!   the original source (lab address, port/id).
//!
//! A third LRU hash map, `nat_frags`, carries a translation over to the
//! later fragments of a fragmented datagram, which hold no L4 header (no
//! ports) of their own (as Cilium's `IPV4_FRAG_DATAGRAMS_MAP`): the first
//! fragment is translated like any packet and records, under the datagram's
//! identity ([`NatFragKey`]: addresses, IP id, protocol, direction), the
//! address its fragments must get ([`NatFragEntry`]).
//!
//! Addresses and ports in keys and values are in network byte order, exactly
//! as in the packet; only the configured port range is in host order (the
//! allocator does arithmetic on it).

use crate::user_pod;

// The NAT's map names, declared in the map table.
pub use crate::maps::{
    NAT_CONFIG_MAP, NAT_FRAGS_MAP, NAT_ORIG_MAP, NAT_PUBLISH_MAP, NAT_REPLY_MAP, PUBLISH_NETNS_MAP,
    PUBLISH_SOCKS_MAP,
};

/// Default capacity of each of `nat_orig` / `nat_reply` (overridden from
/// `NatPlan::max_entries` at load time).
pub const NAT_DEFAULT_MAX_ENTRIES: u32 = 65_536;
/// Capacity of `nat_frags`: datagrams in flight in fragments at once (as
/// Cilium's default). LRU: the oldest datagrams go first when it is full.
pub const NAT_FRAGS_SIZE: u32 = 8192;
/// Age after which the control plane removes a `nat_frags` entry: the
/// kernel's reassembly timeout (`net.ipv4.ipfrag_time`), after which no
/// receiver would still wait for the datagram's fragments.
pub const NAT_FRAG_TIMEOUT_SECS: u64 = 30;

/// `NatFragKey::dir`: a datagram leaving the lab (uplink egress); the key's
/// source is the lab endpoint, its destination the remote peer.
pub const NAT_FRAG_OUT: u8 = 1;
/// `NatFragKey::dir`: a datagram arriving for a translation (uplink
/// ingress); the key's source is the remote peer, its destination the
/// external address.
pub const NAT_FRAG_IN: u8 = 2;

/// `NatConfig::flags`: the NAT is configured; without it both programs pass
/// every packet untouched (an unconfigured map is all zeroes).
pub const NAT_FLAG_ENABLED: u32 = 1;
/// `NatConfig::flags`: deliver reverse-translated replies straight to the
/// endpoint's switch port (`bpf_redirect_peer`) when `endpoints` (the
/// switch's endpoint table) knows the destination, instead of handing them to the host stack.
pub const NAT_FLAG_FAST_PATH: u32 = 2;

/// Capacity of `nat_publish`: published ports (ranges expanded) per lab.
pub const NAT_PUBLISH_SIZE: u32 = 4096;

/// `publish_netns` holds the lab's namespaces whose sockets the socket
/// hooks translate (the host side and every endpoint namespace). Sockets of
/// any other namespace (the machine's own, other labs') are never touched.
/// Capacity of `publish_netns`: the host side plus the endpoints.
pub const PUBLISH_NETNS_SIZE: u32 = 257;
/// `publish_socks` remembers the published address a UDP socket sent to,
/// so `recvmsg` reports the answer as coming from it.
/// Capacity of `publish_socks` (LRU: the oldest sockets go first).
pub const PUBLISH_SOCKS_SIZE: u32 = 16384;

/// `NatEntry::flags`: the translation is a published port's (destination
/// NAT, created by a packet arriving on the uplink); without it, a source
/// NAT created by a packet leaving the lab. Both kinds share the maps: a
/// published flow's `nat_orig` entry (keyed by the reply as it leaves the
/// namespace) restores the published address and port on the way out, its
/// `nat_reply` entry (keyed by the client's packets) translates the rest
/// of the flow on the way in, and ICMP errors, expiry, `nat list` and
/// the fast path work on both alike.
pub const NAT_ENTRY_DNAT: u8 = 1;

/// IP protocol numbers the NAT translates.
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// `NatEntry::state`: not TCP (UDP, ICMP) — no state machine.
pub const NAT_STATE_NONE: u8 = 0;
/// TCP: a SYN left, no answer seen yet.
pub const NAT_STATE_TCP_SYN: u8 = 1;
/// TCP: the handshake completed (or the flow was picked up mid-stream).
pub const NAT_STATE_TCP_ESTABLISHED: u8 = 2;
/// TCP: a FIN or RST was seen in either direction; expires early.
pub const NAT_STATE_TCP_CLOSING: u8 = 3;

/// The NAT's configuration, one entry in `nat_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatConfig {
    /// Masqueraded subnet (network order), already masked.
    pub subnet: u32,
    /// Its netmask (network order).
    pub mask: u32,
    /// The uplink's address that translated packets leave with (network order).
    pub external: u32,
    /// First port / ICMP id handed out (host order, inclusive).
    pub port_min: u16,
    /// Last port / ICMP id handed out (host order, inclusive).
    pub port_max: u16,
    /// NAT_FLAG_*.
    pub flags: u32,
    /// The gateway's MAC (`vbridge`): source MAC of fast-path deliveries.
    pub gateway_mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// A connection tuple. For ICMP echo the identifier takes the place of the
/// local port: `sport` in `nat_orig` keys, `dport` in `nat_reply` keys; the
/// other port is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NatKey {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// One direction of a translation.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatEntry {
    /// `nat_orig`: the translated source address (external); `nat_reply`:
    /// the original source address (lab endpoint). Network order.
    pub addr: u32,
    /// `nat_orig`: the translated port/id; `nat_reply`: the original one.
    /// Network order.
    pub port: u16,
    /// NAT_STATE_* (kept equal in both directions' entries).
    pub state: u8,
    /// NAT_ENTRY_* (equal in both directions' entries).
    pub flags: u8,
    /// Last packet seen in this entry's direction, `bpf_ktime_get_ns`
    /// (CLOCK_MONOTONIC, nanoseconds).
    pub last_seen_ns: u64,
}

/// A fragmented datagram's identity: what every one of its fragments
/// carries (RFC 791: source, destination, protocol, identification), as it
/// arrives at the program, plus the direction (`NAT_FRAG_OUT`/`_IN`), so
/// that the two programs' entries can never be mistaken for each other.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NatFragKey {
    pub saddr: u32,
    pub daddr: u32,
    /// The IPv4 identification field, network order.
    pub id: u16,
    pub proto: u8,
    pub dir: u8,
}

/// What the later fragments of a datagram get.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatFragEntry {
    /// Out: the translated source address (external); in: the original
    /// destination (the lab endpoint). Network order.
    pub addr: u32,
    pub _pad: u32,
    /// The last fragment of the datagram seen, `bpf_ktime_get_ns`
    /// (CLOCK_MONOTONIC, nanoseconds); the control plane removes entries
    /// older than [`NAT_FRAG_TIMEOUT_SECS`].
    pub last_seen_ns: u64,
}

impl NatKey {
    /// The `nat_reply` key of a translation whose original tuple is `self`
    /// and whose translated source is `xlat`.
    pub const fn reply_key(&self, xlat: &NatEntry) -> NatKey {
        if self.proto == IPPROTO_ICMP {
            NatKey {
                saddr: self.daddr,
                daddr: xlat.addr,
                sport: 0,
                dport: xlat.port,
                proto: self.proto,
                _pad: [0; 3],
            }
        } else {
            NatKey {
                saddr: self.daddr,
                daddr: xlat.addr,
                sport: self.dport,
                dport: xlat.port,
                proto: self.proto,
                _pad: [0; 3],
            }
        }
    }

    /// The `nat_orig` key of a translation whose reply tuple is `self` and
    /// whose original source is `orig`.
    pub const fn orig_key(&self, orig: &NatEntry) -> NatKey {
        if self.proto == IPPROTO_ICMP {
            NatKey {
                saddr: orig.addr,
                daddr: self.saddr,
                sport: orig.port,
                dport: 0,
                proto: self.proto,
                _pad: [0; 3],
            }
        } else {
            NatKey {
                saddr: orig.addr,
                daddr: self.saddr,
                sport: orig.port,
                dport: self.sport,
                proto: self.proto,
                _pad: [0; 3],
            }
        }
    }
}

/// A published port as packets address it. `addr` 0 = every address of
/// the host side (the program looks the exact address up first).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PublishKey {
    /// Host address, network order; 0 = any.
    pub addr: u32,
    /// Host port, network order.
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// Where a published port leads.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PublishEntry {
    /// The namespace's address, network order.
    pub addr: u32,
    /// The port inside the namespace, network order.
    pub port: u16,
    pub _pad: [u8; 2],
}

/// A lab namespace, as the socket hooks see it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PublishNetns {
    /// The lab's gateway address (network order): a host address seen
    /// from every lab namespace.
    pub gateway: u32,
    /// 1: the host side (127.0.0.0/8 is a host address there too).
    pub host: u8,
    pub _pad: [u8; 3],
}

/// A UDP socket (`bpf_get_socket_cookie`) and the namespace address and
/// port its datagram was redirected to (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PublishSockKey {
    pub cookie: u64,
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
}

/// The published address and port the socket addressed (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PublishSockEntry {
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
}

user_pod!(
    PublishNetns,
    PublishSockKey,
    PublishSockEntry,
    NatConfig,
    NatKey,
    NatEntry,
    NatFragKey,
    NatFragEntry,
    PublishKey,
    PublishEntry
);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts() {
        assert_eq!(size_of::<NatConfig>(), 28);
        assert_eq!(offset_of!(NatConfig, port_min), 12);
        assert_eq!(offset_of!(NatConfig, flags), 16);
        assert_eq!(offset_of!(NatConfig, gateway_mac), 20);
        assert_eq!(size_of::<NatKey>(), 16);
        assert_eq!(offset_of!(NatKey, sport), 8);
        assert_eq!(offset_of!(NatKey, proto), 12);
        assert_eq!(size_of::<NatEntry>(), 16);
        assert_eq!(offset_of!(NatEntry, last_seen_ns), 8);
        assert_eq!(align_of::<NatEntry>(), 8);
        // Cilium's ipv4_frag_id is 12 bytes too; no hidden padding.
        assert_eq!(size_of::<NatFragKey>(), 12);
        assert_eq!(offset_of!(NatFragKey, daddr), 4);
        assert_eq!(offset_of!(NatFragKey, id), 8);
        assert_eq!(offset_of!(NatFragKey, proto), 10);
        assert_eq!(offset_of!(NatFragKey, dir), 11);
        assert_eq!(size_of::<NatFragEntry>(), 16);
        assert_eq!(offset_of!(NatFragEntry, last_seen_ns), 8);
        assert_eq!(align_of::<NatFragEntry>(), 8);
        assert_eq!(offset_of!(NatEntry, flags), 7);
        assert_eq!(size_of::<PublishKey>(), 8);
        assert_eq!(offset_of!(PublishKey, proto), 6);
        assert_eq!(size_of::<PublishEntry>(), 8);
        assert_eq!(size_of::<PublishNetns>(), 8);
        assert_eq!(size_of::<PublishSockKey>(), 16);
        assert_eq!(offset_of!(PublishSockKey, port), 12);
        assert_eq!(size_of::<PublishSockEntry>(), 8);
    }

    #[test]
    fn reply_and_orig_keys_are_inverse() {
        for proto in [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP] {
            let orig = NatKey {
                saddr: 0x0a00_0001,
                daddr: 0x0b00_0002,
                sport: 1234,
                dport: if proto == IPPROTO_ICMP { 0 } else { 80 },
                proto,
                _pad: [0; 3],
            };
            let xlat = NatEntry {
                addr: 0x0c00_0003,
                port: 40_000,
                ..Default::default()
            };
            let reply = orig.reply_key(&xlat);
            assert_eq!(reply.daddr, xlat.addr);
            assert_eq!(reply.dport, xlat.port);
            let back = NatEntry {
                addr: orig.saddr,
                port: orig.sport,
                ..Default::default()
            };
            assert_eq!(reply.orig_key(&back), orig);
        }
    }
}
