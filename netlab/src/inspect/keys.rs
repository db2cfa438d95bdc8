//! Map keys written by hand (`netlab map lookup NAME KEY`, `nat delete`,
//! `fdb add/del`): each map's key in the notation `map dump` prints, turned
//! into the exact bytes the programs use, or an error that says what shape
//! that map's key has. `hex:` followed by the raw key bytes works for any
//! map (its length is checked against the map's key size).
//!
//! A key of the wrong shape is refused here, before any syscall: the
//! kernel would accept any bytes of the right length, and a lookup with
//! garbage finds nothing, but a delete or an update with it could hit or
//! plant a wrong entry.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use netlab_common::{
    counters::Counter,
    maps::{
        COUNTERS_MAP, ENDPOINTS_MAP, ENDPOINTS6_MAP, FDB_MAP, FLOOD_MAP, HOST_ADDRS_MAP,
        HOST_ADDRS6_MAP, PORT_SLOTS_MAP, PORT_STATS_MAP, PORTS_MAP, PORTS6_MAP, SWITCH_CONFIG_MAP,
    },
    nat::{
        NAT_CONFIG_MAP, NAT_FRAG_IN, NAT_FRAG_OUT, NAT_FRAGS_MAP, NAT_ORIG_MAP, NAT_REPLY_MAP,
        NatFragKey, NatKey,
    },
    nat6::{NAT6_CONFIG_MAP, NAT6_FRAGS_MAP, NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6FragKey, Nat6Key},
    switch::FdbKey,
};

use super::decode::{self, IfNames};
use crate::bpf::key::ipv4_key;

/// The notation of each map's key, for help and errors.
pub fn shape(map: &str) -> &'static str {
    match map {
        FDB_MAP => "a MAC address, e.g. 02:4e:c0:a8:1c:01",
        PORTS_MAP | PORT_SLOTS_MAP | PORTS6_MAP => {
            "a port's ifindex or device name (in the host namespace), e.g. veth-1-br"
        }
        FLOOD_MAP | PORT_STATS_MAP => "a slot number (0..)",
        COUNTERS_MAP => "a counter name (as in `netlab stats --all`) or index",
        SWITCH_CONFIG_MAP | NAT_CONFIG_MAP | NAT6_CONFIG_MAP => "the index 0",
        ENDPOINTS_MAP | HOST_ADDRS_MAP => "an IPv4 address",
        ENDPOINTS6_MAP | HOST_ADDRS6_MAP => "an IPv6 address, e.g. fd00:192:168:28::1",
        NAT6_ORIG_MAP => {
            "PROTO [SRC]:PORT [DST]:PORT as the endpoint sent it, e.g. udp [fd00:192:168:28::1]:5000 \
             [2001:db8:203:113::2]:53 (ICMPv6 echo: the echo id as SRC's port, 0 as DST's)"
        }
        NAT6_REPLY_MAP => {
            "PROTO [REMOTE]:PORT [EXTERNAL]:PORT as the reply arrives, e.g. udp \
             [2001:db8:203:113::2]:53 [2001:db8:203:113::1]:20001"
        }
        NAT6_FRAGS_MAP => {
            "DIR PROTO SRC DST ID, e.g. out udp fd00:192:168:28::1 2001:db8:203:113::2 4242 \
             (DIR: out|in; ID: the Fragment header's 32-bit identification)"
        }
        NAT_ORIG_MAP => {
            "PROTO SRC:PORT DST:PORT as the endpoint sent it, e.g. udp 192.168.28.1:5000 203.0.113.2:53 \
             (ICMP echo: the echo id as SRC's port, 0 as DST's)"
        }
        NAT_REPLY_MAP => {
            "PROTO REMOTE:PORT EXTERNAL:PORT as the reply arrives, e.g. udp 203.0.113.2:53 203.0.113.1:20001"
        }
        NAT_FRAGS_MAP => {
            "DIR PROTO SRC DST ID, e.g. out udp 192.168.28.1 203.0.113.2 4242 (DIR: out|in)"
        }
        _ => "hex:BYTES",
    }
}

/// The bytes of a `#[repr(C)]` map type (all netlab's map types have
/// explicit padding, so every byte is defined).
pub fn bytes_of<T: aya::Pod>(v: &T) -> Vec<u8> {
    // SAFETY: T is Pod: plain data with no uninitialised padding.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

/// Parses `02:4e:c0:a8:1c:01`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let bad = || format!("{s:?} is not a MAC address (six hex bytes, e.g. 02:4e:c0:a8:1c:01)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))
}

