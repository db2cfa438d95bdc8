//! The builder and the checksum oracle cross-checked against scapy
//! (python3-scapy, installed by `cargo xtask setup`), an implementation
//! that shares nothing with ours: scapy parses each frame we built,
//! forgets every checksum it can recompute, rebuilds the frame, and the
//! bytes must come back unchanged. A wrong field layout or a wrong sum on
//! either side shows as a difference.

use std::{
    io::Write,
    net::Ipv4Addr,
    process::{Command, Stdio},
};

use super::*;

/// Debian's interpreter, the one python3-scapy installs for (a `python3`
/// earlier in PATH, e.g. a pyenv one, does not see it).
const PYTHON: &str = "/usr/bin/python3";

/// Reads hex frames on stdin, one a line; writes each rebuilt by scapy,
/// with the layers scapy found in it.
/// Checksums are recomputed on the outer IPv4 header, TCP, UDP (unless 0:
/// "none"), ICMP and the IPv4 header an ICMP error quotes; not on the
/// quoted L4 header (eight bytes of it: scapy would sum a truncated
/// segment), nor on the L4 header of a fragment (its checksum covers the
/// whole datagram, which scapy does not see).
const SCRIPT: &str = r#"
import sys
from scapy.all import Ether, IP, TCP, UDP, ICMP, IPerror
for line in sys.stdin:
    p = Ether(bytes.fromhex(line.strip()))
    whole = not p.haslayer(IP) or not (p[IP].flags.MF or p[IP].frag)
    for layer in (IP, IPerror):
        if p.haslayer(layer):
            p[layer].chksum = None
    for layer in (TCP, ICMP) if whole else ():
        if p.haslayer(layer):
            p[layer].chksum = None
    if whole and p.haslayer(UDP) and p[UDP].chksum != 0:
        p[UDP].chksum = None
    print(bytes(p).hex() + " " + "/".join(c.__name__ for c in p.layers()))
"#;

fn scapy_rebuild(frames: &[Vec<u8>]) -> Vec<(Vec<u8>, String)> {
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e} (python3, installed by cargo xtask setup)"));
    let input: String = frames.iter().map(|f| crate::fuzz::hex(f) + "\n").collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("scapy ran");
    assert!(
        out.status.success(),
        "scapy failed (python3-scapy is installed by cargo xtask setup): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (hex, layers) = l.split_once(' ').unwrap_or((l, ""));
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (bytes, layers.to_string())
        })
        .collect()
}

