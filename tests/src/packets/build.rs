//! Builders for every frame the tests send: Ethernet (untagged, 802.1Q,
//! 802.1ad), ARP, IPv4 (options, fragments), TCP, UDP, ICMP (echo, and
//! errors quoting a packet), IPv6. Each writes its fields explicitly, so a
//! test shows exactly what goes in; every checksum comes from the oracle
//! ([`super::checksum`]).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    ARP_REQUEST, BROADCAST, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, Mac,
    PROTO_TCP, PROTO_UDP, TCP_ACK,
    checksum::{checksum, l4_checksum},
};

// ---------------------------------------------------------------- Ethernet

/// Ethernet header + payload.
pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An 802.1Q-tagged frame (VLAN `vid`) carrying `inner_type` + `payload`.
pub fn vlan(dst: Mac, src: Mac, vid: u16, inner_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(4 + payload.len());
    tagged.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    tagged.extend_from_slice(&inner_type.to_be_bytes());
    tagged.extend_from_slice(payload);
    ethernet(dst, src, ETH_P_8021Q, &tagged)
}

/// The frame `inner` with one more tag (`tpid`, then the TCI: priority,
/// DEI and VLAN id as given) inserted after its addresses.
pub fn tag(tpid: u16, tci: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(inner.len() + 4);
    f.extend_from_slice(&inner[..12]);
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&inner[12..]);
    f
}

/// Wraps the frame `inner` in an 802.1ad S-tag (TPID 0x88a8) with VLAN
/// `vid`. `outer_tag(0, &vlan(..))` is a double-tagged frame; the kernel
/// strips the outer tag before the port program runs on a real port,
/// BPF_PROG_TEST_RUN does not.
pub fn outer_tag(vid: u16, inner: &[u8]) -> Vec<u8> {
    tag(ETH_P_8021AD, vid & 0x0fff, inner)
}

/// The untagged frame `frame` with two priority tags (VLAN 0): an 802.1ad
/// S-tag outside, an 802.1Q C-tag inside.
pub fn double_tagged(frame: &[u8]) -> Vec<u8> {
    outer_tag(0, &tag(ETH_P_8021Q, 0, frame))
}

// --------------------------------------------------------------------- ARP

/// The 28-byte Ethernet/IPv4 ARP body (RFC 826).
pub fn arp_body(op: u16, sha: Mac, spa: [u8; 4], tha: Mac, tpa: [u8; 4]) -> Vec<u8> {
    let mut body = Vec::with_capacity(28);
    body.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    body.extend_from_slice(&ETH_P_IP.to_be_bytes());
    body.push(6);
    body.push(4);
    body.extend_from_slice(&op.to_be_bytes());
    body.extend_from_slice(&sha);
    body.extend_from_slice(&spa);
    body.extend_from_slice(&tha);
    body.extend_from_slice(&tpa);
    body
}

/// A broadcast "who has `tpa`? tell `spa`" from `sha`.
pub fn arp_request(sha: Mac, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    ethernet(
        BROADCAST,
        sha,
        ETH_P_ARP,
        &arp_body(ARP_REQUEST, sha, spa, [0; 6], tpa),
    )
}

// -------------------------------------------------------- IPv4 and above

/// IPv4 header fields for [`ipv4`].
#[derive(Clone, Debug)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub id: u16,
    /// Flags (DF 0x4000, MF 0x2000) and fragment offset (8-byte units).
    pub frag: u16,
    /// IP options (padded to a multiple of 4 bytes by the builder).
    pub options: Vec<u8>,
}

impl Ip {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Self {
        Self {
            src,
            dst,
            proto,
            ttl: 64,
            id: 0x1234,
            frag: 0x4000,
            options: Vec::new(),
        }
    }
}

/// An IPv4 packet carrying `payload`, with a correct header checksum.
pub fn ipv4(ip: &Ip, payload: &[u8]) -> Vec<u8> {
    let mut opts = ip.options.clone();
    while !opts.len().is_multiple_of(4) {
        opts.push(0); // end of option list
    }
    let hlen = 20 + opts.len();
    let mut h = vec![0u8; hlen];
    h[0] = 0x40 | (hlen / 4) as u8;
    h[2..4].copy_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ip.id.to_be_bytes());
    h[6..8].copy_from_slice(&ip.frag.to_be_bytes());
    h[8] = ip.ttl;
    h[9] = ip.proto;
    h[12..16].copy_from_slice(&ip.src.octets());
    h[16..20].copy_from_slice(&ip.dst.octets());
    h[20..].copy_from_slice(&opts);
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A TCP segment (20-byte header) with a correct checksum.
pub fn tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = vec![0u8; 20];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
    s[8..12].copy_from_slice(
        &(if flags & TCP_ACK != 0 {
            0x0a0b_0c0d_u32
        } else {
            0
        })
        .to_be_bytes(),
    );
    s[12] = 5 << 4;
    s[13] = flags;
    s[14..16].copy_from_slice(&64240u16.to_be_bytes());
    s.extend_from_slice(payload);
    let c = l4_checksum(src, dst, PROTO_TCP, &s);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

