//! Lab lifecycle: `up`, `down`, `attach`, `detach`.
//!
//! `up` validates the plan against the running system, takes the lab lock,
//! and then records every object in the state file *before* creating it, so
//! that whatever happens next (an error, SIGKILL) `down` can remove it. On
//! an error `up` rolls back what it recorded and leaves nothing behind.
//!
//! Test hooks (environment variables, for the integration tests):
//! - `NETLAB_FAIL_AT=STEP`: fail right after STEP completed (rollback test).
//! - `NETLAB_PAUSE_AT=STEP`: after STEP, print "netlab: paused after STEP"
//!   on stderr and sleep forever (SIGKILL test).
//!
//! STEP is one of [`STEPS`], or `endpoint:NAME` after one endpoint
//! namespace is wired, or `attach` (after `attach` built the endpoint).

use std::net::Ipv4Addr;

use crate::config::{ConfigError, EndpointPlan, HostPlan, LabPlan, mac_for};
use crate::containers::ContainerPlan;
use crate::datapath::{self, DatapathKind, NatPlan, PortPlan, PortRole, SwitchPlan, kernel};
use crate::hostns::{self, HostnsError, Placement};
use crate::netns::{self, NetnsError};
use crate::state::{LabLock, LabState, Owned, StateError};
use crate::sysctl::{self, SysctlError};
use crate::topology::{Netlink, TopologyError, with_netlink};

/// The steps of `up`, in order.
pub const STEPS: &[&str] = &[
    "namespaces",
    "uplink",
    "ip-forward",
    "endpoints",
    "gateway",
    "datapath",
];

pub const FAIL_AT_ENV: &str = "NETLAB_FAIL_AT";
pub const PAUSE_AT_ENV: &str = "NETLAB_PAUSE_AT";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Hostns(#[from] HostnsError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Kernel(#[from] kernel::KernelError),
    #[error("eBPF datapath: {0}")]
    Ebpf(String),
    #[error("lab {lab} cannot be created:\n  {}", .problems.join("\n  "))]
    Conflict { lab: String, problems: Vec<String> },
    #[error(
        "lab {0} is half built (an earlier `up` was interrupted); run `netlab down --lab {0}` first"
    )]
    HalfBuilt(String),
    #[error("lab {0} is not up")]
    NotUp(String),
    #[error(
        "lab {lab} lost parts that cannot be rebuilt in place:\n  {}\nrun `netlab down --lab {lab}` and `netlab up` to rebuild it",
        .missing.join("\n  ")
    )]
    CannotRepair { lab: String, missing: Vec<String> },
    #[error(
        "repairing lab {lab} failed: {source}\n`netlab down --lab {lab}` and `netlab up` rebuild it"
    )]
    RepairFailed {
        lab: String,
        #[source]
        source: Box<LabError>,
    },
    #[error("lab {lab}: {what} refused, nothing changed:\n  {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    PublishRefused {
        lab: String,
        /// "publish" or "unpublish".
        what: &'static str,
        problems: Vec<crate::config::Problem>,
    },
    #[error("namespace {namespace} is not an endpoint of lab {lab}")]
    NoSuchEndpoint { lab: String, namespace: String },
    #[error("injected failure after step `{0}` ({FAIL_AT_ENV})")]
    Injected(String),
    #[error("{failure}\nrollback was incomplete, `netlab down --lab {lab}` will retry: {rollback}")]
    RollbackFailed {
        lab: String,
        failure: Box<LabError>,
        rollback: Box<LabError>,
    },
    #[error("could not remove everything:\n  {}", .0.join("\n  "))]
    Teardown(Vec<String>),
}

fn ebpf_err(e: crate::bpf::Error) -> LabError {
    // Keep the whole chain: the verifier tail and the hint live in sources.
    LabError::Ebpf(format!("{:#}", anyhow::Error::new(e)))
}