#[test]
fn scapy_rebuilds_every_kind_of_frame_byte_for_byte() {
    let a = Ipv4Addr::new(192, 168, 28, 1);
    let b = Ipv4Addr::new(203, 0, 113, 2);
    let (ma, mb) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let frame = |ip: &Ip, l4: &[u8]| ethernet(mb, ma, ETH_P_IP, &ipv4(ip, l4));
    let tcp_seg = tcp(a, b, 40001, 80, TCP_SYN | TCP_ACK, b"GET / HTTP/1.1\r\n");
    let udp_odd = udp(a, b, 5353, 53, b"odd", true);
    let offending = ipv4(&Ip::new(b, a, PROTO_UDP), &udp(b, a, 53, 5353, b"q", true));
    let mut with_options = Ip::new(a, b, PROTO_TCP);
    with_options.options = vec![0x94, 0x04, 0, 0, 0x01]; // router alert, NOP
    let mut fragmented = Ip::new(a, b, PROTO_UDP);
    fragmented.id = 0xbeef;
    let big = udp(a, b, 1000, 53, &[0x5a; 2000], true);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("TCP", frame(&Ip::new(a, b, PROTO_TCP), &tcp_seg)),
        (
            "UDP, odd length",
            frame(&Ip::new(a, b, PROTO_UDP), &udp_odd),
        ),
        (
            "UDP, no checksum",
            frame(&Ip::new(a, b, PROTO_UDP), &udp(a, b, 1, 2, b"x", false)),
        ),
        (
            "ICMP echo",
            frame(
                &Ip::new(a, b, PROTO_ICMP),
                &icmp_echo(ICMP_ECHO_REQUEST, 7, 1, b"ping"),
            ),
        ),
        (
            "ICMP error",
            frame(
                &Ip::new(b, a, PROTO_ICMP),
                &icmp_error(ICMP_DEST_UNREACH, 3, 0, &offending),
            ),
        ),
        (
            "ICMP frag needed",
            frame(
                &Ip::new(b, a, PROTO_ICMP),
                &icmp_error(ICMP_DEST_UNREACH, 4, 1400, &offending),
            ),
        ),
        (
            "IPv4 options",
            frame(&with_options, &tcp(a, b, 1, 2, TCP_SYN, b"")),
        ),
        (
            "first fragment",
            ethernet(mb, ma, ETH_P_IP, &fragments(&fragmented, &big, 1500)[0]),
        ),
        (
            "last fragment",
            ethernet(mb, ma, ETH_P_IP, &fragments(&fragmented, &big, 1500)[1]),
        ),
        ("ARP", arp_request(ma, a.octets(), b.octets())),
        (
            "IPv4/UDP over 802.1Q",
            vlan(
                mb,
                ma,
                7,
                ETH_P_IP,
                &ipv4(&Ip::new(a, b, PROTO_UDP), &udp_odd),
            ),
        ),
        ("IPv6", ipv6(mb, ma)),
    ];
    let frames: Vec<Vec<u8>> = cases.iter().map(|(_, f)| f.clone()).collect();
    let rebuilt = scapy_rebuild(&frames);
    assert_eq!(rebuilt.len(), cases.len());
    for ((what, ours), (theirs, layers)) in cases.iter().zip(&rebuilt) {
        assert_eq!(
            crate::fuzz::hex(ours),
            crate::fuzz::hex(theirs),
            "{what}: scapy ({layers}) rebuilds it differently"
        );
    }
    // The parse is scapy's own, not a byte echo: it saw the layers we built.
    let layers: Vec<&str> = rebuilt.iter().map(|(_, l)| l.as_str()).collect();
    for (i, layer) in [
        (0, "TCP"),
        (1, "UDP"),
        (3, "ICMP"),
        (4, "IPerror"),
        (9, "ARP"),
        (10, "Dot1Q"),
        (11, "IPv6"),
    ] {
        assert!(layers[i].contains(layer), "{}: {}", cases[i].0, layers[i]);
    }
}

#[test]
fn scapy_disagrees_with_a_wrong_checksum() {
    let a = Ipv4Addr::new(10, 0, 0, 1);
    let b = Ipv4Addr::new(10, 0, 0, 2);
    let good = ethernet(
        [2; 6],
        [4; 6],
        ETH_P_IP,
        &ipv4(&Ip::new(a, b, PROTO_TCP), &tcp(a, b, 1, 2, TCP_SYN, b"x")),
    );
    let mut bad_l4 = good.clone();
    bad_l4[14 + 20 + 16] ^= 0x01; // TCP checksum
    let mut bad_ip = good.clone();
    bad_ip[14 + 10] ^= 0x01; // IPv4 header checksum
    let rebuilt = scapy_rebuild(&[bad_l4.clone(), bad_ip.clone()]);
    assert_eq!(rebuilt[0].0, good, "scapy repairs the TCP checksum");
    assert_eq!(rebuilt[1].0, good, "scapy repairs the header checksum");
    assert!(verify_checksums(&bad_l4).is_err() && verify_checksums(&bad_ip).is_err());
}

/// As [`SCRIPT`], for IPv6 frames: every checksum scapy can recompute is
/// forgotten (TCP, UDP, every ICMPv6 message) up to the packet an ICMPv6
/// error quotes, which is left as it is.
const SCRIPT6: &str = r#"
import sys
from scapy.all import Ether, IPerror6
for line in sys.stdin:
    p = Ether(bytes.fromhex(line.strip()))
    layer = p
    while layer and not isinstance(layer, IPerror6):
        for f in ("cksum", "chksum"):
            if f in layer.fields:
                setattr(layer, f, None)
        layer = layer.payload
    print(bytes(p).hex() + " " + "/".join(c.__name__ for c in p.layers()))
"#;

