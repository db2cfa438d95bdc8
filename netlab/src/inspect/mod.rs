//! Reading the running eBPF datapath: `netlab map list/dump`, `fdb`, `nat
//! list`, `stats`, `trace`, the programs of `status` and `diagram`.
//!
//! Everything here only reads the pinned maps (and the lab's state file;
//! `trace` reads the event stream, so it lives in `crate::monitor`); the
//! commands that change state (`nat flush/delete`, `fdb add/del`) live in
//! `crate::edit` and share the lab lookup, key notation and printing. The
//! CLI dispatches both (`crate::cli`); nothing here imports `edit`,
//! `status` or the CLI.
//! Conventions: tables for people, `--json` with stable field names for
//! programs, errors (to stderr, non-zero exit) that say what to do.

pub mod addrs;
pub mod decode;
pub mod fdb;
pub mod keys;
pub mod maps;
pub mod natlist;
pub mod programs;
pub mod stats;

use std::{io::IsTerminal, path::PathBuf};

use anyhow::{Context as _, bail};
use comfy_table::{Table, presets};

use crate::{
    plan::{DatapathKind, LabPlan},
    state,
};

/// A lab that is up, as the inspection commands need it.
#[derive(Clone, Debug)]
pub struct Lab {
    pub name: String,
    pub plan: LabPlan,
    /// `/sys/fs/bpf/netlab/<lab>`.
    pub dir: PathBuf,
}

/// How to bring a lab up, for messages.
fn up_hint(lab: &str) -> String {
    if lab == crate::names::DEFAULT_LAB_NAME {
        "bring it up with `netlab up`".into()
    } else {
        format!(
            "bring it up with `netlab -f LAB.toml up` (the lab file naming {lab}) or `netlab --lab {lab} up`"
        )
    }
}

/// The lab `name` if it is up (any datapath).
pub fn lab_up(name: &str) -> anyhow::Result<Lab> {
    let st = state::peek(name)?.with_context(|| {
        let others = state::labs();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" (labs up: {}; pick one with --lab)", others.join(", "))
        };
        format!("lab {name} is not up: {}{also}", up_hint(name))
    })?;
    if !st.complete {
        bail!(
            "lab {name} is half built (an `up` was interrupted): run `netlab down --lab {name}` and bring it up again"
        );
    }
    Ok(Lab {
        name: name.to_string(),
        dir: crate::datapath::ebpf::pin_dir(name),
        plan: st.plan,
    })
}

/// The lab `name` if it is up on the eBPF datapath with its pins in place.
pub fn ebpf_lab(name: &str) -> anyhow::Result<Lab> {
    let lab = lab_up(name)?;
    if lab.plan.datapath == DatapathKind::Kernel {
        bail!(
            "lab {name} runs the kernel datapath (Linux bridge + iptables), which has no BPF maps: \
             read it with `bridge fdb show`, `conntrack -L` and `iptables -t nat -L -v` inside \
             its host namespace, or rebuild it with `netlab down` then `netlab up --datapath ebpf`"
        );
    }
    if !crate::datapath::ebpf::is_installed(name) {
        bail!(
            "lab {name} is up but its eBPF datapath is not pinned at {} (bpffs remounted or \
             pins removed?): run `netlab down` then `netlab up` to rebuild it",
            lab.dir.display()
        );
    }
    Ok(lab)
}

impl Lab {
    /// Interface names in the host-side namespace, where the switch ports live.
    pub fn ifnames(&self) -> decode::IfNames {
        decode::IfNames::of_namespace(self.plan.host_netns())
    }

    /// The endpoint namespace behind a switch port device, or "gateway".
    pub fn port_owner(&self, port_dev: &str) -> Option<String> {
        if port_dev == self.plan.gateway_port {
            return Some("gateway".into());
        }
        self.plan
            .endpoints
            .iter()
            .find(|e| e.peer == port_dev)
            .map(|e| e.namespace.clone())
            .or_else(|| self.plan.containers.by_peer(port_dev).map(|c| c.label()))
    }

    /// A decoding context (names, clock) for this lab.
    pub fn decode_context(&self) -> decode::Context {
        decode::Context {
            ifnames: self.ifnames(),
            now_ns: crate::nat::monotonic_now_ns(),
        }
    }
}

/// Colours only on a terminal, and never with `NO_COLOR` set
/// (https://no-color.org).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A table in netlab's style, with `header`.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    if !color_enabled() {
        t.force_no_tty();
    }
    t.set_header(header);
    t
}

/// Prints `v` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
