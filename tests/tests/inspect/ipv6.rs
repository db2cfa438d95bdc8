//! The inspection commands and IPv6: NAT66 flows and the switch's IPv6
//! addresses in every view (written into the lab's pinned maps, as the
//! NAT table tests write IPv4 flows), IPv6 frames in `trace`, and real
//! IPv6 traffic in `stats`, `nat list`, `map dump` and `fdb`.
//!
//! Labs `vd<k>` on 10.164.<k>.0/24 (their IPv6 prefix
//! fd00:10:164:<k>::/64), namespaces `vd<k>-ns<N>`.

use std::time::Duration;

use netlab_tests::{TestLab, describe, in_netns};
use serde_json::{Value, json};

use super::{echo_lines, ifindex, json_of, trace_while};

fn lab6(k: u8, count: u32) -> TestLab {
    TestLab::named(&format!("vd{k}"), [10, 164], k, count, "")
}

/// Host `host` of the lab's IPv6 prefix (the IPv4 host number as offset).
fn addr6(k: u8, host: u16) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::new(0xfd00, 0x10, 0x164, k.into(), 0, 0, 0, host)
}

fn mac6(k: u8, host: u8) -> String {
    format!("02:4e:0a:a4:{k:02x}:{host:02x}")
}

/// The endpoint namespace the plan gives `a` as its IPv6 address, if any
/// (a lab without IPv6 addressing has none: flows from it are listed with
/// no namespace).
fn owner6(lab: &TestLab, a: std::net::Ipv6Addr) -> Value {
    let state = netlab::state::peek(&lab.name)
        .expect("state")
        .expect("lab is up");
    state
        .plan
        .endpoints
        .iter()
        .find(|e| e.address6 == Some(a))
        .map_or(Value::Null, |e| json!(e.namespace))
}

