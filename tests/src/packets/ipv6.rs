//! Builders for IPv6 frames (RFC 8200): the fixed header with a chain of
//! extension headers (hop-by-hop with a jumbo or router-alert option,
//! routing, destination options, fragment), TCP and UDP over IPv6, and
//! ICMPv6 (RFC 4443: echo, errors quoting a packet; RFC 4861: router and
//! neighbour solicitations and advertisements, redirects, with their
//! link-layer address options). Every checksum comes from the oracle
//! ([`super::checksum::l4_checksum6`], pseudo header of RFC 8200 §8.1).

use std::net::Ipv6Addr;

use super::{ETH_P_IPV6, Mac, ethernet};

pub const NH_HOP_BY_HOP: u8 = 0;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_DEST_OPTS: u8 = 60;
pub const NH_NONE: u8 = 59;

pub const ND_ROUTER_SOLICIT: u8 = 133;
pub const ND_ROUTER_ADVERT: u8 = 134;
pub const ND_NEIGHBOR_SOLICIT: u8 = 135;
pub const ND_NEIGHBOR_ADVERT: u8 = 136;
pub const ND_REDIRECT: u8 = 137;
/// ND option types (RFC 4861 §4.6).
pub const ND_OPT_SOURCE_LL: u8 = 1;
pub const ND_OPT_TARGET_LL: u8 = 2;
/// DHCPv6 ports (RFC 8415).
pub const DHCP6_CLIENT_PORT: u16 = 546;
pub const DHCP6_SERVER_PORT: u16 = 547;

/// One extension header of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ext {
    /// Hop-by-hop options (the option bytes; padded to 8 by the builder).
    HopByHop(Vec<u8>),
    /// Destination options.
    DestOpts(Vec<u8>),
    /// A routing header of `kind` with `segments_left` and `data` (padded).
    Routing {
        kind: u8,
        segments_left: u8,
        data: Vec<u8>,
    },
    /// Fragment header: offset in 8-byte units, M flag, identification.
    Fragment { offset: u16, more: bool, id: u32 },
}

impl Ext {
    pub fn number(&self) -> u8 {
        match self {
            Ext::HopByHop(_) => NH_HOP_BY_HOP,
            Ext::DestOpts(_) => NH_DEST_OPTS,
            Ext::Routing { .. } => NH_ROUTING,
            Ext::Fragment { .. } => NH_FRAGMENT,
        }
    }

    /// The header's bytes with `next` as its next header.
    pub fn bytes(&self, next: u8) -> Vec<u8> {
        match self {
            Ext::HopByHop(opts) | Ext::DestOpts(opts) => {
                let mut h = vec![next, 0];
                h.extend_from_slice(opts);
                pad_options(&mut h);
                h[1] = (h.len() / 8 - 1) as u8;
                h
            }
            Ext::Routing {
                kind,
                segments_left,
                data,
            } => {
                let mut h = vec![next, 0, *kind, *segments_left];
                h.extend_from_slice(data);
                h.resize(h.len().max(8).next_multiple_of(8), 0);
                h[1] = (h.len() / 8 - 1) as u8;
                h
            }
            Ext::Fragment { offset, more, id } => {
                let mut h = vec![next, 0];
                h.extend_from_slice(&((offset << 3) | *more as u16).to_be_bytes());
                h.extend_from_slice(&id.to_be_bytes());
                h
            }
        }
    }
}

/// Pads an options header to a multiple of 8 (Pad1 or PadN, RFC 8200 §4.2).
fn pad_options(h: &mut Vec<u8>) {
    let missing = h.len().next_multiple_of(8) - h.len();
    match missing {
        0 => {}
        1 => h.push(0),
        n => {
            h.push(1);
            h.push((n - 2) as u8);
            h.extend(std::iter::repeat_n(0, n - 2));
        }
    }
}

/// The jumbo payload option (RFC 2675) of `length` bytes.
pub fn jumbo_option(length: u32) -> Vec<u8> {
    let mut o = vec![0xc2, 4];
    o.extend_from_slice(&length.to_be_bytes());
    o
}

/// The router alert option (RFC 2711), MLD.
pub fn router_alert_option() -> Vec<u8> {
    vec![5, 2, 0, 0]
}

/// IPv6 header fields for [`ipv6_with`].
#[derive(Clone, Debug)]
pub struct Ipv6Header {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
    /// Extension headers, in order, before the upper layer.
    pub ext: Vec<Ext>,
}

impl Ipv6Header {
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self {
            src,
            dst,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            ext: Vec::new(),
        }
    }
}

/// The extension header chain and the first next header for `upper`.
pub fn ext_chain(ext: &[Ext], upper: u8) -> (u8, Vec<u8>) {
    let mut bytes = Vec::new();
    for (i, e) in ext.iter().enumerate() {
        let next = ext.get(i + 1).map_or(upper, Ext::number);
        bytes.extend(e.bytes(next));
    }
    (ext.first().map_or(upper, Ext::number), bytes)
}