/// What `up` did.
#[derive(Debug)]
pub enum UpOutcome {
    Created(LabPlan),
    /// The lab was already up; nothing changed. Holds the running plan.
    AlreadyUp(LabPlan),
    /// The lab was up but had lost parts; `up` rebuilt them (repair.rs).
    Repaired {
        plan: LabPlan,
        repaired: Vec<String>,
    },
}

/// What `down` did.
#[derive(Debug)]
pub enum DownOutcome {
    /// These objects were removed (in this order).
    Removed(Vec<Owned>),
    NothingThere,
}

/// Applies the test hooks after `step`.
fn after_step(step: &str) -> Result<(), LabError> {
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

impl LabPlan {
    /// The switch port of one endpoint: its host-side veth end, carrying the
    /// MAC and address netlab gives the endpoint.
    pub fn port_plan(&self, e: &EndpointPlan) -> PortPlan {
        PortPlan {
            port_dev: e.peer.clone(),
            role: PortRole::Endpoint,
            mac: e.mac,
            ipv4: e.address,
            namespace: Some(e.namespace.clone()),
            deliver_dev: None,
            peer_dev: Some(e.veth.clone()),
        }
    }

    /// What the eBPF datapath needs. The MACs are the ones `up` sets
    /// (02:4e:<IPv4>); apart from CNI containers whose namespace is gone,
    /// this is a pure function of the plan.
    pub fn switch_plan(&self) -> SwitchPlan {
        let mut ports: Vec<PortPlan> = self.endpoints.iter().map(|e| self.port_plan(e)).collect();
        // CNI containers are ports like endpoints (once their ADD finished),
        // so a re-install (repair) keeps them. One whose namespace is gone
        // (its runtime died before calling DEL) has no port left to link:
        // a re-install drops its map entries, and its DEL or GC removes the
        // rest.
        ports.extend(
            self.containers
                .attachments
                .iter()
                .filter(|c| c.complete && netns::exists(&c.netns))
                .map(container_port_plan),
        );
        ports.push(PortPlan {
            port_dev: self.gateway_port.clone(),
            role: PortRole::Gateway,
            mac: self.gateway_mac(),
            ipv4: self.gateway,
            namespace: None,
            deliver_dev: Some(self.gateway_device.clone()),
            peer_dev: None,
        });
        SwitchPlan {
            lab: self.name.clone(),
            host_netns: self.host_netns().map(str::to_string),
            ports,
            nat: Some(NatPlan {
                uplink_dev: self.uplink().to_string(),
                subnet: self.subnet.network(),
                prefix_len: self.subnet.prefix_len,
                port_min: self.nat.port_min,
                port_max: self.nat.port_max,
                max_entries: self.nat.max_entries,
                timeouts: self.nat.timeouts,
            }),
            allow_host_access: self.allow_host_access,
            uplink_xdp: self.uplink_xdp,
            switch_xdp: self.switch == crate::config::SwitchHook::Xdp,
            published: crate::publish::expand(self, &self.publications),
        }
    }
}

/// The switch port of a CNI container: its host-side veth end.
pub fn container_port_plan(c: &ContainerPlan) -> PortPlan {
    PortPlan {
        port_dev: c.peer.clone(),
        role: PortRole::Endpoint,
        mac: c.mac,
        ipv4: c.address,
        // The path: the datapath enters it (published ports' socket hooks
        // know a namespace by its cookie); `netns` resolves paths.
        namespace: Some(c.netns.clone()),
        deliver_dev: None,
        peer_dev: Some(c.ifname.clone()),
    }
}

/// Checks the plan against the running system: namespace names taken by
/// something the lab does not own, the root-mode uplink, host-side names
/// already in use in the host namespace (root mode: the calling thread's),
/// iptables for the kernel datapath.
pub fn check_environment(plan: &LabPlan, owned: &[Owned]) -> Result<(), LabError> {
    let mut problems = Vec::new();
    let owns_ns = |n: &str| {
        owned
            .iter()
            .any(|o| matches!(o, Owned::Namespace { name } if name == n))
    };
    let fields: Vec<(String, String)> = match &plan.host {
        HostPlan::Sandbox(s) => vec![
            ("host.namespace".into(), s.namespace.clone()),
            (
                "host.internet_namespace".into(),
                s.internet_namespace.clone(),
            ),
        ],
        HostPlan::Root { .. } => vec![],
    }
    .into_iter()
    .chain(
        plan.endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("namespaces[{i}].name"), e.namespace.clone())),
    )
    .collect();
    for (field, name) in &fields {
        if netns::exists(name) && !owns_ns(name) {
            problems.push(format!(
                "{field} = {name:?}: network namespace {name} already exists and lab {} does not own it",
                plan.name
            ));
        }
    }
    if let HostPlan::Root { uplink } = &plan.host {
        let mut host_side: Vec<(String, &str)> = plan
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("namespaces[{i}].peer"), e.peer.as_str()))
            .collect();
        host_side.push(("gateway_device".into(), &plan.gateway_device));
        if plan.datapath == DatapathKind::Ebpf {
            host_side.push(("gateway_port".into(), &plan.gateway_port));
        }
        let found = with_netlink(None, |nl| {
            let up = nl.link_index(uplink)?.is_some();
            let mut taken = Vec::new();
            for (field, name) in &host_side {
                let owned_link = owned
                    .iter()
                    .any(|o| matches!(o, Owned::Link { name: n, .. } if n == name));
                if !owned_link && nl.link_index(name)?.is_some() {
                    taken.push(format!(
                        "{field} = {name:?}: this network namespace (the lab's host side) already has an interface {name}"
                    ));
                }
            }
            Ok((up, taken))
        })?;
        if !found.0 {
            problems.push(format!(
                "host.uplink = {uplink:?}: no such interface in this network namespace (mode = \"root\" uses the namespace netlab runs in)"
            ));
        }
        problems.extend(found.1);
    }
    if plan.datapath == DatapathKind::Kernel && which::which("iptables").is_err() {
        problems.push(
            "datapath = \"kernel\": iptables is not installed (the kernel datapath needs it)"
                .into(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LabError::Conflict {
            lab: plan.name.clone(),
            problems,
        })
    }
}

