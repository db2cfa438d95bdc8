//! Checksum checks for rewritten frames, computed from scratch with the
//! tests' one checksum oracle ([`crate::packets::checksum`]; no
//! incremental arithmetic).
//!
//! A translation must leave every checksum exactly as right as it was:
//!
//! * a frame whose checksums were correct comes out with correct
//!   checksums ([`crate::packets::valid_checksums`]);
//! * a frame with a wrong checksum (fuzzed) comes out wrong by the same
//!   amount: the ones-complement sum over each checksummed area (header,
//!   pseudo header + segment, ICMP message, the quoted header of an ICMP
//!   error) is the same before and after ([`residuals`]). An incremental
//!   update that forgot a field, or applied one twice, changes it.
//!
//! A UDP checksum of 0 means "none" and must stay 0.

use std::net::Ipv4Addr;

use super::nat_model::Quoted;
use crate::packets::{PROTO_ICMP, PROTO_TCP, PROTO_UDP, ones_sum, pseudo_sum};

const IP: usize = 14;

fn addr(f: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(f[at], f[at + 1], f[at + 2], f[at + 3])
}

/// 0x0000 and 0xffff are the same number in ones-complement arithmetic.
fn norm(x: u16) -> u16 {
    if x == 0 { 0xffff } else { x }
}

/// One checksummed area's ones-complement sum, or None when it carries
/// no checksum (UDP checksum 0).
#[derive(Debug, PartialEq, Eq)]
pub struct Residual {
    pub area: &'static str,
    pub sum: Option<u16>,
}

/// The sums over the checksummed areas of a translated frame whose L4
/// header is at `l4` (protocol from the IP header), and of the quoted
/// packet of an ICMP error. Areas reach to the end of the frame: the
/// programs update checksums incrementally, which keeps any area that
/// holds the changed fields at the same sum. A later fragment (offset > 0)
/// has the header only: its data is part of an L4 checksum that sits in
/// the datagram's first fragment.
pub fn residuals(f: &[u8], l4: usize, quoted: Option<Quoted>) -> Vec<Residual> {
    let mut v = vec![Residual {
        area: "IPv4 header",
        sum: Some(norm(ones_sum(&f[IP..l4], 0))),
    }];
    if is_later_fragment(f) {
        return v;
    }
    let proto = f[IP + 9];
    let (src, dst) = (addr(f, IP + 12), addr(f, IP + 16));
    let seg = &f[l4..];
    match proto {
        PROTO_TCP | PROTO_UDP => {
            let none = proto == PROTO_UDP && seg[6] == 0 && seg[7] == 0;
            v.push(Residual {
                area: if proto == PROTO_TCP { "TCP" } else { "UDP" },
                sum: (!none).then(|| {
                    norm(ones_sum(
                        seg,
                        pseudo_sum(src, dst, proto, seg.len().min(0xffff)),
                    ))
                }),
            });
        }
        PROTO_ICMP => v.push(Residual {
            area: "ICMP",
            sum: Some(norm(ones_sum(seg, 0))),
        }),
        _ => {}
    }
    if let Some(q) = quoted {
        let hdr_end = (q.ip + ((f[q.ip] & 0x0f) as usize) * 4).min(f.len());
        v.push(Residual {
            area: "quoted IPv4 header",
            sum: Some(norm(ones_sum(&f[q.ip..hdr_end], 0))),
        });
        let head = &f[q.l4..q.l4 + 8];
        match q.proto {
            PROTO_UDP => {
                let none = head[6] == 0 && head[7] == 0;
                let udp_len = u16::from_be_bytes([head[4], head[5]]);
                let (qs, qd) = (addr(f, q.ip + 12), addr(f, q.ip + 16));
                v.push(Residual {
                    area: "quoted UDP header",
                    sum: (!none).then(|| {
                        norm(ones_sum(
                            head,
                            pseudo_sum(qs, qd, PROTO_UDP, udp_len as usize),
                        ))
                    }),
                });
            }
            PROTO_ICMP => v.push(Residual {
                area: "quoted ICMP header",
                sum: Some(norm(ones_sum(head, 0))),
            }),
            // The quoted TCP checksum lies beyond the 8 quoted bytes: it is
            // neither there nor updated.
            _ => {}
        }
    }
    v
}

