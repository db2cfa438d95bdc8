//! Parsers for what the programs send back: the fields of IPv4 packets
//! and ARP frames the tests look at, and IPv4 reassembly (RFC 791).

use std::net::Ipv4Addr;

use super::{ETH_P_ARP, ETH_P_IP, Mac, PROTO_ICMP, checksum::checksum};

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
