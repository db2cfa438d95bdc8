//! The eBPF datapath's control plane: loads the programs, pins maps and tcx
//! links under `/sys/fs/bpf/netlab/<lab>/`, fills the maps from a
//! [`SwitchPlan`], and reads them back for `netlab stats/status`.
//!
//! Everything that names a device (install, add_port, remove_port) must run
//! on a thread inside the lab's host-side namespace: ifindexes and tcx
//! attachments are resolved in the calling thread's namespace.
//!
//! Host access: unless the plan allows it, `host_addrs` lists the host
//! namespace's own IPv4 addresses except the gateway's, and the port program
//! drops IPv4 from endpoints to them (netlab-ebpf/src/switch/host.rs).
//! `install` fills it; the daemon re-reads the addresses after every
//! rtnetlink address event ([`sync_host_access`]).
//!
//! Restart safety: maps, the port program and the links are pinned, so the
//! switch keeps forwarding after netlab exits; `install` on a running lab
//! reloads the program, reuses the pinned maps (state survives) and swaps
//! the program inside the existing links atomically.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use netlab_common::{
    counters::{Counter, PortStats},
    maps::MAX_PORTS,
    switch::{
        FDB_FLAG_STATIC, FdbEntry, HOST_ADDR_BROADCAST, HOST_ADDR_LOCAL, PORT_KIND_ENDPOINT,
        PORT_KIND_GATEWAY, PortInfo, SwitchConfig,
    },
};

use super::{PortPlan, PortRole, SwitchPlan};
use crate::bpf::{
    Error, Result, fs,
    loader::{self, PORT_PROGRAM},
    maps::{Counters, HostAddrs, SwitchMaps},
};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// The lab's pin directory.
pub fn pin_dir(lab: &str) -> PathBuf {
    fs::lab_dir(lab)
}

/// Whether the lab's datapath is installed (its port program is pinned).
pub fn is_installed(lab: &str) -> bool {
    fs::prog_pin(&fs::lab_dir(lab)).exists()
}

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
/// two uplink programs as pinned tcx links. Its translations live in pinned maps too, so a
/// re-install keeps every established flow.
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

/// What the host-access rule needs to know about a lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAccess {
    /// The lab's pin directory.
    pub dir: PathBuf,
    /// Always reachable: the namespaces' router.
    pub gateway: Option<Ipv4Addr>,
    /// `[host] allow_host_access`: nothing is blocked.
    pub allowed: bool,
}

impl HostAccess {
    pub fn of(plan: &SwitchPlan) -> Self {
        Self {
            dir: fs::lab_dir(&plan.lab),
            gateway: plan
                .ports
                .iter()
                .find(|p| p.role == PortRole::Gateway)
                .map(|p| p.ipv4),
            allowed: plan.allow_host_access,
        }
    }
}

/// The host side's IPv4 addresses that endpoints may not reach, read in
/// the calling thread's namespace: every interface address except the
/// gateway's, and the broadcast address of each such address (the host
/// stack delivers those locally as well; the gateway's own subnet
/// broadcast is the lab segment's and stays reachable, like
/// 255.255.255.255). Keys in network order, values HOST_ADDR_*.
pub fn blocked_host_addrs(gateway: Option<Ipv4Addr>) -> Result<BTreeMap<u32, u8>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|source| Error::NoDevice {
        dev: "(host interfaces)".to_owned(),
        source,
    })?;
    let mut out = BTreeMap::new();
    let mut broadcasts = Vec::new();
    for a in addrs {
        let Some(ip) = a
            .address
            .and_then(|s| s.as_sockaddr_in().map(|sin| sin.ip()))
        else {
            continue;
        };
        if Some(ip) == gateway {
            continue;
        }
        out.insert(ipv4_key(ip), HOST_ADDR_LOCAL);
        if let Some(b) = a
            .broadcast
            .and_then(|s| s.as_sockaddr_in().map(|sin| sin.ip()))
            && !b.is_broadcast()
            && !b.is_unspecified()
        {
            broadcasts.push(b);
        }
    }
    for b in broadcasts {
        // An address wins over a broadcast address with the same value.
        out.entry(ipv4_key(b)).or_insert(HOST_ADDR_BROADCAST);
    }
    Ok(out)
}