/// An IPv6 packet: the header, `ip.ext`, then `payload` as `upper`. The
/// payload length is that of everything after the fixed header.
pub fn ipv6_with(ip: &Ipv6Header, upper: u8, payload: &[u8]) -> Vec<u8> {
    let (first, chain) = ext_chain(&ip.ext, upper);
    let vtf = (6u32 << 28) | ((ip.traffic_class as u32) << 20) | (ip.flow_label & 0xf_ffff);
    let mut p = vtf.to_be_bytes().to_vec();
    p.extend_from_slice(&((chain.len() + payload.len()) as u16).to_be_bytes());
    p.push(first);
    p.push(ip.hop_limit);
    p.extend_from_slice(&ip.src.octets());
    p.extend_from_slice(&ip.dst.octets());
    p.extend_from_slice(&chain);
    p.extend_from_slice(payload);
    p
}

/// An Ethernet frame of an IPv6 packet.
pub fn ipv6_frame_of(dst: Mac, src: Mac, packet: &[u8]) -> Vec<u8> {
    ethernet(dst, src, ETH_P_IPV6, packet)
}

/// A link-layer address option (RFC 4861 §4.6.1) of `kind`.
pub fn ll_option(kind: u8, mac: Mac) -> Vec<u8> {
    let mut o = vec![kind, 1];
    o.extend_from_slice(&mac);
    o
}

/// The body of a neighbour solicitation for `target` with `options`.
pub fn ns_body(target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
    let mut b = vec![0; 4];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(options);
    b
}

/// The body of a neighbour advertisement (`flags`: NA_*).
pub fn na_body(flags: u8, target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
    let mut b = vec![flags, 0, 0, 0];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(options);
    b
}

/// The body of a router advertisement: hop limit 64, lifetime 1800 s, a
/// prefix information option for `prefix`/64 (autonomous, on-link).
pub fn ra_body(prefix: Ipv6Addr, slla: Option<Mac>) -> Vec<u8> {
    let mut b = vec![64, 0];
    b.extend_from_slice(&1800u16.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    let mut pio = vec![3, 4, 64, 0xc0];
    pio.extend_from_slice(&86400u32.to_be_bytes());
    pio.extend_from_slice(&14400u32.to_be_bytes());
    pio.extend_from_slice(&[0; 4]);
    pio.extend_from_slice(&prefix.octets());
    b.extend(pio);
    if let Some(mac) = slla {
        b.extend(ll_option(ND_OPT_SOURCE_LL, mac));
    }
    b
}

/// The body of a redirect: `target` is the better first hop for `dest`.
pub fn redirect_body(target: Ipv6Addr, dest: Ipv6Addr) -> Vec<u8> {
    let mut b = vec![0; 4];
    b.extend_from_slice(&target.octets());
    b.extend_from_slice(&dest.octets());
    b
}

/// The EUI-64 link-local address of `mac` (RFC 4291 appendix A), what the
/// kernel derives with addr_gen_mode 0.
pub fn eui64_link_local(mac: Mac) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8] = mac[0] ^ 0x02;
    o[9] = mac[1];
    o[10] = mac[2];
    o[11] = 0xff;
    o[12] = 0xfe;
    o[13] = mac[3];
    o[14] = mac[4];
    o[15] = mac[5];
    Ipv6Addr::from(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets::{
        PROTO_ICMPV6, PROTO_UDP, check_ipv6, icmpv6, multicast_mac, solicited_node, udp6,
        verify_checksums6,
    };

    #[test]
    fn chains_link_their_next_headers_and_pad_to_eight() {
        let (a, b) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let mut ip = Ipv6Header::new(a, b);
        ip.ext = vec![
            Ext::HopByHop(router_alert_option()),
            Ext::Routing {
                kind: 4,
                segments_left: 0,
                data: vec![],
            },
            Ext::DestOpts(vec![]),
            Ext::Fragment {
                offset: 0,
                more: true,
                id: 0xdead_beef,
            },
        ];
        let p = ipv6_with(&ip, PROTO_UDP, &udp6(a, b, 1, 2, b"x"));
        assert_eq!(p[6], NH_HOP_BY_HOP);
        assert_eq!(&p[40..48], &[NH_ROUTING, 0, 5, 2, 0, 0, 1, 0]);
        assert_eq!(&p[48..52], &[NH_DEST_OPTS, 0, 4, 0]);
        assert_eq!(&p[56..58], &[NH_FRAGMENT, 0], "PadN of 6");
        assert_eq!(&p[64..72], &[PROTO_UDP, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]) as usize, p.len() - 40);
        check_ipv6(&p).unwrap();
    }

    #[test]
    fn nd_helpers_follow_the_rfcs() {
        let mac = [0x02, 0x4e, 0xc0, 0xa8, 0x1c, 0x01];
        assert_eq!(
            eui64_link_local(mac),
            "fe80::4e:c0ff:fea8:1c01".parse::<Ipv6Addr>().unwrap()
        );
        let a: Ipv6Addr = "fd00:192:168:28::1234:5678".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(solicited_node(a)),
            [0x33, 0x33, 0xff, 0x34, 0x56, 0x78]
        );
        let ns = icmpv6(
            a,
            solicited_node(a),
            ND_NEIGHBOR_SOLICIT,
            0,
            &ns_body(a, &ll_option(ND_OPT_SOURCE_LL, mac)),
        );
        assert_eq!(ns.len(), 32);
        let mut ip = Ipv6Header::new(a, solicited_node(a));
        ip.hop_limit = 255;
        let f = ipv6_frame_of(
            multicast_mac(solicited_node(a)),
            mac,
            &ipv6_with(&ip, PROTO_ICMPV6, &ns),
        );
        verify_checksums6(&f).unwrap();
    }
}
