//! Property tests of the lab file's parser and validator (`netlab::config`), with
//! a seeded generator (no kernel involved):
//!
//! * nothing panics, whatever the input: random bytes, TOML-ish token soup,
//!   valid files with characters edited, and structured files whose every
//!   field takes valid, borderline and wrong values;
//! * every rejection names the field: each validation problem carries a
//!   field path the lab file has, and the message shows it; a file that
//!   does not parse because one key has a wrong type or name is reported
//!   with that key;
//! * whatever is accepted is a lab that can be built: names within the
//!   kernel's limits, addresses inside the subnet and unique, a sane port
//!   range (checked from the plan, independently of the validator).
//!
//! `NETLAB_PROPS_SEED` / `NETLAB_PROPS_CASES` reproduce or lengthen a run;
//! a failure prints the seed, the case and the input.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind};

use netlab_tests::fuzz::{Rng, parse_seed};
use netlab_tests::netlab::cidr::Ipv6Cidr;
use netlab_tests::netlab::config::{ConfigError, LabConfig, address6_for, plan_endpoint};
use netlab_tests::netlab::names::{
    MAX_IFNAME_LEN, interface_name_problem, lab_name_problem, netns_name_problem,
};
use netlab_tests::netlab::plan::{HostPlan, LabPlan};

const DEFAULT_SEED: u64 = 0x006c_6162_6669_6c65; // "labfile"
const DEFAULT_CASES: u64 = 3000;

