//! The uplink XDP program's IPv6 rule: what NAT66's TC ingress drops
//! from the fixed header (an unreadable header, a lab source, the lab
//! prefix as destination) dropped before an skb exists; everything else
//! passed to the TC ingress.

use netlab::bpf::verdict::{XDP_DROP, XDP_PASS};

use crate::lab::*;

fn udp_in(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    in6(&ipv6_packet(
        src,
        dst,
        PROTO_UDP,
        &udp6(src, dst, 53, 41000, b"x"),
    ))
}

#[test]
fn xdp_drops_what_nat66_refuses_and_passes_the_rest() {
    let lab = Nat6Lab::new("xdp");
    let mut truncated = udp_in(remote(), external());
    truncated.truncate(14 + 30);
    let mut version4 = udp_in(ns2(), external());
    version4[14] = 0x45;
    for (what, frame, verdict, counter) in [
        (
            "to the lab prefix",
            udp_in(remote(), ns1()),
            XDP_DROP,
            Counter::XdpDropUnsolicited,
        ),
        (
            "a lab source",
            udp_in(ns2(), external()),
            XDP_DROP,
            Counter::XdpDropLabSource,
        ),
        (
            "to the external address",
            udp_in(remote(), external()),
            XDP_PASS,
            Counter::XdpPass,
        ),
        (
            "link-local",
            udp_in(a6("fe80::9"), a6("fe80::1")),
            XDP_PASS,
            Counter::XdpPass,
        ),
        // What the TC ingress would drop as malformed (a lab source
        // behind a version other than 6 included: the header is not read).
        (
            "a truncated header",
            truncated,
            XDP_DROP,
            Counter::XdpDropMalformed,
        ),
        ("version 4", version4, XDP_DROP, Counter::XdpDropMalformed),
    ] {
        let before = lab.counters();
        assert_eq!(lab.run_xdp(&frame), verdict, "{what}");
        lab.assert_moved(&before, &[(counter, 1)]);
    }
}

#[test]
fn without_nat66_ipv6_is_passed_untouched() {
    let mut p = plan(PORT_MIN, PORT_MAX);
    p.subnet6 = None;
    let lab = Nat6Lab::with_plan("xdp-off", &p);
    // Even to the lab prefix: with NAT66 off IPv6 is the host's (counted
    // as passed while the IPv4 NAT is on, as before NAT66 existed).
    let before = lab.counters();
    assert_eq!(lab.run_xdp(&udp_in(remote(), ns1())), XDP_PASS);
    lab.assert_moved(&before, &[(Counter::XdpPass, 1)]);
    // And the TC programs hand IPv6 on untouched.
    let before = lab.counters();
    let frame = udp_in(remote(), ns1());
    assert_eq!(lab.run(INGRESS, &frame), (TCX_NEXT, frame.clone()));
    let out = tcp_out(ns1(), 1000, TCP_SYN);
    assert_eq!(lab.run(EGRESS, &out), (TCX_NEXT, out.clone()));
    lab.assert_moved(&before, &[(Counter::NatPassHost, 2)]);
}
