//! The inspection subcommands' dispatch: `map`, `fdb`, `nat`, `stats` to
//! the read-only views (`crate::inspect`), `trace` to `crate::monitor`
//! (it reads the event stream), `diagram` to
//! `crate::status::diagram`, and the subcommands that change state (`nat
//! flush/delete`, `fdb add/del`) to `crate::edit`, since they share their
//! parent commands with the read-only ones. The dispatch lives in the entry
//! layer so that the views never import the edits.

use std::{path::PathBuf, time::Duration};

use super::args::{MapCommand, NatCommand};
use crate::{
    inspect::{ebpf_lab, fdb, lab_up, maps, natlist, print_json, stats},
    status::diagram,
};

/// One inspection command.
#[derive(Debug)]
pub enum Inspect<'a> {
    Map(&'a MapCommand),
    Fdb {
        json: bool,
        /// `fdb add` / `fdb del` (crate::edit); None: list the FDB.
        edit: Option<&'a crate::edit::FdbCommand>,
    },
    Nat(&'a NatCommand),
    Stats {
        json: bool,
        watch: Option<f64>,
        all: bool,
    },
    Trace,
    Diagram {
        svg: Option<&'a PathBuf>,
    },
}

/// Runs `cmd` against lab `lab`.
pub fn run(lab: &str, cmd: Inspect<'_>) -> anyhow::Result<()> {
    match cmd {
        Inspect::Map(MapCommand::List { json }) => {
            let rows = maps::list(&ebpf_lab(lab)?)?;
            if *json {
                print_json(&rows)
            } else {
                println!("{}", maps::render_list(&rows));
                Ok(())
            }
        }
        Inspect::Map(MapCommand::Lookup { name, key, json }) => {
            let words: Vec<&str> = key.iter().map(String::as_str).collect();
            let found = maps::lookup(&ebpf_lab(lab)?, name, &words)?;
            if *json {
                print_json(&found)
            } else {
                print!("{}", maps::render_lookup(&found));
                Ok(())
            }
        }
        Inspect::Map(MapCommand::Dump { name, json }) => {
            let dump = maps::dump(&ebpf_lab(lab)?, name)?;
            if *json {
                print_json(&dump)
            } else {
                print!("{}", maps::render_dump(&dump));
                Ok(())
            }
        }
        Inspect::Nat(NatCommand::Flush(args)) => {
            let removed = crate::edit::nat::flush(&ebpf_lab(lab)?, args)?;
            crate::edit::nat::print(&removed, args.json, "nat flush")
        }
        Inspect::Nat(NatCommand::Delete(args)) => {
            let removed = crate::edit::nat::delete(&ebpf_lab(lab)?, args)?;
            crate::edit::nat::print(&removed, args.json, "nat delete")
        }
        Inspect::Fdb {
            json,
            edit: Some(cmd),
        } => {
            let _ = json;
            crate::edit::fdb::run(&ebpf_lab(lab)?, cmd)
        }
        Inspect::Fdb { json, edit: None } => {
            let rows = fdb::rows(&ebpf_lab(lab)?)?;
            if json {
                print_json(&rows)
            } else {
                println!("{}", fdb::render(&rows));
                Ok(())
            }
        }
        Inspect::Nat(NatCommand::List {
            json,
            namespace,
            proto,
            address,
        }) => {
            let filter = natlist::Filter {
                namespace: namespace.clone(),
                proto: proto.clone(),
                address: *address,
            };
            let rows = natlist::rows(&ebpf_lab(lab)?, &filter)?;
            if *json {
                print_json(&rows)
            } else {
                print!("{}", natlist::render(&rows));
                Ok(())
            }
        }
        Inspect::Stats { json, watch, all } => {
            let lab = ebpf_lab(lab)?;
            match watch {
                Some(secs) => {
                    if !(secs.is_finite() && secs > 0.0) {
                        anyhow::bail!("--watch takes a positive number of seconds, not {secs}");
                    }
                    stats::watch(&lab, Duration::from_secs_f64(secs.max(0.05)), json, all)
                }
                None => {
                    let s = stats::read(&lab)?;
                    if json {
                        print_json(&s)
                    } else {
                        print!("{}", stats::render(&s, all));
                        Ok(())
                    }
                }
            }
        }
        Inspect::Trace => crate::monitor::trace::run(&ebpf_lab(lab)?),
        Inspect::Diagram { svg } => diagram::run(&lab_up(lab)?, svg.map(PathBuf::as_path)),
    }
}
