//! IPv6 entries written straight into a running lab's pinned maps, as the
//! NAT table tests write IPv4 flows into theirs: NAT66 translations
//! (`nat6_orig` + `nat6_reply`) and the switch's IPv6 addresses (`ports6`,
//! `endpoints6`), for the inspection tests to read back through `nat
//! list`, `map dump`, `fdb`, `stats`, the metrics and the daemon's expiry.
//! The reply key follows the NAT66 programs' rule (`netlab::nat::V6`).

use std::net::{Ipv6Addr, SocketAddrV6};

use aya::maps::{HashMap, MapData};
use netlab::nat::{Family, V6};
use netlab_common::{
    maps::{ENDPOINTS6_MAP, PORTS6_MAP},
    nat::NAT_STATE_NONE,
    nat6::{NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6Entry, Nat6Key},
    switch::{Endpoint, Port6},
};

use crate::TestLab;

fn open<K: aya::Pod, V: aya::Pod>(lab: &TestLab, name: &str) -> HashMap<MapData, K, V> {
    let path = lab.pin_dir().join(name);
    let data = MapData::from_pin(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let map = aya::maps::Map::from_map_data(data).expect("map");
    HashMap::try_from(map).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A NAT66 translation as the egress program records it: `src` (a lab
/// endpoint) to `remote`, leaving as `translated`, both directions last
/// seen at `seen_ns` (CLOCK_MONOTONIC). ICMPv6 echo: the id as `src`'s
/// port, 0 as `remote`'s. Returns the original key.
pub fn insert_nat6_flow(
    lab: &TestLab,
    proto: u8,
    src: SocketAddrV6,
    remote: SocketAddrV6,
    translated: SocketAddrV6,
    seen_ns: u64,
) -> Nat6Key {
    let key = Nat6Key {
        saddr: src.ip().octets(),
        daddr: remote.ip().octets(),
        sport: src.port().to_be(),
        dport: remote.port().to_be(),
        proto,
        _pad: [0; 3],
    };
    let xlat = Nat6Entry {
        addr: translated.ip().octets(),
        port: translated.port().to_be(),
        state: NAT_STATE_NONE,
        last_seen_ns: seen_ns,
        ..Default::default()
    };
    let back = Nat6Entry {
        addr: key.saddr,
        port: key.sport,
        ..xlat
    };
    open::<Nat6Key, Nat6Entry>(lab, NAT6_ORIG_MAP)
        .insert(key, xlat, 0)
        .expect("insert into nat6_orig");
    open::<Nat6Key, Nat6Entry>(lab, NAT6_REPLY_MAP)
        .insert(V6::reply_key(&key, &xlat), back, 0)
        .expect("insert into nat6_reply");
    key
}

/// The IPv6 addresses of the endpoint port `ifindex` (MAC `mac`): its
/// `ports6` entry and both addresses in `endpoints6`, as the switch's
/// control plane fills them.
pub fn insert_port6(
    lab: &TestLab,
    ifindex: u32,
    mac: [u8; 6],
    global: Ipv6Addr,
    link_local: Ipv6Addr,
) {
    open::<u32, Port6>(lab, PORTS6_MAP)
        .insert(
            ifindex,
            Port6 {
                global: global.octets(),
                link_local: link_local.octets(),
            },
            0,
        )
        .expect("insert into ports6");
    let mut endpoints = open::<[u8; 16], Endpoint>(lab, ENDPOINTS6_MAP);
    for a in [global, link_local] {
        endpoints
            .insert(
                a.octets(),
                Endpoint {
                    mac,
                    port_ifindex: ifindex,
                    ..Default::default()
                },
                0,
            )
            .expect("insert into endpoints6");
    }
}