fn seed_and_cases() -> (u64, u64) {
    let seed = std::env::var("NETLAB_PROPS_SEED")
        .ok()
        .and_then(|s| parse_seed(&s))
        .unwrap_or(DEFAULT_SEED);
    let cases = std::env::var("NETLAB_PROPS_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    (seed, cases)
}

/// The keys of the lab file, by table ("" = top level).
const TOP: &[&str] = &[
    "name",
    "datapath",
    "subnet",
    "gateway",
    "subnet6",
    "gateway6",
    "gateway_device",
    "gateway_port",
    "namespace_count",
    "namespace_prefix",
    "host",
    "namespaces",
    "nat",
];
const HOST: &[&str] = &[
    "mode",
    "namespace",
    "internet_namespace",
    "uplink",
    "uplink_address",
    "internet_address",
    "uplink_address6",
    "internet_address6",
];
const NAMESPACE: &[&str] = &["name", "address", "address6", "veth", "peer"];
const NAT: &[&str] = &[
    "port_min",
    "port_max",
    "max_entries",
    "tcp_established_timeout",
    "tcp_closing_timeout",
    "tcp_syn_timeout",
    "udp_timeout",
    "icmp_timeout",
];

/// True when `field` (as a validation problem names it) is a path of the
/// lab file: `subnet`, `host.uplink`, `namespaces[2].address`, ... (an
/// explanation may follow in parentheses).
fn is_lab_field(field: &str) -> bool {
    let path = field.split(" (").next().unwrap_or_default();
    if let Some(rest) = path.strip_prefix("host.") {
        return HOST.contains(&rest);
    }
    if let Some(rest) = path.strip_prefix("nat.") {
        return NAT.contains(&rest);
    }
    if let Some(rest) = path.strip_prefix("namespaces[") {
        let Some((index, sub)) = rest.split_once("].") else {
            return false;
        };
        return index.parse::<usize>().is_ok() && NAMESPACE.contains(&sub);
    }
    TOP.contains(&path)
}

// ---------------------------------------------------------------- generators

/// A value for a string field: mostly one of `valid`; when `wild`, often
/// a borderline or wrong one.
fn string_value(rng: &mut Rng, valid: &[&str], wild: bool) -> String {
    if !wild {
        return rng.pick(valid).to_string();
    }
    let weird = [
        "",
        " ",
        "a/b",
        "x:y",
        "lo",
        ".",
        "..",
        ".hidden",
        "ünïcødé",
        "tab\tname",
        "a-very-long-interface-name",
        "exactly15bytes_",
        "sixteen-bytes-xx",
    ];
    match rng.below(10) {
        0..=5 => rng.pick(valid).to_string(),
        6..=7 => rng.pick(&weird).to_string(),
        8 => "n".repeat(rng.range(1, 80)),
        _ => {
            let n = rng.range(0, 20);
            (0..n)
                .map(|_| (rng.range(0x20, 0x7e) as u8) as char)
                .collect()
        }
    }
}

fn number_value(rng: &mut Rng, wild: bool) -> String {
    if !wild {
        return rng
            .pick(&["1", "3", "20000", "29999", "65535", "1024"])
            .to_string();
    }
    rng.pick(&[
        "0",
        "1",
        "3",
        "80",
        "1023",
        "1024",
        "20000",
        "29999",
        "65535",
        "65536",
        "1000",
        "1001",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "-1",
        "3.5",
        "\"7\"",
        "true",
    ])
    .to_string()
}

fn cidr_value(rng: &mut Rng, wild: bool) -> String {
    if !wild {
        return rng
            .pick(&["10.78.3.0/24", "10.78.0.0/16", "10.0.0.0/8"])
            .to_string();
    }
    let a = *rng.pick(&[
        "10.78.3.0",
        "10.78.3.1",
        "192.168.28.0",
        "203.0.113.0",
        "203.0.113.1",
        "203.0.113.2",
        "0.0.0.0",
        "255.255.255.252",
        "255.255.255.0",
        "255.0.0.0",
        "10.0.0.0",
        "300.1.1.1",
        "",
    ]);
    let len = *rng.pick(&["24", "30", "8", "7", "31", "32", "0", "33", "", "x", "29"]);
    if rng.chance(10) {
        a.to_string()
    } else {
        format!("{a}/{len}")
    }
}

fn ip_value(rng: &mut Rng, wild: bool) -> String {
    if !wild {
        return rng
            .pick(&["10.78.3.5", "10.78.3.1", "10.78.3.77"])
            .to_string();
    }
    rng.pick(&[
        "10.78.3.5",
        "10.78.3.1",
        "10.78.3.0",
        "10.78.3.255",
        "10.78.4.1",
        "192.168.28.5",
        "203.0.113.1",
        "255.255.255.255",
        "0.0.0.0",
        "1.2.3",
        "::1",
        "",
    ])
    .to_string()
}

fn cidr6_value(rng: &mut Rng, wild: bool) -> String {
    if !wild {
        return rng
            .pick(&["fd00:78:3::/64", "fd00:78:3::/112", "none"])
            .to_string();
    }
    let a = *rng.pick(&[
        "fd00:78:3::",
        "fd00:78:3::1",
        "2001:db8:203:113::",
        "2001:db8:203:113::1",
        "2001:db8:203:113::2",
        "::ffff:10.78.3.0",
        "fe80::",
        "ff02::",
        "::",
        "::1",
        "10.78.3.0",
        "fd00:::1",
        "",
    ]);
    let len = *rng.pick(&[
        "64", "112", "120", "121", "48", "126", "128", "0", "129", "", "x",
    ]);
    match rng.below(12) {
        0 => a.to_string(),
        1 => "none".into(),
        _ => format!("{a}/{len}"),
    }
}

fn ip6_value(rng: &mut Rng, wild: bool) -> String {
    if !wild {
        return rng
            .pick(&["fd00:78:3::5", "fd00:78:3::1", "fd00:78:3::77"])
            .to_string();
    }
    rng.pick(&[
        "fd00:78:3::5",
        "fd00:78:3::",
        "fd00:78:4::1",
        "fd00:10:78:3::1",
        "2001:db8:203:113::1",
        "fe80::1",
        "ff02::1",
        "::",
        "::1",
        "::ffff:10.78.3.1",
        "10.78.3.1",
        "fd00:::1",
        "",
    ])
    .to_string()
}

fn quoted(s: &str) -> String {
    // TOML basic string: escape what must be escaped.
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A structured lab file: each field present or not, with a valid,
/// borderline or wrong value. Values are well-typed TOML most of the time.
fn structured_file(rng: &mut Rng) -> String {
    let mut t = String::new();
    // Half the files are clean, so that many are accepted and the accepted
    // plans get checked too; the rest go wild on every field.
    let wild = rng.chance(50);
    let names = ["tp1", "lab-1", "netlab", "tp_9"];
    let ifs = ["vbridge", "br0", "uplink", "veth-1-br", "gw-p"];
    let nss = ["tp1-ns1", "tp1-ns2", "tp1-host", "tp1-inet"];
    let mut field = |rng: &mut Rng, key: &str, value: String| {
        if rng.chance(50) {
            t.push_str(&format!("{key} = {value}\n"));
        }
    };
    let v = quoted(&string_value(rng, &names, wild));
    field(rng, "name", v);
    let datapaths: &[&str] = if wild {
        &["ebpf", "kernel", "bogus", ""]
    } else {
        &["ebpf", "kernel"]
    };
    let datapath = *rng.pick(datapaths);
    let v = quoted(datapath);
    field(rng, "datapath", v);
    let v = quoted(&cidr_value(rng, wild));
    field(rng, "subnet", v);
    let v = quoted(&ip_value(rng, wild));
    field(rng, "gateway", v);
    let v = quoted(&cidr6_value(rng, wild));
    field(rng, "subnet6", v);
    let v = quoted(&ip6_value(rng, wild));
    field(rng, "gateway6", v);
    let v = quoted(&string_value(rng, &ifs, wild));
    field(rng, "gateway_device", v);
    let v = quoted(&string_value(rng, &ifs, wild));
    field(rng, "gateway_port", v);
    let list = rng.chance(30);
    if !list {
        let v = number_value(rng, wild);
        field(rng, "namespace_count", v);
        let v = quoted(&string_value(rng, &["ns", "tp1-ns"], wild));
        field(rng, "namespace_prefix", v);
    }
    if rng.chance(50) {
        t.push_str("[host]\n");
        for key in HOST {
            if rng.chance(40) {
                let value = match *key {
                    "mode" => {
                        let mode = *rng.pick(&["sandbox", "root", "bogus"]);
                        quoted(if wild { mode } else { "sandbox" })
                    }
                    "namespace" | "internet_namespace" => quoted(&string_value(rng, &nss, wild)),
                    "uplink" => quoted(&string_value(rng, &ifs, wild)),
                    "uplink_address6" | "internet_address6" => quoted(&cidr6_value(rng, wild)),
                    _ => quoted(&cidr_value(rng, wild)),
                };
                t.push_str(&format!("{key} = {value}\n"));
            }
        }
    }
    if rng.chance(40) {
        t.push_str("[nat]\n");
        for key in NAT {
            if rng.chance(40) {
                let v = number_value(rng, wild);
                t.push_str(&format!("{key} = {v}\n"));
            }
        }
    }
    if list {
        for _ in 0..rng.range(0, 4) {
            t.push_str("[[namespaces]]\n");
            if rng.chance(90) {
                let v = quoted(&string_value(rng, &nss, wild));
                t.push_str(&format!("name = {v}\n"));
            }
            for key in ["address", "address6", "veth", "peer"] {
                if rng.chance(40) {
                    let v = if key == "address" {
                        quoted(&ip_value(rng, wild))
                    } else if key == "address6" {
                        quoted(&ip6_value(rng, wild))
                    } else {
                        quoted(&string_value(rng, &ifs, wild))
                    };
                    t.push_str(&format!("{key} = {v}\n"));
                }
            }
        }
    }
    t
}

/// A lab file valid by construction (every field consistent with the
/// others), and what its plan must say: (subnet, gateway, namespaces).
fn valid_file(rng: &mut Rng) -> (String, String, Ipv4Addr, usize) {
    let prefix = rng.range(16, 28) as u8;
    let host_bits = 32 - prefix as u32;
    // 10.<a>.<b>.0 with the host bits cleared.
    let raw = u32::from(Ipv4Addr::new(
        10,
        rng.range(0, 255) as u8,
        rng.range(0, 255) as u8,
        0,
    ));
    let network = raw & !((1u32 << host_bits) - 1);
    let subnet = format!("{}/{prefix}", Ipv4Addr::from(network));
    let hosts = (1u32 << host_bits) - 2;
    let gateway = Ipv4Addr::from(network + 1 + rng.below(hosts as usize) as u32);
    let name = format!("v{}", rng.below(100_000));
    let count = rng.range(1, 9).min(hosts as usize - 1);
    let mut t = format!(
        "name = \"{name}\"\ndatapath = \"{}\"\nsubnet = \"{subnet}\"\ngateway = \"{gateway}\"\n",
        rng.pick(&["ebpf", "kernel"])
    );
    match rng.below(3) {
        0 => t.push_str("subnet6 = \"none\"\n"),
        1 => t.push_str(&format!(
            "subnet6 = \"fd00:ab:{:x}::/64\"\n",
            rng.below(0xffff)
        )),
        _ => {}
    }
    if rng.chance(50) {
        t.push_str(&format!(
            "namespace_count = {count}\nnamespace_prefix = \"{name}-ns\"\n"
        ));
    }
    let port_min = rng.range(1024, 60000);
    let port_max = rng.range(port_min, 65535);
    t.push_str(&format!(
        "[host]\nmode = \"sandbox\"\nuplink_address = \"198.51.100.1/24\"\ninternet_address = \"198.51.100.{}/24\"\n\
         [nat]\nport_min = {port_min}\nport_max = {port_max}\nmax_entries = {}\nudp_timeout = {}\n",
        rng.range(2, 254),
        rng.range(1, 1 << 20),
        rng.range(1, 3600),
    ));
    if !t.contains("namespace_count") {
        // An explicit list: distinct names, distinct addresses, none the
        // gateway's.
        let mut used = vec![gateway];
        for i in 0..count {
            let address = loop {
                let a = Ipv4Addr::from(network + 1 + rng.below(hosts as usize) as u32);
                if !used.contains(&a) {
                    break a;
                }
            };
            used.push(address);
            t.push_str(&format!(
                "[[namespaces]]\nname = \"{name}-e{i}\"\naddress = \"{address}\"\n"
            ));
        }
    }
    (t, subnet, gateway, count)
}

/// A valid file with one to five character edits.
fn edited_file(rng: &mut Rng) -> String {
    let mut chars: Vec<char> = structured_file(rng).chars().collect();
    let soup = [
        '=', '"', '[', ']', '\n', '.', ' ', '#', '\'', '{', '}', ',', '0', 'x', '\\',
    ];
    for _ in 0..rng.range(1, 5) {
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = *rng.pick(&soup),
            _ => chars.insert(at, *rng.pick(&soup)),
        }
    }
    chars.into_iter().collect()
}

/// Random bytes made into a string (lossy), or a soup of TOML tokens.
fn garbage(rng: &mut Rng) -> String {
    if rng.chance(50) {
        let n = rng.range(0, 300);
        String::from_utf8_lossy(&rng.bytes(n)).into_owned()
    } else {
        let tokens = [
            "name",
            "=",
            "\"x\"",
            "[host]",
            "[[namespaces]]",
            "[nat]",
            "\n",
            "subnet",
            "1",
            "-",
            "{",
            "}",
            "[",
            "]",
            ",",
            "port_min",
            "true",
            "'",
            "\"\"\"",
            "#",
            ".",
            "a.b",
            "inf",
            "nan",
            "1979-05-27",
            "0x10",
        ];
        (0..rng.range(0, 40))
            .map(|_| *rng.pick(&tokens))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

// ------------------------------------------------------------------ checks

/// Independent checks that an accepted plan can be built.
fn plan_problems(plan: &LabPlan) -> Vec<String> {
    let mut p = Vec::new();
    if lab_name_problem(&plan.name).is_some() {
        p.push(format!("bad lab name {:?}", plan.name));
    }
    let s = plan.subnet;
    if !(8..=30).contains(&s.prefix_len) || s.addr != s.network() {
        p.push(format!("bad subnet {s}"));
    }
    let inside = |ip: Ipv4Addr| s.contains(ip) && ip != s.network() && ip != s.broadcast();
    if !inside(plan.gateway) {
        p.push(format!("gateway {} outside {s}", plan.gateway));
    }
    if plan.endpoints.is_empty() {
        p.push("no endpoints".into());
    }
    let mut addrs = HashSet::from([plan.gateway]);
    let mut host_ifs = HashSet::new();
    let mut nss = HashSet::new();
    let ifname = |name: &str, p: &mut Vec<String>| {
        if interface_name_problem(name).is_some() || name.len() > MAX_IFNAME_LEN {
            p.push(format!("bad interface name {name:?}"));
        }
    };
    for name in [&plan.gateway_device, &plan.gateway_port] {
        ifname(name, &mut p);
        if !host_ifs.insert(name.clone()) {
            p.push(format!("duplicate host interface {name}"));
        }
    }
    match &plan.host {
        HostPlan::Sandbox(sb) => {
            ifname(&sb.uplink, &mut p);
            if !host_ifs.insert(sb.uplink.clone()) {
                p.push(format!("duplicate host interface {}", sb.uplink));
            }
            for ns in [&sb.namespace, &sb.internet_namespace] {
                if netns_name_problem(ns).is_some() || !nss.insert(ns.clone()) {
                    p.push(format!("bad or duplicate namespace {ns:?}"));
                }
            }
            if sb.uplink_address.overlaps(&s) {
                p.push("uplink overlaps the lab".into());
            }
            let (ua, ia) = (sb.uplink_address, sb.internet_address);
            if !ua.contains(ia.addr) || ua.addr == ia.addr {
                p.push("internet address not beside the uplink".into());
            }
        }
        HostPlan::Root { uplink } => ifname(uplink, &mut p),
    }
    for e in &plan.endpoints {
        ifname(&e.veth, &mut p);
        ifname(&e.peer, &mut p);
        if !host_ifs.insert(e.peer.clone()) {
            p.push(format!("duplicate host interface {}", e.peer));
        }
        if netns_name_problem(&e.namespace).is_some() || !nss.insert(e.namespace.clone()) {
            p.push(format!("bad or duplicate namespace {:?}", e.namespace));
        }
        if !inside(e.address) || !addrs.insert(e.address) {
            p.push(format!("bad or duplicate address {}", e.address));
        }
    }
    p.extend(ipv6_problems(plan));
    let n = &plan.nat;
    if n.port_min < 1024 || n.port_min > n.port_max || n.max_entries == 0 {
        p.push(format!("bad NAT settings {n:?}"));
    }
    let t = n.timeouts;
    if [t.tcp_established, t.tcp_closing, t.tcp_syn, t.udp, t.icmp].contains(&0) {
        p.push("a zero NAT timeout".into());
    }
    p
}

/// Independent checks of an accepted plan's IPv6 side: a /64../120 off
/// reserved space and off the uplink's prefix, every address inside it
/// and unique; no IPv6 anywhere when the plan has none.
fn ipv6_problems(plan: &LabPlan) -> Vec<String> {
    let mut p = Vec::new();
    let sandbox6 = plan
        .sandbox()
        .map(|s| (s.uplink_address6, s.internet_address6));
    let Some(v6) = plan.ipv6 else {
        if plan.endpoints.iter().any(|e| e.address6.is_some())
            || sandbox6.is_some_and(|(u, i)| u.is_some() || i.is_some())
        {
            p.push("IPv6 addresses in a lab without IPv6".into());
        }
        return p;
    };
    let s = v6.subnet;
    if !(64..=120).contains(&s.prefix_len) || s.addr != s.network() {
        p.push(format!("bad subnet6 {s}"));
    }
    for reserved in [
        "::ffff:0:0/96",
        "fe80::/10",
        "ff00::/8",
        "::/128",
        "::1/128",
    ] {
        let r: Ipv6Cidr = reserved.parse().unwrap();
        if r.overlaps(&s) {
            p.push(format!("subnet6 {s} overlaps {r}"));
        }
    }
    let inside = |ip: Ipv6Addr| s.contains(ip) && ip != s.network();
    if !inside(v6.gateway) {
        p.push(format!("gateway6 {} outside {s}", v6.gateway));
    }
    let mut seen = HashSet::from([v6.gateway]);
    for e in &plan.endpoints {
        match e.address6 {
            Some(a) if inside(a) && seen.insert(a) => {}
            other => p.push(format!("bad or duplicate address6 {other:?}")),
        }
    }
    match sandbox6 {
        Some((Some(ua), Some(ia))) => {
            if ua.overlaps(&s) {
                p.push("the uplink's IPv6 prefix overlaps subnet6".into());
            }
            if !ua.contains(ia.addr) || ua.addr == ia.addr {
                p.push("internet address6 not beside the uplink's".into());
            }
        }
        Some(_) => p.push("a sandbox with IPv6 but no uplink IPv6 address".into()),
        None => {}
    }
    p
}

/// Parses and validates `text`; returns what is wrong with the outcome.
fn check_file(text: &str) -> Vec<String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        LabConfig::from_toml(text, "props.toml").and_then(|c| c.resolve())
    }));
    let Ok(outcome) = outcome else {
        return vec!["the parser or validator panicked".into()];
    };
    match outcome {
        Ok(plan) => plan_problems(&plan),
        Err(e @ ConfigError::Invalid(_)) => {
            let msg = e.to_string();
            let mut p = Vec::new();
            if e.problems().is_empty() {
                p.push("rejected with an empty problem list".into());
            }
            for problem in e.problems() {
                if !is_lab_field(&problem.field) {
                    p.push(format!(
                        "problem names no field of the lab file: {problem:?}"
                    ));
                }
                if !msg.contains(&problem.field) || problem.reason.is_empty() {
                    p.push(format!("message does not show {problem:?}: {msg}"));
                }
            }
            p
        }
        Err(ConfigError::Parse { message, .. }) => {
            // toml points at the offending place: line and column.
            if message.contains("line ") {
                Vec::new()
            } else {
                vec![format!("parse error without a position: {message}")]
            }
        }
        Err(e) => vec![format!("unexpected error kind: {e}")],
    }
}

