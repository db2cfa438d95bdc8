//! Building a lab, step by step, recording every object in the state file
//! *before* creating it (so `down` can always remove it), with the test
//! hooks between the steps.

use super::hooks::{FAIL_AT_ENV, PAUSE_AT_ENV};
use super::ipv6;
use super::result::{LabError, ebpf_err};
use crate::config::ConfigError;
use crate::datapath::kernel::{Family, Masqueraded};
use crate::datapath::{self, kernel};
use crate::names::mac_for;
use crate::netns;
use crate::plan::{DatapathKind, EndpointPlan, LabPlan, SandboxPlan};
use crate::publish::host;
use crate::state::{LabLock, LabState, Owned};
use crate::sysctl;
use crate::topology::{Netlink, TopologyError, with_netlink};

/// Applies the test hooks after `step`.
pub(super) fn after_step(step: &str) -> Result<(), LabError> {
    if std::env::var(PAUSE_AT_ENV).is_ok_and(|s| s == step) {
        eprintln!(
            "netlab: paused after step {step} ({PAUSE_AT_ENV}), pid {}",
            std::process::id()
        );
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    if std::env::var(FAIL_AT_ENV).is_ok_and(|s| s == step) {
        return Err(LabError::Injected(step.to_string()));
    }
    Ok(())
}

/// Builds a lab, recording as it goes (also what `repair` rebuilds with).
pub(crate) struct Builder {
    pub(crate) lock: LabLock,
    pub(crate) state: LabState,
}

impl Builder {
    pub(super) fn plan(&self) -> &LabPlan {
        &self.state.plan
    }

    /// Records `obj` in the state file before it is created.
    pub(super) fn record(&mut self, obj: Owned) -> Result<(), LabError> {
        self.state.objects.push(obj);
        self.lock.save(&self.state)?;
        Ok(())
    }

    /// Forgets the last record: its creation failed without creating it.
    fn unrecord_last(&mut self) -> Result<(), LabError> {
        self.state.objects.pop();
        self.lock.save(&self.state)?;
        Ok(())
    }

    fn create_namespace(&mut self, name: &str) -> Result<(), LabError> {
        self.record(Owned::Namespace { name: name.into() })?;
        match netns::create(name) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Exists: someone else's (created since the check); never
                // delete it. Other errors: nothing was created.
                self.unrecord_last()?;
                Err(e.into())
            }
        }
    }

    /// Records a link in the host namespace (root mode); links inside the
    /// lab's own namespaces go away with them.
    fn record_host_link(&mut self, name: &str) -> Result<(), LabError> {
        if self.plan().host_netns().is_none() {
            self.record(Owned::Link {
                netns: None,
                name: name.into(),
            })?;
        }
        Ok(())
    }

    /// Sets sysctl `key` in `host` to `new(old value)`, recording the old
    /// value first so `down` (or a rollback) writes it back. `None`, or the
    /// value it already has: nothing is changed and nothing recorded (in
    /// root mode these are the user's settings).
    fn change_sysctl(
        &mut self,
        host: Option<&str>,
        key: &str,
        new: impl FnOnce(&str) -> Option<String>,
    ) -> Result<(), LabError> {
        let old_value = sysctl::read(host, key)?;
        let Some(value) = new(&old_value).filter(|v| *v != old_value) else {
            return Ok(());
        };
        self.record(Owned::Sysctl {
            netns: host.map(str::to_string),
            key: key.into(),
            old_value,
        })?;
        sysctl::write(host, key, &value)?;
        Ok(())
    }

    pub(super) fn build(&mut self) -> Result<(), LabError> {
        let plan = self.plan().clone();
        let host = plan.host_netns().map(str::to_string);
        let host = host.as_deref();

        for ns in plan.namespaces() {
            self.create_namespace(&ns)?;
        }
        after_step("namespaces")?;

        if let Some(s) = plan.sandbox() {
            build_sandbox_uplink(host, s, plan.ipv6.is_some())?;
        }
        after_step("uplink")?;

        self.change_sysctl(host, "net.ipv4.ip_forward", |_| Some("1".into()))?;
        if plan.ipv6.is_some() {
            self.enable_ipv6_forwarding(host, &plan)?;
        }
        after_step("ip-forward")?;

        for e in &plan.endpoints {
            self.build_endpoint(e)?;
            after_step(&format!("endpoint:{}", e.namespace))?;
        }
        after_step("endpoints")?;

        self.record_host_link(&plan.gateway_device)?;
        self.build_gateway(host, &plan)?;
        after_step("gateway")?;

        match plan.datapath {
            DatapathKind::Kernel => self.build_kernel_datapath(host, &plan)?,
            DatapathKind::Ebpf => self.build_ebpf_datapath(host, &plan)?,
        }
        after_step("datapath")?;

        if !plan.publications.is_empty() {
            self.publish_lab_file_ports(host, &plan)?;
        }
        Ok(())
    }

    /// The gateway device (kernel: the bridge; eBPF: `vbridge` peered with
    /// its switch port) with the gateway's addresses, up.
    fn build_gateway(&mut self, host: Option<&str>, plan: &LabPlan) -> Result<(), LabError> {
        let devices = match plan.datapath {
            DatapathKind::Kernel => {
                with_netlink(host, |nl| Ok(kernel::create_bridge(nl, plan)))??;
                vec![plan.gateway_device.as_str()]
            }
            DatapathKind::Ebpf => {
                with_netlink(host, |nl| create_gateway_veth(nl, plan))?;
                vec![plan.gateway_device.as_str(), plan.gateway_port.as_str()]
            }
        };
        // Before they are up: the link-local is made on up.
        for dev in devices.iter().rev() {
            ipv6::device(host, dev, plan.ipv6.is_some())?;
        }
        if host.is_none() && plan.ipv6.is_some() {
            // Root mode: what the lab sends out enters the host stack here
            // (see `enable_ipv6_forwarding`); the setting goes with the device.
            let key = sysctl::ipv6_device_key(&plan.gateway_device, "force_forwarding");
            sysctl::write(None, &key, "1")?;
        }
        with_netlink(host, |nl| {
            for dev in devices.iter().rev() {
                nl.set_up(dev)?;
            }
            ipv6::gateway(nl, plan)
        })?;
        Ok(())
    }

    /// The host side forwards IPv6: the sandbox's host namespace as a
    /// whole (`all.forwarding`, as `ip_forward` for IPv4); in root mode
    /// only the lab's gateway device and the uplink
    /// (`force_forwarding`), since `all.forwarding = 1` would make the
    /// machine a router that ignores Router Advertisements on every
    /// interface, and lose its own IPv6 default route.
    fn enable_ipv6_forwarding(
        &mut self,
        host: Option<&str>,
        plan: &LabPlan,
    ) -> Result<(), LabError> {
        if host.is_some() {
            return self.change_sysctl(host, "net.ipv6.conf.all.forwarding", |_| Some("1".into()));
        }
        let key = sysctl::ipv6_device_key(plan.uplink(), "force_forwarding");
        self.change_sysctl(None, &key, |_| Some("1".into()))
    }

    /// The bridge's ports and the MASQUERADE rules, IPv4 and IPv6 (and the
    /// nat tables when this lab creates them).
    fn build_kernel_datapath(
        &mut self,
        host: Option<&str>,
        plan: &LabPlan,
    ) -> Result<(), LabError> {
        with_netlink(host, |nl| {
            Ok(plan
                .endpoints
                .iter()
                .try_for_each(|e| kernel::enslave(nl, plan, &e.peer)))
        })??;
        for subnet in Masqueraded::of(plan) {
            let family = subnet.family();
            if family == Family::Ipv6 && crate::health::ipv6_egress_problem(plan).is_some() {
                // Root mode, no global IPv6 address on the uplink: nothing to
                // masquerade to (`up` and `status` say so).
                continue;
            }
            if !kernel::nat_table_exists(family, host)? {
                self.record(Owned::NatTable {
                    netns: host.map(str::to_string),
                    ipv6: family == Family::Ipv6,
                })?;
            }
            self.record(Owned::Masquerade {
                netns: host.map(str::to_string),
                subnet: subnet.to_string(),
            })?;
            kernel::add_masquerade(host, &subnet)?;
        }
        Ok(())
    }

    fn build_ebpf_datapath(&mut self, host: Option<&str>, plan: &LabPlan) -> Result<(), LabError> {
        // The NAT port range is reserved on the host so host sockets never
        // pick a port the NAT hands out. Added to (not replacing) any
        // existing list; down restores it.
        let nat = Some((plan.nat.port_min, plan.nat.port_max));
        self.change_sysctl(host, host::RESERVED_PORTS_KEY, |old| {
            Some(host::reserved_ports(old, nat, &[]))
        })?;
        self.record(Owned::EbpfDatapath {
            netns: host.map(str::to_string),
        })?;
        let switch = plan.switch_plan();
        netns::run_in(host, || datapath::ebpf::install(&switch))?.map_err(ebpf_err)?;
        Ok(())
    }

    /// The lab file's published ports: the host side's sockets are checked
    /// now that it exists (root mode: the machine's).
    fn publish_lab_file_ports(
        &mut self,
        host: Option<&str>,
        plan: &LabPlan,
    ) -> Result<(), LabError> {
        let facts = host::read(host)?;
        let listed: Vec<_> = plan
            .publications
            .iter()
            .map(|p| (format!("publish {p}"), p.clone()))
            .collect();
        let problems = host::check(plan, &facts, &[], &listed);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems).into());
        }
        super::publish::apply(&self.lock, &mut self.state, plan.publications.clone())
    }

    /// One endpoint namespace: veth pair (inside end created directly in
    /// the namespace), MAC, address, links up, default route via the gateway.
    pub(crate) fn build_endpoint(&mut self, e: &EndpointPlan) -> Result<(), LabError> {
        let plan = self.plan().clone();
        let host = plan.host_netns();
        if !netns::exists(&e.namespace) {
            self.create_namespace(&e.namespace)?;
        }
        // Before its veth exists, so the veth starts with the settings.
        ipv6::namespace_settings(&e.namespace, plan.ipv6.is_some())?;
        self.record_host_link(&e.peer)?;
        let fd = netns::open(&e.namespace)?;
        with_netlink(host, |nl| {
            nl.create_veth(
                &e.peer,
                None,
                &e.veth,
                Some(e.mac),
                Some(std::os::fd::AsFd::as_fd(&fd)),
            )
        })?;
        ipv6::device(host, &e.peer, plan.ipv6.is_some())?;
        with_netlink(host, |nl| nl.set_up(&e.peer))?;
        with_netlink(Some(&e.namespace), |nl| {
            nl.set_up("lo")?;
            nl.add_address(&e.veth, e.address, plan.subnet.prefix_len)?;
            nl.set_up(&e.veth)?;
            nl.add_default_route(plan.gateway)?;
            ipv6::endpoint(nl, &plan, e)
        })?;
        Ok(())
    }
}

