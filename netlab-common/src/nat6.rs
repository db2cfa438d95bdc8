//! NAT66 map types: the IPv6 masquerade on the uplink (and IPv6 published
//! ports), the same design as the IPv4 NAT in [`crate::nat`] — one LRU map
//! per direction so each program does one lookup per packet, a fragment
//! map for the later fragments of a datagram — with 16-byte addresses.
//! Separate maps rather than wider IPv4 keys, as Cilium keeps
//! `cilium_snat_v4_external` and `_v6_external` apart: the IPv4 path keeps
//! its 16-byte keys and nothing of it changes.
//!
//! The state values (`NAT_STATE_*`), entry flags (`NAT_ENTRY_*`), the
//! fragment directions (`NAT_FRAG_*`), `NAT_FLAG_*` and the timeouts are
//! the IPv4 NAT's: one rule for both families. Addresses and ports are in
//! network byte order as in the packet; the port range in host order.

use crate::user_pod;

// The NAT66's map names, declared in the map table.
pub use crate::maps::{NAT6_CONFIG_MAP, NAT6_FRAGS_MAP, NAT6_ORIG_MAP, NAT6_REPLY_MAP};

/// IP protocol number of ICMPv6 (RFC 4443), translated like ICMP: echo
/// by identifier, errors by the packet they quote.
pub const IPPROTO_ICMPV6: u8 = 58;

/// An IPv6 address as the packet carries it.
pub type Ipv6Bytes = [u8; 16];

/// The NAT66 configuration, one entry in `nat6_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Nat6Config {
    /// Masqueraded prefix, already masked.
    pub subnet: Ipv6Bytes,
    /// The uplink's global address that translated packets leave with.
    pub external: Ipv6Bytes,
    /// Length of `subnet`'s prefix (64..=120).
    pub prefix_len: u8,
    pub _pad: u8,
    /// First port / ICMPv6 echo id handed out (host order, inclusive).
    pub port_min: u16,
    /// Last port / echo id handed out (host order, inclusive).
    pub port_max: u16,
    /// The gateway's MAC (`vbridge`): source MAC of fast-path deliveries.
    pub gateway_mac: [u8; 6],
    /// `NAT_FLAG_*` (crate::nat).
    pub flags: u32,
}

/// An IPv6 connection tuple; for ICMPv6 echo the identifier takes the
/// place of the local port as in [`crate::nat::NatKey`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Nat6Key {
    pub saddr: Ipv6Bytes,
    pub daddr: Ipv6Bytes,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// One direction of an IPv6 translation (see [`crate::nat::NatEntry`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Nat6Entry {
    /// `nat6_orig`: the translated source (external); `nat6_reply`: the
    /// original source (lab endpoint).
    pub addr: Ipv6Bytes,
    /// `nat6_orig`: the translated port/id; `nat6_reply`: the original.
    pub port: u16,
    /// NAT_STATE_*.
    pub state: u8,
    /// NAT_ENTRY_*.
    pub flags: u8,
    pub _pad: u32,
    /// Last packet seen in this entry's direction, `bpf_ktime_get_ns`.
    pub last_seen_ns: u64,
}

/// A fragmented IPv6 datagram's identity (RFC 8200 §4.5: source,
/// destination and the Fragment header's 32-bit identification), plus the
/// upper-layer protocol and the direction (`NAT_FRAG_OUT`/`_IN`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Nat6FragKey {
    pub saddr: Ipv6Bytes,
    pub daddr: Ipv6Bytes,
    /// The Fragment header's identification, network order.
    pub id: u32,
    pub proto: u8,
    pub dir: u8,
    pub _pad: [u8; 2],
}

/// What the later fragments of an IPv6 datagram get.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Nat6FragEntry {
    /// Out: the translated source (external); in: the original destination.
    pub addr: Ipv6Bytes,
    /// Last fragment seen, `bpf_ktime_get_ns`.
    pub last_seen_ns: u64,
}

impl Nat6Key {
    /// The `nat6_reply` key of a translation whose original tuple is
    /// `self` and whose translated source is `xlat` (as
    /// [`crate::nat::NatKey::reply_key`]: for ICMPv6 echo the remote
    /// "port" is 0).
    pub const fn reply_key(&self, xlat: &Nat6Entry) -> Nat6Key {
        Nat6Key {
            saddr: self.daddr,
            daddr: xlat.addr,
            sport: if self.proto == IPPROTO_ICMPV6 {
                0
            } else {
                self.dport
            },
            dport: xlat.port,
            proto: self.proto,
            _pad: [0; 3],
        }
    }

    /// The `nat6_orig` key of a translation whose reply tuple is `self`
    /// and whose original source is `orig`.
    pub const fn orig_key(&self, orig: &Nat6Entry) -> Nat6Key {
        Nat6Key {
            saddr: orig.addr,
            daddr: self.saddr,
            sport: orig.port,
            dport: if self.proto == IPPROTO_ICMPV6 {
                0
            } else {
                self.sport
            },
            proto: self.proto,
            _pad: [0; 3],
        }
    }
}

user_pod!(Nat6Config, Nat6Key, Nat6Entry, Nat6FragKey, Nat6FragEntry);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts() {
        assert_eq!(size_of::<Nat6Config>(), 48);
        assert_eq!(offset_of!(Nat6Config, port_min), 34);
        assert_eq!(offset_of!(Nat6Config, flags), 44);
        assert_eq!(size_of::<Nat6Key>(), 40);
        assert_eq!(offset_of!(Nat6Key, proto), 36);
        assert_eq!(size_of::<Nat6Entry>(), 32);
        assert_eq!(offset_of!(Nat6Entry, last_seen_ns), 24);
        assert_eq!(align_of::<Nat6Entry>(), 8);
        assert_eq!(size_of::<Nat6FragKey>(), 40);
        assert_eq!(size_of::<Nat6FragEntry>(), 24);
    }

    #[test]
    fn reply_and_orig_keys_are_inverse() {
        for proto in [6, 17, IPPROTO_ICMPV6] {
            let key = Nat6Key {
                saddr: [0xfd; 16],
                daddr: [0x20; 16],
                sport: 1234u16.to_be(),
                dport: if proto == IPPROTO_ICMPV6 {
                    0
                } else {
                    80u16.to_be()
                },
                proto,
                _pad: [0; 3],
            };
            let xlat = Nat6Entry {
                addr: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                port: 40000u16.to_be(),
                ..Default::default()
            };
            let reply = key.reply_key(&xlat);
            assert_eq!((reply.saddr, reply.daddr), (key.daddr, xlat.addr));
            assert_eq!((reply.sport, reply.dport), (key.dport, xlat.port));
            let back = Nat6Entry {
                addr: key.saddr,
                port: key.sport,
                ..Default::default()
            };
            assert_eq!(reply.orig_key(&back), key);
        }
    }
}
