//! What the uplink NAT programs must do with an IPv6 frame (NAT66), from
//! the lab's NAT66 rules (netlab/doc/ARCHITECTURE.md), not from the
//! programs' code. The IPv4 rules ([`super::nat_model`]) with 16-byte
//! addresses, plus what follows; where the rules left a choice open, the
//! choice the programs made is written as a rule (marked "chosen").
//!
//! * a version other than 6 behind the IPv6 EtherType is malformed, as a
//!   version other than 4 is for IPv4 (chosen: before anything else);
//! * egress: a packet whose source is in the lab prefix leaves translated
//!   (source = the external address, port/echo id from the range) or not
//!   at all; link-local and multicast destinations and neighbour discovery
//!   are never translated (so NDP keeps working on the uplink): ND from a
//!   lab address is dropped (`nat_drop_unknown_proto`), a lab address to
//!   a link-local or multicast destination is passed or dropped, never
//!   rewritten; a protocol NAT66 does not translate is unknown however
//!   short; everything else is the host's and passes untouched;
//! * ingress: to the external address, a reply or an ICMPv6 error quoting a
//!   translated packet gets the lab destination back; to the lab prefix
//!   directly it is unsolicited, from the lab prefix it is a forged lab
//!   source: both dropped; everything else passes;
//! * the extension header chain (hop-by-hop, routing, destination options,
//!   fragment) is walked with a bound of 4: a longer chain (chosen: known
//!   as soon as the last header allowed names another), or a payload
//!   length of 0 (a jumbogram), is `nat_drop_ext_headers`; a payload
//!   length beyond the frame, a header the frame does not hold whole
//!   (chosen: headers are read within the frame, as the IPv4 NAT reads
//!   them), or a chain that ends beyond the payload length is
//!   `nat_drop_malformed`;
//! * fragments: a first fragment (offset 0, M set) is translated and
//!   records its datagram (source, destination, identification, protocol
//!   — chosen: the fragment header's next header, which every fragment
//!   names — direction) in `nat6_frags`; a later fragment (offset > 0)
//!   gets the recorded address, else is dropped going out
//!   (`nat_drop_fragment`) and passed coming in (`nat_frag_untracked`),
//!   the IPv4 rule;
//! * ICMPv6 errors (1-4) are translated both ways with their quoted packet:
//!   the outer and quoted addresses, the quoted port or echo id, the quoted
//!   packet's checksum and the ICMPv6 checksum (whose pseudo header covers
//!   the outer addresses).

use std::net::Ipv6Addr;

use netlab_common::{
    counters::Counter,
    nat::{NAT_FRAG_IN, NAT_FRAG_OUT},
    nat6::{Nat6FragKey, Nat6Key},
};

use super::frames::Dir;
use super::frames6::{EXTERNAL6, PREFIX6_LEN, SUBNET6, Translation6, addr6};
use crate::packets::*;

const IP: usize = 14;
/// The extension header bound of the NAT66's walk.
pub const EXT_BOUND: usize = 4;

/// Where an ICMPv6 error's quoted packet sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted6 {
    /// Offset of the quoted IPv6 header.
    pub ip: usize,
    /// Offset of the quoted upper-layer header (8 bytes of it at least).
    pub l4: usize,
    pub proto: u8,
}

/// The expected outcome for one IPv6 frame (see [`super::nat_model::Expect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect6 {
    Refused,
    Pass,
    Drop(Counter),
    /// A lab source to a link-local or multicast destination: never
    /// translated. Passed untouched (`nat_pass_host`) or dropped (one
    /// reason counted): the rules say only that it is not translated.
    NeverTranslated,
    Translate {
        key: Nat6Key,
        l4: usize,
        proto: u8,
        port_at: usize,
        check_at: usize,
        frag: Option<Nat6FragKey>,
    },
    Reverse {
        key: Nat6Key,
        l4: usize,
        proto: u8,
        port_at: usize,
        check_at: usize,
        frag: Option<Nat6FragKey>,
    },
    LaterFragment {
        key: Nat6FragKey,
    },
    PassUntracked,
    IcmpError {
        key: Nat6Key,
        l4: usize,
        quoted: Quoted6,
    },
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn raw_port(f: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([f[at], f[at + 1]])
}