/// Builds a lab, recording as it goes. (crate-visible for repair.rs)
pub(crate) struct Builder {
    pub(crate) lock: LabLock,
    pub(crate) state: LabState,
}

impl Builder {
    fn plan(&self) -> &LabPlan {
        &self.state.plan
    }

    /// Records `obj` in the state file before it is created.
    fn record(&mut self, obj: Owned) -> Result<(), LabError> {
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

    fn build(&mut self) -> Result<(), LabError> {
        let plan = self.plan().clone();
        let host = plan.host_netns().map(str::to_string);
        let host = host.as_deref();

        for ns in plan.namespaces() {
            self.create_namespace(&ns)?;
        }
        after_step("namespaces")?;

        if let Some(s) = plan.sandbox() {
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
                nl.set_up(&s.uplink)
            })?;
            with_netlink(Some(&s.internet_namespace), |nl| {
                nl.set_up("lo")?;
                nl.add_address(
                    &s.internet_device,
                    s.internet_address.addr,
                    s.internet_address.prefix_len,
                )?;
                nl.set_up(&s.internet_device)
            })?;
            with_netlink(host, |nl| nl.add_default_route(s.internet_address.addr))?;
        }
        after_step("uplink")?;

        self.change_sysctl(host, "net.ipv4.ip_forward", |_| Some("1".into()))?;
        after_step("ip-forward")?;

        for e in &plan.endpoints {
            self.build_endpoint(e)?;
            after_step(&format!("endpoint:{}", e.namespace))?;
        }
        after_step("endpoints")?;

        self.record_host_link(&plan.gateway_device)?;
        match plan.datapath {
            DatapathKind::Kernel => with_netlink(host, |nl| Ok(kernel::create_bridge(nl, &plan)))??,
            DatapathKind::Ebpf => with_netlink(host, |nl| create_gateway_veth(nl, &plan))?,
        }
        after_step("gateway")?;