/// Makes `host_addrs` match the host namespace's addresses now (empty when
/// host access is allowed). Must run on a thread inside the host
/// namespace. Returns how many addresses are blocked.
pub fn sync_host_access(access: &HostAccess) -> Result<usize> {
    let wanted = if access.allowed {
        BTreeMap::new()
    } else {
        blocked_host_addrs(access.gateway)?
    };
    HostAddrs::open(&access.dir)?.sync(&wanted)?;
    Ok(wanted.len())
}

/// The entries of `host_addrs`: (address, HOST_ADDR_*), sorted.
pub fn host_addrs(lab: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    validate_lab(lab)?;
    let mut v: Vec<_> = HostAddrs::open(&installed_dir(lab)?)?
        .entries()?
        .into_iter()
        .map(|(k, kind)| (Ipv4Addr::from(k.to_ne_bytes()), kind))
        .collect();
    v.sort();
    Ok(v)
}

/// The first IPv4 address of `dev` in the calling thread's namespace: the
/// address the NAT masquerades with.
pub fn uplink_ipv4(dev: &str) -> Result<Ipv4Addr> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|source| Error::NoDevice {
        dev: dev.to_owned(),
        source,
    })?;
    addrs
        .filter(|a| a.interface_name == dev)
        .find_map(|a| a.address?.as_sockaddr_in().map(|sin| sin.ip()))
        .ok_or_else(|| Error::NoUplinkAddress {
            dev: dev.to_owned(),
        })
}

