//! `netlab status`: what the lab's state file records, and what the kernel
//! shows for it: per namespace, links (ifindex, MAC, state, addresses,
//! bridge) and IPv4 and IPv6 routes, read over netlink from inside each namespace.
//! `netlab diagram` draws the same ([`diagram`]).

pub mod diagram;

use comfy_table::{Cell, Table};
use serde::Serialize;

use crate::names::format_mac;
use crate::netns;
use crate::plan::DatapathKind;
use crate::plan::HostPlan;
use crate::state::LabState;
use crate::topology::{LinkInfoView, RouteView, with_netlink};

#[derive(Clone, Debug, Serialize)]
pub struct NamespaceStatus {
    /// None: root mode's host side, the namespace netlab runs in.
    pub name: Option<String>,
    /// "host", "internet" or "endpoint".
    pub role: String,
    pub present: bool,
    pub links: Vec<LinkInfoView>,
    pub routes: Vec<RouteView>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabStatus {
    pub lab: String,
    /// Root mode: the host side's namespace, as `up` recorded it.
    pub host_namespace: Option<crate::hostns::HostNamespace>,
    /// False: an `up` was interrupted; `down` cleans up.
    pub complete: bool,
    pub datapath: DatapathKind,
    pub host_mode: String,
    pub subnet: String,
    pub gateway: String,
    pub gateway_mac: String,
    /// The lab's IPv6 prefix and gateway; None: no IPv6 (`subnet6 = "none"`).
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    /// Set when the lab has IPv6 that cannot leave: root mode with no
    /// global IPv6 address on the uplink.
    pub ipv6_egress_problem: Option<String>,
    pub namespaces: Vec<NamespaceStatus>,
    /// Objects recorded in the state file.
    pub owned: Vec<crate::state::Owned>,
    /// eBPF datapath only: attached programs and pinned maps.
    pub ebpf: Option<crate::inspect::programs::EbpfStatus>,
    /// eBPF datapath only: the control loop (`netlab daemon`): running,
    /// died, stopped or not started, and its last sweep.
    pub daemon: Option<crate::supervise::DaemonStatus>,
    /// Parts of the lab that are gone (removed by hand, ...); `netlab up`
    /// repairs them. Empty for a healthy lab (see health.rs).
    pub missing: Vec<crate::health::Missing>,
    /// Containers attached by the CNI plugin.
    pub containers: Vec<ContainerStatus>,
}

/// One CNI container, as the state file records it.
#[derive(Clone, Debug, Serialize)]
pub struct ContainerStatus {
    /// The container id, shortened as `podman ps` does.
    pub id: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub address: String,
    pub mac: String,
    /// The host-side veth end: its switch port.
    pub port: String,
    /// False: its ADD was interrupted; DEL or GC cleans it.
    pub complete: bool,
}

fn inspect(name: Option<&str>, role: &str, only: Option<&[String]>) -> NamespaceStatus {
    let mut st = NamespaceStatus {
        name: name.map(str::to_string),
        role: role.into(),
        present: name.is_none_or(netns::exists),
        links: Vec::new(),
        routes: Vec::new(),
        error: None,
    };
    if !st.present {
        return st;
    }
    let read = with_netlink(name, |nl| {
        let mut routes = nl.routes()?;
        routes.extend(nl.routes6()?);
        Ok((nl.links()?, routes))
    });
    match read {
        Ok((mut links, mut routes)) => {
            // Root mode: show the lab's devices, not the whole machine.
            if let Some(only) = only {
                links.retain(|l| only.contains(&l.name));
                routes.retain(|r| r.device.as_ref().is_some_and(|d| only.contains(d)));
            }
            st.links = links;
            st.routes = routes;
        }
        Err(e) => st.error = Some(e.to_string()),
    }
    st
}

pub fn collect(state: &LabState) -> LabStatus {
    let plan = &state.plan;
    let mut namespaces = Vec::new();
    match &plan.host {
        HostPlan::Sandbox(s) => {
            namespaces.push(inspect(Some(&s.namespace), "host", None));
            namespaces.push(inspect(Some(&s.internet_namespace), "internet", None));
        }
        HostPlan::Root { uplink } => {
            let mut only: Vec<String> = plan.endpoints.iter().map(|e| e.peer.clone()).collect();
            only.extend(plan.containers.attachments.iter().map(|c| c.peer.clone()));
            only.extend([
                plan.gateway_device.clone(),
                plan.gateway_port.clone(),
                uplink.clone(),
            ]);
            namespaces.push(inspect(None, "host", Some(&only)));
        }
    }
    for e in &plan.endpoints {
        namespaces.push(inspect(Some(&e.namespace), "endpoint", None));
    }
    LabStatus {
        lab: plan.name.clone(),
        host_namespace: state.host.clone(),
        complete: state.complete,
        datapath: plan.datapath,
        host_mode: match plan.host {
            HostPlan::Sandbox(_) => "sandbox".into(),
            HostPlan::Root { .. } => "root".into(),
        },
        subnet: plan.subnet.to_string(),
        gateway: plan.gateway.to_string(),
        gateway_mac: format_mac(&plan.gateway_mac()),
        subnet6: plan.ipv6.map(|v6| v6.subnet.to_string()),
        gateway6: plan.ipv6.map(|v6| v6.gateway.to_string()),
        ipv6_egress_problem: crate::health::ipv6_egress_problem(plan),
        namespaces,
        owned: state.objects.clone(),
        ebpf: ebpf_status(state),
        daemon: (plan.datapath == DatapathKind::Ebpf).then(|| crate::supervise::status(&plan.name)),
        missing: crate::health::missing(state),
        containers: plan
            .containers
            .attachments
            .iter()
            .map(|c| ContainerStatus {
                id: c.short_id().to_string(),
                container_id: c.container_id.clone(),
                netns: c.netns.clone(),
                ifname: c.ifname.clone(),
                address: format!("{}/{}", c.address, plan.subnet.prefix_len),
                mac: format_mac(&c.mac),
                port: c.peer.clone(),
                complete: c.complete,
            })
            .collect(),
    }
}

/// The eBPF section: programs with attach points and ids, maps with fill.
fn ebpf_status(state: &LabState) -> Option<crate::inspect::programs::EbpfStatus> {
    let plan = &state.plan;
    if plan.datapath != DatapathKind::Ebpf {
        return None;
    }
    let lab = crate::inspect::Lab {
        name: plan.name.clone(),
        plan: plan.clone(),
        dir: crate::datapath::ebpf::pin_dir(&plan.name),
    };
    Some(crate::inspect::programs::status(&lab))
}

/// The human-readable report.
pub fn render(s: &LabStatus) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "lab {}: {} datapath, {} host side, subnet {}, gateway {} ({}){}\n",
        s.lab,
        match s.datapath {
            DatapathKind::Kernel => "kernel",
            DatapathKind::Ebpf => "eBPF",
        },
        s.host_mode,
        s.subnet,
        s.gateway,
        s.gateway_mac,
        if s.complete {
            ""
        } else {
            " -- HALF BUILT: run `netlab down`"
        },
    ));
    match (&s.subnet6, &s.gateway6) {
        (Some(subnet6), Some(gateway6)) => {
            out.push_str(&format!("IPv6: subnet {subnet6}, gateway {gateway6}\n"))
        }
        _ => out.push_str("IPv6: off (subnet6 = \"none\")\n"),
    }
    if let Some(why) = &s.ipv6_egress_problem {
        out.push_str(&format!("{why}\n"));
    }
    if let Some(d) = &s.daemon {
        out.push_str(&crate::supervise::render(d));
        out.push('\n');
    }
    if !s.missing.is_empty() {
        out.push_str(&format!(
            "MISSING ({} part{}; `netlab up` repairs them):\n",
            s.missing.len(),
            if s.missing.len() == 1 { "" } else { "s" }
        ));
        for m in &s.missing {
            out.push_str(&format!("  - {m}\n"));
        }
    }
    for ns in &s.namespaces {
        let name = match (&ns.name, &s.host_namespace) {
            (Some(n), _) => n.clone(),
            (None, Some(h)) => format!("({h})"),
            (None, None) => "(the current namespace)".into(),
        };
        out.push_str(&format!("\n{} [{}]", name, ns.role));
        if !ns.present {
            out.push_str(": MISSING\n");
            continue;
        }
        if let Some(e) = &ns.error {
            out.push_str(&format!(": {e}\n"));
            continue;
        }
        out.push('\n');
        let mut t = Table::new();
        t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "link",
            "ifindex",
            "kind",
            "mac",
            "state",
            "addresses",
            "master",
        ]);
        for l in &ns.links {
            let master = l
                .controller
                .and_then(|c| ns.links.iter().find(|x| x.ifindex == c))
                .map(|x| x.name.clone())
                .unwrap_or_default();
            t.add_row(vec![
                Cell::new(&l.name),
                Cell::new(l.ifindex),
                Cell::new(l.kind.as_deref().unwrap_or("")),
                Cell::new(l.mac.as_deref().unwrap_or("")),
                Cell::new(if l.up { "UP" } else { "down" }),
                Cell::new(l.addresses.join(" ")),
                Cell::new(master),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
        for r in &ns.routes {
            out.push_str(&format!(
                "  route {}{}{}\n",
                r.destination,
                r.gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
                r.device
                    .as_deref()
                    .map(|d| format!(" dev {d}"))
                    .unwrap_or_default(),
            ));
        }
    }
    if !s.containers.is_empty() {
        out.push_str("\ncontainers (CNI)\n");
        let mut t = Table::new();
        t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "container",
            "netns",
            "interface",
            "address",
            "mac",
            "port",
            "state",
        ]);
        for c in &s.containers {
            t.add_row(vec![
                Cell::new(&c.id),
                Cell::new(&c.netns),
                Cell::new(&c.ifname),
                Cell::new(&c.address),
                Cell::new(&c.mac),
                Cell::new(&c.port),
                Cell::new(if c.complete {
                    "attached"
                } else {
                    "ADD interrupted"
                }),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    if let Some(ebpf) = &s.ebpf {
        out.push_str(&crate::inspect::programs::render(ebpf));
    }
    out
}
