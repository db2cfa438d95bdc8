//! IPv6 on real labs, eBPF datapath: the same reachability matrix as the
//! kernel baseline's (`ipv6_lab.rs`), through the eBPF switch with its
//! IPv6 first-hop security on and NAT66 on the uplink, once with the TC
//! switch and once with the XDP switch in front of it. Every namespace
//! reaches every other, the gateway and the internet server over IPv6
//! (ping, TCP, UDP, a datagram larger than the MTU), the internet server
//! sees only the uplink's IPv6 address, and `check` passes its IPv6 rows.
//! The counters show the IPv6 parts did the work: neighbour solicitations
//! answered by the switch, flows created by NAT66.
//!
//! Labs `vh1`, `vh2` on 10.168.<k>.0/24 (IPv6 fd00:10:168:<k>::/64).

use netlab_common::counters::Counter;
use netlab_tests::ipv6::{assert_ipv6_matrix, lab6};

const NET: [u8; 2] = [10, 168];

fn ebpf_lab_reaches_everything(name: &str, k: u8, switch: &str) {
    let lab = lab6(name, NET, k, 3, "ebpf", &format!("switch = \"{switch}\""));
    let up = lab.ok(&["up"]);
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(!text.contains("IPv6 egress unavailable"), "{text}");

    let answered = lab.counter(Counter::NdAnswered);
    let created = lab.counter(Counter::NatCreated);
    assert_ipv6_matrix(&lab);
    // The namespaces found each other and the gateway through the
    // switch's ND responder, and the internet through NAT66 (this lab's
    // matrix sends no IPv4 to the internet).
    assert!(
        lab.counter(Counter::NdAnswered) > answered,
        "no neighbour solicitation answered by the switch"
    );
    assert!(
        lab.counter(Counter::NatCreated) > created,
        "no NAT66 flow created"
    );
    assert_eq!(lab.counter(Counter::NatDropMalformed), 0);
    assert_eq!(lab.counter(Counter::NatDropExtHeaders), 0);
    assert_eq!(lab.counter(Counter::DropIpv6Malformed), 0);
    assert_eq!(lab.counter(Counter::DropRaGuard), 0);
    assert_eq!(lab.counter(Counter::DropNdSpoof), 0);

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down");
}

#[test]
fn ebpf_tc_switch_lab_reaches_everything_over_ipv6() {
    ebpf_lab_reaches_everything("vh1", 1, "tc");
}

#[test]
fn ebpf_xdp_switch_lab_reaches_everything_over_ipv6() {
    ebpf_lab_reaches_everything("vh2", 2, "xdp");
}