fn install_nat(
    ebpf: &mut aya::Ebpf,
    dir: &Path,
    nat: &super::NatPlan,
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
    crate::nat::attach_uplink(ebpf, dir, &nat.uplink_dev)?;
    let xdp = super::xdp::attach_uplink(ebpf, dir, &nat.uplink_dev, uplink_xdp)?;
    if let super::xdp::UplinkXdp::Fallback { reason } = &xdp {
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
    nat: Option<(&super::NatPlan, Ipv4Addr)>,
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
    sync_maps(&mut maps, ports)?;
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
    let xdp_ports: Vec<super::xdp::XdpPort> = ports.iter().map(ResolvedPort::xdp).collect();
    let outcome = super::xdp::attach_ports(&mut ebpf, dir, &xdp_ports, switch.switch_xdp)?;
    if let super::xdp::PortsXdp::Fallback { dev, reason } = &outcome {
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

/// Adds one port to a running lab (`netlab attach`), or refreshes it when
/// it is already there. Must run in the host namespace. Other ports are
/// not touched.
pub fn add_port(lab: &str, port: &PortPlan) -> Result<()> {
    validate_lab(lab)?;
    validate_ports(std::slice::from_ref(port))?;
    let dir = installed_dir(lab)?;
    let resolved = resolve(port)?;
    let mut maps = SwitchMaps::open(&dir)?;
    let existing = maps.ports()?;

    for (ifindex, info) in &existing {
        if *ifindex == resolved.ifindex {
            continue;
        }
        let clash = if info.mac == port.mac {
            Some(format!("MAC {}", fmt_mac(&port.mac)))
        } else if info.ipv4 == ipv4_key(port.ipv4) {
            Some(format!("address {}", port.ipv4))
        } else if port.role == PortRole::Gateway && info.kind == PORT_KIND_GATEWAY {
            Some("the gateway role".to_owned())
        } else {
            None
        };
        if let Some(what) = clash {
            return Err(Error::Conflict {
                lab: lab.to_owned(),
                detail: format!(
                    "{what} of port {} is already used by the port with ifindex {ifindex}",
                    port.port_dev
                ),
            });
        }
    }

    let was_present = existing.iter().any(|(i, _)| *i == resolved.ifindex);
    let used: BTreeMap<u32, u32> = existing.iter().map(|(i, p)| (*i, p.slot)).collect();
    let (slot, fresh) = slot_for(resolved.ifindex, &used)?;
    if fresh {
        maps.reset_port_stats(slot)?;
    }
    let info = resolved.info(slot);
    maps.write_port(&info)?;

    let mut program = loader::open_pinned_classifier(&fs::prog_pin(&dir))?;
    let attached = loader::attach_pinned(
        &mut program,
        &port.port_dev,
        &fs::link_pin(&dir, &port.port_dev),
    );
    if let Err(e) = attached {
        if !was_present {
            let _ = erase_port(&mut maps, resolved.ifindex);
        }
        return Err(e);
    }
    super::xdp::join_port(&dir, &resolved.xdp())?;
    if port.role == PortRole::Endpoint
        && nat_installed(&dir)
        && let (Some(ns), Some(gateway)) = (&port.namespace, gateway_of(&maps)?)
    {
        let (cookie, value) = crate::nat::endpoint_netns(ns, gateway)?;
        crate::nat::set_netns(&dir, cookie, Some(value))?;
    }
    Ok(())
}

/// The gateway port's address, from the ports map.
fn gateway_of(maps: &SwitchMaps) -> Result<Option<Ipv4Addr>> {
    Ok(maps
        .ports()?
        .into_iter()
        .find(|(_, p)| p.kind == PORT_KIND_GATEWAY)
        .map(|(_, p)| Ipv4Addr::from(p.ipv4.to_ne_bytes())))
}

/// Whether the lab's datapath includes the source NAT (its config is pinned).
fn nat_installed(dir: &Path) -> bool {
    dir.join(netlab_common::nat::NAT_CONFIG_MAP).exists()
}

/// Removes one port from a running lab (`netlab detach`): its link, then
/// its map entries (port, flood slot, address, FDB entries pointing to it).
/// Works when the device is already gone. Removing a port that is not
/// there succeeds.
pub fn remove_port(lab: &str, port: &PortPlan) -> Result<()> {
    validate_lab(lab)?;
    let dir = installed_dir(lab)?;
    super::xdp::detach_port(&dir, &port.port_dev)?;
    loader::detach_pinned(&fs::link_pin(&dir, &port.port_dev))?;

    let mut maps = SwitchMaps::open(&dir)?;
    let ports = maps.ports()?;
    // By ifindex while the device exists; by MAC and address once it is
    // gone (its namespace was deleted, taking the veth pair along).
    let by_index = nix::net::if_::if_nametoindex(port.port_dev.as_str()).ok();
    let found = ports
        .iter()
        .find(|(i, _)| Some(*i) == by_index)
        .or_else(|| {
            ports
                .iter()
                .find(|(_, p)| p.mac == port.mac && p.ipv4 == ipv4_key(port.ipv4))
        });
    if let Some((ifindex, _)) = found {
        erase_port(&mut maps, *ifindex)?;
    }
    if nat_installed(&dir) {
        // While the namespace still exists (detach removes it after).
        if let Some(ns) = &port.namespace
            && crate::netns::exists(ns)
        {
            let (cookie, _) = crate::nat::endpoint_netns(ns, Ipv4Addr::UNSPECIFIED)?;
            crate::nat::set_netns(&dir, cookie, None)?;
        }
    }
    Ok(())
}

/// Makes the lab's published ports exactly `published` (`netlab
/// publish/unpublish`); translations of ports that went away are dropped.
/// Runs in any namespace (maps only).
pub fn set_published(lab: &str, published: &[super::PublishedPort]) -> Result<()> {
    validate_lab(lab)?;
    let dir = installed_dir(lab)?;
    let dropped = crate::nat::sync_published(&dir, published)?;
    log::debug!(
        "published ports: {} set, {dropped} translations dropped",
        published.len()
    );
    Ok(())
}

/// Removes every pinned object of the lab (links first, which detaches the
/// programs). Succeeds when nothing is there.
pub fn uninstall(lab: &str) -> Result<()> {
    validate_lab(lab)?;
    fs::remove_lab_dir(&fs::lab_dir(lab))
}

/// Switches the port program's frame events (`netlab trace`) on or off,
/// at run time.
pub fn set_trace(lab: &str, on: bool) -> Result<()> {
    set_trace_bit(lab, netlab_common::switch::TRACE_FRAMES, on)
}

/// Sets or clears one `SwitchConfig::trace` bit (TRACE_FRAMES: `netlab
/// trace`; TRACE_EVENTS: `netlab monitor`), leaving the others.
pub fn set_trace_bit(lab: &str, bit: u32, on: bool) -> Result<()> {
    update_config(lab, |c| {
        if on {
            c.trace |= bit;
        } else {
            c.trace &= !bit;
        }
    })
}

/// Switches MAC learning on or off, at run time.
pub fn set_learning(lab: &str, on: bool) -> Result<()> {
    update_config(lab, |c| c.learning = u32::from(on))
}

/// The run-time switches of a lab.
pub fn config(lab: &str) -> Result<SwitchConfig> {
    SwitchMaps::open(&installed_dir(lab)?)?.config()
}

fn update_config(lab: &str, change: impl FnOnce(&mut SwitchConfig)) -> Result<()> {
    validate_lab(lab)?;
    let mut maps = SwitchMaps::open(&installed_dir(lab)?)?;
    let mut config = maps.config()?;
    change(&mut config);
    maps.set_config(config)
}

/// Every counter of the lab, summed over CPUs.
pub fn counters(lab: &str) -> Result<Vec<(Counter, u64)>> {
    validate_lab(lab)?;
    Counters::open(&installed_dir(lab)?)?.all()
}

/// One counter of the lab, summed over CPUs.
pub fn counter(lab: &str, counter: Counter) -> Result<u64> {
    validate_lab(lab)?;
    Counters::open(&installed_dir(lab)?)?.get(counter)
}

/// A switch port as the maps describe it, with its statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    pub ifindex: u32,
    pub slot: u32,
    pub role: PortRole,
    pub mac: [u8; 6],
    pub ipv4: Ipv4Addr,
    pub stats: PortStats,
}

/// Every port of the lab with its statistics (summed over CPUs), by slot.
pub fn ports(lab: &str) -> Result<Vec<PortStatus>> {
    validate_lab(lab)?;
    let maps = SwitchMaps::open(&installed_dir(lab)?)?;
    let mut out = maps
        .ports()?
        .into_iter()
        .map(|(ifindex, p)| {
            Ok(PortStatus {
                ifindex,
                slot: p.slot,
                role: if p.kind == PORT_KIND_GATEWAY {
                    PortRole::Gateway
                } else {
                    PortRole::Endpoint
                },
                mac: p.mac,
                ipv4: Ipv4Addr::from(p.ipv4.to_ne_bytes()),
                stats: maps.port_stats(p.slot)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|p| p.slot);
    Ok(out)
}

/// The FDB: MAC → (port ifindex, static?).
pub fn fdb(lab: &str) -> Result<Vec<([u8; 6], FdbEntry)>> {
    validate_lab(lab)?;
    let maps = SwitchMaps::open(&installed_dir(lab)?)?;
    let mut out: Vec<_> = maps
        .fdb_entries()?
        .into_iter()
        .map(|(k, v)| (k.mac, v))
        .collect();
    out.sort_by_key(|(mac, _)| *mac);
    Ok(out)
}

// ----------------------------------------------------------------------
// Map synchronisation

/// A planned port with its devices resolved to ifindexes.
struct ResolvedPort<'a> {
    plan: &'a PortPlan,
    ifindex: u32,
    deliver_ifindex: u32,
}

impl ResolvedPort<'_> {
    fn xdp(&self) -> super::xdp::XdpPort {
        let (peer_netns, peer_dev) = match self.plan.role {
            PortRole::Endpoint => (
                self.plan.namespace.clone(),
                self.plan.peer_dev.clone().unwrap_or_default(),
            ),
            PortRole::Gateway => (None, self.plan.deliver_dev.clone().unwrap_or_default()),
        };
        super::xdp::XdpPort {
            dev: self.plan.port_dev.clone(),
            ifindex: self.ifindex,
            peer_netns,
            peer_dev,
        }
    }

    fn info(&self, slot: u32) -> PortInfo {
        PortInfo {
            ifindex: self.ifindex,
            deliver_ifindex: self.deliver_ifindex,
            ipv4: ipv4_key(self.plan.ipv4),
            slot,
            mac: self.plan.mac,
            kind: kind(self.plan.role),
            _pad: 0,
        }
    }
}

fn resolve(port: &PortPlan) -> Result<ResolvedPort<'_>> {
    let ifindex = ifindex(&port.port_dev)?;
    let deliver_ifindex = match (port.role, &port.deliver_dev) {
        (PortRole::Gateway, Some(dev)) => self::ifindex(dev)?,
        _ => ifindex,
    };
    Ok(ResolvedPort {
        plan: port,
        ifindex,
        deliver_ifindex,
    })
}

fn ifindex(dev: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(dev).map_err(|source| Error::NoDevice {
        dev: dev.to_owned(),
        source,
    })
}

/// Makes the maps describe exactly `ports`: new and changed entries are
/// written first, then what no longer belongs is deleted, so a running lab
/// never loses a path it keeps. Slots of ports that stay are kept (their
/// statistics too).
fn sync_maps(maps: &mut SwitchMaps, ports: &[ResolvedPort<'_>]) -> Result<()> {
    let existing: BTreeMap<u32, u32> = maps
        .ports()?
        .into_iter()
        .map(|(i, p)| (i, p.slot))
        .filter(|(i, slot)| *slot < MAX_PORTS && ports.iter().any(|p| p.ifindex == *i))
        .collect();
    let mut assigned: BTreeMap<u32, u32> = existing.clone();
    let mut infos = Vec::with_capacity(ports.len());
    for port in ports {
        let (slot, fresh) = slot_for(port.ifindex, &assigned)?;
        assigned.insert(port.ifindex, slot);
        if fresh {
            maps.reset_port_stats(slot)?;
        }
        infos.push(port.info(slot));
    }
    for info in &infos {
        maps.write_port(info)?;
    }

    let keep_ports: BTreeSet<u32> = infos.iter().map(|p| p.ifindex).collect();
    let keep_slots: BTreeSet<u32> = infos.iter().map(|p| p.slot).collect();
    let keep_ips: BTreeSet<u32> = infos.iter().map(|p| p.ipv4).collect();
    let keep_macs: BTreeSet<[u8; 6]> = infos.iter().map(|p| p.mac).collect();

    for (ifindex, _) in maps.ports()? {
        if !keep_ports.contains(&ifindex) {
            remove_key(&mut maps.ports, &ifindex, netlab_common::maps::PORTS_MAP)?;
        }
    }
    for slot in 0..MAX_PORTS {
        if !keep_slots.contains(&slot) {
            maps.flood_ports
                .set(slot, PortInfo::default(), 0)
                .map_err(Error::map(netlab_common::maps::FLOOD_MAP))?;
        }
    }
    for (ip, _) in maps.endpoints()? {
        if !keep_ips.contains(&ip) {
            remove_key(&mut maps.endpoints, &ip, netlab_common::maps::ENDPOINTS_MAP)?;
        }
    }
    for (key, entry) in maps.fdb_entries()? {
        let stale = if entry.flags & FDB_FLAG_STATIC != 0 {
            !keep_macs.contains(&key.mac)
        } else {
            !keep_ports.contains(&entry.port_ifindex)
        };
        if stale {
            remove_key(&mut maps.fdb, &key, netlab_common::maps::FDB_MAP)?;
        }
    }
    Ok(())
}

/// The slot of `ifindex`: its current one, or the lowest free one (then
/// `fresh` is true and its statistics must be reset).
fn slot_for(ifindex: u32, assigned: &BTreeMap<u32, u32>) -> Result<(u32, bool)> {
    if let Some(slot) = assigned.get(&ifindex) {
        return Ok((*slot, false));
    }
    let used: BTreeSet<u32> = assigned.values().copied().collect();
    (0..MAX_PORTS)
        .find(|s| !used.contains(s))
        .map(|s| (s, true))
        .ok_or_else(|| Error::InvalidPlan(format!("more than {MAX_PORTS} switch ports")))
}

/// Deletes every map entry of the port with `ifindex`.
fn erase_port(maps: &mut SwitchMaps, ifindex: u32) -> Result<()> {
    use netlab_common::maps::{ENDPOINTS_MAP, FDB_MAP, FLOOD_MAP, PORTS_MAP};
    if let Some((_, info)) = maps.ports()?.into_iter().find(|(i, _)| *i == ifindex) {
        remove_key(&mut maps.ports, &ifindex, PORTS_MAP)?;
        let slot = info.slot;
        if slot < MAX_PORTS {
            let current = maps
                .flood_ports
                .get(&slot, 0)
                .map_err(Error::map(FLOOD_MAP))?;
            if current.ifindex == ifindex {
                maps.flood_ports
                    .set(slot, PortInfo::default(), 0)
                    .map_err(Error::map(FLOOD_MAP))?;
            }
        }
    }
    for (ip, endpoint) in maps.endpoints()? {
        if endpoint.port_ifindex == ifindex {
            remove_key(&mut maps.endpoints, &ip, ENDPOINTS_MAP)?;
        }
    }
    for (key, entry) in maps.fdb_entries()? {
        if entry.port_ifindex == ifindex {
            remove_key(&mut maps.fdb, &key, FDB_MAP)?;
        }
    }
    Ok(())
}

/// Deletes a hash map key; a key that is already gone is fine.
fn remove_key<K: aya::Pod, V: aya::Pod>(
    map: &mut aya::maps::HashMap<aya::maps::MapData, K, V>,
    key: &K,
    name: &'static str,
) -> Result<()> {
    match map.remove(key) {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::map(name)(e)),
    }
}

// ----------------------------------------------------------------------
// Validation (before anything touches the kernel)

fn installed_dir(lab: &str) -> Result<PathBuf> {
    let dir = fs::lab_dir(lab);
    if fs::prog_pin(&dir).exists() {
        Ok(dir)
    } else {
        Err(Error::NotInstalled {
            lab: lab.to_owned(),
            path: dir,
        })
    }
}

/// Lab names become a directory name under bpffs, which refuses '.'.
fn validate_lab(lab: &str) -> Result<()> {
    let ok = !lab.is_empty()
        && lab.len() <= 64
        && lab
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidPlan(format!(
            "lab name {lab:?}: use 1-64 letters, digits, '-' or '_'"
        )))
    }
}