fn parse_ipv6(s: &str) -> Result<Ipv6Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv6 address"))
}

fn parse_sock(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!(
            "{s:?} is not ADDRESS:PORT (e.g. 192.168.28.1:5000, or [fd00:192:168:28::1]:5000 for IPv6)"
        )
    })
}

fn parse_u32(s: &str, what: &str) -> Result<u32, String> {
    s.parse().map_err(|_| format!("{s:?} is not {what}"))
}

/// A NAT key of either family, as `PROTO SRC:PORT DST:PORT` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyNatKey {
    /// Both addresses IPv4: a `nat_orig`/`nat_reply` key.
    V4(NatKey),
    /// Both addresses IPv6 (`[addr]:port`): a `nat6_orig`/`nat6_reply` key.
    V6(Nat6Key),
}

/// A NAT table key from `PROTO SRC:PORT DST:PORT`, IPv4 or IPv6 (both
/// ends the same family).
pub fn any_nat_key(words: &[&str]) -> Result<AnyNatKey, String> {
    let [p, src, dst] = words else {
        return Err(format!(
            "a NAT key is three words, PROTO SRC:PORT DST:PORT; got {}",
            words.len()
        ));
    };
    let (src, dst) = (parse_sock(src)?, parse_sock(dst)?);
    let proto = decode::parse_proto(p)?;
    let (sport, dport) = (src.port().to_be(), dst.port().to_be());
    Ok(match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => AnyNatKey::V4(NatKey {
            saddr: ipv4_key(*s.ip()),
            daddr: ipv4_key(*d.ip()),
            sport,
            dport,
            proto,
            _pad: [0; 3],
        }),
        (SocketAddr::V6(s), SocketAddr::V6(d)) => AnyNatKey::V6(Nat6Key {
            saddr: s.ip().octets(),
            daddr: d.ip().octets(),
            sport,
            dport,
            proto,
            _pad: [0; 3],
        }),
        _ => {
            return Err(format!(
                "{} and {} are of different families: a flow is IPv4 or IPv6 end to end",
                src.ip(),
                dst.ip()
            ));
        }
    })
}

/// A NAT table key (`nat_orig` or `nat_reply`) from `PROTO SRC:PORT DST:PORT`.
pub fn nat_key(words: &[&str]) -> Result<NatKey, String> {
    match any_nat_key(words)? {
        AnyNatKey::V4(k) => Ok(k),
        AnyNatKey::V6(_) => {
            Err("IPv6 addresses name a NAT66 flow: its map is nat6_orig or nat6_reply".to_string())
        }
    }
}

/// A NAT66 table key (`nat6_orig` or `nat6_reply`) from
/// `PROTO [SRC]:PORT [DST]:PORT`.
pub fn nat6_key(words: &[&str]) -> Result<Nat6Key, String> {
    match any_nat_key(words)? {
        AnyNatKey::V6(k) => Ok(k),
        AnyNatKey::V4(_) => Err(
            "IPv4 addresses name an IPv4 NAT flow: its map is nat_orig or nat_reply".to_string(),
        ),
    }
}

/// The ifindex of a port written as a number or a device name.
fn port_ifindex(w: &str, ifnames: &IfNames) -> Result<u32, String> {
    match w.parse::<u32>() {
        Ok(i) => Ok(i),
        Err(_) => ifnames
            .0
            .iter()
            .find(|(_, n)| n.as_str() == w)
            .map(|(i, _)| *i)
            .ok_or_else(|| format!("no device {w:?} in the lab's host namespace")),
    }
}

/// `out` or `in`: a fragment entry's direction.
fn frag_dir(dir: &str) -> Result<u8, String> {
    match dir {
        "out" => Ok(NAT_FRAG_OUT),
        "in" => Ok(NAT_FRAG_IN),
        other => Err(format!("direction {other:?}: use out or in")),
    }
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("hex:{s} has an odd number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("hex:{s} is not hexadecimal"))
        })
        .collect()
}

