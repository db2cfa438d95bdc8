//! What the uplink NAT programs must do with a frame, from the design
//! (netlab/doc/ARCHITECTURE.md §3.2-§3.3 and the counters' documented
//! meanings, §5.1), independent of the
//! programs' code:
//!
//! * egress: a packet from the lab subnet leaves translated or not at all
//!   (dropped, with the reason counted); everything else is the host's and
//!   passes untouched;
//! * ingress: a packet to the external address that matches a translation
//!   (a reply, or an ICMP error quoting a translated packet) gets the lab
//!   destination back; one addressed to the lab subnet directly is dropped
//!   (unsolicited), as is one claiming a lab source; everything else is
//!   the host's and passes untouched;
//! * headers the program needs but cannot read (truncated, IHL < 5,
//!   version != 4) make the packet malformed: dropped and counted;
//! * fragments: the first fragment of a datagram (MF set, offset 0) is
//!   translated like any packet and, when translated, records the
//!   datagram's identity (`nat_frags`); a later fragment (offset > 0)
//!   carries no L4 header and gets the address recorded for its datagram
//!   (only the address and the IP header checksum change). A later fragment
//!   of an unknown datagram is dropped on the way out (it must not leave
//!   with a lab address) and passed to the host on the way in (it may be
//!   the host's), each counted.
//!
//! Whether a translation exists is the map's business: the model names the
//! key to look up and the harness resolves it before running the program.

use std::net::Ipv4Addr;
use std::ops::Range;

use netlab_common::{
    counters::Counter,
    nat::{NAT_FRAG_IN, NAT_FRAG_OUT, NatFragKey, NatKey},
};

use super::frames::{Dir, EXTERNAL, PREFIX_LEN, SUBNET, Translation};
use crate::packets::{ETH_P_IP, ETH_P_IPV6, PROTO_ICMP, PROTO_TCP, PROTO_UDP};

const IP: usize = 14;

/// Where an ICMP error's quoted packet sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Offset of the quoted IPv4 header.
    pub ip: usize,
    /// Offset of the quoted L4 header (8 bytes of it are there).
    pub l4: usize,
    pub proto: u8,
}

/// The expected outcome for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// BPF_PROG_TEST_RUN refuses the frame (EINVAL): shorter than an
    /// Ethernet header, or an IPv4 (IPv6) EtherType without a whole IPv4
    /// (IPv6) header.
    Refused,
    /// Not the NAT's: TCX_NEXT (-1, the next tcx program decides), untouched,
    /// counted `nat_pass_host`.
    Pass,
    /// TC_ACT_SHOT, counted under this reason.
    Drop(Counter),
    /// Egress: translate the flow whose `nat_orig` key is `key`: the source
    /// address and the port/id at `port_at` change, the IP checksum and the
    /// L4 checksum at `check_at` follow.
    /// `frag`: the frame is a first fragment; once translated, `nat_frags`
    /// holds this key with the translated source address.
    Translate {
        key: NatKey,
        l4: usize,
        port_at: usize,
        check_at: usize,
        frag: Option<NatFragKey>,
    },
    /// Ingress: a reply, if `nat_reply` holds `key`; else the host's.
    /// `frag`: as for `Translate`, with the original destination address.
    Reverse {
        key: NatKey,
        l4: usize,
        port_at: usize,
        check_at: usize,
        frag: Option<NatFragKey>,
    },
    /// A later fragment of the datagram `key`: if `nat_frags` holds it, the
    /// source (egress) or destination (ingress) becomes the recorded
    /// address, counted `nat_frag_translated`; otherwise
    /// [`fragment_not_tracked`].
    LaterFragment { key: NatFragKey },
    /// Ingress: a later fragment of a datagram the NAT does not know:
    /// TCX_NEXT, untouched, counted `nat_frag_untracked`.
    PassUntracked,
    /// An ICMP error quoting a flow, if the map of this direction
    /// (egress: `nat_orig`, ingress: `nat_reply`) holds `key`. Otherwise
    /// ingress: the host's; egress: dropped (it must not leave with a lab
    /// address).
    IcmpError {
        key: NatKey,
        l4: usize,
        quoted: Quoted,
    },
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn addr(f: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(f[at], f[at + 1], f[at + 2], f[at + 3])
}

fn raw_port(f: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([f[at], f[at + 1]])
}

fn raw_addr(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

pub fn in_subnet(a: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - PREFIX_LEN);
    u32::from(a) & mask == u32::from(SUBNET)
}

fn key(saddr: Ipv4Addr, daddr: Ipv4Addr, sport: u16, dport: u16, proto: u8) -> NatKey {
    NatKey {
        saddr: raw_addr(saddr),
        daddr: raw_addr(daddr),
        sport,
        dport,
        proto,
        _pad: [0; 3],
    }
}

