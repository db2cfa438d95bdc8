//! `netlab diagram`: the live topology as Graphviz DOT — namespaces with
//! their interfaces and addresses (read over netlink now, not from the
//! plan), the veth pairs, the eBPF switch with its attached programs or the
//! Linux bridge, the uplink with the NAT, and the internet namespace. A
//! picture of what `status` collects, with the programs `crate::inspect`
//! reads.

use std::{fmt::Write as _, io::Write as _, path::Path, process::Stdio};

use anyhow::{Context as _, bail};

use super::{LabStatus, collect};
use crate::{
    inspect::{
        Lab,
        programs::{ProgramRow, attached},
    },
    plan::DatapathKind,
    topology::LinkInfoView,
};

fn id(ns: &str, dev: &str) -> String {
    format!("\"{ns}/{dev}\"")
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn link_label(l: &LinkInfoView) -> String {
    let mut s = esc(&l.name);
    for a in &l.addresses {
        let _ = write!(s, "\\n{a}");
    }
    if let Some(m) = &l.mac {
        let _ = write!(s, "\\n{m}");
    }
    if !l.up {
        s.push_str("\\n(down)");
    }
    s
}

/// The DOT text for a lab's live state.
pub fn dot(lab: &Lab, status: &LabStatus, programs: &[ProgramRow]) -> String {
    let plan = &lab.plan;
    let host_ns = plan.host_netns().unwrap_or("current namespace").to_string();
    let mut g = String::new();
    let _ = writeln!(g, "digraph \"netlab {}\" {{", esc(&plan.name));
    let _ = writeln!(
        g,
        "  label=\"lab {} ({} datapath), subnet {}{}\"; labelloc=t; rankdir=LR; compound=true;",
        esc(&plan.name),
        match plan.datapath {
            DatapathKind::Ebpf => "eBPF",
            DatapathKind::Kernel => "kernel bridge",
        },
        plan.subnet,
        plan.ipv6
            .map(|v6| format!(" and {}", v6.subnet))
            .unwrap_or_default()
    );
    let _ = writeln!(
        g,
        "  node [shape=box, fontname=\"monospace\", fontsize=10];"
    );
    let _ = writeln!(g, "  edge [dir=none];");

    // Which links to draw: loopback is noise.
    let shown = |l: &&LinkInfoView| l.name != "lo";
    for (i, ns) in status.namespaces.iter().enumerate() {
        let name = ns.name.clone().unwrap_or_else(|| "root namespace".into());
        let _ = writeln!(g, "  subgraph cluster_{i} {{");
        let _ = writeln!(
            g,
            "    label=\"{} [{}]{}\"; style=rounded;",
            esc(&name),
            ns.role,
            if ns.present { "" } else { " MISSING" }
        );
        for l in ns.links.iter().filter(shown) {
            let _ = writeln!(
                g,
                "    {} [label=\"{}\"];",
                id(&name, &l.name),
                link_label(l)
            );
        }
        if ns.role == "host" && plan.datapath == DatapathKind::Ebpf {
            let progs: Vec<String> = programs
                .iter()
                .filter(|p| p.program == crate::bpf::loader::PORT_PROGRAM)
                .map(|p| esc(&format!("{} (prog {})", p.device, p.id)))
                .collect();
            // The XDP switch (`switch = "xdp"`) in front of the TC one.
            let xdp: Vec<String> = programs
                .iter()
                .filter(|p| p.program == crate::datapath::xdp::PORT_XDP_PROGRAM)
                .map(|p| esc(&format!("{} (prog {})", p.device, p.id)))
                .collect();
            let xdp = if xdp.is_empty() {
                String::new()
            } else {
                format!(
                    "\\nnetlab_xdp_port ({}) in front:\\n{}",
                    crate::datapath::xdp::ATTACH_MODE,
                    xdp.join("\\n")
                )
            };
            let _ = writeln!(
                g,
                "    switch [shape=component, style=filled, fillcolor=lightyellow, label=\"eBPF switch\\nnetlab_port on tcx ingress:\\n{}{xdp}\"];",
                progs.join("\\n")
            );
        }
        let _ = writeln!(g, "  }}");
    }

    // veth pairs: endpoint veth <-> host-side peer.
    for e in &plan.endpoints {
        let _ = writeln!(
            g,
            "  {} -> {} [label=\"veth\"];",
            id(&e.namespace, &e.veth),
            id(&host_ns, &e.peer)
        );
    }
    match plan.datapath {
        DatapathKind::Ebpf => {
            for e in &plan.endpoints {
                let _ = writeln!(g, "  {} -> switch [style=dashed];", id(&host_ns, &e.peer));
            }
            let _ = writeln!(
                g,
                "  {} -> {} [label=\"veth\"];",
                id(&host_ns, &plan.gateway_device),
                id(&host_ns, &plan.gateway_port)
            );
            let _ = writeln!(
                g,
                "  {} -> switch [style=dashed];",
                id(&host_ns, &plan.gateway_port)
            );
        }
        DatapathKind::Kernel => {
            // Bridge ports, as the kernel reports them (controller ifindex).
            if let Some(host) = status.namespaces.iter().find(|n| n.role == "host") {
                for l in &host.links {
                    if let Some(c) = l.controller
                        && let Some(br) = host.links.iter().find(|b| b.ifindex == c)
                    {
                        let _ = writeln!(
                            g,
                            "  {} -> {} [label=\"bridge port\", style=dashed];",
                            id(&host_ns, &l.name),
                            id(&host_ns, &br.name)
                        );
                    }
                }
            }
        }
    }

    // Uplink and NAT.
    let nat = match plan.datapath {
        DatapathKind::Ebpf => {
            let ids: Vec<String> = programs
                .iter()
                .filter(|p| {
                    p.device == plan.uplink() && p.program != crate::bpf::loader::PORT_PROGRAM
                })
                .map(|p| esc(&format!("{} {} (prog {})", p.program, p.hook, p.id)))
                .collect();
            format!(
                "SNAT {} -> uplink address\\n{}",
                plan.subnet,
                ids.join("\\n")
            )
        }
        DatapathKind::Kernel => format!("iptables MASQUERADE {}", plan.subnet),
    };
    let _ = writeln!(
        g,
        "  nat [shape=note, style=filled, fillcolor=lightblue, label=\"{nat}\"];"
    );
    let _ = writeln!(
        g,
        "  nat -> {} [style=dotted];",
        id(&host_ns, plan.uplink())
    );
    if let Some(s) = plan.sandbox() {
        let _ = writeln!(
            g,
            "  {} -> {} [label=\"veth (uplink)\"];",
            id(&s.namespace, &s.uplink),
            id(&s.internet_namespace, &s.internet_device)
        );
    }
    let _ = writeln!(g, "}}");
    g
}

/// Renders `dot_text` to an SVG file with Graphviz.
pub fn write_svg(dot_text: &str, file: &Path) -> anyhow::Result<()> {
    let Ok(dot) = which::which("dot") else {
        bail!(
            "Graphviz `dot` is not installed, so no SVG was written; install graphviz, or run \
             `netlab diagram > lab.dot` and render the DOT text elsewhere"
        );
    };
    let mut child = std::process::Command::new(dot)
        .arg("-Tsvg")
        .arg("-o")
        .arg(file)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run dot")?;
    child
        .stdin
        .take()
        .context("dot's stdin")?
        .write_all(dot_text.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "dot failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `netlab diagram [--svg FILE]`.
pub fn run(lab: &Lab, svg: Option<&Path>) -> anyhow::Result<()> {
    let state = crate::state::peek(&lab.name)?.context("lab state vanished")?;
    let status = collect(&state);
    let programs = if lab.plan.datapath == DatapathKind::Ebpf {
        attached(&lab.dir, lab.plan.uplink()).0
    } else {
        Vec::new()
    };
    let text = dot(lab, &status, &programs);
    match svg {
        Some(file) => {
            write_svg(&text, file)?;
            println!("wrote {}", file.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