        match plan.datapath {
            DatapathKind::Kernel => {
                with_netlink(host, |nl| {
                    Ok(plan
                        .endpoints
                        .iter()
                        .try_for_each(|e| kernel::enslave(nl, &plan, &e.peer)))
                })??;
                if !kernel::nat_table_exists(host)? {
                    self.record(Owned::NatTable {
                        netns: host.map(str::to_string),
                    })?;
                }
                self.record(Owned::Masquerade {
                    netns: host.map(str::to_string),
                    subnet: plan.subnet.to_string(),
                })?;
                kernel::add_masquerade(host, &plan.subnet)?;
            }
            DatapathKind::Ebpf => {
                // The NAT port range is reserved on the host so host
                // sockets never pick a port the NAT hands out. Added to (not
                // replacing) any existing list; down restores it.
                let (min, max) = (plan.nat.port_min, plan.nat.port_max);
                self.change_sysctl(host, "net.ipv4.ip_local_reserved_ports", |old| {
                    crate::nat::merge_reserved_ports(old, min, max)
                })?;
                self.record(Owned::EbpfDatapath {
                    netns: host.map(str::to_string),
                })?;
                let switch = plan.switch_plan();
                netns::run_in(host, || datapath::ebpf::install(&switch))?.map_err(ebpf_err)?;
            }
        }
        after_step("datapath")?;

        if !plan.publications.is_empty() {
            // The lab file's published ports: the host side's sockets are
            // checked now that it exists (root mode: the machine's).
            let facts = crate::publish::host::read(host)?;
            let listed: Vec<_> = plan
                .publications
                .iter()
                .map(|p| (format!("publish {p}"), p.clone()))
                .collect();
            let problems = crate::publish::host::check(&plan, &facts, &[], &listed);
            if !problems.is_empty() {
                return Err(ConfigError::Invalid(problems).into());
            }
            crate::publish::ops::apply(&self.lock, &mut self.state, plan.publications.clone())?;
        }
        Ok(())
    }

    /// One endpoint namespace: veth pair (inside end created directly in
    /// the namespace), MAC, address, links up, default route via the gateway.
    pub(crate) fn build_endpoint(&mut self, e: &EndpointPlan) -> Result<(), LabError> {
        let plan = self.plan().clone();
        let host = plan.host_netns();
        if !netns::exists(&e.namespace) {
            self.create_namespace(&e.namespace)?;
        }
        self.record_host_link(&e.peer)?;
        let fd = netns::open(&e.namespace)?;
        with_netlink(host, |nl| {
            nl.create_veth(
                &e.peer,
                None,
                &e.veth,
                Some(e.mac),
                Some(std::os::fd::AsFd::as_fd(&fd)),
            )?;
            nl.set_up(&e.peer)
        })?;
        with_netlink(Some(&e.namespace), |nl| {
            nl.set_up("lo")?;
            nl.add_address(&e.veth, e.address, plan.subnet.prefix_len)?;
            nl.set_up(&e.veth)?;
            nl.add_default_route(plan.gateway)
        })?;
        Ok(())
    }
}

/// eBPF datapath's gateway: `vbridge` (gateway address and MAC) peered with
/// the switch port `vbridge-p`, both up, no bridge.
fn create_gateway_veth(nl: &Netlink, plan: &LabPlan) -> Result<(), TopologyError> {
    nl.create_veth(
        &plan.gateway_device,
        Some(plan.gateway_mac()),
        &plan.gateway_port,
        None,
        None,
    )?;
    nl.add_address(&plan.gateway_device, plan.gateway, plan.subnet.prefix_len)?;
    nl.set_up(&plan.gateway_port)?;
    nl.set_up(&plan.gateway_device)
}

