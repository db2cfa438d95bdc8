//! The representative frames of the micro-benchmark: 64-byte UDP (the
//! smallest Ethernet frame, as in the `udp-64` workload) and an ARP
//! request. Checksums are correct, so the programs take their normal path.

use netlab_common::{
    ether::{ETH_P_ARP, ETH_P_IP},
    nat::IPPROTO_UDP,
};

/// UDP payload that makes the whole frame 64 bytes (14 + 20 + 8 + 22).
const PAYLOAD: usize = 22;

pub type Mac = [u8; 6];

fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The ones' complement sum of `data` folded to 16 bits, complemented.
fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 64-byte IPv4/UDP frame, IP and UDP checksums set.
pub fn udp(dst_mac: Mac, src_mac: Mac, src: [u8; 4], dst: [u8; 4], ports: (u16, u16)) -> Vec<u8> {
    let udp_len = 8 + PAYLOAD;
    let mut l4 = Vec::with_capacity(udp_len);
    l4.extend_from_slice(&ports.0.to_be_bytes());
    l4.extend_from_slice(&ports.1.to_be_bytes());
    l4.extend_from_slice(&(udp_len as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(&[0x5a; PAYLOAD]);
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    let pseudo_sum = u32::from(!checksum(&pseudo, 0));
    let c = match checksum(&l4, pseudo_sum) {
        0 => 0xffff,
        c => c,
    };
    l4[6..8].copy_from_slice(&c.to_be_bytes());

    let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, IPPROTO_UDP, 0, 0];
    ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&l4);
    ethernet(dst_mac, src_mac, ETH_P_IP, &ip)
}

/// A broadcast ARP request: who has `tpa`, tell `spa` (`sha`).
pub fn arp_request(sha: Mac, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut body = vec![0, 1, 0x08, 0, 6, 4, 0, 1];
    body.extend_from_slice(&sha);
    body.extend_from_slice(&spa);
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(&tpa);
    ethernet([0xff; 6], sha, ETH_P_ARP, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_udp_frame_is_64_bytes_with_valid_checksums() {
        let f = udp([2; 6], [4; 6], [10, 0, 0, 1], [10, 0, 0, 2], (1000, 2000));
        assert_eq!(f.len(), 64);
        // A header with its checksum in place sums to zero.
        assert_eq!(checksum(&f[14..34], 0), 0);
    }
}
