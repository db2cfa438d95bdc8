//! Frames at the edge of what a switch port carries, on real ports of a
//! lab built by `netlab up`: a singly tagged 802.1Q frame (checked like an
//! untagged one), and the shortest frames (a runt cannot be sent at all; a
//! header-only frame is switched).
//!
//! Labs `tq4`, `tq5` on 10.118.<k>.0/24, sandbox mode; frames only
//! between the lab's own namespaces.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use netlab_common::counters::Counter;
use netlab_tests::traffic::{self, Capture, UdpEchoServer, wait_until};
use netlab_tests::{TestLab, packets};

/// A singly tagged 802.1Q frame from a namespace, on a real port: the
/// kernel strips the tag into the skb's metadata before the port program
/// runs, so the frame is checked like an untagged one. Under the sender's
/// own MAC and address it is switched to the namespace owning the
/// destination MAC and delivered there; under another namespace's address
/// or MAC it is dropped and counted as spoofed. The tag is a priority tag
/// (VLAN 0, priority 5), which the receiving stack accepts without a VLAN
/// device (this kernel has no 8021q support for one). Lab `tq4` on
/// 10.118.4.0/24.
#[test]
fn a_single_tagged_frame_is_checked_like_an_untagged_one() {
    let lab = TestLab::in_net("q4", 118, 4, 3, "");
    lab.ok(&["up"]);
    let (ns1, ns3) = (lab.ns(1), lab.ns(3));
    let (mac1, mac2, mac3) = (lab.mac(1), lab.mac(2), lab.mac(3));
    let (ip1, ip2, ip3) = (lab.ip(1), lab.ip(2), lab.ip(3));
    let sink = UdpEchoServer::sink(&ns1, SocketAddrV4::new(ip1, 7000));
    let tagged = |src_mac: [u8; 6], src_ip: Ipv4Addr, marker: &[u8]| {
        let untagged = packets::udp_probe(src_mac, src_ip, mac1, ip1, marker);
        // An 802.1Q tag with priority 5, VLAN 0.
        packets::tag(packets::ETH_P_8021Q, 5 << 13, &untagged)
    };
    let got = |marker: &[u8]| sink.received().iter().any(|p| p == marker);

    let spoofed_before = lab.counter(Counter::DropSpoofed);
    traffic::send_frames(&ns3, "veth-3", &[tagged(mac3, ip3, b"TAGGED own")]);
    assert!(
        wait_until(Duration::from_secs(10), || got(b"TAGGED own")),
        "a tagged frame under ns3's own identity did not reach ns1"
    );

    traffic::send_frames(
        &ns3,
        "veth-3",
        &[
            tagged(mac3, ip2, b"TAGGED SPOOF address"),
            tagged(mac2, ip3, b"TAGGED SPOOF MAC"),
            // The barrier: after these, under ns3's own identity.
            tagged(mac3, ip3, b"TAGGED barrier"),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(10), || got(b"TAGGED barrier")),
        "the barrier never arrived"
    );
    let spoofed: Vec<String> = sink
        .received()
        .iter()
        .filter(|p| p.starts_with(b"TAGGED SPOOF"))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert!(
        spoofed.is_empty(),
        "spoofed tagged frames got through: {spoofed:?}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            lab.counter(Counter::DropSpoofed) - spoofed_before >= 2
        }),
        "tagged spoofed frames not counted: DropSpoofed +{}",
        lab.counter(Counter::DropSpoofed) - spoofed_before
    );
    drop(sink);
    lab.ok(&["down"]);
}

/// `drop_runt` (a frame shorter than an Ethernet header) cannot happen on
/// a real port: the kernel refuses to transmit such a frame on a veth
/// (EINVAL, before any program), so the counter is the program's bound
/// for the verifier, not a reachable case. A header-only frame (14 bytes,
/// the shortest a port can carry) is switched like any other, never
/// counted as a runt. Lab `tq5` on 10.118.5.0/24.
#[test]
fn the_shortest_frames_a_port_can_carry_are_not_runts() {
    let lab = TestLab::in_net("q5", 118, 5, 2, "");
    lab.ok(&["up"]);
    let (ns1, ns2) = (lab.ns(1), lab.ns(2));
    let (mac1, mac2) = (lab.mac(1), lab.mac(2));
    let runts = lab.counter(Counter::DropRunt);

    let mut short = mac2.to_vec();
    short.extend_from_slice(&mac1);
    short.push(0x88); // 13 bytes: half an EtherType.
    let refused = traffic::try_send_frame(&ns1, "veth-1", &short);
    assert_eq!(
        refused.map_err(|e| e.raw_os_error()),
        Err(Some(libc::EINVAL)),
        "the kernel sent a 13-byte frame"
    );

    // Header only, EtherType 0x88b5 (local experimental): to ns2 by MAC,
    // followed by a barrier datagram on the same socket.
    let capture = Capture::start(&ns2, "veth-2", move |f| {
        f.len() >= 14 && f[6..12] == mac1 && f[12..14] == [0x88, 0xb5]
    });
    let sink = UdpEchoServer::sink(&ns2, SocketAddrV4::new(lab.ip(2), 7000));
    let mut header = short.clone();
    header.push(0xb5);
    assert_eq!(header.len(), 14);
    let barrier = packets::udp_probe(mac1, lab.ip(1), mac2, lab.ip(2), b"BARRIER");
    traffic::send_frames(&ns1, "veth-1", &[header, barrier]);
    assert!(
        wait_until(Duration::from_secs(10), || sink
            .received()
            .iter()
            .any(|p| p == b"BARRIER")),
        "the barrier never reached ns2"
    );
    let seen = capture.finish();
    assert!(
        !seen.kept.is_empty(),
        "the header-only frame never reached ns2"
    );
    assert_eq!(
        lab.counter(Counter::DropRunt),
        runts,
        "a 14-byte frame counted as a runt"
    );
    drop(sink);
    lab.ok(&["down"]);
}