/// The sandbox's uplink: a veth pair from the host namespace to the
/// internet namespace, addressed, up, and the host's default route over it.
fn build_sandbox_uplink(
    host: Option<&str>,
    s: &SandboxPlan,
    with_ipv6: bool,
) -> Result<(), LabError> {
    // Both namespaces are the lab's: their defaults, before any device.
    for ns in [&s.namespace, &s.internet_namespace] {
        ipv6::namespace_settings(ns, with_ipv6)?;
    }
    let inet_fd = netns::open(&s.internet_namespace)?;
    with_netlink(host, |nl| {
        nl.set_up("lo")?;
        nl.create_veth(
            &s.uplink,
            Some(mac_for(s.uplink_address.addr)),
            &s.internet_device,
            Some(mac_for(s.internet_address.addr)),
            Some(std::os::fd::AsFd::as_fd(&inet_fd)),
        )?;
        nl.add_address(
            &s.uplink,
            s.uplink_address.addr,
            s.uplink_address.prefix_len,
        )?;
        nl.set_up(&s.uplink)?;
        ipv6::sandbox_uplink(nl, s, true)
    })?;
    with_netlink(Some(&s.internet_namespace), |nl| {
        nl.set_up("lo")?;
        nl.add_address(
            &s.internet_device,
            s.internet_address.addr,
            s.internet_address.prefix_len,
        )?;
        nl.set_up(&s.internet_device)?;
        ipv6::sandbox_uplink(nl, s, false)
    })?;
    // The host's default routes point at the internet end; the internet
    // namespace gets no route back to the lab (only translated traffic
    // can be answered).
    with_netlink(host, |nl| {
        nl.add_default_route(s.internet_address.addr)?;
        match s.internet_address6 {
            Some(ia) => nl.add_default_route6(ia.addr),
            None => Ok(()),
        }
    })?;
    Ok(())
}

/// eBPF datapath's gateway: `vbridge` (gateway address and MAC) peered with
/// the switch port `vbridge-p`, no bridge (brought up by `build_gateway`).
fn create_gateway_veth(nl: &Netlink, plan: &LabPlan) -> Result<(), TopologyError> {
    nl.create_veth(
        &plan.gateway_device,
        Some(plan.gateway_mac()),
        &plan.gateway_port,
        None,
        None,
    )?;
    nl.add_address(&plan.gateway_device, plan.gateway, plan.subnet.prefix_len)
}
