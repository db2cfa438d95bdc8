//! Checksum checks for rewritten IPv6 frames, from scratch with the tests'
//! one oracle ([`crate::packets::checksum6`]), as [`super::verify`] does
//! for IPv4: a translation leaves every checksum exactly as right as it
//! was, so each checksummed area's ones-complement sum (pseudo header
//! included: it holds the addresses a NAT66 changes) is the same before
//! and after. The areas: the upper layer (TCP, UDP, ICMPv6) and, in an
//! ICMPv6 error, the quoted packet's upper layer as far as it is quoted.
//! And the bytes a NAT66 translation may change at all ([`rewritable6`]).

use std::ops::Range;

use super::frames::Dir;
use super::frames6::addr6;
use super::nat6_model::{Expect6, Quoted6};
use super::verify::Residual;
use crate::packets::{PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, ones_sum, pseudo_sum6};

const IP: usize = 14;

/// 0x0000 and 0xffff are one number in ones-complement arithmetic.
fn norm(x: u16) -> u16 {
    if x == 0 { 0xffff } else { x }
}

fn area(name: &'static str, f: &[u8], ip: usize, at: usize, proto: u8) -> Residual {
    let (src, dst) = (addr6(f, ip + 8), addr6(f, ip + 24));
    let seg = &f[at..];
    let none = proto == PROTO_UDP && seg.len() >= 8 && seg[6] == 0 && seg[7] == 0;
    Residual {
        area: name,
        // The length in the pseudo header is the same before and after;
        // any constant keeps the comparison exact.
        sum: (!none).then(|| norm(ones_sum(seg, pseudo_sum6(src, dst, proto, 0)))),
    }
}

/// The sums over the checksummed areas of an IPv6 frame whose upper layer
/// `proto` is at `l4` (none for a later fragment: `l4` = None), and of the
/// quoted packet of an ICMPv6 error.
pub fn residuals6(f: &[u8], upper: Option<(usize, u8)>, quoted: Option<Quoted6>) -> Vec<Residual> {
    let mut v = Vec::new();
    if let Some((l4, proto)) = upper {
        let name = match proto {
            PROTO_TCP => "TCP",
            PROTO_UDP => "UDP",
            PROTO_ICMPV6 => "ICMPv6",
            _ => return v,
        };
        v.push(area(name, f, IP, l4, proto));
    }
    if let Some(q) = quoted {
        let (name, need) = match q.proto {
            PROTO_TCP => ("quoted TCP", 18),
            PROTO_UDP => ("quoted UDP", 8),
            _ => ("quoted ICMPv6", 4),
        };
        if q.l4 + need <= f.len() {
            v.push(area(name, f, q.ip, q.l4, q.proto));
        }
    }
    v
}

/// The quoted packet's checksum field, when the frame holds it.
pub fn quoted_check_at(q: &Quoted6, len: usize) -> Option<usize> {
    let at = q.l4
        + match q.proto {
            PROTO_TCP => 16,
            PROTO_UDP => 6,
            _ => 2,
        };
    (at + 2 <= len).then_some(at)
}

/// Byte ranges a translation of this kind may change (with `fast_path`:
/// the MACs and the hop limit of a redirected ingress packet too).
pub fn rewritable6(dir: Dir, e: &Expect6, len: usize, fast_path: bool) -> Vec<Range<usize>> {
    let r = |at: usize, n: usize| at..at + n;
    let outer = if dir == Dir::Egress { IP + 8 } else { IP + 24 };
    let mut v = Vec::new();
    match *e {
        Expect6::Translate {
            port_at, check_at, ..
        }
        | Expect6::Reverse {
            port_at, check_at, ..
        } => v.extend([r(outer, 16), r(port_at, 2), r(check_at, 2)]),
        Expect6::LaterFragment { .. } => v.push(r(outer, 16)),
        Expect6::IcmpError { l4, quoted: q, .. } => {
            let inner = if dir == Dir::Egress {
                q.ip + 24
            } else {
                q.ip + 8
            };
            let port = match (q.proto, dir) {
                (PROTO_ICMPV6, _) => q.l4 + 4,
                (_, Dir::Egress) => q.l4 + 2,
                (_, Dir::Ingress) => q.l4,
            };
            v.extend([r(outer, 16), r(l4 + 2, 2), r(inner, 16), r(port, 2)]);
            v.extend(quoted_check_at(&q, len).map(|c| r(c, 2)));
        }
        _ => return Vec::new(),
    }
    if fast_path {
        v.extend([0..12, r(IP + 7, 1)]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::verify::compare_residuals;
    use crate::packets::*;
    use std::net::Ipv6Addr;

    fn udp_frame(src: Ipv6Addr, sport: u16) -> Vec<u8> {
        let dst: Ipv6Addr = "2001:db8:203:113::2".parse().unwrap();
        ipv6_frame_of(
            [2; 6],
            [4; 6],
            &ipv6_with(
                &Ipv6Header::new(src, dst),
                PROTO_UDP,
                &udp6(src, dst, sport, 53, b"q"),
            ),
        )
    }

    #[test]
    fn a_correct_rewrite_keeps_the_residuals_and_a_sloppy_one_does_not() {
        let before = udp_frame("fd00::1".parse().unwrap(), 1111);
        let right = udp_frame("2001:db8:203:113::1".parse().unwrap(), 40000);
        let r = |f: &[u8]| residuals6(f, Some((54, PROTO_UDP)), None);
        assert!(compare_residuals(&r(&before), &r(&right)).is_empty());
        let mut sloppy = right.clone();
        sloppy[14 + 8] ^= 0x20; // the source changed, the checksum did not follow
        assert_eq!(compare_residuals(&r(&right), &r(&sloppy)).len(), 1);
    }
}
