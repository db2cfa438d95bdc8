//! The `netlab` command line. Errors go to stderr with a non-zero exit code.

use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_LAB_NAME, LabConfig, LabPlan};
use crate::datapath::DatapathKind;
use crate::inspect::commands::Inspect;
use crate::lab::{self, DownOutcome, UpOutcome};
use crate::{check, daemon, netns, state, status};

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
    /// [HOST_ADDRESS:]HOST_PORT[-LAST]:PORT[-LAST][/tcp|/udp].
    Publish {
        namespace: String,
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<crate::publish::PortSpec>,
    },
    /// Remove published ports (and their live translations).
    Unpublish {
        namespace: String,
        #[arg(required = true, value_name = "SPEC")]
        specs: Vec<crate::publish::PortSpec>,
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
    Map(crate::inspect::commands::MapCommand),
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
    Nat(crate::inspect::commands::NatCommand),
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

/// Parses the arguments and runs the command.
pub fn main() -> ExitCode {
    // netlab runs as root and leaves files behind (state, pins, daemon
    // log): never group- or world-writable, whatever umask it inherited
    // (a stricter one is kept).
    let inherited = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(inherited | nix::sys::stat::Mode::from_bits_truncate(0o022));
    // Still one thread: the only moment a mount namespace can be joined.
    if let Err(e) = crate::bpf::fs::join_outer_bpffs() {
        eprintln!("netlab: warning: {e:#}");
    }
    let cli = Cli::parse();
    crate::logging::init(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netlab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// CAP_NET_ADMIN (12) for devices and routes, CAP_SYS_ADMIN (21) for
/// namespaces and mounts: checked up front so a plain user gets one clear
/// message instead of a failure half way.
fn require_privileges() -> anyhow::Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = [(12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| cap_eff & (1u64 << bit) == 0)
        .map(|(_, name)| name)
        .collect();
    if !missing.is_empty() {
        bail!(
            "netlab creates network namespaces and devices and needs root (missing {}); run it with sudo",
            missing.join(", ")
        );
    }
    Ok(())
}

fn load_config(cli: &Cli) -> anyhow::Result<LabConfig> {
    Ok(match &cli.file {
        Some(path) => LabConfig::from_file(path)?,
        None => LabConfig::default(),
    })
}

/// --lab, else the lab file's name, else "netlab".
fn lab_name(cli: &Cli) -> anyhow::Result<String> {
    if let Some(l) = &cli.lab {
        return Ok(l.clone());
    }
    Ok(load_config(cli)?
        .name
        .unwrap_or_else(|| DEFAULT_LAB_NAME.into()))
}

fn running_state(lab: &str) -> anyhow::Result<state::LabState> {
    state::peek(lab)?.with_context(|| {
        let others = state::labs();
        if others.is_empty() {
            format!("lab {lab} is not up (no labs are)")
        } else {
            format!(
                "lab {lab} is not up (labs up: {}; pick one with --lab)",
                others.join(", ")
            )
        }
    })
}

/// Root mode: moves this process into the namespace lab `lab` was brought
/// up in when it is elsewhere and the namespace has an `ip netns` name
/// (crate::hostns); refuses when it cannot be reached. Runs on the main
/// thread before any other starts, so every thread and child (the daemon,
/// iptables) works there. `down` may go on when the namespace is gone: it
/// then removes what did not go with it.
fn enter_lab_host(lab: &str, down: bool) -> anyhow::Result<()> {
    let Some(state) = state::peek(lab)? else {
        return Ok(());
    };
    let Some(host) = &state.host else {
        return Ok(());
    };
    require_privileges()?;
    match crate::hostns::enter(lab, host)? {
        crate::hostns::Placement::Gone if !down => bail!(
            "lab {lab}'s host side, {host}, is gone; `netlab down --lab {lab}` removes what is left"
        ),
        _ => Ok(()),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(lab) = lab_of_command(&cli)? {
        enter_lab_host(&lab, matches!(cli.command, Command::Down))?;
    }
    match &cli.command {
        Command::Up {
            datapath,
            no_daemon,
            metrics,
            metrics_allow_remote,
        } => {
            // Checked before anything is created.
            let metrics = metrics
                .as_deref()
                .map(|a| crate::metrics::server::parse_address(a, *metrics_allow_remote))
                .transpose()?;
            let mut config = load_config(&cli)?;
            if let Some(l) = &cli.lab {
                config.name = Some(l.clone());
            }
            let mut plan = config.resolve()?;
            if let Some(d) = datapath {
                plan.datapath = *d;
            }
            require_privileges()?;
            let outcome = lab::up(&plan).map_err(|e| {
                let rolled_back = !matches!(
                    e,
                    lab::LabError::Conflict { .. }
                        | lab::LabError::HalfBuilt(_)
                        | lab::LabError::RollbackFailed { .. }
                        | lab::LabError::State(_)
                        | lab::LabError::CannotRepair { .. }
                        | lab::LabError::RepairFailed { .. }
                );
                let e = anyhow::Error::new(e);
                if rolled_back {
                    e.context(format!(
                        "up failed; everything it had created for lab {} was removed",
                        plan.name
                    ))
                } else {
                    e
                }
            })?;
            let (lab, running_datapath) = match &outcome {
                UpOutcome::Created(p) | UpOutcome::Repaired { plan: p, .. } => {
                    (p.name.clone(), p.datapath)
                }
                UpOutcome::AlreadyUp(p) => (p.name.clone(), p.datapath),
            };
            match outcome {
                UpOutcome::Created(plan) => print_up(&plan),
                UpOutcome::Repaired { plan, repaired } => {
                    println!("lab {} was up but missing parts; repaired:", plan.name);
                    for r in repaired {
                        println!("  {r}");
                    }
                }
                UpOutcome::AlreadyUp(running) => {
                    println!(
                        "lab {} is already up ({:?} datapath); nothing changed",
                        running.name, running.datapath
                    );
                    if running != plan {
                        println!(
                            "note: it differs from the requested lab; run `netlab down` first to rebuild it"
                        );
                    }
                }
            }
            if running_datapath == DatapathKind::Ebpf {
                println!("{}", crate::supervise::after_up(&lab, *no_daemon, metrics)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Down => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            match lab::down(&lab)? {
                DownOutcome::Removed(objs) => {
                    println!("lab {lab} removed ({} objects)", objs.len())
                }
                DownOutcome::NothingThere => println!("lab {lab} is not up; nothing to remove"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            let st = status::collect(&running_state(&lab)?);
            if *json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", status::render(&st));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { json } => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            let state = running_state(&lab)?;
            if !state.complete {
                bail!("lab {lab} is half built; run `netlab down --lab {lab}`");
            }
            let report = check::run(&state.plan);
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}", report.table(color_enabled()));
                for p in report.failures() {
                    if let check::Outcome::Fail { reason } = &p.outcome {
                        eprintln!("netlab: {} -> {}: {reason}", p.from, p.to);
                    }
                }
            }
            Ok(if report.all_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Exec { namespace, command } => {
            require_privileges()?;
            let mut cmd = std::process::Command::new(&command[0]);
            cmd.args(&command[1..]);
            netns::command_in(&mut cmd, namespace, true)?;
            let err = cmd.exec();
            bail!("cannot run {}: {err}", command[0])
        }
        Command::Attach { namespace, address } => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            let e = lab::attach(&lab, namespace, *address)?;
            println!(
                "attached {} to lab {lab}: {} {} ({}) <-> {}",
                e.namespace,
                e.veth,
                e.address,
                crate::config::format_mac(&e.mac),
                e.peer
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Daemon {
            interval,
            background,
            metrics,
            metrics_allow_remote,
        } => {
            let lab = lab_name(&cli)?;
            let metrics = metrics
                .as_deref()
                .map(|a| crate::metrics::server::parse_address(a, *metrics_allow_remote))
                .transpose()?;
            require_privileges()?;
            let opts = daemon::Options {
                interval: std::time::Duration::from_secs_f64(interval.max(0.05)),
                metrics,
            };
            if *background {
                let pid = daemon::spawn_background(&lab, &opts)?;
                println!("netlab daemon for lab {lab} running in the background (pid {pid})");
            } else {
                daemon::run(&lab, &opts)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            require_privileges()?;
            crate::bench::run(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Map(cmd) => inspect(&cli, Inspect::Map(cmd)),
        Command::Fdb { json, edit } => inspect(
            &cli,
            Inspect::Fdb {
                json: *json,
                edit: edit.as_ref(),
            },
        ),
        Command::Nat(cmd) => inspect(&cli, Inspect::Nat(cmd)),
        Command::Stats { json, watch, all } => inspect(
            &cli,
            Inspect::Stats {
                json: *json,
                watch: *watch,
                all: *all,
            },
        ),
        Command::Trace => inspect(&cli, Inspect::Trace),
        Command::Monitor(args) => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            crate::monitor::run(&lab, args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diagram { svg } => inspect(&cli, Inspect::Diagram { svg: svg.as_ref() }),
        Command::Publish { namespace, specs } => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            crate::publish::ops::publish(&lab, namespace, specs)?;
            for spec in specs {
                println!("published {namespace} {spec} in lab {lab}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unpublish { namespace, specs } => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            crate::publish::ops::unpublish(&lab, namespace, specs)?;
            for spec in specs {
                println!("unpublished {namespace} {spec} in lab {lab}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ports { json } => {
            let lab = lab_name(&cli)?;
            let state = running_state(&lab)?;
            print!("{}", crate::publish::show::render(&state.plan, *json));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            crate::cli_docs::completions(*shell, &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            match dir {
                Some(dir) => crate::cli_docs::man_pages(dir)?,
                None => crate::cli_docs::man_page(&mut std::io::stdout())?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Detach { namespace } => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            let e = lab::detach(&lab, namespace)?;
            println!("detached {} from lab {lab}", e.namespace);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The lab a command works on (None: `exec`, `bench`, which name none).
fn lab_of_command(cli: &Cli) -> anyhow::Result<Option<String>> {
    Ok(match &cli.command {
        Command::Exec { .. } | Command::Bench(_) => None,
        _ => Some(lab_name(cli)?),
    })
}

/// The inspection commands (crate::inspect): read-only views of a lab.
fn inspect(cli: &Cli, cmd: Inspect<'_>) -> anyhow::Result<ExitCode> {
    let lab = lab_name(cli)?;
    require_privileges()?;
    crate::inspect::commands::run(&lab, cmd)?;
    Ok(ExitCode::SUCCESS)
}

fn print_up(plan: &LabPlan) {
    let dp = match plan.datapath {
        DatapathKind::Kernel => "kernel bridge + iptables",
        DatapathKind::Ebpf => "eBPF",
    };
    println!("lab {} is up ({dp} datapath)", plan.name);
    match plan.sandbox() {
        Some(s) => println!(
            "  host side: namespace {} (uplink {} {}), internet: namespace {} ({})",
            s.namespace, s.uplink, s.uplink_address, s.internet_namespace, s.internet_address
        ),
        None => println!(
            "  host side: this network namespace, the one netlab runs in (uplink {})",
            plan.uplink()
        ),
    }
    println!(
        "  gateway: {} {}/{}",
        plan.gateway_device, plan.gateway, plan.subnet.prefix_len
    );
    for e in &plan.endpoints {
        println!(
            "  {}: {} {}/{} {} <-> {}",
            e.namespace,
            e.veth,
            e.address,
            plan.subnet.prefix_len,
            crate::config::format_mac(&e.mac),
            e.peer
        );
    }
    println!(
        "try: netlab check{}",
        if plan.name == DEFAULT_LAB_NAME {
            String::new()
        } else {
            format!(" --lab {}", plan.name)
        }
    );
}