/// Removes one recorded object; absent objects are fine. `host_gone`: the
/// root-mode host namespace no longer exists, so what lived in it
/// (`netns: None`) went with it and the calling thread's namespace, which
/// is another one, must not be touched.
pub(crate) fn remove_object(lab: &str, obj: &Owned, host_gone: bool) -> Result<(), LabError> {
    let gone = |ns: &Option<String>| match ns.as_deref() {
        Some(n) => !netns::exists(n),
        None => host_gone,
    };
    match obj {
        Owned::Namespace { name } => netns::delete(name)?,
        Owned::Link { netns: ns, name } => {
            if !gone(ns) {
                with_netlink(ns.as_deref(), |nl| nl.delete_link(name))?;
            }
        }
        Owned::Sysctl {
            netns: ns,
            key,
            old_value,
        } => {
            if !gone(ns) {
                sysctl::write(ns.as_deref(), key, old_value)?;
            }
        }
        Owned::Masquerade { netns: ns, subnet } => {
            if gone(ns) {
                return Ok(());
            }
            let subnet = subnet.parse().map_err(|m: String| {
                LabError::Teardown(vec![format!(
                    "bad subnet {subnet:?} in the state file: {m}"
                )])
            })?;
            kernel::remove_masquerade(ns.as_deref(), &subnet)?;
        }
        Owned::NatTable { netns: ns } => {
            if !gone(ns) {
                kernel::remove_nat_table_if_empty(ns.as_deref())?;
            }
        }
        Owned::IptablesRule {
            netns: ns,
            table,
            chain,
            args,
        } => {
            if !gone(ns) {
                kernel::remove_rule(ns.as_deref(), table, chain, args)?;
            }
        }
        Owned::EbpfDatapath { netns: ns } => {
            // Pins live in bpffs, not in the namespace: uninstall even when
            // the namespace is already gone.
            let ns = if gone(ns) { None } else { ns.as_deref() };
            netns::run_in(ns, || datapath::ebpf::uninstall(lab))?.map_err(ebpf_err)?;
        }
    }
    Ok(())
}

/// Removes every recorded object, newest first, saving progress after each
/// so an interrupted teardown can be resumed. Keeps going past failures and
/// reports them all. Must run in the lab's host namespace unless
/// `host_gone` (see [`remove`]).
fn teardown(lock: &LabLock, state: &mut LabState, host_gone: bool) -> Result<Vec<Owned>, LabError> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let mut failures = Vec::new();
    while let Some(obj) = state.objects.pop() {
        // Root mode: a setting another lab here still relies on goes to
        // that lab instead of being restored now.
        if let Some(host) = state.host.as_ref().filter(|_| !host_gone)
            && let Some(to) = crate::handover::hand_over(&state.lab, host, &obj)
        {
            log::info!("lab {}: {obj:?} handed over to lab {to}", state.lab);
            removed.push(obj);
        } else {
            match remove_object(&state.lab, &obj, host_gone) {
                Ok(()) => removed.push(obj),
                Err(e) => {
                    failures.push(format!("{obj:?}: {e}"));
                    failed.push(obj);
                }
            }
        }
        // Save what is left (failures stay recorded for the next down).
        let mut left = state.objects.clone();
        left.extend(failed.iter().rev().cloned());
        let snapshot = LabState {
            objects: left,
            ..state.clone()
        };
        lock.save(&snapshot)?;
    }
    if failures.is_empty() {
        Ok(removed)
    } else {
        failed.reverse();
        state.objects = failed;
        Err(LabError::Teardown(failures))
    }
}

