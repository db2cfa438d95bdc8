//! The six CNI operations on a netlab lab.

use serde_json::Value;

use super::attach;
use super::env::{self, Attachment, Command};
use super::error::{CniError, CniResult, code};
use super::ipam;
use super::sandbox;
use super::types::{self, AddResult, GC_STATUS_SINCE, Interface, IpConfig, NetConf, Route};
use crate::config::LabConfig;
use crate::lab::{self, LabError};
use crate::names::format_mac;
use crate::plan::ContainerPlan;
use crate::plan::LabPlan;
use crate::state::{self, LabLock, LabState, StateError};

/// How many times ADD goes round "create the lab / take the lock" when
/// other plugins race it; each round blocks on the lock, so this bounds
/// retries, not time.
const LAB_ROUNDS: usize = 20;

/// Runs one invocation. `Ok(Some(json))` is printed on stdout.
pub fn run(get: &dyn Fn(&str) -> Option<String>, stdin: &[u8]) -> CniResult<Option<Value>> {
    let command = env::command(get)?;
    if command == Command::Version {
        // Answered in the version asked, whatever it is (spec: VERSION).
        let asked = serde_json::from_slice::<Value>(stdin)
            .ok()
            .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
            .unwrap_or_else(|| types::SUPPORTED_VERSIONS.last().unwrap().to_string());
        return Ok(Some(types::version_json(&asked)));
    }
    let conf = NetConf::parse(stdin)?;
    match command {
        Command::Add => add(&conf, &env::attachment(get, true)?).map(Some),
        Command::Del => del(&conf, &env::attachment(get, false)?).map(|()| None),
        Command::Check => check(&conf, &env::attachment(get, true)?).map(|()| None),
        Command::Gc => {
            need_gc_status(&conf, "GC")?;
            gc(&conf).map(|()| None)
        }
        Command::Status => {
            need_gc_status(&conf, "STATUS")?;
            status(&conf).map(|()| None)
        }
        Command::Version => unreachable!("answered above"),
    }
}

fn need_gc_status(conf: &NetConf, what: &str) -> CniResult<()> {
    if types::version_at_least(&conf.cni_version, GC_STATUS_SINCE) {
        Ok(())
    } else {
        Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            "incompatible CNI version",
            format!(
                "{what} needs cniVersion {GC_STATUS_SINCE} or later, the configuration says {}",
                conf.cni_version
            ),
        ))
    }
}

/// The plan ADD builds the lab from: the lab file (if any) named after the
/// network's lab.
fn lab_plan(conf: &NetConf) -> CniResult<LabPlan> {
    let invalid = |e: crate::config::ConfigError| {
        CniError::new(code::INVALID_CONFIG, "invalid lab", e.to_string())
    };
    let mut config = match &conf.lab_file {
        Some(path) => LabConfig::from_file(path).map_err(invalid)?,
        None => LabConfig::default(),
    };
    config.name = Some(conf.lab_name().to_string());
    config.resolve().map_err(invalid)
}

fn lock(lab: &str) -> CniResult<LabLock> {
    LabLock::acquire(lab).map_err(|e| CniError::lab(format!("cannot lock lab {lab}"), e))
}

fn load(lock: &LabLock, lab: &str) -> CniResult<Option<LabState>> {
    lock.load()
        .map_err(|e| CniError::lab(format!("cannot read the state of lab {lab}"), e))
}

fn half_built(lab: &str) -> CniError {
    CniError::lab(
        format!("lab {lab} is half built"),
        LabError::HalfBuilt(lab.to_string()),
    )
}