#[test]
fn scapy_rebuilds_ipv6_frames_byte_for_byte() {
    use std::net::Ipv6Addr;
    let a: Ipv6Addr = "fd00:192:168:28::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:203:113::2".parse().unwrap();
    let (ma, mb) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let ll = eui64_link_local(ma);
    let frame =
        |ip: &Ipv6Header, proto: u8, l4: &[u8]| ipv6_frame_of(mb, ma, &ipv6_with(ip, proto, l4));
    let plain = Ipv6Header::new(a, b);
    let mut nd = Ipv6Header::new(ll, solicited_node(b));
    nd.hop_limit = 255;
    let offending = ipv6_with(
        &Ipv6Header::new(b, a),
        PROTO_UDP,
        &udp6(b, a, 53, 5353, b"q"),
    );
    let mut chained = Ipv6Header::new(a, b);
    chained.ext = vec![
        Ext::HopByHop(router_alert_option()),
        Ext::Routing {
            kind: 0,
            segments_left: 0,
            data: vec![],
        },
        Ext::DestOpts(vec![]),
    ];
    let mut fragment = Ipv6Header::new(a, b);
    fragment.ext = vec![Ext::Fragment {
        offset: 0,
        more: true,
        id: 0xbeef,
    }];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "TCP",
            frame(&plain, PROTO_TCP, &tcp6(a, b, 40001, 80, TCP_SYN, b"GET /")),
            "TCP",
        ),
        (
            "UDP, odd length",
            frame(&plain, PROTO_UDP, &udp6(a, b, 5353, 53, b"odd")),
            "UDP",
        ),
        (
            "echo",
            frame(
                &plain,
                PROTO_ICMPV6,
                &icmp6_echo(a, b, ICMP6_ECHO_REQUEST, 7, 1, b"ping"),
            ),
            "ICMPv6EchoRequest",
        ),
        (
            "NS with source link-layer option",
            frame(
                &nd,
                PROTO_ICMPV6,
                &icmpv6(
                    ll,
                    solicited_node(b),
                    ND_NEIGHBOR_SOLICIT,
                    0,
                    &ns_body(b, &ll_option(ND_OPT_SOURCE_LL, ma)),
                ),
            ),
            "ICMPv6NDOptSrcLLAddr",
        ),
        (
            "NA",
            frame(
                &nd,
                PROTO_ICMPV6,
                &icmpv6(
                    ll,
                    solicited_node(b),
                    ND_NEIGHBOR_ADVERT,
                    0,
                    &na_body(
                        NA_SOLICITED | NA_OVERRIDE,
                        a,
                        &ll_option(ND_OPT_TARGET_LL, ma),
                    ),
                ),
            ),
            "ICMPv6ND_NA",
        ),
        (
            "RA",
            frame(
                &nd,
                PROTO_ICMPV6,
                &icmpv6(
                    ll,
                    solicited_node(b),
                    ND_ROUTER_ADVERT,
                    0,
                    &ra_body(a, Some(ma)),
                ),
            ),
            "ICMPv6NDOptPrefixInfo",
        ),
        (
            "redirect",
            frame(
                &nd,
                PROTO_ICMPV6,
                &icmpv6(ll, solicited_node(b), ND_REDIRECT, 0, &redirect_body(ll, b)),
            ),
            "ICMPv6ND_Redirect",
        ),
        (
            "packet too big quoting UDP",
            frame(
                &Ipv6Header::new(b, a),
                PROTO_ICMPV6,
                &icmp6_error(b, a, ICMP6_PACKET_TOO_BIG, 0, 1280, &offending),
            ),
            "UDPerror",
        ),
        (
            "extension header chain",
            frame(&chained, PROTO_UDP, &udp6(a, b, 1, 2, b"x")),
            "IPv6ExtHdrDestOpt",
        ),
        (
            "first fragment",
            frame(&fragment, PROTO_UDP, &udp6(a, b, 1, 2, &[0x5a; 100])),
            "IPv6ExtHdrFragment",
        ),
    ];
    let mut child = Command::new(PYTHON)
        .args(["-c", SCRIPT6])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let input: String = cases
        .iter()
        .map(|(_, f, _)| crate::fuzz::hex(f) + "\n")
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((what, ours, layer), line) in cases.iter().zip(lines) {
        let (hex, layers) = line.split_once(' ').unwrap();
        assert_eq!(
            crate::fuzz::hex(ours),
            hex,
            "{what}: scapy ({layers}) rebuilds it differently"
        );
        assert!(layers.contains(layer), "{what}: scapy saw {layers}");
        verify_checksums6(ours).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}
