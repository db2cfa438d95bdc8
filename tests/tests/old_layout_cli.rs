//! Pins left by an older netlab, through the CLI: the README's case of a
//! lab brought up before the host-access rule existed.
//!
//! Lab `tq3` on 10.118.3.0/24, sandbox mode.

use std::process::Command;

use netlab_common::counters::Counter;
use netlab_tests::{TestLab, describe};
use serde_json::Value;

fn json_of(lab: &TestLab, args: &[&str]) -> Value {
    let out = lab.ok(args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("netlab {args:?} printed no JSON ({e}): {}", describe(&out)))
}

/// The README's case through the CLI: a lab brought up before the
/// host-access rule existed has a `counters` map one entry short and no
/// `host_addrs`. `up` on it refuses (naming the map and `netlab down`)
/// instead of adopting maps it would misread, and so do the commands that
/// read them; `down` removes it and a fresh `up` works. Lab `tq3` on
/// 10.118.3.0/24.
#[test]
fn an_old_layout_lab_is_refused_through_the_cli_until_down_and_up() {
    let lab = TestLab::in_net("q3", 118, 3, 2, "");
    lab.ok(&["up", "--datapath", "ebpf"]);
    let pins = lab.pin_dir();
    // What the older netlab pinned: the same per-CPU array, one counter
    // fewer, and no host_addrs map.
    let counters = pins.join("counters");
    std::fs::remove_file(&counters).unwrap();
    std::fs::remove_file(pins.join("host_addrs")).unwrap();
    let entries = (Counter::COUNT - 1).to_string();
    let out = Command::new("bpftool")
        .args(["map", "create"])
        .arg(&counters)
        .args([
            "type",
            "percpu_array",
            "key",
            "4",
            "value",
            "8",
            "entries",
            &entries,
            "name",
            "counters",
        ])
        .output()
        .expect("bpftool");
    assert!(out.status.success(), "{}", describe(&out));

    let refused = |args: &[&str]| {
        let out = lab.netlab(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "netlab {args:?} accepted the old layout: {}",
            describe(&out)
        );
        assert!(
            err.contains("counters")
                && err.contains(&format!("{entries} entries"))
                && err.contains("netlab down"),
            "netlab {args:?}: the error does not name the old map and the way out: {err}"
        );
    };
    refused(&["up", "--datapath", "ebpf"]);
    refused(&["stats"]);
    refused(&["map", "dump", "counters"]);
    // Refused, not repaired: the old map is still the one pinned.
    let (keys, _) = netlab_tests::bpftool_keys(&counters);
    assert_eq!(keys.len(), Counter::COUNT as usize - 1);

    lab.ok(&["down"]);
    lab.assert_nothing_left("after down of the old-layout lab");
    lab.ok(&["up", "--datapath", "ebpf"]);
    let (ok, report) = lab.check();
    assert!(ok, "{report:#}");
    json_of(&lab, &["map", "dump", "host_addrs", "--json"]);
    lab.ok(&["down"]);
    lab.assert_nothing_left("after the fresh up and down");
}