/// A UDP datagram; `with_checksum: false` leaves the checksum 0 ("none").
pub fn udp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
    with_checksum: bool,
) -> Vec<u8> {
    let mut s = vec![0u8; 8];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(payload);
    if with_checksum {
        let mut c = l4_checksum(src, dst, PROTO_UDP, &s);
        if c == 0 {
            c = 0xffff;
        }
        s[6..8].copy_from_slice(&c.to_be_bytes());
    }
    s
}

/// The IPv4 fragments of the datagram `ip` + `payload` (an L4 segment with
/// its checksum computed over the whole of it), as a sender with an MTU
/// of `mtu` produces them (RFC 791): every fragment but the last carries a
/// multiple of 8 bytes and has MF set; all share the identification; each
/// has a correct header checksum. `ip.frag`'s flags other than MF are kept
/// (a datagram that needs fragments cannot have DF: it is cleared).
pub fn fragments(ip: &Ip, payload: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    let hlen = 20 + ip.options.len().next_multiple_of(4);
    let per = (mtu - hlen) / 8 * 8;
    assert!(per > 0, "MTU {mtu} leaves no room for data");
    let chunks: Vec<&[u8]> = payload.chunks(per).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = ip.clone();
            let more = if i + 1 < chunks.len() { 0x2000 } else { 0 };
            f.frag = (ip.frag & 0x8000) | more | ((i * per / 8) as u16);
            ipv4(&f, chunk)
        })
        .collect()
}

/// An ICMP echo request/reply with a correct checksum.
pub fn icmp_echo(kind: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMP error quoting the IP header and the first 8 bytes of L4 of
/// `offending` (an IPv4 packet), with a correct checksum. `rest` is the
/// second 32-bit word (e.g. the next-hop MTU for "fragmentation needed").
pub fn icmp_error(kind: u8, code: u8, rest: u32, offending: &[u8]) -> Vec<u8> {
    let ihl = ((offending[0] & 0x0f) as usize) * 4;
    let quoted = &offending[..(ihl + 8).min(offending.len())];
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(quoted);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An Ethernet frame of IPv4 + UDP, checksum 0 ("none"), from port 40000
/// to port 7 (echo), IP id 1 with DF: the switch tests' plain unicast.
pub fn ipv4_udp(dst_mac: Mac, src_mac: Mac, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
    let ip = Ip {
        id: 1,
        ..Ip::new(src, dst, PROTO_UDP)
    };
    let udp = udp(src, dst, 40000, 7, payload, false);
    ethernet(dst_mac, src_mac, ETH_P_IP, &ipv4(&ip, &udp))
}

/// A UDP datagram to port 7000 of `dst_ip`, as raw Ethernet with correct
/// checksums, carrying `marker`: what the real-lab tests inject on a port
/// (raw socket) to see where it lands.
pub fn udp_probe(
    src_mac: Mac,
    src_ip: Ipv4Addr,
    dst_mac: Mac,
    dst_ip: Ipv4Addr,
    marker: &[u8],
) -> Vec<u8> {
    let udp = udp(src_ip, dst_ip, 40_000, 7000, marker, true);
    let ip = ipv4(&Ip::new(src_ip, dst_ip, PROTO_UDP), &udp);
    ethernet(dst_mac, src_mac, ETH_P_IP, &ip)
}

// -------------------------------------------------------------------- IPv6

/// An IPv6 packet (RFC 8200 fixed header, hop limit 64) carrying
/// `payload` as `next_header`.
pub fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next_header);
    p.push(64);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// Ethernet + a bare IPv6 header ("no next header", 59) from link-local
/// `fe80::1` to `fe80::2`.
pub fn ipv6(dst_mac: Mac, src_mac: Mac) -> Vec<u8> {
    let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    let dst = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    ethernet(
        dst_mac,
        src_mac,
        ETH_P_IPV6,
        &ipv6_packet(src, dst, 59, &[]),
    )
}
