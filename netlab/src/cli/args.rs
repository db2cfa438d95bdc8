//! The `netlab` command line's arguments (clap derive): every subcommand
//! and its flags. The help text, the shell completions and the man pages
//! ([`super::docs`]) are generated from these declarations.

use std::{net::Ipv4Addr, path::PathBuf};

use clap::{Parser, Subcommand};

use crate::{daemon, plan::DatapathKind};

#[derive(Debug, Parser)]
#[command(
    name = "netlab",
    version,
    about = "A container network lab on one Linux host, on a kernel-bridge or an eBPF datapath"
)]
pub struct Cli {
    /// Lab name (default: the lab file's `name`, else "netlab").
    #[arg(long, global = true, value_name = "NAME")]
    pub lab: Option<String>,
    /// Lab file (TOML); without it, the built-in walkthrough lab.
    #[arg(short = 'f', long = "file", global = true, value_name = "LAB.TOML")]
    pub file: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG
    /// (e.g. `RUST_LOG=netlab=debug`) overrides both flags.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log (warnings are shown by default).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the lab (a lab already up is left unchanged).
    Up {
        /// Overrides the lab file's `datapath`.
        #[arg(long, value_enum)]
        datapath: Option<DatapathKind>,
        /// eBPF datapath: do not start the control loop (`netlab daemon`),
        /// which `up` otherwise starts in the background (or restarts, on
        /// a running lab whose daemon died). Without it NAT entries never
        /// expire.
        #[arg(long)]
        no_daemon: bool,
        /// eBPF datapath: the daemon `up` starts serves Prometheus metrics
        /// at http://ADDR/metrics (as `netlab daemon --metrics`; a daemon
        /// that already runs is left as it is).
        #[arg(long, value_name = "ADDR", conflicts_with = "no_daemon")]
        metrics: Option<String>,
        /// Allow --metrics on an address other than loopback.
        #[arg(long, requires = "metrics")]
        metrics_allow_remote: bool,
    },
    /// Remove everything the lab created (recorded in /run/netlab/LAB.json).
    Down,
    /// Show the lab's namespaces, links, addresses and routes, and whether
    /// its control loop runs.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Ping namespace to namespace, to the gateway and to the internet server.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a network namespace (like `ip netns exec`).
    Exec {
        namespace: String,
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Add an endpoint namespace to a running lab.
    Attach {
        namespace: String,
        address: Ipv4Addr,
    },
    /// Remove an endpoint namespace from a running lab.
    Detach { namespace: String },
    /// Publish ports of a namespace on the host side (like `docker run -p`):
    /// [HOST_ADDRESS:]HOST_PORT[-LAST]:PORT[-LAST][/tcp|/udp]; no host
    /// address: IPv4 and IPv6; an IPv6 one in brackets ([2001:db8::1]:8080:80).
    Publish {
        namespace: String,
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<crate::plan::PortSpec>,
    },
    /// Remove published ports (and their live translations).
    Unpublish {
        namespace: String,
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<crate::plan::PortSpec>,
    },
    /// The lab's published ports (like `docker port`).
    Ports {
        #[arg(long)]
        json: bool,
    },
    /// Run the eBPF datapath's control loop: expire idle NAT entries and
    /// follow the uplink's address (runs until Ctrl-C or `netlab down`).
    Daemon {
        /// Seconds between expiry sweeps.
        #[arg(long, default_value_t = daemon::DEFAULT_INTERVAL.as_secs_f64())]
        interval: f64,
        /// Detach and run in the background (pid in /run/netlab/LAB.daemon.pid,
        /// log in /run/netlab/LAB.daemon.log); `netlab down` stops it.
        #[arg(long)]
        background: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics (IP:PORT, or a
        /// port on 127.0.0.1; port 0 picks a free one), in the namespace the
        /// daemon runs in.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// Allow --metrics on an address other than loopback (the metrics
        /// have no authentication).
        #[arg(long, requires = "metrics")]
        metrics_allow_remote: bool,
    },
    /// Measure the eBPF datapath against the kernel bridge and a direct veth pair.
    Bench(crate::bench::BenchArgs),
    /// The eBPF datapath's pinned maps (list, dump decoded).
    #[command(subcommand)]
    Map(MapCommand),
    /// The eBPF switch's forwarding database (like `bridge fdb show`);
    /// `fdb add` / `fdb del` change non-static entries by hand.
    #[command(args_conflicts_with_subcommands = true)]
    Fdb {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        edit: Option<crate::edit::FdbCommand>,
    },
    /// The eBPF source NAT's translations: list (like `conntrack -L`),
    /// flush, delete.
    #[command(subcommand)]
    Nat(NatCommand),
    /// The eBPF datapath's counters by reason and per port.
    Stats {
        #[arg(long)]
        json: bool,
        /// Refresh every SECS seconds (default 1) showing rates per second,
        /// until Ctrl-C; with --json, one JSON object per line.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
        watch: Option<f64>,
        /// Also show counters that are zero.
        #[arg(long)]
        all: bool,
        /// Print what each counter means (with --json, a name → meaning
        /// object) instead of reading a lab; needs no lab and no privileges.
        #[arg(long, conflicts_with_all = ["watch", "all"])]
        explain: bool,
    },
    /// Stream one line per frame through the switch (ingress port, MACs,
    /// EtherType, what became of it) until Ctrl-C, for debugging the switch
    /// program; `monitor` is the typed event stream (one of the two at a time).
    Trace,
    /// The eBPF datapath's events, live: drops and why, NAT flows created,
    /// expired or refused, MACs learned, ARP answered (until Ctrl-C).
    Monitor(crate::monitor::MonitorArgs),
    /// The live topology as Graphviz DOT (or SVG with --svg, when `dot` is installed).
    Diagram {
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Print a shell completion script, e.g.
    /// `netlab completions bash > /etc/bash_completion.d/netlab`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff: `netlab man | man -l -`), or with --dir
    /// write netlab.1 and a page per subcommand there.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Every pinned map: type, key/value size, max entries, entries in use, fill.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One map's entries, decoded (addresses, MACs, ports, ages, interface names).
    Dump {
        /// The map's name (as in `netlab map list`).
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// One entry, looked up by its key and decoded. KEY is written as `map
    /// dump` shows keys: a MAC (fdb), an IPv4 address (endpoints,
    /// host_addrs), an IPv6 address (endpoints6, host_addrs6), `PROTO
    /// SRC:PORT DST:PORT` (nat_orig, nat_reply; `[ADDR]:PORT` for nat6_orig,
    /// nat6_reply), a counter name or index (counters), ...; or `hex:BYTES`
    /// for any map.
    Lookup {
        name: String,
        #[arg(required = true, num_args = 1.., value_name = "KEY")]
        key: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NatCommand {
    /// The source NAT's translations, IPv4 and NAT66, like `conntrack -L`.
    List {
        #[arg(long)]
        json: bool,
        /// Only flows from this endpoint namespace.
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        /// Only this protocol: tcp, udp, icmp, icmpv6 (or a number).
        #[arg(long, value_name = "PROTO")]
        proto: Option<String>,
        /// Only flows where this address (IPv4 or IPv6) appears (source,
        /// remote or translated).
        #[arg(long, value_name = "ADDRESS")]
        address: Option<std::net::IpAddr>,
    },
    /// Remove flows (all, or those of a namespace / protocol), like
    /// `conntrack -F`; their ports are free again at once.
    Flush(crate::edit::NatFlushArgs),
    /// Remove one flow (both directions, freeing its port), like
    /// `conntrack -D`.
    Delete(crate::edit::NatDeleteArgs),
}
