//! The tests' one frame builder, parser and checksum oracle, used by the
//! program tests (BPF_PROG_TEST_RUN), the fuzzer (`crate::fuzz`) and the
//! real-lab tests that inject raw frames.
//!
//! * [`build`]: Ethernet, 802.1Q/802.1ad tags, ARP, IPv4 (options,
//!   fragments), TCP, UDP, ICMP (echo, errors quoting a packet), IPv6.
//! * [`build6`]: IPv6 extension headers, fragments, jumbograms, ICMPv6
//!   (Neighbour Discovery, router advertisements), UDP over IPv6;
//!   [`ipv6`]: extension header chains as values, TCP over IPv6, ICMPv6
//!   echo and errors, ND bodies and options.
//! * [`parse`]: the fields of what comes back, and IPv4 reassembly.
//! * [`checksum`], [`checksum6`]: every Internet checksum, from scratch (RFC
//!   1071, 768, 793, 792, RFC 8200's IPv6 pseudo header), never
//!   incrementally: it shares no logic with the
//!   programs' incremental updates, so a wrong update cannot hide.

pub mod build;
pub mod build6;
pub mod checksum;
pub mod checksum6;
pub mod ipv6;
pub mod parse;
#[cfg(test)]
mod scapy_cross_check;

pub use build::*;
pub use build6::*;
pub use checksum::*;
pub use checksum6::*;
pub use ipv6::*;
pub use parse::*;

/// An Ethernet address.
pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

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
        assert_eq!(checksum(&udp[14..34]), 0);
        assert_eq!(
            &udp[14 + 4..14 + 10],
            &[0, 1, 0x40, 0, 64, PROTO_UDP],
            "id 1, DF, TTL 64"
        );
        assert_eq!(
            &udp[34..40],
            &[0x9c, 0x40, 0, 7, 0, 10],
            "40000 -> 7, length 10"
        );
        assert_eq!(&udp[40..42], &[0, 0], "no UDP checksum");
        let v6 = ipv6(BROADCAST, [2; 6]);
        assert_eq!(v6.len(), 14 + 40);
        assert_eq!(&v6[12..14], &ETH_P_IPV6.to_be_bytes());
        assert_eq!(
            &v6[14 + 4..14 + 8],
            &[0, 0, 59, 64],
            "no payload, no next header"
        );
        assert_eq!(
            vlan(BROADCAST, [2; 6], 7, ETH_P_IP, &[0; 20]).len(),
            14 + 4 + 20
        );
        let double = outer_tag(5, &vlan(BROADCAST, [2; 6], 7, ETH_P_IP, &[0; 20]));
        assert_eq!(&double[12..18], &[0x88, 0xa8, 0, 5, 0x81, 0x00]);
        let priority_tags = double_tagged(&udp);
        assert_eq!(
            &priority_tags[12..22],
            &[0x88, 0xa8, 0, 0, 0x81, 0x00, 0, 0, 0x08, 0x00]
        );
        assert_eq!(&priority_tags[22..], &udp[14..]);
    }

    #[test]
    fn ip_options_are_padded_and_counted_in_the_ihl() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut ip = Ip::new(a, b, PROTO_UDP);
        ip.options = vec![0x94, 0x04, 0, 0, 0x01]; // router alert, NOP
        let p = ipv4(&ip, &udp(a, b, 1, 2, b"x", true));
        assert_eq!(p[0], 0x47, "IHL 7: 20 + 5 option bytes padded to 8");
        assert_eq!(&p[20..28], &[0x94, 0x04, 0, 0, 0x01, 0, 0, 0]);
        let view = parse_ipv4(&p).unwrap();
        assert_eq!(view.header_len, 28);
        verify_checksums(&ethernet([2; 6], [4; 6], ETH_P_IP, &p)).unwrap();
    }

    #[test]
    fn an_icmp_error_quotes_the_header_and_eight_bytes() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let offending = ipv4(
            &Ip::new(a, b, PROTO_TCP),
            &tcp(a, b, 1, 2, TCP_SYN, b"data"),
        );
        let err = icmp_error(ICMP_DEST_UNREACH, 4, 1400, &offending);
        assert_eq!(&err[..2], &[ICMP_DEST_UNREACH, 4]);
        assert_eq!(&err[4..8], &1400u32.to_be_bytes());
        assert_eq!(&err[8..], &offending[..28]);
        assert_eq!(checksum(&err), 0);
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
