//! Mutations of a frame: what a broken or hostile sender produces. Each
//! returns a short description for failure reports. Some mutations repair
//! the checksums they break (sometimes), so that a packet that is wrong in
//! exactly one way also reaches the deeper code paths.

use std::net::Ipv4Addr;

use super::Rng;
use super::frames::{INTERESTING_ADDRS, MAX_FRAME};
use crate::packets::*;

/// Offset of the IPv4 header when the frame's EtherType says IPv4 and the
/// fixed header is there.
pub fn ip_offset(f: &[u8]) -> Option<usize> {
    (f.len() >= 34 && f[12..14] == ETH_P_IP.to_be_bytes()).then_some(14)
}

/// IHL in bytes of the IPv4 header at `off`.
fn header_len(f: &[u8], off: usize) -> usize {
    ((f[off] & 0x0f) as usize) * 4
}

/// Recomputes the IPv4 header checksum (when the whole header is there).
pub fn fix_ip_checksum(f: &mut [u8]) {
    let Some(off) = ip_offset(f) else { return };
    let hl = header_len(f, off);
    if hl < 20 || off + hl > f.len() {
        return;
    }
    f[off + 10..off + 12].copy_from_slice(&[0, 0]);
    let c = checksum(&f[off..off + hl]);
    f[off + 10..off + 12].copy_from_slice(&c.to_be_bytes());
}

/// Offset and protocol of the L4 header, if the IPv4 header is sane.
pub fn l4_offset(f: &[u8]) -> Option<(usize, u8)> {
    let off = ip_offset(f)?;
    let hl = header_len(f, off);
    (hl >= 20 && off + hl <= f.len()).then_some((off + hl, f[off + 9]))
}

/// Offset of the L4 checksum field of `proto`.
pub fn l4_check_field(proto: u8) -> Option<usize> {
    match proto {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        PROTO_ICMP => Some(2),
        _ => None,
    }
}

/// Recomputes the L4 checksum from scratch over the rest of the frame.
pub fn fix_l4_checksum(f: &mut [u8]) {
    let Some((l4, proto)) = l4_offset(f) else {
        return;
    };
    let Some(field) = l4_check_field(proto) else {
        return;
    };
    if l4 + field + 2 > f.len() {
        return;
    }
    f[l4 + field..l4 + field + 2].copy_from_slice(&[0, 0]);
    let c = if proto == PROTO_ICMP {
        checksum(&f[l4..])
    } else {
        let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
        let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
        let c = l4_checksum(src, dst, proto, &f[l4..]);
        if proto == PROTO_UDP && c == 0 {
            0xffff
        } else {
            c
        }
    };
    f[l4 + field..l4 + field + 2].copy_from_slice(&c.to_be_bytes());
}

/// Applies one to three random mutations; returns what was done.
pub fn mutate(rng: &mut Rng, f: &mut Vec<u8>) -> String {
    let n = *rng.pick(&[1, 1, 1, 2, 2, 3]);
    let mut done = Vec::new();
    for _ in 0..n {
        done.push(mutate_once(rng, f));
    }
    f.truncate(MAX_FRAME);
    done.join(", ")
}

