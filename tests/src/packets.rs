//! Packet builders and an independent checksum verifier for the program
//! tests (BPF_PROG_TEST_RUN).
//!
//! The checksums here are computed from scratch, the textbook way (RFC 1071
//! ones-complement sum over big-endian 16-bit words, with the RFC 793/768
//! pseudo header for TCP/UDP), and never incrementally: they share no logic
//! with the programs' incremental updates, so a wrong update cannot hide.

use std::net::Ipv4Addr;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;

/// RFC 1071 ones-complement sum of `data` (odd length padded with a zero
/// byte), not yet complemented, folded to 16 bits.
pub fn ones_sum(data: &[u8], initial: u32) -> u16 {
    let mut sum: u64 = initial as u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u64) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum of `data` (the value to put in the header).
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data, 0)
}

/// Sum of the TCP/UDP pseudo header.
fn pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let mut p = Vec::with_capacity(12);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.push(0);
    p.push(proto);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    ones_sum(&p, 0) as u32
}

/// TCP/UDP checksum of `segment` (checksum field included as it is).
pub fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> u16 {
    !ones_sum(segment, pseudo_sum(src, dst, proto, segment.len()))
}

// ---------------------------------------------------------------- builders

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

/// Reassembles IPv4 fragments (in any order) into the datagram they
/// carry: the first fragment's header with flags and offset cleared, the
/// total length of the whole and a fresh header checksum, then the data of
/// every fragment at its offset. Fails when the fragments are not of one
/// datagram (source, destination, protocol, identification), overlap,
/// leave a gap, or do not end with exactly one last fragment.
pub fn reassemble(fragments: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let views = fragments
        .iter()
        .map(|f| parse_ipv4(f))
        .collect::<Result<Vec<_>, _>>()?;
    let identity = |v: &Ipv4View| (v.src, v.dst, v.proto, [v.packet[4], v.packet[5]]);
    let first = views.first().ok_or("no fragments")?;
    if let Some(v) = views.iter().find(|v| identity(v) != identity(first)) {
        return Err(format!(
            "fragments of different datagrams: {:?} and {:?}",
            identity(first),
            identity(v)
        ));
    }
    let frag = |v: &Ipv4View| u16::from_be_bytes([v.packet[6], v.packet[7]]);
    let mut parts: Vec<(usize, &Ipv4View)> = views
        .iter()
        .map(|v| ((frag(v) & 0x1fff) as usize * 8, v))
        .collect();
    parts.sort_by_key(|(off, _)| *off);
    let mut data = Vec::new();
    for (i, (off, v)) in parts.iter().enumerate() {
        if *off != data.len() {
            return Err(format!(
                "fragment at {off} where {} was expected",
                data.len()
            ));
        }
        let last = i + 1 == parts.len();
        if (frag(v) & 0x2000 == 0) != last {
            return Err(format!("MF wrong on the fragment at {off}"));
        }
        let tot = u16::from_be_bytes([v.packet[2], v.packet[3]]) as usize;
        data.extend_from_slice(&v.packet[v.header_len..tot.min(v.packet.len())]);
    }
    let head = parts[0].1;
    let mut header = head.packet[..head.header_len].to_vec();
    let total = (header.len() + data.len()) as u16;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header[6..8].copy_from_slice(&(frag(head) & 0x4000).to_be_bytes());
    header[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&header);
    header[10..12].copy_from_slice(&c.to_be_bytes());
    header.extend_from_slice(&data);
    Ok(header)
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

/// An Ethernet frame.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A UDP datagram to port 7000 of `dst_ip`, as raw Ethernet with correct
/// checksums, carrying `marker`: what the real-lab tests inject on a port
/// (raw socket) to see where it lands.
pub fn udp_probe(
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_mac: [u8; 6],
    dst_ip: Ipv4Addr,
    marker: &[u8],
) -> Vec<u8> {
    let udp = udp(src_ip, dst_ip, 40_000, 7000, marker, true);
    let ip = ipv4(&Ip::new(src_ip, dst_ip, PROTO_UDP), &udp);
    ethernet(dst_mac, src_mac, 0x0800, &ip)
}

// ----------------------------------------------------------------- parsing

/// The fields of an IPv4 packet the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4View {
    pub header_len: usize,
    pub ttl: u8,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The whole packet (header + payload), as in the frame.
    pub packet: Vec<u8>,
}

impl Ipv4View {
    pub fn payload(&self) -> &[u8] {
        &self.packet[self.header_len..]
    }
    /// TCP/UDP source port, or the ICMP echo id.
    pub fn sport_or_id(&self) -> u16 {
        let p = self.payload();
        if self.proto == PROTO_ICMP {
            u16::from_be_bytes([p[4], p[5]])
        } else {
            u16::from_be_bytes([p[0], p[1]])
        }
    }
    pub fn dport(&self) -> u16 {
        let p = self.payload();
        u16::from_be_bytes([p[2], p[3]])
    }
}

/// Parses an IPv4 packet (no checks beyond lengths).
pub fn parse_ipv4(packet: &[u8]) -> Result<Ipv4View, String> {
    if packet.len() < 20 {
        return Err(format!("IPv4 packet of {} bytes", packet.len()));
    }
    let header_len = ((packet[0] & 0x0f) as usize) * 4;
    if header_len < 20 || packet.len() < header_len {
        return Err(format!("IHL {header_len} in a packet of {}", packet.len()));
    }
    Ok(Ipv4View {
        header_len,
        ttl: packet[8],
        proto: packet[9],
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        packet: packet.to_vec(),
    })
}