/// The translation a `nat_orig` entry (`key` → translated port `port`,
/// network order) stands for: the lab's tuple and the port it was given.
pub fn translation_of(orig: &NatKey, port: u16) -> Translation {
    Translation {
        proto: orig.proto,
        lab: Ipv4Addr::from(orig.saddr.to_ne_bytes()),
        lab_port: u16::from_be(orig.sport),
        remote: Ipv4Addr::from(orig.daddr.to_ne_bytes()),
        remote_port: u16::from_be(orig.dport),
        external_port: u16::from_be(port),
    }
}

/// The key a reply to translation `t` has, as [`expect`] reads it off the
/// reply's headers: from the remote (its port; 0 for ICMP echo) to the
/// external address and the translated port (echo id). Derived from what
/// a reply looks like, not from the programs' own key layout, so a
/// translation recorded under another key is a failure, not a reply that
/// agrees with it.
pub fn reply_key(t: &Translation) -> NatKey {
    let remote_port = if t.proto == PROTO_ICMP {
        0
    } else {
        t.remote_port.to_be()
    };
    key(
        t.remote,
        EXTERNAL,
        remote_port,
        t.external_port.to_be(),
        t.proto,
    )
}

/// The expected outcome of running the `dir` program on `f`.
pub fn expect(dir: Dir, f: &[u8]) -> Expect {
    if f.len() < 14 {
        return Expect::Refused;
    }
    let ethertype = be16(f, 12);
    if ethertype == ETH_P_IPV6 && f.len() < 14 + 40 {
        return Expect::Refused;
    }
    if ethertype != ETH_P_IP {
        return Expect::Pass;
    }
    if f.len() < IP + 20 {
        return Expect::Refused;
    }
    let vihl = f[IP];
    if vihl >> 4 != 4 || vihl & 0x0f < 5 {
        return Expect::Drop(Counter::NatDropMalformed);
    }
    let l4 = IP + (vihl & 0x0f) as usize * 4;
    let proto = f[IP + 9];
    let src = addr(f, IP + 12);
    let dst = addr(f, IP + 16);
    let later_fragment = be16(f, IP + 6) & 0x1fff != 0;
    let frag_key = |dir: u8| NatFragKey {
        saddr: raw_addr(src),
        daddr: raw_addr(dst),
        id: raw_port(f, IP + 4),
        proto,
        dir,
    };
    // MF set, offset 0 (the DF and reserved bits do not matter).
    let first_fragment = be16(f, IP + 6) & 0x3fff == 0x2000;
    let has = |n: usize| l4 + n <= f.len();
    let malformed = Expect::Drop(Counter::NatDropMalformed);
    match dir {
        Dir::Egress => {
            if !in_subnet(src) {
                return Expect::Pass;
            }
            if later_fragment {
                return Expect::LaterFragment {
                    key: frag_key(NAT_FRAG_OUT),
                };
            }
            let frag = first_fragment.then(|| frag_key(NAT_FRAG_OUT));
            match proto {
                PROTO_TCP | PROTO_UDP => {
                    if !has(if proto == PROTO_TCP { 20 } else { 8 }) {
                        return malformed;
                    }
                    Expect::Translate {
                        key: key(src, dst, raw_port(f, l4), raw_port(f, l4 + 2), proto),
                        l4,
                        port_at: l4,
                        check_at: l4 + if proto == PROTO_TCP { 16 } else { 6 },
                        frag,
                    }
                }
                PROTO_ICMP => {
                    if !has(8) {
                        return malformed;
                    }
                    match f[l4] {
                        8 => Expect::Translate {
                            key: key(src, dst, raw_port(f, l4 + 4), 0, PROTO_ICMP),
                            l4,
                            port_at: l4 + 4,
                            check_at: l4 + 2,
                            frag,
                        },
                        3 | 11 | 12 => icmp_error(dir, f, l4),
                        _ => Expect::Drop(Counter::NatDropUnknownProto),
                    }
                }
                _ => Expect::Drop(Counter::NatDropUnknownProto),
            }
        }
        Dir::Ingress => {
            if in_subnet(src) {
                // Nothing from outside can carry a lab source.
                return Expect::Drop(Counter::NatDropLabSource);
            }
            if dst != EXTERNAL {
                return if in_subnet(dst) {
                    Expect::Drop(Counter::NatDropUnsolicited)
                } else {
                    Expect::Pass
                };
            }
            if later_fragment {
                return Expect::LaterFragment {
                    key: frag_key(NAT_FRAG_IN),
                };
            }
            let frag = first_fragment.then(|| frag_key(NAT_FRAG_IN));
            match proto {
                PROTO_TCP | PROTO_UDP => {
                    if !has(if proto == PROTO_TCP { 20 } else { 8 }) {
                        return malformed;
                    }
                    Expect::Reverse {
                        key: key(src, dst, raw_port(f, l4), raw_port(f, l4 + 2), proto),
                        l4,
                        port_at: l4 + 2,
                        check_at: l4 + if proto == PROTO_TCP { 16 } else { 6 },
                        frag,
                    }
                }
                PROTO_ICMP => {
                    if !has(8) {
                        return malformed;
                    }
                    match f[l4] {
                        0 => Expect::Reverse {
                            key: key(src, dst, 0, raw_port(f, l4 + 4), PROTO_ICMP),
                            l4,
                            port_at: l4 + 4,
                            check_at: l4 + 2,
                            frag,
                        },
                        3 | 11 | 12 => icmp_error(dir, f, l4),
                        _ => Expect::Pass,
                    }
                }
                // Other protocols to the external address are the host's.
                _ => Expect::Pass,
            }
        }
    }
}