/// The running lab, locked; created first when it is not up. Parallel ADDs
/// are safe: one builds the lab (`lab::up` under the lab lock), the others
/// wait for the lock and then find it up.
fn running_lab(conf: &NetConf) -> CniResult<(LabLock, LabState)> {
    let name = conf.lab_name();
    for _ in 0..LAB_ROUNDS {
        let lock = lock(name)?;
        match load(&lock, name)? {
            Some(state) if state.complete => return Ok((lock, state)),
            // An `up` killed half way (an earlier ADD's, say): no container
            // can be on it, so remove it as `netlab down` would, and build
            // it again.
            Some(state) if state.plan.containers.is_empty() => {
                drop(lock);
                log::warn!("lab {name} is half built (an interrupted up); removing it first");
                lab::down(name).map_err(|e| {
                    CniError::lab(format!("cannot remove half-built lab {name}"), e)
                })?;
                continue;
            }
            Some(_) => return Err(half_built(name)),
            None => {}
        }
        drop(lock);
        let plan = lab_plan(conf)?;
        match lab::up(&plan) {
            Ok(_) => {
                log::info!("lab {name} created for containers");
                start_control_loop(&plan);
            }
            Err(LabError::State(StateError::Busy { .. })) => {}
            Err(e) => return Err(CniError::lab(format!("cannot create lab {name}"), e)),
        }
    }
    Err(CniError::new(
        code::TRY_AGAIN_LATER,
        "the lab is busy",
        format!("lab {name} kept changing while this ADD waited for it"),
    ))
}

/// The eBPF datapath's control loop (NAT expiry), as `netlab up` starts it.
/// A lab that runs without it still forwards, so a failure is a warning,
/// not a failed ADD.
fn start_control_loop(plan: &LabPlan) {
    if plan.datapath != crate::plan::DatapathKind::Ebpf {
        return;
    }
    if let Err(e) = crate::supervise::ensure_running(&plan.name, None) {
        log::warn!(
            "lab {}: the control loop did not start ({e:#}); NAT entries expire only while \
             `netlab daemon` runs",
            plan.name
        );
    }
}

fn add(conf: &NetConf, att: &Attachment) -> CniResult<Value> {
    let netns = att.netns.as_deref().expect("required for ADD");
    // Validate everything before touching the lab.
    let fd = sandbox::open(netns)?;
    let prev = conf.prev_result()?;
    let ports = conf.port_specs()?;
    let (lock, mut state) = running_lab(conf)?;
    let c = attach::add(&lock, &mut state, att, netns, &fd, &ports)?;
    let mine = result_of(&state.plan, &c, conf);
    let result = match prev {
        Some(prev) => prev.chain(mine),
        None => mine,
    };
    Ok(result.to_json(&conf.cni_version))
}

/// What ADD reports: the host end and the container's interface, its
/// address with the gateway, the default route, and the configured DNS.
fn result_of(plan: &LabPlan, c: &ContainerPlan, conf: &NetConf) -> AddResult {
    let gateway = plan.gateway.to_string();
    AddResult {
        interfaces: vec![
            Interface {
                name: c.peer.clone(),
                ..Default::default()
            },
            Interface {
                name: c.ifname.clone(),
                mac: Some(format_mac(&c.mac)),
                sandbox: Some(c.netns.clone()),
                ..Default::default()
            },
        ],
        ips: vec![IpConfig {
            address: format!("{}/{}", c.address, plan.subnet.prefix_len),
            gateway: Some(gateway.clone()),
            interface: Some(1),
            version: None,
        }],
        routes: c
            .default_route
            .then(|| Route {
                dst: "0.0.0.0/0".into(),
                gw: Some(gateway.clone()),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        dns: conf.dns.clone().unwrap_or_default(),
    }
}

/// DEL: best effort and idempotent. No lab, no record: nothing to do.
fn del(conf: &NetConf, att: &Attachment) -> CniResult<()> {
    let name = conf.lab_name();
    if state::peek(name).ok().flatten().is_none() {
        log::info!("DEL: lab {name} is not up; nothing to remove");
        return Ok(());
    }
    let lock = lock(name)?;
    let Some(mut state) = load(&lock, name)? else {
        return Ok(());
    };
    let Some(c) = state
        .plan
        .containers
        .find(&att.container_id, &att.ifname)
        .cloned()
    else {
        log::info!(
            "DEL: container {} interface {} is not attached to lab {name}",
            att.container_id,
            att.ifname
        );
        return Ok(());
    };
    attach::remove(&lock, &mut state, &c)
}

fn check(conf: &NetConf, att: &Attachment) -> CniResult<()> {
    let netns = att.netns.as_deref().expect("required for CHECK");
    let prev = conf.prev_result()?.ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "prevResult is missing",
            "CHECK needs the result of the ADD as prevResult",
        )
    })?;
    let fd = sandbox::open(netns)?;
    let ports = conf.port_specs()?;
    let name = conf.lab_name();
    let state = state::peek(name)
        .map_err(|e| CniError::lab(format!("cannot read the state of lab {name}"), e))?
        .ok_or_else(|| {
            CniError::new(
                code::CHECK_FAILED,
                "the lab is not up",
                format!(
                    "lab {name} is not up, so container {} is not attached",
                    att.container_id
                ),
            )
        })?;
    let c = state
        .plan
        .containers
        .find(&att.container_id, &att.ifname)
        .ok_or_else(|| {
            CniError::new(
                code::CHECK_FAILED,
                "the container is not attached",
                format!(
                    "lab {name} has no container {} interface {}",
                    att.container_id, att.ifname
                ),
            )
        })?;
    let mut wrong = attach::check(&state.plan, c, &fd);
    if c.netns != netns {
        wrong.push(format!("it was added in {}, not {netns}", c.netns));
    }
    let cidr = format!("{}/{}", c.address, state.plan.subnet.prefix_len);
    if !prev.ips.iter().any(|ip| ip.address == cidr) {
        wrong.push(format!("prevResult does not list its address {cidr}"));
    }
    if !prev.interfaces.iter().any(|i| i.name == c.ifname) {
        wrong.push(format!("prevResult does not list interface {}", c.ifname));
    }
    let published = c.publish_name();
    for spec in &ports {
        if !state
            .plan
            .publications
            .iter()
            .any(|p| p.namespace == published && p.spec == *spec)
        {
            wrong.push(format!("port mapping {spec} is not published"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            code::CHECK_FAILED,
            "the container's network is not as ADD left it",
            format!("container {}: {}", c.label(), wrong.join("; ")),
        ))
    }
}