/// Compares the residuals of the frame before and after; describes every
/// area whose sum changed.
pub fn compare_residuals(before: &[Residual], after: &[Residual]) -> Vec<String> {
    let mut problems = Vec::new();
    for (b, a) in before.iter().zip(after) {
        match (b.sum, a.sum) {
            (Some(x), Some(y)) if x != y => problems.push(format!(
                "{} checksum no longer matches its data (sum {x:#06x} before, {y:#06x} after)",
                b.area
            )),
            (None, Some(_)) => problems.push(format!(
                "{}: a zero (\"none\") checksum became non-zero",
                b.area
            )),
            (Some(_), None) => problems.push(format!("{}: the checksum became zero", b.area)),
            _ => {}
        }
    }
    problems
}

/// A fragment other than the first: no L4 header in it.
fn is_later_fragment(f: &[u8]) -> bool {
    u16::from_be_bytes([f[IP + 6], f[IP + 7]]) & 0x1fff != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets::*;

    fn udp_frame(src: Ipv4Addr, sport: u16, with_checksum: bool) -> Vec<u8> {
        let dst = Ipv4Addr::new(203, 0, 113, 2);
        ethernet(
            [2; 6],
            [4; 6],
            ETH_P_IP,
            &ipv4(
                &Ip::new(src, dst, PROTO_UDP),
                &udp(src, dst, sport, 53, b"query", with_checksum),
            ),
        )
    }

    #[test]
    fn a_correct_rewrite_keeps_the_residuals_and_a_sloppy_one_does_not() {
        let before = udp_frame(Ipv4Addr::new(10, 78, 200, 1), 1111, true);
        // Rebuilt from scratch with the new source: what a right NAT yields.
        let right = udp_frame(Ipv4Addr::new(203, 0, 113, 1), 40000, true);
        assert!(valid_checksums(&before) && valid_checksums(&right));
        let r = |f: &[u8]| residuals(f, 34, None);
        assert!(compare_residuals(&r(&before), &r(&right)).is_empty());
        // The port changed but the UDP checksum was not updated.
        let mut sloppy = right.clone();
        sloppy[34..36].copy_from_slice(&1111u16.to_be_bytes());
        let problems = compare_residuals(&r(&right), &r(&sloppy));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("UDP checksum"));
        assert!(!valid_checksums(&sloppy));
        // "No checksum" must stay none.
        let none = udp_frame(Ipv4Addr::new(10, 78, 200, 1), 1111, false);
        let problems = compare_residuals(&r(&none), &r(&right));
        assert!(problems[0].contains("became non-zero"), "{problems:?}");
    }

    #[test]
    fn a_later_fragment_is_checked_by_its_header_only() {
        let (src, dst) = (Ipv4Addr::new(10, 78, 200, 1), Ipv4Addr::new(203, 0, 113, 2));
        let mut ip = Ip::new(src, dst, PROTO_UDP);
        ip.frag = 185;
        let f = ethernet([2; 6], [4; 6], ETH_P_IP, &ipv4(&ip, &[0x55; 40]));
        assert!(valid_checksums(&f));
        assert_eq!(residuals(&f, 34, None).len(), 1);
        let mut bad = f.clone();
        bad[14 + 8] ^= 1; // TTL, under the header checksum
        assert!(!valid_checksums(&bad));
    }

    #[test]
    fn padding_does_not_make_a_frame_invalid() {
        let mut f = udp_frame(Ipv4Addr::new(10, 78, 200, 1), 1111, true);
        f.extend_from_slice(&[0xaa; 6]);
        assert!(valid_checksums(&f));
        f[40] ^= 1;
        assert!(!valid_checksums(&f));
    }
}