/// The key bytes of `map` written as `words`. Interface names (the
/// `ports` map) are resolved with `ifnames`.
pub fn parse(map: &str, words: &[&str], ifnames: &IfNames) -> Result<Vec<u8>, String> {
    if let [w] = words
        && let Some(h) = w.strip_prefix("hex:")
    {
        return hex(h);
    }
    let one = || match words {
        [w] => Ok(*w),
        _ => Err(format!(
            "map {map} takes one word as key ({}); got {}",
            shape(map),
            words.len()
        )),
    };
    Ok(match map {
        FDB_MAP => bytes_of(&FdbKey::new(parse_mac(one()?)?)),
        PORTS_MAP | PORT_SLOTS_MAP | PORTS6_MAP => {
            port_ifindex(one()?, ifnames)?.to_ne_bytes().to_vec()
        }
        FLOOD_MAP | PORT_STATS_MAP | SWITCH_CONFIG_MAP | NAT_CONFIG_MAP | NAT6_CONFIG_MAP => {
            parse_u32(one()?, "a number")?.to_ne_bytes().to_vec()
        }
        COUNTERS_MAP => {
            let w = one()?;
            let index = match Counter::ALL.iter().position(|c| c.name() == w) {
                Some(i) => i as u32,
                None => parse_u32(w, "a counter name (see `netlab stats --all`) or index")?,
            };
            index.to_ne_bytes().to_vec()
        }
        ENDPOINTS_MAP | HOST_ADDRS_MAP => ipv4_key(parse_ipv4(one()?)?).to_ne_bytes().to_vec(),
        ENDPOINTS6_MAP | HOST_ADDRS6_MAP => parse_ipv6(one()?)?.octets().to_vec(),
        NAT_ORIG_MAP | NAT_REPLY_MAP => {
            bytes_of(&nat_key(words).map_err(|e| format!("{e} (map {map}: {})", shape(map)))?)
        }
        NAT6_ORIG_MAP | NAT6_REPLY_MAP => {
            bytes_of(&nat6_key(words).map_err(|e| format!("{e} (map {map}: {})", shape(map)))?)
        }
        NAT6_FRAGS_MAP => {
            let [dir, p, src, dst, id] = words else {
                return Err(format!(
                    "map {map} takes five words ({}); got {}",
                    shape(map),
                    words.len()
                ));
            };
            let id: u32 = id
                .parse()
                .map_err(|_| format!("{id:?} is not an IPv6 fragment id (0..=4294967295)"))?;
            bytes_of(&Nat6FragKey {
                saddr: parse_ipv6(src)?.octets(),
                daddr: parse_ipv6(dst)?.octets(),
                id: id.to_be(),
                proto: decode::parse_proto(p)?,
                dir: frag_dir(dir)?,
                _pad: [0; 2],
            })
        }
        NAT_FRAGS_MAP => {
            let [dir, p, src, dst, id] = words else {
                return Err(format!(
                    "map {map} takes five words ({}); got {}",
                    shape(map),
                    words.len()
                ));
            };
            let dir = frag_dir(dir)?;
            let id: u16 = id
                .parse()
                .map_err(|_| format!("{id:?} is not an IPv4 id (0..=65535)"))?;
            bytes_of(&NatFragKey {
                saddr: ipv4_key(parse_ipv4(src)?),
                daddr: ipv4_key(parse_ipv4(dst)?),
                id: id.to_be(),
                proto: decode::parse_proto(p)?,
                dir,
            })
        }
        other => return Err(format!("map {other}: keys only as hex:BYTES")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_names() -> IfNames {
        IfNames::default()
    }

    #[test]
    fn keys_come_out_as_the_programs_lay_them() {
        assert_eq!(
            parse(FDB_MAP, &["02:4e:0a:72:01:01"], &no_names()).unwrap(),
            vec![2, 0x4e, 10, 0x72, 1, 1, 0, 0]
        );
        assert_eq!(
            parse(HOST_ADDRS_MAP, &["10.114.1.5"], &no_names()).unwrap(),
            vec![10, 114, 1, 5]
        );
        let k = parse(
            NAT_ORIG_MAP,
            &["udp", "10.114.1.1:5000", "203.0.113.2:53"],
            &no_names(),
        )
        .unwrap();
        assert_eq!(
            k,
            vec![
                10, 114, 1, 1, 203, 0, 113, 2, 0x13, 0x88, 0, 53, 17, 0, 0, 0
            ]
        );
        assert_eq!(
            parse(
                NAT_ORIG_MAP,
                &["hex:0a720101cb007102138800351100 0000"],
                &no_names()
            )
            .unwrap(),
            k
        );
        let counter = Counter::ALL[1];
        assert_eq!(
            parse(COUNTERS_MAP, &[counter.name()], &no_names()).unwrap(),
            1u32.to_ne_bytes()
        );
    }

    #[test]
    fn ipv6_keys_come_out_as_the_programs_lay_them() {
        let fd = |last: u8| {
            let mut a = [0u8; 16];
            a[..8].copy_from_slice(&[0xfd, 0, 0, 0x10, 0x01, 0x14, 0, 1]);
            a[15] = last;
            a
        };
        assert_eq!(
            parse(ENDPOINTS6_MAP, &["fd00:10:114:1::1"], &no_names()).unwrap(),
            fd(1)
        );
        assert_eq!(
            parse(HOST_ADDRS6_MAP, &["fd00:10:114:1::5"], &no_names()).unwrap(),
            fd(5)
        );
        let names = IfNames([(5, "veth-1-br".to_string())].into());
        assert_eq!(
            parse(PORTS6_MAP, &["veth-1-br"], &names).unwrap(),
            5u32.to_ne_bytes()
        );
        let k = parse(
            NAT6_ORIG_MAP,
            &["udp", "[fd00:10:114:1::1]:5000", "[fd00:10:114:1::2]:53"],
            &no_names(),
        )
        .unwrap();
        let mut want = fd(1).to_vec();
        want.extend(fd(2));
        want.extend([0x13, 0x88, 0, 53, 17, 0, 0, 0]);
        assert_eq!(k, want);
        let k = parse(
            NAT6_FRAGS_MAP,
            &[
                "in",
                "icmpv6",
                "fd00:10:114:1::1",
                "fd00:10:114:1::2",
                "305419896",
            ],
            &no_names(),
        )
        .unwrap();
        let mut want = fd(1).to_vec();
        want.extend(fd(2));
        want.extend([0x12, 0x34, 0x56, 0x78, 58, NAT_FRAG_IN, 0, 0]);
        assert_eq!(k, want);
    }

    #[test]
    fn families_are_not_mixed() {
        let e = parse(
            NAT6_ORIG_MAP,
            &["udp", "10.1.1.1:5", "10.1.1.2:6"],
            &no_names(),
        )
        .unwrap_err();
        assert!(e.contains("nat_orig"), "{e}");
        let e = parse(
            NAT_ORIG_MAP,
            &["udp", "[fd00::1]:5", "[fd00::2]:6"],
            &no_names(),
        )
        .unwrap_err();
        assert!(e.contains("nat6_orig"), "{e}");
        let e = any_nat_key(&["tcp", "10.1.1.1:5", "[fd00::2]:6"]).unwrap_err();
        assert!(e.contains("different families"), "{e}");
        let e = parse(ENDPOINTS6_MAP, &["10.1.1.1"], &no_names()).unwrap_err();
        assert!(e.contains("not an IPv6 address"), "{e}");
        let e = parse(ENDPOINTS_MAP, &["fd00::1"], &no_names()).unwrap_err();
        assert!(e.contains("not an IPv4 address"), "{e}");
    }

    #[test]
    fn keys_of_the_wrong_shape_say_what_is_expected() {
        let e = parse(FDB_MAP, &["02:4e:zz:00:00:01"], &no_names()).unwrap_err();
        assert!(e.contains("not a MAC address"), "{e}");
        let e = parse(NAT_ORIG_MAP, &["udp", "10.114.1.1"], &no_names()).unwrap_err();
        assert!(e.contains("three words"), "{e}");
        let e = parse(
            NAT_ORIG_MAP,
            &["udp", "10.114.1.1", "1.2.3.4:5"],
            &no_names(),
        )
        .unwrap_err();
        assert!(e.contains("ADDRESS:PORT"), "{e}");
        let e = parse(
            NAT_ORIG_MAP,
            &["gre", "1.1.1.1:1", "1.2.3.4:5"],
            &no_names(),
        )
        .unwrap_err();
        assert!(e.contains("unknown protocol"), "{e}");
        let e = parse(HOST_ADDRS_MAP, &["1.2.3.4", "5"], &no_names()).unwrap_err();
        assert!(e.contains("one word"), "{e}");
        assert!(parse(FDB_MAP, &["hex:abc"], &no_names()).is_err());
    }
}