fn validate_ifname(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidPlan(format!(
            "{what} {name:?} is not a valid interface name (1-{IFNAME_MAX} bytes, no '/', ':' or spaces)"
        )))
    }
}

fn validate_ports(ports: &[PortPlan]) -> Result<()> {
    let invalid = |msg: String| Err(Error::InvalidPlan(msg));
    if ports.len() > MAX_PORTS as usize {
        return invalid(format!("{} ports; at most {MAX_PORTS}", ports.len()));
    }
    let mut devs = BTreeSet::new();
    let mut macs = BTreeSet::new();
    let mut ips = BTreeSet::new();
    let mut gateways = 0;
    for port in ports {
        validate_ifname("port device", &port.port_dev)?;
        let mac = fmt_mac(&port.mac);
        if port.mac == [0; 6] || port.mac[0] & 1 != 0 {
            return invalid(format!(
                "port {}: MAC {mac} is not a unicast address",
                port.port_dev
            ));
        }
        let ip = port.ipv4;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            return invalid(format!(
                "port {}: {ip} is not a host address",
                port.port_dev
            ));
        }
        match (port.role, &port.deliver_dev) {
            (PortRole::Gateway, Some(dev)) => {
                validate_ifname("gateway device", dev)?;
                if *dev == port.port_dev {
                    return invalid(format!(
                        "gateway port {}: the delivery device must be the other end (vbridge)",
                        port.port_dev
                    ));
                }
                gateways += 1;
            }
            (PortRole::Gateway, None) => {
                return invalid(format!(
                    "gateway port {}: no delivery device (vbridge) given",
                    port.port_dev
                ));
            }
            (PortRole::Endpoint, Some(dev)) => {
                return invalid(format!(
                    "endpoint port {}: a delivery device ({dev}) is only for the gateway",
                    port.port_dev
                ));
            }
            (PortRole::Endpoint, None) => {}
        }
        if !devs.insert(port.port_dev.as_str()) {
            return invalid(format!("port device {} listed twice", port.port_dev));
        }
        if !macs.insert(port.mac) {
            return invalid(format!("MAC {mac} used by two ports"));
        }
        if !ips.insert(ip) {
            return invalid(format!("address {ip} used by two ports"));
        }
    }
    if gateways > 1 {
        return invalid(format!("{gateways} gateway ports; at most one"));
    }
    Ok(())
}

