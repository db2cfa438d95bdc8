//! What happens when the NAT runs out: an exhausted port range, a full map.

use crate::lab::*;

#[test]
fn an_exhausted_range_drops_new_flows_but_keeps_existing_ones() {
    let lab = NatLab::with_plan("exhaust", &plan(40000, 40003));
    let mut ports = Vec::new();
    for host in 1..=4u8 {
        let src = Ipv4Addr::new(192, 168, 28, host);
        ports.push(translate_ok(&lab, &tcp_out(src, 1234, TCP_SYN)).sport_or_id());
    }
    ports.sort();
    assert_eq!(ports, vec![40000, 40001, 40002, 40003]);
    let (verdict, _) = lab.run(
        EGRESS,
        &tcp_out(Ipv4Addr::new(192, 168, 28, 9), 1234, TCP_SYN),
    );
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::NatDropNoPort), 1);
    // Same remote port on another remote address is a different reply tuple,
    // but here every flow goes to the same remote: still full.
    let (verdict, _) = lab.run(EGRESS, &tcp_out(NS1, 4321, TCP_SYN));
    assert_eq!(verdict, TC_ACT_SHOT);
    assert_eq!(lab.counter(Counter::NatDropNoPort), 2);
    // Existing flows keep working.
    translate_ok(&lab, &tcp_out(NS1, 1234, TCP_ACK));
    assert_eq!(lab.counter(Counter::NatCreated), 4);
}

/// A full map refuses a new translation: the packet is dropped and counted
/// as `nat_drop_map_full`, nothing is half created (a claimed reply entry
/// is released), and the flow is never sent untranslated. The lab's own
/// NAT maps are LRU maps, which evict the least recently used entry
/// instead of refusing, so a lab never fills up; here the map that refuses
/// is a plain hash map of the same layout with one entry, pinned where
/// the program adopts it, and the insert the kernel refuses is real.
#[test]
fn a_full_map_drops_a_new_flow_and_creates_nothing() {
    for full in [NAT_REPLY_MAP, NAT_ORIG_MAP] {
        let lab = NatLab::with_pins(&format!("full-{full}"), &plan(PORT_MIN, PORT_MAX), |dir| {
            let out = std::process::Command::new("bpftool")
                .args(["map", "create"])
                .arg(dir.join(full))
                .args([
                    "type", "hash", "key", "16", "value", "16", "entries", "1", "name", full,
                ])
                .output()
                .expect("bpftool");
            assert!(
                out.status.success(),
                "{full}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
        // Fill it with another flow's entry.
        let other = NatKey {
            saddr: u32::from_ne_bytes(Ipv4Addr::new(192, 168, 28, 77).octets()),
            daddr: u32::from_ne_bytes(REMOTE.octets()),
            sport: 999u16.to_be(),
            dport: 80u16.to_be(),
            proto: PROTO_TCP,
            _pad: [0; 3],
        };
        let entries = |lab: &mut NatLab, name: &str| -> Vec<NatKey> {
            let map: BpfHashMap<_, NatKey, NatEntry> =
                BpfHashMap::try_from(lab.ebpf().map_mut(name).unwrap()).unwrap();
            map.keys().map(|k| k.unwrap()).collect()
        };
        let mut lab = lab;
        {
            let mut map: BpfHashMap<_, NatKey, NatEntry> =
                BpfHashMap::try_from(lab.ebpf().map_mut(full).unwrap()).unwrap();
            map.insert(other, NatEntry::default(), 0).unwrap();
        }

        let frame = tcp_out(NS1, 1234, TCP_SYN);
        let (verdict, out) = lab.run(EGRESS, &frame);
        assert_eq!(
            verdict, TC_ACT_SHOT,
            "{full} full: the new flow was not dropped"
        );
        assert_eq!(out, frame, "{full} full: a dropped packet was rewritten");
        assert_eq!(lab.counter(Counter::NatDropMapFull), 1, "{full} full");
        assert_eq!(lab.counter(Counter::NatDropNoPort), 0, "{full} full");
        assert_eq!(lab.counter(Counter::NatCreated), 0, "{full} full");
        assert_eq!(entries(&mut lab, full), vec![other], "{full} full");
        let the_other = if full == NAT_REPLY_MAP {
            NAT_ORIG_MAP
        } else {
            NAT_REPLY_MAP
        };
        assert_eq!(
            entries(&mut lab, the_other),
            Vec::<NatKey>::new(),
            "{full} full: half a translation was left in {the_other}"
        );
    }
}
