//! The lab's attached programs (from its pinned tcx links) and maps, for
//! `netlab status` and `netlab trace`, and what they cost (for the metrics
//! and the benchmark).

use std::{collections::BTreeMap, path::Path};

use aya::programs::{
    ProgramInfo,
    links::{FdLink, PinnedLink},
    loaded_programs,
};
use serde::Serialize;

use crate::bpf::{fs, runstats};

/// One attached program.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramRow {
    /// The program's name in the object (`netlab_port`, ...).
    pub program: String,
    /// Kernel program id (`bpftool prog show id N`).
    pub id: u32,
    /// The device it is attached to, in the lab's host namespace.
    pub device: String,
    /// `tcx ingress`, `tcx egress` or `xdp native`.
    pub hook: String,
    /// Kernel link id (`bpftool link show id N`).
    pub link_id: u32,
    /// Instructions the verifier processed, when the kernel says.
    pub verified_insns: Option<u32>,
    pub pin: String,
}

/// The eBPF part of `netlab status`.
#[derive(Clone, Debug, Serialize)]
pub struct EbpfStatus {
    pub pin_dir: String,
    /// Whether `switch_config.trace` is on (a `netlab trace` is running, or
    /// one was killed without cleaning up).
    pub trace: Option<bool>,
    /// Whether the event gate is open (a `netlab monitor` is running, or
    /// one was killed and no daemon has closed it yet).
    pub events: Option<bool>,
    pub programs: Vec<ProgramRow>,
    pub maps: Vec<super::maps::MapRow>,
    /// Problems met while reading (the rest is still shown).
    pub errors: Vec<String>,
}

fn program_info(id: u32) -> Option<ProgramInfo> {
    loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == id)
}

/// The kernel keeps 15 bytes of a program name; give ours back in full.
fn full_name(kernel: &str) -> String {
    [
        crate::bpf::loader::PORT_PROGRAM,
        crate::nat::EGRESS_PROGRAM,
        crate::nat::INGRESS_PROGRAM,
        crate::datapath::xdp::UPLINK_XDP_PROGRAM,
        crate::datapath::xdp::PORT_XDP_PROGRAM,
    ]
    .into_iter()
    .find(|full| !kernel.is_empty() && kernel != "?" && full.starts_with(kernel))
    .unwrap_or(kernel)
    .to_string()
}

fn link_row(path: &Path, device: String, hook: &str) -> Result<ProgramRow, String> {
    let link: FdLink = PinnedLink::from_pin(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .into();
    let info = link
        .info()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let prog = program_info(info.program_id());
    let kernel_name = prog
        .as_ref()
        .and_then(|p| p.name_as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    Ok(ProgramRow {
        program: full_name(&kernel_name),
        id: info.program_id(),
        device,
        hook: hook.into(),
        link_id: info.id(),
        verified_insns: prog
            .as_ref()
            .and_then(ProgramInfo::verified_instruction_count),
        pin: path.display().to_string(),
    })
}

/// Every program attached through the lab's pinned links: the switch's
/// port program on each port, the NAT's on the uplink.
pub fn attached(dir: &Path, uplink: &str) -> (Vec<ProgramRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let names = fs::entries(dir).unwrap_or_default();
    for name in &names {
        let path = dir.join(name);
        let found = if let Some(dev) = name.strip_prefix(fs::LINK_PORT_PREFIX) {
            link_row(&path, fs::decode_name(dev), "tcx ingress")
        } else if let Some(dev) = name.strip_prefix(crate::datapath::xdp::PORT_XDP_LINK_PREFIX) {
            link_row(
                &path,
                fs::decode_name(dev),
                crate::datapath::xdp::ATTACH_MODE,
            )
        } else if name == crate::nat::EGRESS_LINK_PIN {
            link_row(&path, uplink.to_string(), "tcx egress")
        } else if name == crate::nat::INGRESS_LINK_PIN {
            link_row(&path, uplink.to_string(), "tcx ingress")
        } else if name == crate::datapath::xdp::UPLINK_XDP_LINK_PIN {
            link_row(&path, uplink.to_string(), crate::datapath::xdp::ATTACH_MODE)
        } else {
            continue;
        };
        match found {
            Ok(r) => rows.push(r),
            Err(e) => errors.push(e),
        }
    }
    rows.sort_by(|a, b| (&a.program, &a.device).cmp(&(&b.program, &b.device)));
    (rows, errors)
}

/// The accumulated run time and runs of the lab's attached programs, by
/// name (counting only while run-time statistics are on:
/// [`runstats::enable`]).
pub fn run_totals(dir: &Path, uplink: &str) -> BTreeMap<String, runstats::Totals> {
    let (rows, _) = attached(dir, uplink);
    let ids: BTreeMap<u32, String> = rows.into_iter().map(|r| (r.id, r.program)).collect();
    runstats::of_programs(&ids)
}

/// Everything `status` shows about the eBPF datapath of `lab`.
pub fn status(lab: &super::Lab) -> EbpfStatus {
    let (programs, mut errors) = attached(&lab.dir, lab.plan.uplink());
    let maps = super::maps::list(lab).unwrap_or_else(|e| {
        errors.push(format!("{e:#}"));
        Vec::new()
    });
    let config = crate::datapath::ebpf::config(&lab.name)
        .map_err(|e| errors.push(e.to_string()))
        .ok();
    EbpfStatus {
        pin_dir: lab.dir.display().to_string(),
        trace: config.map(|c| c.trace & netlab_common::switch::TRACE_FRAMES != 0),
        events: config.map(|c| c.trace & netlab_common::switch::TRACE_EVENTS != 0),
        programs,
        maps,
        errors,
    }
}

pub fn render(s: &EbpfStatus) -> String {
    let mut out = format!(
        "\neBPF datapath: pins in {}{}{}\n",
        s.pin_dir,
        match s.trace {
            Some(true) => ", tracing ON (`netlab trace` running?)",
            _ => "",
        },
        match s.events {
            Some(true) => ", events ON (`netlab monitor` running)",
            _ => "",
        }
    );
    let mut t = super::table(["program", "id", "attached to", "hook", "link id", "insns"]);
    for p in &s.programs {
        t.add_row(vec![
            p.program.clone(),
            p.id.to_string(),
            p.device.clone(),
            p.hook.clone(),
            p.link_id.to_string(),
            p.verified_insns.map(|n| n.to_string()).unwrap_or_default(),
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    if !s.maps.is_empty() {
        out.push_str(&super::maps::render_list(&s.maps));
        out.push('\n');
    }
    for e in &s.errors {
        out.push_str(&format!("  problem: {e}\n"));
    }
    out
}
