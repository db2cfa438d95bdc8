//! Installing the eBPF datapath from a [`SwitchPlan`], or re-adopting the
//! pins of a running lab, and rolling back what a failed install created.

use std::{collections::BTreeSet, net::Ipv4Addr, path::Path};

use super::host_addrs::{HostAccess, sync_host_access, uplink_ipv4, uplink_ipv6};
use super::port_maps::{ResolvedPort, resolve, sync_maps};
use super::validate::{check_namespace, validate_lab, validate_ports};
use crate::bpf::{
    Error, Result, fs,
    loader::{self, PORT_PROGRAM},
    maps::SwitchMaps,
    maps6::SwitchMaps6,
};
use crate::datapath::xdp;
use crate::plan::{NatPlan, PortRole, SwitchPlan};

/// Installs (or, when pins already exist, re-adopts) the datapath. Must run
/// on a thread inside `plan.host_netns`.
///
/// Idempotent: on an installed lab the maps are kept (and synchronised with
/// the plan: ports that left are removed), the links of ports in the plan
/// get the freshly loaded program atomically, links of ports no longer in
/// the plan are removed. On failure, the pins this call created are
/// removed (and the directory, if this call created it).
///
/// With `plan.nat`, the source NAT is installed from the same object and
/// pin directory: `nat_config` (the uplink's current address, `vbridge`'s
/// MAC for the fast path, which reads the switch's `endpoints`) and the
/// two uplink programs as pinned tcx links. Its translations live in
/// pinned maps too, so a re-install keeps every established flow.
pub fn install(plan: &SwitchPlan) -> Result<()> {
    validate_lab(&plan.lab)?;
    validate_ports(&plan.ports)?;
    check_namespace(plan.host_netns.as_deref())?;
    let ports = plan.ports.iter().map(resolve).collect::<Result<Vec<_>>>()?;
    let nat = match &plan.nat {
        Some(nat) => Some((nat, uplink_ipv4(&nat.uplink_dev)?)),
        None => None,
    };

    fs::ensure_bpffs()?;
    let dir = fs::lab_dir(&plan.lab);
    let before = fs::entries(&dir)?;
    let created_dir = fs::create_lab_dir(&dir)?;
    let host_access = HostAccess::of(plan);
    install_in(&dir, &ports, nat, &host_access, plan)
        .inspect_err(|_| rollback(&dir, &before, created_dir))
}