fn mutate_once(rng: &mut Rng, f: &mut Vec<u8>) -> String {
    if super::mutate6::is_ipv6(f) && rng.chance(60) {
        return super::mutate6::mutate_once6(rng, f);
    }
    let ip = ip_offset(f);
    let l4 = l4_offset(f);
    match rng.below(22) {
        0 | 1 => truncate(rng, f),
        2 | 3 => flip_bits(rng, f),
        4 if ip.is_some() => {
            let off = ip.unwrap();
            let random = rng.u16();
            let v = *rng.pick(&[
                0u16,
                1,
                19,
                20,
                (f.len() - off - 1) as u16,
                (f.len() - off + 1) as u16,
                0xffff,
                random,
            ]);
            f[off + 2..off + 4].copy_from_slice(&v.to_be_bytes());
            if rng.chance(70) {
                fix_ip_checksum(f);
            }
            format!("IP total length {v}")
        }
        5 if l4.is_some_and(|(o, p)| p == PROTO_UDP && o + 8 <= f.len()) => {
            let (o, _) = l4.unwrap();
            let random = rng.u16();
            let v = *rng.pick(&[0u16, 7, 8, 9, 0xffff, random]);
            f[o + 4..o + 6].copy_from_slice(&v.to_be_bytes());
            format!("UDP length {v}")
        }
        6 | 7 if ip.is_some() => ip_options(rng, f),
        8 if ip.is_some() => {
            let off = ip.unwrap();
            let ihl = rng.range(0, 4) as u8;
            f[off] = (f[off] & 0xf0) | ihl;
            if rng.chance(50) {
                f[off + 10..off + 12].copy_from_slice(&[0, 0]);
                let c = checksum(&f[off..off + 20]);
                f[off + 10..off + 12].copy_from_slice(&c.to_be_bytes());
            }
            format!("IHL {ihl}")
        }
        9 if ip.is_some() => {
            let off = ip.unwrap();
            let ihl = rng.range(6, 15) as u8;
            f[off] = (f[off] & 0xf0) | ihl;
            fix_ip_checksum(f);
            format!("IHL {ihl} without options")
        }
        10 if ip.is_some() => {
            let off = ip.unwrap();
            let v = *rng.pick(&[0u8, 6, 5, 15]);
            f[off] = (v << 4) | (f[off] & 0x0f);
            format!("IP version {v}")
        }
        11 | 12 if ip.is_some() => {
            let off = ip.unwrap();
            let random = rng.u16();
            let frag = *rng.pick(&[0x2000u16, 0x0001, 0x2001, 0x1fff, 0x4001, 0x8000, random]);
            f[off + 6..off + 8].copy_from_slice(&frag.to_be_bytes());
            if rng.chance(80) {
                fix_ip_checksum(f);
            }
            format!("fragment field {frag:#06x}")
        }
        13 if f.len() >= 14 => {
            let tpid = *rng.pick(&[ETH_P_8021Q, ETH_P_8021AD]);
            let tci = rng.u16();
            *f = tag(tpid, tci, f);
            format!("VLAN tag {tpid:#06x}/{tci}")
        }
        14 if f.len() >= 14 => {
            f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
            "EtherType IPv6".into()
        }
        15 if ip.is_some() => {
            let off = ip.unwrap();
            let d = rng.range(1, 0xfffe) as u16;
            let c = u16::from_be_bytes([f[off + 10], f[off + 11]]).wrapping_add(d);
            f[off + 10..off + 12].copy_from_slice(&c.to_be_bytes());
            "bad IP checksum".into()
        }
        16 if l4.is_some() => {
            let (o, p) = l4.unwrap();
            let field = l4_check_field(p).unwrap_or(rng.below(8));
            if o + field + 2 <= f.len() {
                let v = rng.u16();
                f[o + field..o + field + 2].copy_from_slice(&v.to_be_bytes());
                format!("L4 checksum {v:#06x}")
            } else {
                truncate(rng, f)
            }
        }
        17 if ip.is_some() => {
            let off = ip.unwrap();
            let p = *rng.pick(&[0u8, 2, 4, 41, 47, 50, 58, 132, 255, 6, 17, 1]);
            f[off + 9] = p;
            fix_ip_checksum(f);
            format!("IP protocol {p}")
        }
        18 if ip.is_some() => {
            let off = ip.unwrap();
            let ttl = *rng.pick(&[0u8, 1, 2, 255]);
            f[off + 8] = ttl;
            fix_ip_checksum(f);
            format!("TTL {ttl}")
        }
        19 if ip.is_some() => {
            let off = ip.unwrap();
            let which = *rng.pick(&[12usize, 16]);
            let a = *rng.pick(&INTERESTING_ADDRS);
            f[off + which..off + which + 4].copy_from_slice(&a.octets());
            fix_ip_checksum(f);
            let l4_too = rng.chance(60);
            if l4_too {
                fix_l4_checksum(f);
            }
            format!(
                "{} {a}{}",
                if which == 12 { "source" } else { "destination" },
                if l4_too { " (L4 checksum fixed)" } else { "" }
            )
        }
        20 => {
            let n = rng.range(1, 64);
            let extra = rng.bytes(n);
            f.extend_from_slice(&extra);
            format!("{n} trailing bytes")
        }
        21 if l4.is_some_and(|(o, p)| p == PROTO_ICMP && o + 4 <= f.len()) => {
            let (o, _) = l4.unwrap();
            let t = *rng.pick(&[0u8, 3, 4, 5, 8, 11, 12, 13, 14, 255]);
            f[o] = t;
            fix_l4_checksum(f);
            format!("ICMP type {t}")
        }
        _ if f.len() >= 14 => {
            let random = rng.u16();
            let t = *rng.pick(&[ETH_P_ARP, ETH_P_IP, 0x0000, 0x05dc, 0x88cc, random]);
            f[12..14].copy_from_slice(&t.to_be_bytes());
            format!("EtherType {t:#06x}")
        }
        _ => flip_bits(rng, f),
    }
}

