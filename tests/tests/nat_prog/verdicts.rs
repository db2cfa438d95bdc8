//! What the NAT leaves alone or refuses: the host's own traffic,
//! unsolicited packets, unknown protocols, truncated and malformed frames.

use crate::lab::*;

#[test]
fn host_traffic_passes_untouched() {
    let lab = NatLab::new("host");
    let host_out = out_frame(
        &Ip::new(EXTERNAL, REMOTE, PROTO_TCP),
        &tcp(EXTERNAL, REMOTE, 33000, 80, TCP_SYN, b""),
    );
    assert_eq!(lab.run(EGRESS, &host_out), (TCX_NEXT, host_out.clone()));
    let arp = ethernet(BROADCAST, UPLINK_MAC, ETH_P_ARP, &[0u8; 28]);
    assert_eq!(lab.run(EGRESS, &arp), (TCX_NEXT, arp.clone()));
    assert_eq!(lab.run(INGRESS, &arp), (TCX_NEXT, arp.clone()));
    // Replies to the host's own socket: no entry, untouched.
    let host_in = tcp_in(33000, TCP_SYN | TCP_ACK);
    assert_eq!(lab.run(INGRESS, &host_in), (TCX_NEXT, host_in.clone()));
    // GRE to the host is the host's business too.
    let gre = in_frame(&Ip::new(REMOTE, EXTERNAL, 47), &[0u8; 8]);
    assert_eq!(lab.run(INGRESS, &gre), (TCX_NEXT, gre.clone()));
    assert_eq!(lab.counter(Counter::NatPassHost), 5);
    assert_eq!(lab.counter(Counter::NatCreated), 0);
    assert!(lab.flows().is_empty());
}

#[test]
fn unsolicited_and_unknown_protocols_are_dropped() {
    let lab = NatLab::new("unsolicited");
    let inbound = in_frame(
        &Ip::new(REMOTE, NS1, PROTO_TCP),
        &tcp(REMOTE, NS1, 80, 22, TCP_SYN, b""),
    );
    assert_eq!(lab.run(INGRESS, &inbound).0, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::NatDropUnsolicited), 1);
    let gre = out_frame(&Ip::new(NS1, REMOTE, 47), &[0u8; 8]);
    assert_eq!(lab.run(EGRESS, &gre).0, TC_ACT_SHOT);
    let ts = out_frame(
        &Ip::new(NS1, REMOTE, PROTO_ICMP),
        &icmp_echo(13, 1, 1, &[0; 12]),
    );
    assert_eq!(lab.run(EGRESS, &ts).0, TC_ACT_SHOT, "ICMP timestamp");
    assert_eq!(lab.counter(Counter::NatDropUnknownProto), 2);
}

#[test]
fn truncated_and_malformed_frames_get_a_defined_verdict() {
    let lab = NatLab::new("trunc");
    let x = translate_ok(&lab, &tcp_out(NS1, 40300, TCP_SYN));
    let translated = parse_frame(&lab.run(EGRESS, &tcp_out(NS1, 40300, TCP_ACK)).1)
        .unwrap()
        .2
        .packet;
    // (program, frame, shortest prefix that holds every header the program
    // needs: anything shorter from the lab or to the external address is
    // malformed and dropped).
    let samples: Vec<(&str, Vec<u8>, usize)> = vec![
        (EGRESS, tcp_out(NS1, 40301, TCP_SYN), 14 + 20 + 20),
        (
            EGRESS,
            out_frame(
                &Ip::new(NS1, REMOTE, PROTO_UDP),
                &udp(NS1, REMOTE, 1, 2, &[1; 40], true),
            ),
            14 + 20 + 8,
        ),
        (
            EGRESS,
            out_frame(
                &Ip::new(NS1, REMOTE, PROTO_ICMP),
                &icmp_echo(ICMP_ECHO_REQUEST, 5, 5, &[2; 40]),
            ),
            14 + 20 + 8,
        ),
        (INGRESS, tcp_in(x.sport_or_id(), TCP_ACK), 14 + 20 + 20),
        (
            INGRESS,
            in_frame(
                &Ip::new(ROUTER, EXTERNAL, PROTO_ICMP),
                &icmp_error(ICMP_TIME_EXCEEDED, 0, 0, &translated),
            ),
            14 + 20 + 8 + 20 + 8,
        ),
    ];
    for (prog, full, needed) in &samples {
        let prog = *prog;
        for len in 0..=80usize.min(full.len()) {
            let frame = &full[..len];
            match lab.try_run(prog, frame) {
                // This kernel refuses test runs of frames whose IPv4 header
                // (or Ethernet header) is cut short (EINVAL): such frames
                // cannot be fed to the program, only longer ones.
                Err(e) => assert!(len < 14 + 20, "{prog} len {len}: test run failed: {e:?}"),
                Ok((verdict, out)) => {
                    assert!(
                        len >= 14 + 20,
                        "{prog} len {len}: truncated IPv4 header accepted by the kernel"
                    );
                    if len < *needed {
                        assert_eq!(
                            verdict, TC_ACT_SHOT,
                            "{prog} len {len}: truncated headers must be dropped"
                        );
                    } else {
                        assert_eq!(
                            verdict, TC_ACT_OK,
                            "{prog} len {len}: complete headers are translated"
                        );
                        let (_, _, ip) = parse_frame(&out).unwrap();
                        if prog == EGRESS {
                            assert_eq!(ip.src, EXTERNAL, "{prog} len {len}");
                        } else {
                            assert_eq!(ip.dst, NS1, "{prog} len {len}");
                        }
                    }
                    if len == full.len() {
                        verify_checksums(&out).unwrap();
                    }
                }
            }
        }
    }
    assert!(lab.counter(Counter::NatDropMalformed) > 0);
}
