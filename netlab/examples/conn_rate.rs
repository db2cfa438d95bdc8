//! The bench's connection-rate workload against a running sandbox lab, for
//! profiling one datapath under chosen conditions (table prefilled or not,
//! daemon running or not), with the eBPF programs' cost per packet.
//! Usage: conn_rate LAB CLIENT_NS SECONDS [PREFILL_FLOWS]
//! (the internet namespace is LAB-inet at 203.0.113.2, as `netlab up` makes it).
use std::net::{Ipv4Addr, SocketAddrV4};

use netlab::bench::{nsexec::NsCpu, progstats, workload};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        anyhow::bail!("usage: conn_rate LAB CLIENT_NS SECONDS [PREFILL_FLOWS]");
    }
    let (lab, client, secs) = (&args[1], &args[2], args[3].parse()?);
    let inet = format!("{lab}-inet");
    let prefill: u32 = args.get(4).map_or(Ok(0), |p| p.parse())?;
    let target = Ipv4Addr::new(203, 0, 113, 2);
    let client = NsCpu::new(client, 0);
    let _servers = workload::Servers::start(&NsCpu::new(&inet, 1), true)?;
    if prefill > 0 {
        let p = workload::prefill_udp_flows(&client, target, prefill)?;
        println!(
            "prefill: {} sent, {} errors, {:.2} s",
            p.sent, p.errors, p.seconds
        );
    }
    let _stats = netlab::bpf::runstats::enable();
    let before = progstats::snapshot(lab, "uplink");
    let r = workload::connection_rate(
        &client,
        SocketAddrV4::new(target, workload::ACCEPT_PORT),
        secs,
    )?;
    println!(
        "{:.0} connections/s ({} failures)",
        r.connections as f64 / r.seconds,
        r.failures
    );
    let after = progstats::snapshot(lab, "uplink");
    for (prog, (ns, runs)) in progstats::per_run(&before, &after) {
        println!("  {prog}: {ns:.0} ns/run over {runs} runs");
    }
    Ok(())
}
