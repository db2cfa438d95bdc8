//! Mutations of an IPv6 frame: the fields a broken or hostile IPv6 sender
//! gets wrong — payload length, next header, hop limit, version,
//! addresses, ICMPv6 type, the upper-layer checksum, extension headers
//! added in front of the upper layer, truncation at header boundaries.
//! Some repair the checksum they break (sometimes), so a packet that is
//! wrong in exactly one way reaches the deeper paths too.

use super::Rng;
use super::frames6::INTERESTING_ADDRS6;
use crate::packets::*;

const IP: usize = 14;

/// Whether the frame is untagged IPv6 with the whole fixed header.
pub fn is_ipv6(f: &[u8]) -> bool {
    f.len() >= IP + 40 && f[12..14] == ETH_P_IPV6.to_be_bytes()
}

/// The upper layer's offset (in the frame) and protocol, walking every
/// extension header within the frame.
pub fn upper6(f: &[u8]) -> Option<Upper6> {
    if !is_ipv6(f) {
        return None;
    }
    walk6(&f[IP..], f.len() - IP)
        .ok()
        .map(|u| Upper6 { at: u.at + IP, ..u })
}

/// The checksum field of `proto` in its header.
fn check_field(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        PROTO_ICMPV6 => Some(2),
        _ => None,
    }
}

/// Recomputes the upper-layer checksum from scratch over the rest of the
/// frame (not for a later fragment: it has no upper-layer header).
pub fn fix_checksum6(f: &mut [u8]) {
    let Some(u) = upper6(f) else { return };
    if u.frag_offset.is_some_and(|o| o > 0) {
        return;
    }
    let Some(field) = check_field(u.proto) else {
        return;
    };
    if u.at + field + 2 > f.len() {
        return;
    }
    f[u.at + field..u.at + field + 2].copy_from_slice(&[0, 0]);
    let (src, dst) = (
        super::frames6::addr6(f, IP + 8),
        super::frames6::addr6(f, IP + 24),
    );
    let mut c = l4_checksum6(src, dst, u.proto, &f[u.at..]);
    if u.proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    f[u.at + field..u.at + field + 2].copy_from_slice(&c.to_be_bytes());
}

fn set_payload_len(f: &mut [u8], v: u16) {
    f[IP + 4..IP + 6].copy_from_slice(&v.to_be_bytes());
}

/// One IPv6 mutation of `f` (which [`is_ipv6`]); what was done.
pub fn mutate_once6(rng: &mut Rng, f: &mut Vec<u8>) -> String {
    let upper = upper6(f);
    match rng.below(12) {
        0 | 1 => {
            let real = (f.len() - IP - 40) as u16;
            let random = rng.u16();
            let v = *rng.pick(&[
                0u16,
                real.wrapping_sub(1),
                real.wrapping_add(1),
                real.wrapping_add(8),
                0xffff,
                random,
            ]);
            set_payload_len(f, v);
            format!("IPv6 payload length {v}")
        }
        2 => {
            let nh = *rng.pick(&[
                NH_HOP_BY_HOP,
                NH_ROUTING,
                NH_FRAGMENT,
                NH_DEST_OPTS,
                NH_NONE,
                PROTO_ICMPV6,
                PROTO_TCP,
                PROTO_UDP,
                PROTO_ICMP,
                50,
                51,
                135,
            ]);
            f[IP + 6] = nh;
            format!("IPv6 next header {nh}")
        }
        3 => {
            let hl = *rng.pick(&[0u8, 1, 2, 254, 255]);
            f[IP + 7] = hl;
            format!("hop limit {hl}")
        }
        4 => {
            let v = *rng.pick(&[0u8, 4, 5, 7, 15]);
            f[IP] = (v << 4) | (f[IP] & 0x0f);
            format!("IP version {v}")
        }
        5 | 6 => {
            let which = *rng.pick(&[8usize, 24]);
            let a = *rng.pick(&INTERESTING_ADDRS6);
            f[IP + which..IP + which + 16].copy_from_slice(&a.octets());
            let fixed = rng.chance(70);
            if fixed {
                fix_checksum6(f);
            }
            format!(
                "{} {a}{}",
                if which == 8 { "source" } else { "destination" },
                if fixed { " (checksum fixed)" } else { "" }
            )
        }
        7 if upper.is_some_and(|u| u.proto == PROTO_ICMPV6 && u.at + 4 <= f.len()) => {
            let at = upper.unwrap().at;
            let t = *rng.pick(&[
                1u8, 2, 3, 4, 5, 127, 128, 129, 133, 134, 135, 136, 137, 143, 255,
            ]);
            f[at] = t;
            fix_checksum6(f);
            format!("ICMPv6 type {t}")
        }
        8 if upper
            .is_some_and(|u| check_field(u.proto).is_some_and(|c| u.at + c + 2 <= f.len())) =>
        {
            let u = upper.unwrap();
            let at = u.at + check_field(u.proto).unwrap();
            let v = rng.u16();
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
            format!("upper-layer checksum {v:#06x}")
        }
        9 if upper.is_some() => {
            // Extension headers in front of the upper layer (the payload
            // length follows, mostly).
            let at = upper.unwrap().at;
            let (chain, _) = super::frames6::ext_headers(rng);
            let extra = if chain.is_empty() {
                vec![Ext::DestOpts(Vec::new())]
            } else {
                chain
            };
            let nh_at = at_next_header(f, at);
            let (first, bytes) = ext_chain(&extra, f[nh_at]);
            f[nh_at] = first;
            f.splice(at..at, bytes.iter().copied());
            let pl = u16::from_be_bytes([f[IP + 4], f[IP + 5]]);
            if pl != 0 && rng.chance(85) {
                set_payload_len(f, pl.wrapping_add(bytes.len() as u16));
            }
            format!("{} extension headers inserted", extra.len())
        }
        _ => truncate6(rng, f),
    }
}

/// The offset of the next-header byte that names the header at `at`: the
/// fixed header's, or the last extension header's first byte (the chain
/// up to `at` is whole: [`upper6`] walked it).
fn at_next_header(f: &[u8], at: usize) -> usize {
    let mut nh_at = IP + 6;
    let mut cur = IP + 40;
    while cur < at {
        let len = if f[nh_at] == NH_FRAGMENT {
            8
        } else {
            (f[cur + 1] as usize + 1) * 8
        };
        nh_at = cur;
        cur += len;
    }
    nh_at
}

/// Cuts the frame at or around an IPv6 header boundary mostly.
fn truncate6(rng: &mut Rng, f: &mut Vec<u8>) -> String {
    let mut marks = vec![IP + 40, IP + 41, IP + 44, IP + 48, IP + 62, IP + 64];
    if let Some(u) = upper6(f) {
        marks.extend([
            u.at,
            u.at + 1,
            u.at + 4,
            u.at + 8,
            u.at + 20,
            u.at + 24,
            u.at + 48,
        ]);
    }
    let len = if rng.chance(75) {
        *rng.pick(&marks)
    } else {
        rng.range(IP + 40, f.len())
    }
    .min(f.len());
    let fix = rng.chance(60);
    f.truncate(len);
    if fix {
        // The payload length agrees with the cut frame: what a sender of
        // a short header (not a cut frame) produces.
        set_payload_len(f, (len - IP - 40) as u16);
        fix_checksum6(f);
    }
    format!(
        "truncated to {len}{}",
        if fix { " (payload length follows)" } else { "" }
    )
}