/// Ethernet destination, source and the IPv4 packet of a frame.
pub fn parse_frame(frame: &[u8]) -> Result<([u8; 6], [u8; 6], Ipv4View), String> {
    if frame.len() < 14 {
        return Err(format!("frame of {} bytes", frame.len()));
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if ethertype != ETH_P_IP {
        return Err(format!("ethertype {ethertype:#06x}"));
    }
    let dst = frame[0..6].try_into().unwrap();
    let src = frame[6..12].try_into().unwrap();
    Ok((dst, src, parse_ipv4(&frame[14..])?))
}

/// Verifies the IPv4 header checksum of a frame from scratch (all a later
/// fragment holds: its data is covered by the L4 checksum in the first).
pub fn verify_ip_header(frame: &[u8]) -> Result<(), String> {
    let (_, _, ip) = parse_frame(frame)?;
    let hdr = &ip.packet[..ip.header_len];
    if ones_sum(hdr, 0) != 0xffff {
        return Err(format!("IPv4 header checksum wrong: {:02x?}", hdr));
    }
    Ok(())
}

/// Verifies the IPv4 header checksum and the L4 checksum of a frame from
/// scratch: TCP and UDP over the pseudo header and the whole segment (a UDP
/// checksum of 0 means none), ICMP over the whole message. For an ICMP
/// error, also the quoted IPv4 header's checksum.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let (_, _, ip) = parse_frame(frame)?;
    let hdr = &ip.packet[..ip.header_len];
    if ones_sum(hdr, 0) != 0xffff {
        return Err(format!("IPv4 header checksum wrong: {:02x?}", hdr));
    }
    let l4 = ip.payload();
    match ip.proto {
        PROTO_TCP | PROTO_UDP => {
            if ip.proto == PROTO_UDP && l4.len() >= 8 && l4[6] == 0 && l4[7] == 0 {
                return Ok(());
            }
            let sum = ones_sum(l4, pseudo_sum(ip.src, ip.dst, ip.proto, l4.len()));
            if sum != 0xffff {
                return Err(format!("{} checksum wrong (sum {sum:#06x})", ip.proto));
            }
        }
        PROTO_ICMP => {
            if ones_sum(l4, 0) != 0xffff {
                return Err("ICMP checksum wrong".into());
            }
            if matches!(
                l4.first(),
                Some(&ICMP_DEST_UNREACH) | Some(&ICMP_TIME_EXCEEDED)
            ) {
                let inner = parse_ipv4(&l4[8..])?;
                if ones_sum(&inner.packet[..inner.header_len], 0) != 0xffff {
                    return Err("quoted IPv4 header checksum wrong".into());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_sum(&data, 0), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn built_packets_verify_and_corruption_is_caught() {
        let a = Ipv4Addr::new(192, 168, 28, 1);
        let b = Ipv4Addr::new(203, 0, 113, 2);
        for (proto, l4) in [
            (PROTO_TCP, tcp(a, b, 1000, 80, TCP_SYN, b"hello")),
            (PROTO_UDP, udp(a, b, 1000, 53, b"odd", true)),
            (PROTO_ICMP, icmp_echo(ICMP_ECHO_REQUEST, 7, 1, b"ping")),
        ] {
            let frame = ethernet([2; 6], [4; 6], ETH_P_IP, &ipv4(&Ip::new(a, b, proto), &l4));
            verify_checksums(&frame).unwrap();
            let mut bad = frame.clone();
            *bad.last_mut().unwrap() ^= 0x40;
            assert!(verify_checksums(&bad).is_err(), "proto {proto}");
            let mut bad_ip = frame.clone();
            bad_ip[14 + 8] ^= 1; // TTL
            assert!(verify_checksums(&bad_ip).is_err());
            assert!(verify_ip_header(&bad_ip).is_err());
        }
    }

    #[test]
    fn fragments_reassemble_into_the_datagram() {
        let a = Ipv4Addr::new(192, 168, 28, 1);
        let b = Ipv4Addr::new(203, 0, 113, 2);
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let segment = udp(a, b, 1000, 53, &data, true);
        let mut ip = Ip::new(a, b, PROTO_UDP);
        ip.id = 0xbeef;
        let frags = fragments(&ip, &segment, 1500);
        assert_eq!(frags.len(), 3);
        let offsets: Vec<u16> = frags
            .iter()
            .map(|f| u16::from_be_bytes([f[6], f[7]]))
            .collect();
        assert_eq!(
            offsets,
            [0x2000, 0x2000 | 185, 370],
            "DF cleared, MF, offsets"
        );
        for f in &frags {
            assert!(f.len() <= 1500);
            verify_ip_header(&ethernet([2; 6], [4; 6], ETH_P_IP, f)).unwrap();
        }
        let mut shuffled = frags.clone();
        shuffled.swap(0, 2);
        let whole = reassemble(&shuffled).unwrap();
        let mut unfragmented = ip.clone();
        unfragmented.frag = 0;
        assert_eq!(whole, ipv4(&unfragmented, &segment));
        verify_checksums(&ethernet([2; 6], [4; 6], ETH_P_IP, &whole)).unwrap();
        assert!(reassemble(&frags[..2]).is_err(), "no last fragment");
        assert!(
            reassemble(&[frags[0].clone(), frags[2].clone()]).is_err(),
            "a gap"
        );
        let mut other = frags[1].clone();
        other[4] ^= 1;
        assert!(reassemble(&[frags[0].clone(), other, frags[2].clone()]).is_err());
    }
}