/// Cuts the frame, mostly right at or around a header boundary.
fn truncate(rng: &mut Rng, f: &mut Vec<u8>) -> String {
    let mut marks = vec![13usize, 14, 34, 42, 54, 62, 82];
    if let Some((l4, _)) = l4_offset(f) {
        marks.extend([l4, l4 + 4, l4 + 8, l4 + 20, l4 + 28, l4 + 48]);
    }
    let len = if rng.chance(70) {
        let m = *rng.pick(&marks) as isize + rng.range(0, 2) as isize - 1;
        m.max(0) as usize
    } else {
        rng.range(0, f.len())
    };
    let len = len.min(f.len());
    f.truncate(len);
    format!("truncated to {len}")
}

/// Flips 1..4 bits, mostly in the headers.
fn flip_bits(rng: &mut Rng, f: &mut [u8]) -> String {
    if f.is_empty() {
        return "nothing to flip".into();
    }
    let n = rng.range(1, 4);
    let mut at = Vec::new();
    for _ in 0..n {
        let i = if rng.chance(75) {
            rng.below(f.len().min(90))
        } else {
            rng.below(f.len())
        };
        let bit = rng.below(8);
        f[i] ^= 1 << bit;
        at.push(format!("{i}.{bit}"));
    }
    format!("flipped bits {}", at.join(" "))
}

/// Inserts 4..40 bytes of IP options (valid ones or garbage) and adjusts
/// IHL, total length and, mostly, the header checksum.
fn ip_options(rng: &mut Rng, f: &mut Vec<u8>) -> String {
    let off = 14;
    let hl = header_len(f, off);
    if hl < 20 || off + hl > f.len() {
        return flip_bits(rng, f);
    }
    let room = (60 - hl) / 4;
    if room == 0 {
        return flip_bits(rng, f);
    }
    let words = rng.range(1, room);
    let mut opts = match rng.below(4) {
        0 => vec![1u8; words * 4],                   // NOPs
        1 => [vec![7u8, 7, 4], vec![0; 4]].concat(), // record route
        2 => vec![0x94, 4, 0, 0],                    // router alert
        _ => rng.bytes(words * 4),                   // garbage
    };
    opts.resize(words * 4, 0);
    let at = off + hl;
    f.splice(at..at, opts);
    f[off] = (f[off] & 0xf0) | ((hl / 4 + words) as u8);
    let tot = u16::from_be_bytes([f[off + 2], f[off + 3]]).wrapping_add((words * 4) as u16);
    f[off + 2..off + 4].copy_from_slice(&tot.to_be_bytes());
    if rng.chance(85) {
        fix_ip_checksum(f);
    }
    format!("{} bytes of IP options", words * 4)
}
