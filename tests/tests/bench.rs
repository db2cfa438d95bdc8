//! `netlab bench` end to end on the `direct` datapath (a bare veth pair the
//! bench builds itself), and its connection-rate and NAT-prefill workloads on
//! a veth pair. Figures are checked for presence and sanity, never for speed.

use std::net::SocketAddrV4;
use std::path::Path;

use netlab::bench::catalog::Workload;
use netlab::bench::direct::DirectPair;
use netlab::bench::nsexec::NsCpu;
use netlab::bench::workload::{self, AcceptServer};
use netlab::bench::{BenchArgs, BenchDatapath};
use serde_json::Value;

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

#[test]
fn direct_quick_run_writes_every_applicable_figure() {
    let prefix = "bt-e2e";
    let dir = std::env::temp_dir().join(format!("netlab-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("bench.json");
    let svg_path = dir.join("bench.svg");
    let args = BenchArgs {
        datapaths: vec![BenchDatapath::Direct],
        quick: true,
        duration: Some(1),
        json: Some(json_path.clone()),
        svg: Some(svg_path.clone()),
        prefix: prefix.into(),
        ..Default::default()
    };
    let result = netlab::bench::run(&args);
    // Whatever happened, the bench's namespaces are gone.
    let (ns1, ns2) = DirectPair::names(prefix);
    assert!(
        !netns_exists(&ns1) && !netns_exists(&ns2),
        "bench left its namespaces behind"
    );
    result.expect("bench run");

    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(json["schema"], "netlab-bench/1");
    let settings = &json["settings"];
    assert_eq!(settings["rounds"], 2);
    assert_eq!(settings["duration_secs"], 1);
    assert_eq!(settings["cpus"]["client"], 0);
    assert_eq!(settings["cpus"]["server"], 1);
    assert!(settings["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(
        settings["tools"]["iperf3"]
            .as_str()
            .is_some_and(|v| v.contains("3."))
    );
    assert!(settings["tools"]["sockperf"].as_str().is_some());
    assert_eq!(
        json["failures"].as_array().unwrap().len(),
        0,
        "{}",
        json["failures"]
    );

    // Every namespace→namespace figure has a summary for direct over both
    // rounds, with positive values; the NAT workloads are reported skipped.
    let summaries = json["summaries"].as_array().unwrap();
    let mut expected_figures = 0;
    for w in Workload::ALL {
        let skipped = w.skip_reason(BenchDatapath::Direct).is_some();
        for m in w.metrics() {
            let id = format!("{}.{}", w.id(), m.id());
            let s = summaries.iter().find(|s| s["figure"] == id.as_str());
            let s = s.unwrap_or_else(|| panic!("no summary for {id}"));
            if skipped {
                assert!(s["datapaths"].get("direct").is_none(), "{id} ran on direct");
                continue;
            }
            expected_figures += 1;
            let d = &s["datapaths"]["direct"];
            assert_eq!(d["n"], 2, "{id}: {d}");
            let (min, median, max) = (
                d["min"].as_f64().unwrap(),
                d["median"].as_f64().unwrap(),
                d["max"].as_f64().unwrap(),
            );
            assert!(min > 0.0 && min <= median && median <= max, "{id}: {d}");
            // Only one datapath: no ratios to report.
            assert!(s["ratios"].as_object().unwrap().is_empty(), "{id}");
        }
        if skipped {
            let listed = json["skipped"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["workload"] == w.id() && s["datapath"] == "direct");
            assert!(listed, "{} not listed as skipped", w.id());
        }
    }
    assert_eq!(expected_figures, 6); // tcp 1, tcp 2, udp, rr p50/p99/rate

    // Raw samples: one per ns workload per round, each with its values.
    let samples = json["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4 * 2);
    for s in samples {
        assert_eq!(s["datapath"], "direct");
        assert!(s["values"].as_object().is_some_and(|v| !v.is_empty()));
    }
    let rr = samples.iter().find(|s| s["workload"] == "ns_rr").unwrap();
    let (p50, p99) = (
        rr["values"]["rtt_p50_us"].as_f64().unwrap(),
        rr["values"]["rtt_p99_us"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99);
    let udp = samples
        .iter()
        .find(|s| s["workload"] == "ns_udp_64")
        .unwrap();
    assert!(udp["details"]["received_packets"].as_f64().unwrap() > 0.0);

    assert_eq!(json["labs"][0]["client_namespace"], ns1.as_str());
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches(r#"class="panel""#).count(), summaries.len());
}

#[test]
fn connection_rate_and_prefill_on_a_veth_pair() {
    let pair = DirectPair::create("bt-conn").expect("veth pair");
    let client = NsCpu::new(&pair.client_ns, 0);
    let server_ns = NsCpu::new(&pair.server_ns, 1);

    let accept = AcceptServer::start(&server_ns, workload::ACCEPT_PORT).expect("accept server");
    let target = SocketAddrV4::new(pair.server_addr, workload::ACCEPT_PORT);
    let rate = workload::connection_rate(&client, target, 1).expect("connection rate");
    let served = accept.stop().expect("accept server stops cleanly");
    assert!(rate.connections > 0);
    // Every completed connection read the server's byte, so the server
    // accepted at least that many.
    assert!(
        served >= rate.connections,
        "served {served} < {}",
        rate.connections
    );

    // Nothing listens on the other side: connections fail, and are counted.
    let closed = SocketAddrV4::new(pair.server_addr, workload::ACCEPT_PORT + 1);
    let err = workload::connection_rate(&client, closed, 1).unwrap_err();
    assert!(format!("{err:#}").contains("refused"), "{err:#}");

    let prefill = workload::prefill_udp_flows(&client, pair.server_addr, 1000).expect("prefill");
    assert_eq!((prefill.sent, prefill.errors), (1000, 0));
    drop(pair);
    assert!(!netns_exists("bt-conn-direct-ns1"));
}

/// The IPv6 probe the bench runs before its IPv6 workloads, on a real
/// veth pair standing in for a lab: with no IPv6 address recorded, and
/// with an address the client cannot reach, it fails and says why (that
/// reason is what the report prints as "IPv6 unavailable: ..."); once both
/// ends have IPv6 addresses on the link, it connects.
#[test]
fn ipv6_probe_says_why_a_path_is_missing_and_passes_a_working_one() {
    use netlab::bench::direct::{CLIENT_DEV, SERVER_DEV};
    use netlab::bench::ipv6;
    use netlab::bench::lab::{Endpoints, Internet};
    use netlab::bench::nsexec::ip;
    use netlab::bench::{Plan, catalog::BenchDatapath};
    use std::net::Ipv6Addr;
    use std::time::Duration;

    let pair = DirectPair::create("vg6-probe").expect("veth pair");
    let plan = Plan::from_args(&BenchArgs {
        workloads: vec![Workload::Inet6Udp64],
        prefix: "vg6-probe".into(),
        ..Default::default()
    })
    .unwrap();
    let (client6, server6): (Ipv6Addr, Ipv6Addr) = (
        "fd00:10:167:9::1".parse().unwrap(),
        "fd00:10:167:9::2".parse().unwrap(),
    );
    let mut ep = Endpoints {
        datapath: BenchDatapath::Ebpf,
        lab: "vg6-probe".into(),
        client_namespace: pair.client_ns.clone(),
        client_address: pair.client_addr,
        client_address6: Some(client6),
        server_namespace: pair.server_ns.clone(),
        server_address: pair.server_addr,
        internet: Some(Internet {
            namespace: pair.server_ns.clone(),
            address: pair.server_addr,
            address6: None,
            host_namespace: pair.server_ns.clone(),
        }),
    };
    let within = Duration::from_secs(1);
    let why = |ep: &Endpoints| format!("{:#}", ipv6::probe(&plan, ep, within).unwrap_err());

    let err = why(&ep);
    assert!(
        err.contains("no IPv6 address for the internet namespace"),
        "{err}"
    );

    // An address the pair does not carry: no route, no connection.
    ep.internet.as_mut().unwrap().address6 = Some(server6);
    let err = why(&ep);
    assert!(
        err.contains(&format!("no TCP connection to [{server6}]:")) && err.contains("unreachable"),
        "{err}"
    );

    // Both ends on the link (no duplicate address detection to wait for).
    for (ns, dev, addr) in [
        (&pair.client_ns, CLIENT_DEV, client6),
        (&pair.server_ns, SERVER_DEV, server6),
    ] {
        let addr = format!("{addr}/64");
        ip(&["-n", ns, "-6", "addr", "add", &addr, "dev", dev, "nodad"]).unwrap();
    }
    ipv6::probe(&plan, &ep, Duration::from_secs(10)).expect("the probe connects over IPv6");
    drop(pair);
    assert!(!netns_exists("vg6-probe-direct-ns1"));
}

/// `netlab bench` as a user runs it, on the two netlab datapaths: every
/// workload once (1 round of 1 s), and every figure of every workload is
/// there for both, positive, with its ebpf/kernel ratio — the IPv6 ones
/// through NAT66 / ip6tables included, each next to its IPv4 twin; on the eBPF lab
/// the kernel's run-time statistics give a positive cost per packet for
/// each program the workload crosses. The labs (`q18-kernel`, `q18-ebpf`,
/// on the bench's own 10.201.1/2.0/24 inside their sandbox namespaces) are
/// gone afterwards.
#[test]
fn netlab_bench_on_the_kernel_and_ebpf_datapaths_reports_every_figure() {
    let prefix = "q18";
    let dir = std::env::temp_dir().join(format!("netlab-bench-q18-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("bench.json");
    let out = netlab_tests::traffic::run_bounded(
        std::process::Command::new(netlab_tests::netlab_bin())
            .args([
                "bench",
                "--datapaths",
                "kernel,ebpf",
                "--rounds",
                "1",
                "--duration",
                "1",
                "--prefix",
                prefix,
                "--json",
            ])
            .arg(&json_path)
            .env("NO_COLOR", "1"),
        std::time::Duration::from_secs(600),
    );
    let labs = ["kernel", "ebpf"].map(|d| format!("{prefix}-{d}"));
    for lab in &labs {
        for ns in ["host", "inet", "ns1", "ns2"] {
            assert!(
                !netns_exists(&format!("{lab}-{ns}")),
                "bench left {lab}-{ns} behind"
            );
        }
        assert!(!Path::new(&format!("/run/netlab/{lab}.json")).exists());
        assert!(!Path::new(&format!("/sys/fs/bpf/netlab/{lab}")).exists());
    }
    assert!(
        out.status.success(),
        "netlab bench failed: {}",
        netlab_tests::describe(&out)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        json["failures"],
        serde_json::json!([]),
        "{}",
        json["failures"]
    );
    assert_eq!(
        json["skipped"],
        serde_json::json!([]),
        "{}",
        json["skipped"]
    );

    let summaries = json["summaries"].as_array().unwrap();
    let mut figures = 0;
    for w in Workload::ALL {
        for m in w.metrics() {
            let id = format!("{}.{}", w.id(), m.id());
            let s = summaries
                .iter()
                .find(|s| s["figure"] == id.as_str())
                .unwrap_or_else(|| panic!("no summary for {id}"));
            for datapath in ["kernel", "ebpf"] {
                let d = &s["datapaths"][datapath];
                assert_eq!(d["n"], 1, "{id} on {datapath}: {d}");
                let median = d["median"].as_f64().unwrap_or(0.0);
                assert!(median > 0.0, "{id} on {datapath}: {d}");
            }
            let ratio = s["ratios"]["ebpf/kernel"]["median"].as_f64().unwrap_or(0.0);
            assert!(ratio > 0.0, "{id}: no ebpf/kernel ratio: {s}");
            figures += 1;
        }
    }
    assert_eq!(figures, summaries.len(), "{summaries:#?}");

    // The IPv6 rows, next to their IPv4 twins: measured to the internet
    // namespace's IPv6 address (the one netlab gave the lab, recorded in
    // `labs`), through NAT66 on eBPF and ip6tables MASQUERADE on the
    // kernel lab, with real numbers on both.
    let labs = json["labs"].as_array().unwrap();
    assert_eq!(labs.len(), 2);
    for lab in labs {
        let inet6 = lab["internet"]["address6"].as_str().unwrap_or_default();
        let inet6: std::net::Ipv6Addr = inet6
            .parse()
            .unwrap_or_else(|_| panic!("no IPv6 internet address: {lab}"));
        assert!(!inet6.is_loopback() && !inet6.is_unspecified(), "{lab}");
        let client6 = lab["client_address6"].as_str().unwrap_or_default();
        assert!(
            client6.parse::<std::net::Ipv6Addr>().is_ok(),
            "no IPv6 client address: {lab}"
        );
    }
    let position = |id: &str| summaries.iter().position(|s| s["figure"] == id);
    for (v6, v4) in [
        ("inet6_tcp_1.bits_per_second", "inet_tcp_1.bits_per_second"),
        (
            "inet6_udp_64.packets_per_second",
            "inet_udp_64.packets_per_second",
        ),
    ] {
        let i = position(v6).unwrap_or_else(|| panic!("no IPv6 row {v6}"));
        assert_eq!(position(v4), Some(i - 1), "{v6} is not next to {v4}");
        for datapath in ["kernel", "ebpf"] {
            let median = summaries[i]["datapaths"][datapath]["median"]
                .as_f64()
                .unwrap_or(0.0);
            assert!(median > 0.0, "{v6} on {datapath}: {}", summaries[i]);
        }
    }
    assert_eq!(samples_of(&json, "inet6_udp_64").count(), 2);
    for s in samples_of(&json, "inet6_udp_64") {
        let received = s["details"]["received_packets"].as_f64().unwrap_or(0.0);
        assert!(received > 0.0, "no IPv6 datagram arrived: {s}");
    }

    // One sample per workload and datapath; on eBPF, what each program the
    // traffic crosses cost per packet.
    let samples = json["samples"].as_array().unwrap();
    assert_eq!(samples.len(), Workload::ALL.len() * 2);
    for s in samples.iter().filter(|s| s["datapath"] == "ebpf") {
        let w = s["workload"].as_str().unwrap();
        let mut programs = vec!["netlab_port"];
        if w == "inet_flood" {
            // Dropped on the uplink's receive side: no switch, no egress.
            programs = vec!["netlab_uplink_ingress"];
        } else if w.starts_with("inet") {
            programs.push("netlab_uplink_egress");
        }
        for p in programs {
            let cost = s["details"][format!("bpf_ns_per_run.{p}")]
                .as_f64()
                .unwrap_or(0.0);
            assert!(cost > 0.0, "{w}: no cost per packet for {p}: {s}");
        }
    }
}

fn samples_of<'a>(json: &'a Value, workload: &'a str) -> impl Iterator<Item = &'a Value> {
    json["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(move |s| s["workload"] == workload)
}

/// `netlab bench --micro` on a tiny repeat count: every case ran its
/// program on its frame and got the verdict of the path it names (the
/// bench checks every run; here the report is checked too), the floor is
/// there in both modes, every program's size is read, and the pins are
/// gone afterwards. Never timings.
#[test]
fn micro_bench_runs_every_program_on_its_path_and_cleans_up() {
    use netlab::bench::micro::{self, FLOOR, MicroArgs, Mode};
    let args = MicroArgs {
        repeat: 3,
        runs: 5,
        prefix: "tq",
    };
    let result = micro::measure(&args);
    assert!(
        !Path::new("/sys/fs/bpf/netlab/tq-micro").exists(),
        "the micro bench left its pins behind"
    );
    let report = result.expect("micro bench");
    assert_eq!((report.repeat, report.runs), (3, 5));

    use netlab::bpf::verdict::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_PASS, XDP_REDIRECT};
    let expected = [
        (FLOOR, FLOOR, Mode::Warm, TC_ACT_OK),
        ("unicast ns->ns", "netlab_port", Mode::Warm, TC_ACT_REDIRECT),
        ("flood (broadcast)", "netlab_port", Mode::Warm, TC_ACT_SHOT),
        (
            "XDP unicast ns->ns",
            "netlab_xdp_port",
            Mode::Warm,
            XDP_REDIRECT,
        ),
        (
            "XDP uplink reply",
            "netlab_uplink_xdp",
            Mode::Warm,
            XDP_PASS,
        ),
        (FLOOR, FLOOR, Mode::Single, TC_ACT_OK),
        ("ARP answer", "netlab_port", Mode::Single, TC_ACT_REDIRECT),
        (
            "NAT new flow (empty table)",
            "netlab_uplink_egress",
            Mode::Single,
            TC_ACT_OK,
        ),
        (
            "NAT established",
            "netlab_uplink_egress",
            Mode::Single,
            TC_ACT_OK,
        ),
        (
            "reverse NAT fast path",
            "netlab_uplink_ingress",
            Mode::Single,
            TC_ACT_REDIRECT,
        ),
        (
            "NAT new flow (100 000 flows)",
            "netlab_uplink_egress",
            Mode::Single,
            TC_ACT_OK,
        ),
    ];
    let got: Vec<_> = report
        .cases
        .iter()
        .map(|c| (c.name.as_str(), c.program.as_str(), c.mode, c.verdict))
        .collect();
    assert_eq!(got, expected, "cases, their programs, modes and verdicts");
    for c in &report.cases {
        assert!(c.ns_per_run > 0.0, "{}: no time measured", c.name);
        assert!(c.ratio_to_floor > 0.0, "{}: no ratio", c.name);
    }
    for floor in report.cases.iter().filter(|c| c.program == FLOOR) {
        assert_eq!(floor.ratio_to_floor, 1.0, "the floor is its own unit");
    }

    let names: Vec<_> = report.programs.iter().map(|p| p.program.as_str()).collect();
    assert_eq!(
        names,
        [
            "netlab_port",
            "netlab_uplink_egress",
            "netlab_uplink_ingress",
            "netlab_xdp_port",
            "netlab_uplink_xdp"
        ]
    );
    for p in &report.programs {
        assert!(p.xlated_insns > 0 && p.jited_bytes > 0, "{p:?}");
        assert!(p.verified_insns.is_some_and(|n| n > 0), "{p:?}");
    }
    let table = micro::table(&report);
    assert!(table.contains("unicast ns->ns") && table.contains("xlated insns"));
}

#[test]
fn micro_bench_refuses_bad_counts_before_loading_anything() {
    use netlab::bench::micro::{self, MicroArgs};
    for (repeat, runs) in [(0, 5), (3, 0), (3, 1_000_000)] {
        let err = micro::measure(&MicroArgs {
            repeat,
            runs,
            prefix: "tq",
        })
        .expect_err("bad counts must be refused");
        assert!(err.to_string().contains("--runs"), "{err}");
    }
    let err = micro::measure(&MicroArgs {
        repeat: 1,
        runs: 1,
        prefix: "bad/prefix",
    })
    .expect_err("a bad prefix must be refused");
    assert!(err.to_string().contains("bad/prefix"), "{err}");
}
