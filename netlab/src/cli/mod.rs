//! The `netlab` command line. Errors go to stderr with a non-zero exit code.
//!
//! [`args`] declares the commands and flags, [`docs`] turns them into
//! completions and man pages; this file parses and dispatches, with what
//! every command needs in `context`, `netlab up` in `up`, and the
//! inspection and edit commands in `inspect`.

pub mod args;
mod context;
pub mod docs;
mod inspect;
mod up;

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::bail;
use clap::Parser;

pub use args::{Cli, Command};
use context::{enter_lab_host, lab_name, lab_of_command, require_privileges, running_state};
use inspect::Inspect;

use crate::inspect::color_enabled;
use crate::lab::{self, DownOutcome};
use crate::{check, daemon, netns, status};

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
    // `netlab map dump | head`: end quietly when the reader goes away, as
    // other Unix tools do, rather than panic on the failed write (Rust
    // ignores SIGPIPE by default). A `monitor` or `trace` killed this way
    // leaves its event gate on; the daemon clears a gate whose reader is gone.
    // SAFETY: still one thread; restoring a default disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
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
        } => up::run(
            &cli,
            *datapath,
            *no_daemon,
            metrics.as_deref(),
            *metrics_allow_remote,
        ),
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
                if let Some(why) = crate::health::ipv6_egress_problem(&state.plan) {
                    println!("{why}");
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
                crate::names::format_mac(&e.mac),
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
        Command::Stats { json, explain, .. } if *explain => {
            let meanings = crate::inspect::stats::meanings();
            if *json {
                println!("{}", serde_json::to_string_pretty(&meanings)?);
            } else {
                print!("{}", crate::inspect::stats::render_meanings(&meanings));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats {
            json, watch, all, ..
        } => inspect(
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
            crate::lab::publish::publish(&lab, namespace, specs)?;
            for spec in specs {
                println!("published {namespace} {spec} in lab {lab}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unpublish { namespace, specs } => {
            let lab = lab_name(&cli)?;
            require_privileges()?;
            crate::lab::publish::unpublish(&lab, namespace, specs)?;
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
            docs::completions(*shell, &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            match dir {
                Some(dir) => docs::man_pages(dir)?,
                None => docs::man_page(&mut std::io::stdout())?,
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

/// The inspection commands (crate::inspect): read-only views of a lab.
fn inspect(cli: &Cli, cmd: Inspect<'_>) -> anyhow::Result<ExitCode> {
    let lab = lab_name(cli)?;
    require_privileges()?;
    inspect::run(&lab, cmd)?;
    Ok(ExitCode::SUCCESS)
}