pub fn in_subnet6(a: Ipv6Addr) -> bool {
    let bits = PREFIX6_LEN as u32;
    let mask = u128::MAX << (128 - bits);
    u128::from(a) & mask == u128::from(SUBNET6) & mask
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

pub fn key6(s: Ipv6Addr, d: Ipv6Addr, sport: u16, dport: u16, proto: u8) -> Nat6Key {
    Nat6Key {
        saddr: s.octets(),
        daddr: d.octets(),
        sport,
        dport,
        proto,
        _pad: [0; 3],
    }
}

/// The translation a `nat6_orig` entry stands for.
pub fn translation_of6(orig: &Nat6Key, port: u16) -> Translation6 {
    Translation6 {
        proto: orig.proto,
        lab: Ipv6Addr::from(orig.saddr),
        lab_port: u16::from_be(orig.sport),
        remote: Ipv6Addr::from(orig.daddr),
        remote_port: u16::from_be(orig.dport),
        external_port: u16::from_be(port),
    }
}

/// The key a reply to `t` has, read off a reply's headers (not the
/// program's key layout): remote (its port; 0 for echo) to the external
/// address and the translated port (echo id).
pub fn reply_key6(t: &Translation6) -> Nat6Key {
    let remote_port = if t.proto == PROTO_ICMPV6 {
        0
    } else {
        t.remote_port.to_be()
    };
    key6(
        t.remote,
        EXTERNAL6,
        remote_port,
        t.external_port.to_be(),
        t.proto,
    )
}

/// The end of an extension header walk.
struct Walked {
    /// The upper layer's offset and protocol.
    at: usize,
    proto: u8,
    /// The fragment header: (offset in 8-byte units, M, identification,
    /// its next header: the datagram's protocol as every fragment names it).
    fragment: Option<(u16, bool, u32, u8)>,
}

/// Walks the chain whose first next header is `next`, from `at` within
/// `end`, with the bound; a later fragment ends the walk at its header.
fn walk(f: &[u8], mut next: u8, mut at: usize, end: usize) -> Result<Walked, Counter> {
    let mut headers = 0;
    let mut fragment = None;
    while matches!(
        next,
        NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS | NH_FRAGMENT
    ) {
        if headers == EXT_BOUND {
            return Err(Counter::NatDropExtHeaders);
        }
        headers += 1;
        let len = if next == NH_FRAGMENT {
            8
        } else {
            if at + 2 > end {
                return Err(Counter::NatDropMalformed);
            }
            (f[at + 1] as usize + 1) * 8
        };
        // The last header the bound allows names another: the chain is
        // too long, whether or not this header is whole.
        if headers == EXT_BOUND
            && next != NH_FRAGMENT
            && matches!(
                f[at],
                NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS | NH_FRAGMENT
            )
        {
            return Err(Counter::NatDropExtHeaders);
        }
        if at + len > end {
            return Err(Counter::NatDropMalformed);
        }
        if next == NH_FRAGMENT {
            let word = be16(f, at + 2);
            let id = u32::from_be_bytes(f[at + 4..at + 8].try_into().unwrap());
            fragment = Some((word >> 3, word & 1 == 1, id, f[at]));
            if word >> 3 != 0 {
                return Ok(Walked {
                    at,
                    proto: f[at],
                    fragment,
                });
            }
        }
        next = f[at];
        at += len;
    }
    Ok(Walked {
        at,
        proto: next,
        fragment,
    })
}

/// The expected outcome of running the `dir` program on IPv6 frame `f`.
pub fn expect6(dir: Dir, f: &[u8]) -> Expect6 {
    if f.len() < IP + 40 {
        return Expect6::Refused;
    }
    // A header it cannot read is malformed, whoever sent it (the IPv4
    // rule for a version other than 4).
    if f[IP] >> 4 != 6 {
        return Expect6::Drop(Counter::NatDropMalformed);
    }
    let (src, dst) = (addr6(f, IP + 8), addr6(f, IP + 24));
    match dir {
        Dir::Egress => {
            if !in_subnet6(src) {
                return Expect6::Pass;
            }
            if dst.is_multicast() || is_link_local(dst) {
                return Expect6::NeverTranslated;
            }
        }
        Dir::Ingress => {
            if in_subnet6(src) {
                return Expect6::Drop(Counter::NatDropLabSource);
            }
            if dst != EXTERNAL6 {
                return if in_subnet6(dst) {
                    Expect6::Drop(Counter::NatDropUnsolicited)
                } else {
                    Expect6::Pass
                };
            }
        }
    }
    let payload_len = be16(f, IP + 4) as usize;
    if payload_len == 0 {
        return Expect6::Drop(Counter::NatDropExtHeaders);
    }
    if payload_len > f.len() - IP - 40 {
        return Expect6::Drop(Counter::NatDropMalformed);
    }
    // Headers are read within the frame, as the IPv4 NAT reads them (the
    // payload length is checked against the frame above); the chain must
    // end within the packet as its payload length bounds it.
    let end = f.len();
    let w = match walk(f, f[IP + 6], IP + 40, end) {
        Ok(w) => w,
        Err(c) => return Expect6::Drop(c),
    };
    if w.at > IP + 40 + payload_len {
        return Expect6::Drop(Counter::NatDropMalformed);
    }
    let (fdir, reply_side) = match dir {
        Dir::Egress => (NAT_FRAG_OUT, false),
        Dir::Ingress => (NAT_FRAG_IN, true),
    };
    let frag_key = |id: u32, proto: u8| Nat6FragKey {
        saddr: src.octets(),
        daddr: dst.octets(),
        id: id.to_be(),
        proto,
        dir: fdir,
        _pad: [0; 2],
    };
    if let Some((offset, _, id, proto)) = w.fragment
        && offset != 0
    {
        return Expect6::LaterFragment {
            key: frag_key(id, proto),
        };
    }
    let frag = w
        .fragment
        .filter(|(_, more, ..)| *more)
        .map(|(_, _, id, proto)| frag_key(id, proto));
    let (l4, proto) = (w.at, w.proto);
    let has = |n: usize| l4 + n <= end;
    let malformed = Expect6::Drop(Counter::NatDropMalformed);
    let port_at = if reply_side { l4 + 2 } else { l4 };
    match proto {
        PROTO_TCP | PROTO_UDP => {
            if !has(if proto == PROTO_TCP { 20 } else { 8 }) {
                return malformed;
            }
            let key = key6(src, dst, raw_port(f, l4), raw_port(f, l4 + 2), proto);
            let check_at = l4 + if proto == PROTO_TCP { 16 } else { 6 };
            if reply_side {
                Expect6::Reverse {
                    key,
                    l4,
                    proto,
                    port_at,
                    check_at,
                    frag,
                }
            } else {
                Expect6::Translate {
                    key,
                    l4,
                    proto,
                    port_at,
                    check_at,
                    frag,
                }
            }
        }
        PROTO_ICMPV6 => {
            if !has(8) {
                return malformed;
            }
            let id = raw_port(f, l4 + 4);
            match (dir, f[l4]) {
                (Dir::Egress, ICMP6_ECHO_REQUEST) => Expect6::Translate {
                    key: key6(src, dst, id, 0, proto),
                    l4,
                    proto,
                    port_at: l4 + 4,
                    check_at: l4 + 2,
                    frag,
                },
                (Dir::Ingress, ICMP6_ECHO_REPLY) => Expect6::Reverse {
                    key: key6(src, dst, 0, id, proto),
                    l4,
                    proto,
                    port_at: l4 + 4,
                    check_at: l4 + 2,
                    frag,
                },
                (_, 1..=4) => icmp_error6(dir, f, l4, end),
                (Dir::Ingress, _) => Expect6::Pass,
                // Neighbour discovery is never translated: from a lab
                // address it cannot leave at all.
                (Dir::Egress, _) => Expect6::Drop(Counter::NatDropUnknownProto),
            }
        }
        _ if dir == Dir::Egress => Expect6::Drop(Counter::NatDropUnknownProto),
        _ => Expect6::Pass,
    }
}

/// What a later fragment of a datagram `nat6_frags` does not hold becomes.
pub fn fragment_not_tracked6(dir: Dir) -> Expect6 {
    match dir {
        Dir::Ingress => Expect6::PassUntracked,
        Dir::Egress => Expect6::Drop(Counter::NatDropFragment),
    }
}

/// What an ICMPv6 error quoting no translated packet becomes.
pub fn not_ours6(dir: Dir) -> Expect6 {
    match dir {
        Dir::Ingress => Expect6::Pass,
        Dir::Egress => Expect6::Drop(Counter::NatDropUnknownProto),
    }
}

fn icmp_error6(dir: Dir, f: &[u8], l4: usize, end: usize) -> Expect6 {
    let qip = l4 + 8;
    if qip + 40 > end || f[qip] >> 4 != 6 {
        return Expect6::Drop(Counter::NatDropMalformed);
    }
    // The quoted packet may be cut short: its chain is walked within the
    // message, not its own payload length.
    let w = match walk(f, f[qip + 6], qip + 40, end) {
        Ok(w) => w,
        Err(c) => return Expect6::Drop(c),
    };
    if w.fragment.is_some_and(|(offset, ..)| offset != 0) {
        return not_ours6(dir);
    }
    let (ql4, proto) = (w.at, w.proto);
    if ql4 + 8 > end {
        return Expect6::Drop(Counter::NatDropMalformed);
    }
    let (qsrc, qdst) = (addr6(f, qip + 8), addr6(f, qip + 24));
    // The quoted packet went the other way: the flow's key has the quoted
    // destination as its source.
    let mut k = key6(qdst, qsrc, raw_port(f, ql4 + 2), raw_port(f, ql4), proto);
    match proto {
        PROTO_TCP | PROTO_UDP => {}
        PROTO_ICMPV6 => {
            let expected = if dir == Dir::Ingress {
                ICMP6_ECHO_REQUEST
            } else {
                ICMP6_ECHO_REPLY
            };
            if f[ql4] != expected {
                return not_ours6(dir);
            }
            let id = raw_port(f, ql4 + 4);
            (k.sport, k.dport) = if dir == Dir::Ingress {
                (0, id)
            } else {
                (id, 0)
            };
        }
        _ => return not_ours6(dir),
    }
    Expect6::IcmpError {
        key: k,
        l4,
        quoted: Quoted6 {
            ip: qip,
            l4: ql4,
            proto,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::frames6::{LAB_HOSTS6, REMOTES6};

    fn frame(ip: &Ipv6Header, proto: u8, l4: &[u8]) -> Vec<u8> {
        ipv6_frame_of([2; 6], [4; 6], &ipv6_with(ip, proto, l4))
    }

    #[test]
    fn the_rules_decide_the_textbook_cases() {
        let (lab, remote) = (LAB_HOSTS6[1], REMOTES6[0]);
        let out = frame(
            &Ipv6Header::new(lab, remote),
            PROTO_UDP,
            &udp6(lab, remote, 1111, 53, b"q"),
        );
        assert!(matches!(
            expect6(Dir::Egress, &out),
            Expect6::Translate { frag: None, .. }
        ));
        // A chain of five extension headers is beyond the bound.
        let mut long = Ipv6Header::new(lab, remote);
        long.ext = vec![Ext::DestOpts(vec![]); 5];
        let f = frame(&long, PROTO_UDP, &udp6(lab, remote, 1111, 53, b"q"));
        assert_eq!(
            expect6(Dir::Egress, &f),
            Expect6::Drop(Counter::NatDropExtHeaders)
        );
        long.ext.pop();
        let f = frame(&long, PROTO_UDP, &udp6(lab, remote, 1111, 53, b"q"));
        assert!(matches!(
            expect6(Dir::Egress, &f),
            Expect6::Translate { .. }
        ));
        // A first fragment records its datagram; a later one is looked up.
        let mut first = Ipv6Header::new(lab, remote);
        first.ext = vec![Ext::Fragment {
            offset: 0,
            more: true,
            id: 7,
        }];
        let f = frame(&first, PROTO_UDP, &udp6(lab, remote, 1111, 53, b"q"));
        let Expect6::Translate { frag: Some(k), .. } = expect6(Dir::Egress, &f) else {
            panic!("{:?}", expect6(Dir::Egress, &f))
        };
        assert_eq!(
            (u32::from_be(k.id), k.proto, k.dir),
            (7, PROTO_UDP, NAT_FRAG_OUT)
        );
        // An error quoting our translated echo request comes back in.
        let req = ipv6_with(
            &Ipv6Header::new(EXTERNAL6, remote),
            PROTO_ICMPV6,
            &icmp6_echo(EXTERNAL6, remote, ICMP6_ECHO_REQUEST, 40001, 1, b""),
        );
        let err = icmp6_error(remote, EXTERNAL6, ICMP6_PACKET_TOO_BIG, 0, 1280, &req);
        let f = frame(&Ipv6Header::new(remote, EXTERNAL6), PROTO_ICMPV6, &err);
        let Expect6::IcmpError { key, quoted, .. } = expect6(Dir::Ingress, &f) else {
            panic!()
        };
        assert_eq!(key.dport, 40001u16.to_be());
        assert_eq!(quoted.proto, PROTO_ICMPV6);
        // NDP on the uplink is never the NAT's; a jumbogram is dropped.
        let mut jumbo = frame(&Ipv6Header::new(remote, EXTERNAL6), PROTO_UDP, &[0; 8]);
        jumbo[18..20].copy_from_slice(&[0, 0]);
        assert_eq!(
            expect6(Dir::Ingress, &jumbo),
            Expect6::Drop(Counter::NatDropExtHeaders)
        );
    }
}