/// Builds the lab `plan` describes. A lab already up is left as is.
pub fn up(plan: &LabPlan) -> Result<UpOutcome, LabError> {
    // Not waiting: a second `up` of the same lab reports it busy.
    let lock = LabLock::try_acquire(&plan.name)?;
    if let Some(state) = lock.load()? {
        require_host(&state)?;
        return if state.complete {
            // Already up: repair what was removed by hand, if anything.
            crate::repair::repair(lock, state)
        } else {
            Err(LabError::HalfBuilt(plan.name.clone()))
        };
    }
    check_environment(plan, &[])?;
    let mut state = LabState::new(plan.clone());
    if plan.sandbox().is_none() {
        // Root mode: the host side is this thread's namespace; later
        // commands find (or refuse) it by this record.
        state.host = Some(hostns::current()?);
    }
    let mut b = Builder { lock, state };
    b.lock.save(&b.state)?;
    match b.build() {
        Ok(()) => {
            b.state.complete = true;
            b.lock.save(&b.state)?;
            Ok(UpOutcome::Created(b.state.plan))
        }
        Err(failure) => match teardown(&b.lock, &mut b.state, false) {
            Ok(_) => {
                b.lock.remove()?;
                Err(failure)
            }
            Err(rollback) => Err(LabError::RollbackFailed {
                lab: plan.name.clone(),
                failure: Box::new(failure),
                rollback: Box::new(rollback),
            }),
        },
    }
}

/// Removes everything the lab's state file records, then the state file.
pub fn down(lab: &str) -> Result<DownOutcome, LabError> {
    let lock = LabLock::acquire(lab)?;
    // The control loop goes first, so it never sweeps maps being removed.
    if let Err(e) = crate::daemon::stop(lab) {
        log::warn!("stopping the daemon of lab {lab}: {e:#}");
    }
    let Some(mut state) = lock.load()? else {
        return Ok(DownOutcome::NothingThere);
    };
    let host_gone = match &state.host {
        None => false,
        Some(host) => match hostns::place(lab, host)? {
            Placement::Here => false,
            Placement::Gone => {
                log::warn!(
                    "lab {lab}: its host side, {host}, is gone (and its devices with it); \
                     removing what is left"
                );
                true
            }
            Placement::Reachable(_) => {
                hostns::require_here(lab, host)?;
                false
            }
        },
    };
    let removed = teardown(&lock, &mut state, host_gone)?;
    lock.remove()?;
    Ok(DownOutcome::Removed(removed))
}

/// Refuses to act on a root-mode lab from another namespace than its host's.
fn require_host(state: &LabState) -> Result<(), LabError> {
    match &state.host {
        Some(host) => Ok(hostns::require_here(&state.lab, host)?),
        None => Ok(()),
    }
}

pub(crate) fn running(lock: &LabLock, lab: &str) -> Result<LabState, LabError> {
    match lock.load()? {
        Some(s) if s.complete => {
            require_host(&s)?;
            Ok(s)
        }
        Some(_) => Err(LabError::HalfBuilt(lab.into())),
        None => Err(LabError::NotUp(lab.into())),
    }
}

/// Adds an endpoint namespace to a running lab.
pub fn attach(lab: &str, namespace: &str, address: Ipv4Addr) -> Result<EndpointPlan, LabError> {
    let lock = LabLock::acquire(lab)?;
    let state = running(&lock, lab)?;
    let e = state.plan.plan_endpoint(namespace, address)?;
    if netns::exists(namespace) {
        return Err(LabError::Conflict {
            lab: lab.into(),
            problems: vec![format!("network namespace {namespace} already exists")],
        });
    }
    let first_new = state.objects.len();
    let mut b = Builder { lock, state };
    let result = (|| -> Result<(), LabError> {
        b.build_endpoint(&e)?;
        let plan = b.plan().clone();
        let host = plan.host_netns();
        match plan.datapath {
            DatapathKind::Kernel => {
                with_netlink(host, |nl| Ok(kernel::enslave(nl, &plan, &e.peer)))??
            }
            DatapathKind::Ebpf => {
                let port = plan.port_plan(&e);
                netns::run_in(host, || datapath::ebpf::add_port(lab, &port))?.map_err(ebpf_err)?
            }
        }
        after_step("attach")
    })();
    match result {
        Ok(()) => {
            b.state.plan.endpoints.push(e.clone());
            b.lock.save(&b.state)?;
            Ok(e)
        }
        Err(failure) => {
            // Roll back only what this attach recorded.
            let mut mine = LabState {
                objects: b.state.objects.split_off(first_new),
                ..b.state.clone()
            };
            let rb = teardown(&b.lock, &mut mine, false);
            b.state.objects.append(&mut mine.objects);
            b.lock.save(&b.state)?;
            match rb {
                Ok(_) => Err(failure),
                Err(rollback) => Err(LabError::RollbackFailed {
                    lab: lab.into(),
                    failure: Box::new(failure),
                    rollback: Box::new(rollback),
                }),
            }
        }
    }
}

