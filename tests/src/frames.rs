//! Frame builders and parsers for the switch tests: small, explicit byte
//! layouts (Ethernet, ARP, IPv4/UDP, IPv6, 802.1Q) so a test shows exactly
//! what goes into the program and what comes out.

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// Ethernet header + payload.
pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The 28-byte Ethernet/IPv4 ARP body.
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

/// IPv4 header checksum (RFC 1071) over `header`.
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 20-byte IPv4 header (no options) carrying `payload_len` bytes of `proto`.
pub fn ipv4_header(src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0]); // id 1, DF
    h.push(64);
    h.push(proto);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// Ethernet + IPv4 + UDP (checksum 0 = none) with `payload`.
pub fn ipv4_udp(dst_mac: Mac, src_mac: Mac, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut udp = Vec::with_capacity(8 + payload.len());
    udp.extend_from_slice(&40000u16.to_be_bytes());
    udp.extend_from_slice(&7u16.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut ip = ipv4_header(src, dst, 17, udp.len());
    ip.extend_from_slice(&udp);
    ethernet(dst_mac, src_mac, ETH_P_IP, &ip)
}

/// Ethernet + a minimal IPv6 header (no next header payload) from
/// link-local `fe80::1` to `fe80::2`.
pub fn ipv6(dst_mac: Mac, src_mac: Mac) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0, 0, 0, 59, 64]; // no next header, hop limit 64
    let mut src = [0u8; 16];
    src[0] = 0xfe;
    src[1] = 0x80;
    let mut dst = src;
    src[15] = 1;
    dst[15] = 2;
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    ethernet(dst_mac, src_mac, ETH_P_IPV6, &h)
}

/// An 802.1Q-tagged frame (VLAN `vid`) carrying `inner_type` + `payload`.
pub fn vlan(dst: Mac, src: Mac, vid: u16, inner_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(4 + payload.len());
    tagged.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    tagged.extend_from_slice(&inner_type.to_be_bytes());
    tagged.extend_from_slice(payload);
    ethernet(dst, src, ETH_P_8021Q, &tagged)
}

/// Wraps the frame `inner` (from its EtherType on) in one more tag: an
/// 802.1ad (S-tag, TPID 0x88a8) with VLAN `vid`. `outer_tag(0, &vlan(..))` is a
/// double-tagged frame; the kernel strips the outer tag before the port
/// program runs on a real port, BPF_PROG_TEST_RUN does not.
pub fn outer_tag(vid: u16, inner: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(inner.len() - 10);
    body.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    body.extend_from_slice(&inner[12..]);
    let dst: Mac = inner[..6].try_into().expect("6 bytes");
    let src: Mac = inner[6..12].try_into().expect("6 bytes");
    ethernet(dst, src, ETH_P_8021AD, &body)
}

/// The fields of an Ethernet/IPv4 ARP frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpFrame {
    pub eth_dst: Mac,
    pub eth_src: Mac,
    pub op: u16,
    pub sha: Mac,
    pub spa: [u8; 4],
    pub tha: Mac,
    pub tpa: [u8; 4],
}

/// Parses an Ethernet/IPv4 ARP frame; None when it is not one.
pub fn parse_arp(frame: &[u8]) -> Option<ArpFrame> {
    if frame.len() < 42 || u16::from_be_bytes([frame[12], frame[13]]) != ETH_P_ARP {
        return None;
    }
    let a = &frame[14..42];
    if a[0..2] != [0, 1] || a[2..4] != ETH_P_IP.to_be_bytes() || a[4] != 6 || a[5] != 4 {
        return None;
    }
    let mac = |s: &[u8]| -> Mac { s.try_into().unwrap() };
    let ip = |s: &[u8]| -> [u8; 4] { s.try_into().unwrap() };
    Some(ArpFrame {
        eth_dst: mac(&frame[0..6]),
        eth_src: mac(&frame[6..12]),
        op: u16::from_be_bytes([a[6], a[7]]),
        sha: mac(&a[8..14]),
        spa: ip(&a[14..18]),
        tha: mac(&a[18..24]),
        tpa: ip(&a[24..28]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_produce_the_expected_layouts() {
        let req = arp_request([2, 0, 0, 0, 0, 1], [10, 0, 0, 1], [10, 0, 0, 2]);
        assert_eq!(req.len(), 42);
        let p = parse_arp(&req).unwrap();
        assert_eq!(p.op, ARP_REQUEST);
        assert_eq!(p.eth_dst, BROADCAST);
        assert_eq!(p.tpa, [10, 0, 0, 2]);

        let udp = ipv4_udp(BROADCAST, [2; 6], [10, 0, 0, 1], [10, 0, 0, 2], b"hi");
        assert_eq!(udp.len(), 14 + 20 + 8 + 2);
        // A header with its checksum in place sums to zero.
        assert_eq!(ipv4_checksum(&udp[14..34]), 0);
        assert_eq!(ipv6(BROADCAST, [2; 6]).len(), 14 + 40);
        assert_eq!(
            vlan(BROADCAST, [2; 6], 7, ETH_P_IP, &[0; 20]).len(),
            14 + 4 + 20
        );
    }
}