fn run_cases(
    what: &str,
    stream: u64,
    generate: fn(&mut Rng) -> String,
    check: fn(&str) -> Vec<String>,
) {
    let (seed, cases) = seed_and_cases();
    let mut failures = Vec::new();
    let mut accepted = 0;
    for i in 0..cases {
        let text = generate(&mut Rng::for_case(seed, stream, i));
        if LabConfig::from_toml(&text, "x")
            .ok()
            .and_then(|c| {
                catch_unwind(AssertUnwindSafe(|| c.resolve().ok()))
                    .ok()
                    .flatten()
            })
            .is_some()
        {
            accepted += 1;
        }
        let problems = check(&text);
        if !problems.is_empty() {
            failures.push(format!(
                "case {i}: {}\n--- input\n{text}\n---",
                problems.join("; ")
            ));
        }
    }
    println!(
        "{what}: {cases} files (seed {seed:#x}), {accepted} accepted, {} failures",
        failures.len()
    );
    for f in failures.iter().take(10) {
        println!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} {what} failed with seed {seed:#x} \
         (NETLAB_PROPS_SEED={seed:#x} NETLAB_PROPS_CASES={cases} reproduces)",
        failures.len()
    );
}

// ------------------------------------------------------------------- tests

#[test]
fn structured_files_never_panic_and_every_rejection_names_its_field() {
    run_cases("structured lab files", 1, structured_file, check_file);
}

#[test]
fn edited_files_never_panic_and_errors_point_somewhere() {
    run_cases("edited lab files", 2, edited_file, check_file);
}

/// Files valid by construction are all accepted, and their plan is the
/// file's: a validator that rejected good files (however well it named
/// the field) fails here.
#[test]
fn generated_valid_files_are_all_accepted() {
    let (seed, cases) = seed_and_cases();
    let mut failures = Vec::new();
    for i in 0..cases {
        let (text, subnet, gateway, count) = valid_file(&mut Rng::for_case(seed, 5, i));
        let plan = LabConfig::from_toml(&text, "valid.toml").and_then(|c| c.resolve());
        match plan {
            Ok(plan) => {
                // IPv6 as the file says: off, or every address the IPv4
                // one's offset in subnet6.
                let ipv6_as_written = match plan.ipv6 {
                    None => text.contains("subnet6 = \"none\""),
                    Some(v6) => plan
                        .endpoints
                        .iter()
                        .all(|e| e.address6 == address6_for(&plan.subnet, &v6.subnet, e.address)),
                };
                if plan.subnet.to_string() != subnet
                    || plan.gateway != gateway
                    || plan.endpoints.len() != count
                    || !ipv6_as_written
                {
                    failures.push(format!(
                        "case {i}: plan {} gw {} with {} endpoints, the file says {subnet} gw {gateway} with {count}\n{text}",
                        plan.subnet,
                        plan.gateway,
                        plan.endpoints.len()
                    ));
                }
            }
            Err(e) => failures.push(format!("case {i}: rejected: {e}\n--- input\n{text}---")),
        }
    }
    println!(
        "valid lab files: {cases} (seed {seed:#x}), {} not accepted as written",
        failures.len()
    );
    for f in failures.iter().take(10) {
        println!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} valid lab files were not accepted as written (seed {seed:#x})",
        failures.len()
    );
}

#[test]
fn garbage_never_panics() {
    run_cases("garbage inputs", 3, garbage, check_file);
}

/// One key given a value of the wrong type, or misspelt: the error shows
/// that key.
#[test]
fn a_wrongly_typed_or_unknown_key_is_named() {
    let (seed, cases) = seed_and_cases();
    let mut failures = Vec::new();
    for i in 0..cases.min(1000) {
        let mut rng = Rng::for_case(seed, 4, i);
        let (table, keys): (&str, &[&str]) = *rng.pick(&[
            ("", &TOP[..10]),
            ("[host]\n", HOST),
            ("[nat]\n", NAT),
            ("[[namespaces]]\nname = \"tp-ns1\"\n", &NAMESPACE[1..]),
        ]);
        let key = *rng.pick(keys);
        let string_key = !(table == "[nat]\n" || key == "namespace_count");
        let (key, value) = if rng.chance(25) {
            (format!("{key}_typo"), "\"x\"".to_string())
        } else if string_key {
            (
                key.to_string(),
                rng.pick(&["5", "true", "[1, 2]", "{ a = 1 }", "3.5"])
                    .to_string(),
            )
        } else {
            (
                key.to_string(),
                rng.pick(&["\"5\"", "true", "[1]", "-1", "3.5", "99999999999999999999"])
                    .to_string(),
            )
        };
        let text = format!("{table}{key} = {value}\n");
        match LabConfig::from_toml(&text, "props.toml") {
            Ok(c) => failures.push(format!("accepted {text:?}: {c:?}")),
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains(&key) {
                    failures.push(format!("{text:?}: error does not name {key}: {msg}"));
                }
            }
        }
    }
    for f in failures.iter().take(10) {
        println!("{f}");
    }
    assert!(failures.is_empty(), "{} failures", failures.len());
}

/// `netlab attach NAME IP` goes through the same rules against a running
/// plan: no panic, every rejection names `namespace`, `address` or `peer`.
#[test]
fn attach_requests_are_validated_with_named_fields() {
    let (seed, cases) = seed_and_cases();
    let plan = LabConfig::from_toml(
        "name = \"tp\"\nsubnet = \"10.78.3.0/24\"\nnamespace_prefix = \"tp-ns\"\n",
        "x",
    )
    .unwrap()
    .resolve()
    .unwrap();
    let v6 = plan.ipv6.expect("the default lab has IPv6");
    let mut failures = Vec::new();
    for i in 0..cases.min(2000) {
        let mut rng = Rng::for_case(seed, 5, i);
        let name = string_value(&mut rng, &["tp-ns1", "tp-ns9", "tp-host", "other"], true);
        let ip: Ipv4Addr = rng
            .pick(&[
                "10.78.3.1",
                "10.78.3.5",
                "10.78.3.0",
                "10.78.3.255",
                "10.78.3.77",
                "10.78.4.1",
            ])
            .parse()
            .unwrap();
        match catch_unwind(AssertUnwindSafe(|| plan_endpoint(&plan, &name, ip))) {
            Err(_) => failures.push(format!("panicked on {name:?} {ip}")),
            Ok(Ok(e)) => {
                if netns_name_problem(&e.namespace).is_some()
                    || plan.namespaces().contains(&e.namespace)
                    || !plan.subnet.contains(e.address)
                    || plan.endpoints.iter().any(|x| x.address == e.address)
                    || e.address == plan.gateway
                    || e.address6 != address6_for(&plan.subnet, &v6.subnet, e.address)
                {
                    failures.push(format!("accepted a bad endpoint {e:?}"));
                }
            }
            Ok(Err(e)) => {
                for p in e.problems() {
                    if !["namespace", "address", "peer"].contains(&p.field.as_str())
                        || !e.to_string().contains(&p.field)
                    {
                        failures.push(format!("{name:?} {ip}: {p:?}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
