//! Times reading a lab's NAT maps, `NatTable::flows()` and `nat::sweep`
//! (best of 5; UDP timeout one hour, so a prefilled table stays).
//! Usage: sweep_timing PIN_DIR (e.g. /sys/fs/bpf/netlab/LAB)
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netlab_common::nat::{NatEntry, NatKey};

fn best<T>(f: impl Fn() -> T) -> (T, Duration) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..5 {
        let start = Instant::now();
        out = Some(f());
        best = best.min(start.elapsed());
    }
    (out.unwrap(), best)
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("PIN_DIR"));
    let t = netlab::plan::NatTimeouts {
        udp: 3600,
        ..Default::default()
    };
    for name in ["nat_orig", "nat_reply"] {
        let m = aya::maps::MapData::from_pin(dir.join(name)).unwrap();
        let (n, d) = best(|| {
            let v: Vec<(NatKey, NatEntry)> = netlab::bpf::bulk::read_all(m.fd().as_fd()).unwrap();
            v.len()
        });
        println!("read {name}: {n} entries in {d:?}");
    }
    let table = netlab::nat::NatTable::open(&dir).unwrap();
    let (n, d) = best(|| table.flows_unordered().unwrap().len());
    println!("flows_unordered(): {n} in {d:?}");
    let (n, d) = best(|| table.flows().unwrap().len());
    println!("flows(): {n} in {d:?}");
    let (s, d) = best(|| netlab::nat::sweep(&dir, &t, netlab::nat::monotonic_now_ns()).unwrap());
    println!("sweep: {s:?} in {d:?}");
}
