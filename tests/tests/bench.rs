//! `netlab bench` end to end on the `direct` datapath (a bare veth pair the
//! bench builds itself), and its connection-rate and NAT-prefill workloads on
//! a veth pair. Figures are checked for presence and sanity, never for speed.

use std::net::SocketAddrV4;
use std::path::Path;

use netlab::bench::direct::DirectPair;
use netlab::bench::nsexec::NsCpu;
use netlab::bench::plan::Workload;
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