fn install_nat(
    ebpf: &mut aya::Ebpf,
    dir: &Path,
    nat: &NatPlan,
    external: Ipv4Addr,
    ports: &[ResolvedPort<'_>],
    uplink_xdp: bool,
) -> Result<()> {
    let gateway_mac = ports
        .iter()
        .find(|p| p.plan.role == PortRole::Gateway)
        .map(|p| p.plan.mac)
        .ok_or_else(|| Error::InvalidPlan("source NAT needs a gateway port".into()))?;
    crate::nat::configure(dir, nat, external, gateway_mac, true)?;
    // NAT66: the uplink's global IPv6 address, read now (as the IPv4 one).
    let external6 = match nat.subnet6 {
        Some(lab6) => uplink_ipv6(&nat.uplink_dev, Some(lab6))?,
        None => None,
    };
    // Off without an address: `up` and `status` say so
    // (`health::ipv6_egress_problem` reads this map).
    crate::nat::configure6(dir, nat, external6, gateway_mac, true)?;
    crate::nat::attach_uplink(ebpf, dir, &nat.uplink_dev)?;
    let xdp = xdp::attach_uplink(ebpf, dir, &nat.uplink_dev, uplink_xdp)?;
    if let xdp::UplinkXdp::Fallback { reason } = &xdp {
        eprintln!(
            "netlab: no XDP on the uplink {}: {reason}; its TC ingress filters alone",
            nat.uplink_dev
        );
    }
    log::debug!("uplink XDP: {xdp:?}");
    // Published ports for the lab's own sockets (host side, hairpin): the
    // namespaces first, then the hooks that read them.
    let gateway = ports
        .iter()
        .find(|p| p.plan.role == PortRole::Gateway)
        .map(|p| p.plan.ipv4)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let endpoints: Vec<&str> = ports
        .iter()
        .filter_map(|p| p.plan.namespace.as_deref())
        .collect();
    crate::nat::sync_netns(dir, &crate::nat::lab_netns(&endpoints, gateway)?)?;
    crate::nat::attach_sock_hooks(ebpf, dir)?;
    Ok(())
}

fn install_in(
    dir: &Path,
    ports: &[ResolvedPort<'_>],
    nat: Option<(&NatPlan, Ipv4Addr)>,
    host_access: &HostAccess,
    switch: &SwitchPlan,
) -> Result<()> {
    let uplink_xdp = switch.uplink_xdp;
    let sizes = match nat {
        Some((plan, _)) => crate::nat::map_sizes(plan).to_vec(),
        None => Vec::new(),
    };
    let mut ebpf = loader::load_object(dir, &sizes)?;
    if let Some((plan, external)) = nat {
        // NAT first: the switch's links below are what make the lab reach
        // the uplink at all.
        install_nat(&mut ebpf, dir, plan, external, ports, uplink_xdp)?;
        crate::nat::sync_published(dir, &switch.published)?;
    }
    let program = loader::load_classifier(&mut ebpf, PORT_PROGRAM)?;

    // Ports that left the plan lose their link first, so they never see a
    // program whose maps no longer list them.
    let wanted: BTreeSet<&str> = ports.iter().map(|p| p.plan.port_dev.as_str()).collect();
    for dev in fs::linked_devices(dir)? {
        if !wanted.contains(dev.as_str()) {
            loader::detach_pinned(&fs::link_pin(dir, &dev))?;
        }
    }

    let mut maps = SwitchMaps::open(dir)?;
    sync_maps(&mut maps, &mut SwitchMaps6::open(dir)?, ports)?;
    // Before the links: a new port never forwards without the rule.
    let blocked = sync_host_access(host_access)?;
    log::debug!("host access: {blocked} host addresses blocked");

    for port in ports {
        let dev = &port.plan.port_dev;
        let change = loader::attach_pinned(program, dev, &fs::link_pin(dir, dev))?;
        log::debug!("port {dev}: link {change:?}");
    }
    loader::pin_program(
        program,
        PORT_PROGRAM,
        &fs::prog_pin(dir),
        &fs::prog_pin_new(dir),
    )?;
    // In front of the TC links, once they are all there.
    let xdp_ports: Vec<xdp::XdpPort> = ports.iter().map(ResolvedPort::xdp).collect();
    let outcome = xdp::attach_ports(&mut ebpf, dir, &xdp_ports, switch.switch_xdp)?;
    if let xdp::PortsXdp::Fallback { dev, reason } = &outcome {
        eprintln!(
            "netlab: no XDP switch: port {dev} refused it: {reason}; the TC switch works alone"
        );
    }
    log::debug!("XDP switch: {outcome:?}");
    Ok(())
}

/// Removes what a failed install pinned: entries that were not there before
/// (links first, so nothing keeps forwarding half-configured).
fn rollback(dir: &Path, before: &BTreeSet<String>, created_dir: bool) {
    if created_dir {
        if let Err(e) = fs::remove_lab_dir(dir) {
            log::warn!("rollback: {e}");
        }
        return;
    }
    let Ok(now) = fs::entries(dir) else { return };
    let mut new: Vec<&String> = now.difference(before).collect();
    new.sort_by_key(|name| !name.starts_with(fs::LINK_PORT_PREFIX));
    for name in new {
        if let Err(e) = fs::remove_pin(&dir.join(name)) {
            log::warn!("rollback: {e}");
        }
    }
}