/// Refuses to run from the wrong network namespace: ifindexes and tcx
/// attachments would silently refer to other devices. `None` (root mode)
/// is the namespace of the netlab process itself, the one it was started
/// in or entered at start (crate::hostns), whatever PID 1's is.
fn check_namespace(expected: Option<&str>) -> Result<()> {
    let (path, name) = match expected {
        Some(ns) => (PathBuf::from("/run/netns").join(ns), ns.to_owned()),
        None => (
            PathBuf::from("/proc/self/ns/net"),
            "the netlab process's own namespace (mode = \"root\")".to_owned(),
        ),
    };
    let wrong = || Error::WrongNamespace {
        expected: name.clone(),
    };
    let target = std::fs::metadata(&path).map_err(|_| wrong())?;
    let current = std::fs::metadata("/proc/thread-self/ns/net").map_err(|_| wrong())?;
    if (target.dev(), target.ino()) == (current.dev(), current.ino()) {
        Ok(())
    } else {
        Err(wrong())
    }
}

fn kind(role: PortRole) -> u8 {
    match role {
        PortRole::Endpoint => PORT_KIND_ENDPOINT,
        PortRole::Gateway => PORT_KIND_GATEWAY,
    }
}

/// An IPv4 address as the maps store it: network order, as in the packet.
pub fn ipv4_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    crate::config::format_mac(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(dev: &str, role: PortRole, mac_last: u8, ip_last: u8) -> PortPlan {
        PortPlan {
            port_dev: dev.to_owned(),
            role,
            mac: [0x02, 0, 0, 0, 0, mac_last],
            ipv4: Ipv4Addr::new(10, 0, 0, ip_last),
            namespace: None,
            deliver_dev: (role == PortRole::Gateway).then(|| "vbridge".to_owned()),
            peer_dev: None,
        }
    }

    #[test]
    fn plans_are_validated() {
        let ok = [
            port("veth-1-br", PortRole::Endpoint, 1, 1),
            port("vbridge-p", PortRole::Gateway, 5, 5),
        ];
        validate_ports(&ok).unwrap();

        let dup_ip = [
            port("a", PortRole::Endpoint, 1, 1),
            port("b", PortRole::Endpoint, 2, 1),
        ];
        assert!(validate_ports(&dup_ip).is_err());
        let dup_mac = [
            port("a", PortRole::Endpoint, 1, 1),
            port("b", PortRole::Endpoint, 1, 2),
        ];
        assert!(validate_ports(&dup_mac).is_err());
        let two_gw = [
            port("a", PortRole::Gateway, 1, 1),
            port("b", PortRole::Gateway, 2, 2),
        ];
        assert!(validate_ports(&two_gw).is_err());
        let mut long = port("a-very-long-device-name", PortRole::Endpoint, 1, 1);
        assert!(validate_ports(std::slice::from_ref(&long)).is_err());
        long.port_dev = "ok".into();
        long.mac = [0xff; 6];
        assert!(validate_ports(std::slice::from_ref(&long)).is_err());
        let mut gw = port("g", PortRole::Gateway, 1, 1);
        gw.deliver_dev = None;
        assert!(validate_ports(&[gw]).is_err());

        assert!(validate_lab("netlab").is_ok());
        assert!(validate_lab("../etc").is_err());
        assert!(validate_lab("").is_err());
    }

    #[test]
    fn slots_are_stable_and_lowest_free() {
        let mut assigned = BTreeMap::new();
        assigned.insert(10, 0);
        assigned.insert(11, 2);
        assert_eq!(slot_for(10, &assigned).unwrap(), (0, false));
        assert_eq!(slot_for(12, &assigned).unwrap(), (1, true));
        let full: BTreeMap<u32, u32> = (0..MAX_PORTS).map(|s| (100 + s, s)).collect();
        assert!(slot_for(1, &full).is_err());
    }

    #[test]
    fn addresses_are_stored_in_network_order() {
        let key = ipv4_key(Ipv4Addr::new(192, 168, 28, 5));
        assert_eq!(key.to_ne_bytes(), [192, 168, 28, 5]);
        assert_eq!(fmt_mac(&[0x02, 0, 0xab, 0, 0, 1]), "02:00:ab:00:00:01");
    }
}