/// GC: removes every container of the lab that is not in the valid list,
/// going on past failures and reporting them all.
fn gc(conf: &NetConf) -> CniResult<()> {
    let name = conf.lab_name();
    if state::peek(name).ok().flatten().is_none() {
        return Ok(());
    }
    let valid = conf.valid_attachments();
    let lock = lock(name)?;
    let Some(mut state) = load(&lock, name)? else {
        return Ok(());
    };
    let stale: Vec<ContainerPlan> = state
        .plan
        .containers
        .attachments
        .iter()
        .filter(|c| !valid.iter().any(|v| c.is(&v.container_id, &v.ifname)))
        .cloned()
        .collect();
    let mut failures = Vec::new();
    for c in &stale {
        log::info!("GC: removing container {}", c.label());
        if let Err(e) = attach::remove(&lock, &mut state, c) {
            failures.push(format!("{}: {e}", c.label()));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            code::LAB_FAILURE,
            "GC could not remove everything",
            failures.join("; "),
        ))
    }
}

/// STATUS: can the lab take containers? A lab that is not up can, if ADD
/// could create it.
fn status(conf: &NetConf) -> CniResult<()> {
    let name = conf.lab_name();
    let unavailable = |details: String| {
        CniError::new(
            code::NOT_AVAILABLE,
            "the lab cannot take containers",
            details,
        )
    };
    let state = state::peek(name)
        .map_err(|e| unavailable(format!("cannot read the state of lab {name}: {e}")))?;
    match state {
        None => {
            let plan = lab_plan(conf)?;
            lab::check_environment(&plan, &[]).map_err(|e| {
                unavailable(format!("lab {name} is not up and cannot be created: {e}"))
            })
        }
        Some(s) if !s.complete => Err(unavailable(half_built(name).details)),
        Some(s) => {
            let missing = crate::health::missing(&s);
            if !missing.is_empty() {
                let parts: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
                return Err(CniError::new(
                    code::NOT_AVAILABLE_LIMITED,
                    "the lab is damaged",
                    format!(
                        "lab {name} lost parts (`netlab up --lab {name}` repairs them): {}",
                        parts.join(", ")
                    ),
                ));
            }
            if ipam::free_count(&s.plan) == 0 {
                return Err(unavailable(format!(
                    "lab {name} subnet {} has no free address",
                    s.plan.subnet
                )));
            }
            Ok(())
        }
    }
}