/// What a later fragment of a datagram `nat_frags` does not hold becomes.
pub fn fragment_not_tracked(dir: Dir) -> Expect {
    match dir {
        Dir::Ingress => Expect::PassUntracked,
        Dir::Egress => Expect::Drop(Counter::NatDropFragment),
    }
}

/// What an ICMP error whose quoted packet does not belong to a
/// translation becomes.
pub fn not_ours(dir: Dir) -> Expect {
    match dir {
        Dir::Ingress => Expect::Pass,
        Dir::Egress => Expect::Drop(Counter::NatDropUnknownProto),
    }
}

fn icmp_error(dir: Dir, f: &[u8], l4: usize) -> Expect {
    let malformed = Expect::Drop(Counter::NatDropMalformed);
    let qip = l4 + 8;
    if qip + 20 > f.len() {
        return malformed;
    }
    let vihl = f[qip];
    if vihl >> 4 != 4 || vihl & 0x0f < 5 {
        return malformed;
    }
    if be16(f, qip + 6) & 0x1fff != 0 {
        return not_ours(dir);
    }
    let ql4 = qip + (vihl & 0x0f) as usize * 4;
    if ql4 + 8 > f.len() {
        return malformed;
    }
    let proto = f[qip + 9];
    let (qsrc, qdst) = (addr(f, qip + 12), addr(f, qip + 16));
    // The quoted packet went the other way: the flow's key has the quoted
    // destination as its source.
    let mut k = key(qdst, qsrc, raw_port(f, ql4 + 2), raw_port(f, ql4), proto);
    match proto {
        PROTO_TCP | PROTO_UDP => {}
        PROTO_ICMP => {
            // Ingress errors quote our echo request; egress ones an echo
            // reply the lab got.
            let expected = if dir == Dir::Ingress { 8 } else { 0 };
            if f[ql4] != expected {
                return not_ours(dir);
            }
            let id = raw_port(f, ql4 + 4);
            (k.sport, k.dport) = if dir == Dir::Ingress {
                (0, id)
            } else {
                (id, 0)
            };
        }
        _ => return not_ours(dir),
    }
    Expect::IcmpError {
        key: k,
        l4,
        quoted: Quoted {
            ip: qip,
            l4: ql4,
            proto,
        },
    }
}

/// Byte ranges a translation of this kind may change (with `fast_path`:
/// the MACs and the TTL of a redirected ingress packet too).
pub fn rewritable(dir: Dir, e: &Expect, fast_path: bool) -> Vec<Range<usize>> {
    let r = |at: usize, n: usize| at..at + n;
    let mut v = vec![r(IP + 10, 2)];
    let outer_addr = if dir == Dir::Egress { IP + 12 } else { IP + 16 };
    match *e {
        Expect::Translate {
            port_at, check_at, ..
        }
        | Expect::Reverse {
            port_at, check_at, ..
        } => {
            v.extend([r(outer_addr, 4), r(port_at, 2), r(check_at, 2)]);
        }
        // No L4 header: the address and the IP header checksum only.
        Expect::LaterFragment { .. } => v.push(r(outer_addr, 4)),
        Expect::IcmpError { l4, quoted, .. } => {
            let q = quoted;
            let inner_addr = if dir == Dir::Egress {
                q.ip + 16
            } else {
                q.ip + 12
            };
            let (port, check) = match q.proto {
                PROTO_ICMP => (q.l4 + 4, Some(q.l4 + 2)),
                PROTO_UDP => (
                    if dir == Dir::Egress { q.l4 + 2 } else { q.l4 },
                    Some(q.l4 + 6),
                ),
                _ => (if dir == Dir::Egress { q.l4 + 2 } else { q.l4 }, None),
            };
            v.extend([
                r(outer_addr, 4),
                r(l4 + 2, 2),
                r(inner_addr, 4),
                r(q.ip + 10, 2),
                r(port, 2),
            ]);
            v.extend(check.map(|c| r(c, 2)));
        }
        _ => return Vec::new(),
    }
    if fast_path {
        v.extend([0..12, r(IP + 8, 1)]);
    }
    v
}