/// Removes an endpoint namespace from a running lab.
pub fn detach(lab: &str, namespace: &str) -> Result<EndpointPlan, LabError> {
    let lock = LabLock::acquire(lab)?;
    let mut state = running(&lock, lab)?;
    let Some(e) = state.plan.endpoint(namespace).cloned() else {
        return Err(LabError::NoSuchEndpoint {
            lab: lab.into(),
            namespace: namespace.into(),
        });
    };
    let host = state.plan.host_netns().map(str::to_string);
    if state
        .plan
        .publications
        .iter()
        .any(|p| p.namespace == namespace)
    {
        // Its published ports go first, with their translations and rules.
        let left = state
            .plan
            .publications
            .iter()
            .filter(|p| p.namespace != namespace)
            .cloned()
            .collect();
        crate::publish::ops::apply(&lock, &mut state, left)?;
    }
    if state.plan.datapath == DatapathKind::Ebpf {
        let port = state.plan.port_plan(&e);
        netns::run_in(host.as_deref(), || datapath::ebpf::remove_port(lab, &port))?
            .map_err(ebpf_err)?;
    }
    // Host-side link first (root mode), then the namespace.
    let mine: Vec<Owned> = state
        .objects
        .iter()
        .filter(|o| match o {
            Owned::Link { netns: None, name } => host.is_none() && *name == e.peer,
            Owned::Namespace { name } => *name == e.namespace,
            _ => false,
        })
        .cloned()
        .collect();
    for obj in mine.iter().rev() {
        remove_object(lab, obj, false)?;
        state.objects.retain(|o| o != obj);
        lock.save(&state)?;
    }
    state.plan.endpoints.retain(|x| x.namespace != namespace);
    lock.save(&state)?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LabConfig;

    #[test]
    fn switch_plan_of_the_walkthrough() {
        let plan = LabConfig::default().resolve().unwrap();
        let sp = plan.switch_plan();
        assert_eq!(sp.lab, "netlab");
        assert_eq!(sp.host_netns.as_deref(), Some("netlab-host"));
        let devs: Vec<_> = sp
            .ports
            .iter()
            .map(|p| (p.port_dev.as_str(), p.role))
            .collect();
        assert_eq!(
            devs,
            [
                ("veth-1-br", PortRole::Endpoint),
                ("veth-2-br", PortRole::Endpoint),
                ("veth-3-br", PortRole::Endpoint),
                ("vbridge-p", PortRole::Gateway),
            ]
        );
        assert_eq!(sp.ports[0].mac, [2, 0x4e, 192, 168, 28, 1]);
        assert_eq!(sp.ports[0].namespace.as_deref(), Some("ns1"));
        assert_eq!(sp.ports[0].deliver_dev, None);
        assert_eq!(sp.ports[3].mac, [2, 0x4e, 192, 168, 28, 5]);
        assert_eq!(sp.ports[3].ipv4, Ipv4Addr::new(192, 168, 28, 5));
        assert_eq!(sp.ports[3].deliver_dev.as_deref(), Some("vbridge"));
        assert!(!sp.allow_host_access);
        let nat = sp.nat.unwrap();
        assert_eq!(nat.uplink_dev, "uplink");
        assert_eq!(
            (nat.subnet, nat.prefix_len),
            (Ipv4Addr::new(192, 168, 28, 0), 24)
        );
        assert_eq!((nat.port_min, nat.port_max), (20000, 29999));
    }
}