#[test]
fn ipv6_flows_and_addresses_show_in_every_view() {
    use netlab_tests::ipv6_maps::{insert_nat6_flow, insert_port6};
    use std::net::SocketAddrV6;

    let k = 1;
    let lab = lab6(k, 2);
    // No daemon: nothing expires the flows written below while we look.
    lab.ok(&["up", "--no-daemon"]);
    let sock = |a, p| SocketAddrV6::new(a, p, 0, 0);
    let remote: std::net::Ipv6Addr = "2001:db8:203:113::2".parse().unwrap();
    let external: std::net::Ipv6Addr = "2001:db8:203:113::1".parse().unwrap();
    let now = netlab::nat::monotonic_now_ns();
    // Two NAT66 translations as the egress program records them: UDP, and
    // an ICMPv6 echo (id 7 → 20002).
    insert_nat6_flow(
        &lab,
        17,
        sock(addr6(k, 1), 5000),
        sock(remote, 53),
        sock(external, 20001),
        now,
    );
    insert_nat6_flow(
        &lab,
        58,
        sock(addr6(k, 1), 7),
        sock(remote, 0),
        sock(external, 20002),
        now,
    );
    let ns1 = owner6(&lab, addr6(k, 1));

    // nat list: both, IPv6 in the JSON, [addr]:port in the table.
    let nat = json_of(&lab, &["nat", "list", "--json"]);
    let rows = nat.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{nat:#}");
    let udp = rows.iter().find(|r| r["proto"] == "udp").expect("udp row");
    let expected = json!({
        "direction": "out", "family": "ipv6", "proto": "udp", "state": "-", "namespace": ns1,
        "src": addr6(k, 1).to_string(), "sport": 5000, "dst": "2001:db8:203:113::2", "dport": 53,
        "translated_src": "2001:db8:203:113::1", "translated_sport": 20001, "complete": true,
    });
    for (field, want) in expected.as_object().unwrap() {
        assert_eq!(&udp[field], want, "field {field} of {udp:#}");
    }
    let icmp = rows
        .iter()
        .find(|r| r["proto"] == "icmpv6")
        .expect("icmpv6 row");
    assert_eq!(icmp["sport"], 7);
    assert_eq!(icmp["translated_sport"], 20002);
    assert_eq!(icmp["complete"], true, "{icmp:#}");
    let table = String::from_utf8(lab.ok(&["nat", "list"]).stdout).unwrap();
    for want in [
        format!("[{}]:5000 -> [2001:db8:203:113::2]:53", addr6(k, 1)),
        "[2001:db8:203:113::1]:20001".to_string(),
        format!("{} id=7 -> 2001:db8:203:113::2", addr6(k, 1)),
        "2001:db8:203:113::1 id=20002".to_string(),
    ] {
        assert!(table.contains(&want), "{want:?} missing from:\n{table}");
    }

    // Filters take IPv6 addresses and icmpv6.
    let only = |args: &[&str]| json_of(&lab, &[&["nat", "list", "--json"], args].concat());
    let count = |v: Value| v.as_array().unwrap().len();
    assert_eq!(count(only(&["--proto", "icmpv6"])), 1);
    assert_eq!(count(only(&["--proto", "udp"])), 1);
    assert_eq!(count(only(&["--proto", "tcp"])), 0);
    assert_eq!(count(only(&["--address", "2001:db8:203:113::1"])), 2);
    assert_eq!(count(only(&["--address", &addr6(k, 1).to_string()])), 2);
    assert_eq!(count(only(&["--address", &addr6(k, 2).to_string()])), 0);
    // The IPv4 form of the same host is another address.
    assert_eq!(count(only(&["--address", "203.0.113.1"])), 0);
    let from_ns1 = count(only(&["--namespace", &lab.ns(1)]));
    assert_eq!(from_ns1, if ns1.is_null() { 0 } else { 2 });

    // map dump and lookup: both directions decoded, keys in [addr]:port.
    let dump = json_of(&lab, &["map", "dump", "nat6_orig", "--json"]);
    assert_eq!(dump["type"], "lru_hash");
    let keys: Vec<&Value> = dump["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["key"])
        .collect();
    assert!(
        keys.contains(
            &&json!({ "proto": "udp", "saddr": addr6(k, 1).to_string(), "sport": 5000,
                                "daddr": "2001:db8:203:113::2", "dport": 53 })
        ),
        "{dump:#}"
    );
    let orig = format!("[{}]:5000", addr6(k, 1));
    let found = json_of(
        &lab,
        &[
            "map",
            "lookup",
            "nat6_orig",
            "udp",
            &orig,
            "[2001:db8:203:113::2]:53",
            "--json",
        ],
    );
    assert_eq!(found["entry"]["value"]["addr"], "2001:db8:203:113::1");
    assert_eq!(found["entry"]["value"]["port"], 20001);
    let reply = json_of(
        &lab,
        &[
            "map",
            "lookup",
            "nat6_reply",
            "udp",
            "[2001:db8:203:113::2]:53",
            "[2001:db8:203:113::1]:20001",
            "--json",
        ],
    );
    assert_eq!(reply["entry"]["value"]["addr"], addr6(k, 1).to_string());
    assert_eq!(reply["entry"]["value"]["port"], 5000);
    let text = String::from_utf8(lab.ok(&["map", "dump", "nat6_reply"]).stdout).unwrap();
    assert!(
        text.contains("2001:db8:203:113::2") && !text.contains("hex:"),
        "{text}"
    );

    // nat delete names an IPv6 flow; a tuple of two families is refused.
    let mixed = lab.netlab(&[
        "nat",
        "delete",
        "udp",
        "10.164.1.1:5000",
        "[2001:db8:203:113::2]:53",
    ]);
    assert!(!mixed.status.success(), "{}", describe(&mixed));
    assert!(
        String::from_utf8_lossy(&mixed.stderr).contains("different families"),
        "{}",
        describe(&mixed)
    );
    assert_eq!(count(json_of(&lab, &["nat", "list", "--json"])), 2);
    let removed = json_of(
        &lab,
        &[
            "nat",
            "delete",
            "udp",
            &orig,
            "[2001:db8:203:113::2]:53",
            "--json",
        ],
    );
    assert_eq!(removed["removed"], 1, "{removed:#}");
    assert_eq!(removed["flows"][0]["family"], "ipv6");
    assert_eq!(removed["flows"][0]["translated_sport"], 20001);
    let left = json_of(&lab, &["nat", "list", "--json"]);
    assert_eq!(count(left.clone()), 1, "{left:#}");
    assert_eq!(left[0]["proto"], "icmpv6");
    let gone = lab.netlab(&[
        "map",
        "lookup",
        "nat6_reply",
        "udp",
        "[2001:db8:203:113::2]:53",
        "[2001:db8:203:113::1]:20001",
    ]);
    assert!(!gone.status.success(), "the reply entry is gone too");
    let flushed = json_of(&lab, &["nat", "flush", "--proto", "icmpv6", "--json"]);
    assert_eq!(flushed["removed"], 1, "{flushed:#}");
    assert_eq!(json_of(&lab, &["nat", "list", "--json"]), json!([]));

    // fdb and stats: the port's IPv6 addresses next to its IPv4 one, global
    // first. (A lab with IPv6 addressing already holds these entries:
    // written again, they are the same.)
    let if1 = ifindex(&lab, "veth-1-br");
    let mac1 = netlab::names::mac_for(std::net::Ipv4Addr::new(10, 164, k, 1));
    let ll1 = netlab::names::link_local_for(mac1);
    insert_port6(&lab, if1, mac1, addr6(k, 1), ll1);
    let fdb = json_of(&lab, &["fdb", "--json"]);
    let row1 = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mac"] == mac6(k, 1))
        .expect("ns1's row");
    assert_eq!(row1["ipv4"], "10.164.1.1");
    assert_eq!(
        row1["ipv6"],
        json!([addr6(k, 1).to_string(), ll1.to_string()]),
        "{fdb:#}"
    );
    // Every row's IPv6 addresses are those endpoints6 holds for its MAC.
    let endpoints6 = json_of(&lab, &["map", "dump", "endpoints6", "--json"]);
    for row in fdb.as_array().unwrap() {
        let mut held: Vec<String> = endpoints6["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["value"]["mac"] == row["mac"])
            .map(|e| e["key"]["ipv6"].as_str().unwrap().to_string())
            .collect();
        held.sort_by_key(|a| (a.starts_with("fe80:"), a.clone()));
        assert_eq!(row["ipv6"], json!(held), "{row:#}");
    }
    let table = String::from_utf8(lab.ok(&["fdb"]).stdout).unwrap();
    assert!(table.contains(&ll1.to_string()), "{table}");
    let stats = json_of(&lab, &["stats", "--json"]);
    let port1 = stats["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == "veth-1-br")
        .expect("veth-1-br");
    assert_eq!(port1["ipv6"], row1["ipv6"]);
    let found = json_of(
        &lab,
        &["map", "lookup", "endpoints6", &ll1.to_string(), "--json"],
    );
    assert_eq!(found["entry"]["value"]["mac"], mac6(k, 1));
    assert_eq!(found["entry"]["value"]["port"], "veth-1-br");
    let ports6 = json_of(&lab, &["map", "lookup", "ports6", "veth-1-br", "--json"]);
    assert_eq!(
        ports6["entry"]["value"],
        json!({ "global": addr6(k, 1).to_string(), "link_local": ll1.to_string() })
    );
    lab.ok(&["down"]);
}

#[test]
fn trace_shows_ipv6_frames() {
    let k = 2;
    let lab = lab6(k, 2);
    lab.ok(&["up"]);
    // ns2's link-local address (every lab namespace has one: the EUI-64
    // address of its MAC), pinged over the switch from ns1. Neighbour
    // Discovery first, so the traced ping is the echo and its reply.
    let mac2 = netlab::names::mac_for(std::net::Ipv4Addr::new(10, 164, k, 2));
    let link_local = format!("{}%veth-1", netlab::names::link_local_for(mac2));
    let ping6 = |target: &str| {
        let ok = netlab_tests::traffic::wait_until(Duration::from_secs(10), || {
            in_netns(&lab.ns(1), &["ping", "-6", "-c", "1", "-W", "1", target])
                .status
                .success()
        });
        assert!(ok, "ping -6 {target} from {} never answered", lab.ns(1));
    };
    ping6(&link_local);
    trace_while(
        &lab,
        || ping6(&link_local),
        &echo_lines(&lab, [mac6(k, 1), mac6(k, 2)], "0x86dd IPv6"),
    );

    // ns2's global address with ns1's neighbour cache empty: ns1's
    // solicitation is answered by the switch, and traced as such.
    let global = addr6(k, 2).to_string();
    let mut wanted = echo_lines(&lab, [mac6(k, 1), mac6(k, 2)], "0x86dd IPv6");
    wanted.push(format!(
        "port veth-1-br ({}): {} asks who-has {global}: answered",
        lab.ns(1),
        mac6(k, 1)
    ));
    trace_while(
        &lab,
        || {
            let flush = in_netns(&lab.ns(1), &["ip", "-6", "neigh", "flush", "dev", "veth-1"]);
            assert!(flush.status.success(), "{}", describe(&flush));
            ping6(&global);
        },
        &wanted,
    );
    lab.ok(&["down"]);
}

/// Real IPv6 traffic in a lab with IPv6 (lab `vd6`, its prefix
/// fd00:10:164:6::/64): ns1 pings ns2 and the internet server over IPv6;
/// then `stats` counts the answered solicitation, `nat list` shows the
/// one NAT66 flow, `map dump nat6_config` the translation's setup, and
/// `fdb` ns1's addresses as the control plane filled them.
#[test]
fn ipv6_traffic_shows_in_stats_nat_list_and_fdb() {
    let k = 6;
    let lab = lab6(k, 2);
    lab.ok(&["up"]);
    let ping6 = |to: &str| {
        let ok = netlab_tests::traffic::wait_until(Duration::from_secs(10), || {
            in_netns(&lab.ns(1), &["ping", "-6", "-c", "1", "-W", "1", to])
                .status
                .success()
        });
        assert!(ok, "ping -6 {to} from {} never answered", lab.ns(1));
    };
    ping6(&addr6(k, 2).to_string());
    ping6("2001:db8:203:113::2");

    let stats = json_of(&lab, &["stats", "--json"]);
    assert!(
        stats["counters"]["nd_answered"].as_u64().unwrap() >= 1,
        "ns1 resolved ns2 through the ND responder: {:#}",
        stats["counters"]
    );
    for zero in ["drop_ra_guard", "drop_nd_spoof", "drop_ipv6_malformed"] {
        assert_eq!(
            stats["counters"][zero], 0,
            "{zero}: {:#}",
            stats["counters"]
        );
    }

    let nat = json_of(&lab, &["nat", "list", "--json"]);
    let rows = nat.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{nat:#}");
    let row = &rows[0];
    let expected = json!({
        "direction": "out", "family": "ipv6", "proto": "icmpv6", "namespace": lab.ns(1),
        "src": addr6(k, 1).to_string(), "dst": "2001:db8:203:113::2", "dport": 0,
        "translated_src": "2001:db8:203:113::1", "complete": true,
    });
    for (field, want) in expected.as_object().unwrap() {
        assert_eq!(&row[field], want, "field {field} of {row:#}");
    }
    let table = String::from_utf8(lab.ok(&["nat", "list"]).stdout).unwrap();
    assert!(
        table.contains(&format!("{} id=", addr6(k, 1))) && table.contains(&lab.ns(1)),
        "{table}"
    );

    let config = json_of(&lab, &["map", "dump", "nat6_config", "--json"]);
    let value = &config["entries"][0]["value"];
    assert_eq!(value["subnet"], format!("fd00:10:164:{k}::/64"));
    assert_eq!(value["external"], "2001:db8:203:113::1");
    assert!(
        value["flags"]
            .as_array()
            .unwrap()
            .contains(&json!("enabled")),
        "{config:#}"
    );

    let fdb = json_of(&lab, &["fdb", "--json"]);
    let row1 = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mac"] == mac6(k, 1))
        .expect("ns1's row");
    let ll1 = netlab::names::link_local_for(netlab::names::mac_for(std::net::Ipv4Addr::new(
        10, 164, k, 1,
    )));
    assert_eq!(
        row1["ipv6"],
        json!([addr6(k, 1).to_string(), ll1.to_string()]),
        "{fdb:#}"
    );
    lab.ok(&["down"]);
}
