//! `netlab daemon`: the eBPF datapath's control loop.
//!
//! The datapath itself needs no running process (programs, maps and links
//! are pinned). The daemon does the two things that need time to pass:
//!
//! - **expiry**: every `interval` it removes NAT flows idle for longer than
//!   their per-protocol timeout (TCP closing entries go early); the LRU
//!   eviction of the maps is only the last resort. A sweep reads the whole
//!   table, so with a large table the sweeps are spaced out to keep their
//!   cost to a small share of one CPU ([`next_sweep_delay`]);
//! - **the uplink's address**: a thread inside the host namespace listens to
//!   rtnetlink address and link events; when the uplink's IPv4 address
//!   changes, `nat_config` gets the new one and translations made with the
//!   old address are flushed (like the kernel's MASQUERADE, which drops its
//!   conntrack entries when the device's address goes away: replies to the
//!   old address can no longer arrive);
//! - **the host's addresses**: on the same events, the same thread re-reads
//!   every IPv4 address of the host namespace and brings `host_addrs` in
//!   step, so an address added at run time is closed to the namespaces too
//!   (unless the lab allows host access).
//!
//! Restarting the daemon loses nothing: all state is in the pinned maps.
//! One daemon per lab: its pid is in `/run/netlab/<lab>.daemon.pid`, and
//! `netlab down` stops it (it also exits by itself when the lab's pins go).

use std::{
    fs,
    io::Write,
    net::Ipv4Addr,
    os::fd::AsFd,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    fcntl::{Flock, FlockArg},
    sched::CloneFlags,
    sys::{
        signal::{self, SigHandler, Signal},
        socket::{
            AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv,
            setsockopt, socket, sockopt::ReceiveTimeout,
        },
        time::TimeVal,
    },
    unistd::Pid,
};

use crate::{
    datapath::{NatPlan, PortRole, ebpf},
    nat, netns, state,
};

/// rtnetlink multicast groups (linux/rtnetlink.h): link and IPv4 address
/// changes are what can change the uplink's address.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;

/// The sweep interval of a daemon started by `netlab up` (and the default
/// of `netlab daemon --interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// How the loop runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time between expiry sweeps (the shortest; see [`next_sweep_delay`]).
    pub interval: Duration,
    /// Serve Prometheus metrics there (`crate::metrics`), already checked
    /// against the address policy.
    pub metrics: Option<std::net::SocketAddr>,
}

/// A sweep may cost at most 1/SWEEP_COST_SHARE of one CPU: after a sweep
/// that took T, the next starts no sooner than SWEEP_COST_SHARE·T after it.
/// Measured on a 2-core machine, traffic loses about the share of a CPU the
/// daemon takes (37 % of one CPU cost the connection rate 34 %), and the
/// benchmark's target allows 5 % with a full table: hence 2 %.
const SWEEP_COST_SHARE: u32 = 50;

/// However costly sweeps are, one runs at least every 1/SWEEP_PRECISION of
/// the shortest timeout, so a flow never outlives its timeout by more than
/// that share of it.
const SWEEP_PRECISION: u32 = 4;

/// The time from the start of a sweep that took `took` to the start of the
/// next one.
///
/// A sweep reads the whole table (a few syscalls per 4096 entries, then the
/// join in userspace), so its cost grows with the table, not with what
/// expires: 100 000 flows take tens of milliseconds. Sweeping such a table
/// every `interval` regardless would keep a core busy in proportion (before
/// batched reads, 40 % of one on a 2-core machine, taken from the traffic
/// it serves). So the delay is stretched to `SWEEP_COST_SHARE` times the
/// sweep's own duration (the daemon spends at most 2 % of one CPU on
/// expiry), but never beyond a quarter of the shortest timeout, so expiry
/// stays precise to within that share of every timeout; `interval` remains
/// the shortest delay. A small table sweeps in well under a millisecond and
/// keeps `interval`.
pub fn next_sweep_delay(
    interval: Duration,
    took: Duration,
    shortest_timeout: Duration,
) -> Duration {
    let ceiling = (shortest_timeout / SWEEP_PRECISION).max(interval);
    (took * SWEEP_COST_SHARE).clamp(interval, ceiling)
}

/// The shortest of the flow timeouts and the fragment timeout.
fn shortest_timeout(t: &crate::datapath::NatTimeouts) -> Duration {
    let secs = [t.tcp_established, t.tcp_closing, t.tcp_syn, t.udp, t.icmp]
        .into_iter()
        .min()
        .unwrap_or(0);
    Duration::from_secs(secs).min(nat::FRAG_TIMEOUT)
}

/// How long `spawn_background` waits for the daemon's pid file.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(20);

/// The daemon's pid file.
pub fn pid_path(lab: &str) -> PathBuf {
    Path::new(state::STATE_DIR).join(format!("{lab}.daemon.pid"))
}

/// The background daemon's log.
pub fn log_path(lab: &str) -> PathBuf {
    Path::new(state::STATE_DIR).join(format!("{lab}.daemon.log"))
}

/// The executables a daemon runs as: the CLI, and the CNI plugin, which is
/// the CLI when run with arguments (an ADD that creates a lab starts it).
const DAEMON_EXECUTABLES: [&str; 2] = ["netlab", "netlab-cni"];

/// The pid of the lab's running daemon, if there is one. A pid file whose
/// process is gone, or is not a netlab daemon, does not count.
pub fn running_pid(lab: &str) -> Option<i32> {
    let pid: i32 = fs::read_to_string(pid_path(lab))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_daemon = args.first().is_some_and(|a| {
        let exe = String::from_utf8_lossy(a);
        let name = exe.rsplit('/').next().unwrap_or_default();
        DAEMON_EXECUTABLES.contains(&name)
    }) && args.iter().any(|a| *a == b"daemon");
    is_daemon.then_some(pid)
}

/// Stops the lab's daemon (SIGTERM, then up to 3 s for it to exit) and
/// removes its pid file and log. Nothing running: nothing to do.
pub fn stop(lab: &str) -> anyhow::Result<()> {
    if let Some(pid) = running_pid(lab) {
        let pid = Pid::from_raw(pid);
        let _ = signal::kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = signal::kill(pid, Signal::SIGKILL);
        }
    }
    let _ = fs::remove_file(pid_path(lab));
    crate::supervise::remove_record(lab);
    // The log belongs to the lab too; `down` leaves nothing of it behind.
    let _ = fs::remove_file(log_path(lab));
    Ok(())
}

/// What the loop needs from the running lab.
struct Target {
    pin_dir: PathBuf,
    host_netns: Option<String>,
    nat: NatPlan,
    gateway_mac: [u8; 6],
    host_access: ebpf::HostAccess,
}

fn target(lab: &str) -> anyhow::Result<Target> {
    let st = state::peek(lab)?
        .with_context(|| format!("lab {lab} is not up; start it with `netlab up`"))?;
    if st.plan.datapath != crate::datapath::DatapathKind::Ebpf {
        bail!("lab {lab} runs the kernel datapath; the daemon serves the eBPF datapath only");
    }
    let plan = st.plan.switch_plan();
    let nat = plan
        .nat
        .clone()
        .with_context(|| format!("lab {lab} has no uplink to masquerade through"))?;
    let gateway_mac = plan
        .ports
        .iter()
        .find(|p| p.role == PortRole::Gateway)
        .map(|p| p.mac)
        .context("the lab has no gateway port")?;
    Ok(Target {
        pin_dir: ebpf::pin_dir(lab),
        host_access: ebpf::HostAccess::of(&plan),
        host_netns: plan.host_netns,
        nat,
        gateway_mac,
    })
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

/// Runs the control loop in the foreground until SIGINT/SIGTERM, or until
/// the lab's pins disappear (`netlab down`).
pub fn run(lab: &str, opts: &Options) -> anyhow::Result<()> {
    let target = target(lab)?;
    if !ebpf::is_installed(lab) {
        bail!("lab {lab}'s eBPF datapath is not installed; run `netlab up`");
    }
    // Bound before the lab is claimed: a taken address changes nothing.
    let metrics_listener = opts.metrics.map(crate::metrics::server::bind).transpose()?;
    let _pid_file = PidFile::claim(lab)?;
    let _metrics = match metrics_listener {
        Some(l) => {
            let server = crate::metrics::server::MetricsServer::start(lab, l)?;
            say(&format!("metrics at http://{}/metrics", server.address));
            Some(server)
        }
        None => None,
    };
    let mut expiries = crate::monitor::inject::ExpiryReporter::new(
        lab,
        target.pin_dir.clone(),
        target.nat.clone(),
    );
    // What `status` shows: alive, last sweep; stays behind as "died" if
    // this process is killed.
    let mut record = crate::supervise::Recorder::start(lab, opts.interval)
        .context("cannot write the daemon's state file")?;
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { signal::signal(sig, SigHandler::Handler(on_signal)) }?;
    }

    let (tx, rx) = mpsc::channel();
    let watcher_stop = Arc::new(AtomicBool::new(false));
    let watcher = spawn_address_watcher(
        target.host_netns.clone(),
        target.nat.uplink_dev.clone(),
        target.host_access.clone(),
        tx,
        watcher_stop.clone(),
    )?;

    say(&format!(
        "lab {lab}: expiring NAT entries every {:?}, following {}'s address",
        opts.interval, target.nat.uplink_dev
    ));
    let mut external: Option<Ipv4Addr> = None;
    let shortest = shortest_timeout(&target.nat.timeouts);
    let mut next_sweep = Instant::now();
    // Whether the last sweep's delay was stretched beyond `interval` (said
    // once when it changes, not every sweep).
    let mut stretched = false;
    let result = loop {
        if STOP.load(Ordering::SeqCst) {
            break Ok(());
        }
        if !target.pin_dir.exists() {
            say(&format!("lab {lab}: its datapath is gone; exiting"));
            break Ok(());
        }
        // Wake for address events, for the next sweep, and at least every
        // `interval` to notice a stop or the pins going.
        let wait = next_sweep
            .saturating_duration_since(Instant::now())
            .min(opts.interval);
        match rx.recv_timeout(wait.max(Duration::from_millis(10))) {
            Ok(Some(addr)) if external != Some(addr) => {
                if let Err(e) = follow_address(&target, external, addr) {
                    say(&format!("cannot update the NAT address: {e:#}"));
                } else {
                    external = Some(addr);
                }
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(anyhow::anyhow!("the address watcher stopped"));
            }
        }
        // A monitor or trace killed with SIGKILL left its event gate open.
        if let Ok(true) = crate::monitor::gate::clear_if_orphaned(lab, &target.pin_dir) {
            say("no monitor or trace listens any more (one was killed): events switched off");
        }
        if Instant::now() >= next_sweep {
            let start = Instant::now();
            let mut expired = Vec::new();
            let report = expiries.wanted();
            let swept = nat::sweep_reporting(
                &target.pin_dir,
                &target.nat.timeouts,
                nat::monotonic_now_ns(),
                &mut |flow| {
                    if report {
                        expired.push(flow.clone());
                    }
                },
            );
            let took = start.elapsed();
            if let Err(e) = expiries.report(&expired) {
                say(&format!("cannot report expiries to the monitor: {e:#}"));
            }
            let delay = next_sweep_delay(opts.interval, took, shortest);
            next_sweep = start + delay;
            match swept {
                Ok(s) => {
                    record.swept(s.flows, s.expired);
                    if s.expired > 0 || s.fragments_expired > 0 {
                        say(&format!(
                            "expired {} of {} NAT flows ({} refreshed while sweeping), \
                             {} fragment entries",
                            s.expired, s.flows, s.refreshed, s.fragments_expired
                        ));
                    }
                    if (delay > opts.interval) != stretched {
                        stretched = delay > opts.interval;
                        say(&format!(
                            "a sweep of {} NAT flows took {took:.1?}: sweeping every {delay:.1?}",
                            s.flows
                        ));
                    }
                }
                Err(e) if !target.pin_dir.exists() => {
                    let _ = e;
                }
                Err(e) => say(&format!("sweep failed: {e}")),
            }
        }
    };
    watcher_stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    say(&format!("lab {lab}: daemon stopped"));
    if result.is_ok() {
        record.stopped();
    }
    result
}

/// Writes the new external address into `nat_config` and flushes the flows
/// translated to another address.
fn follow_address(target: &Target, old: Option<Ipv4Addr>, new: Ipv4Addr) -> anyhow::Result<()> {
    nat::configure(&target.pin_dir, &target.nat, new, target.gateway_mac, true)?;
    let flushed = nat::flush_other_addresses(&target.pin_dir, new)?;
    match old {
        None => say(&format!("uplink address {new}")),
        Some(old) => say(&format!(
            "uplink address changed {old} -> {new}; flushed {flushed} flows of the old address"
        )),
    }
    Ok(())
}

/// Starts a thread inside the host namespace that reports the uplink's
/// IPv4 address at start and after every rtnetlink link/address event, and
/// on the same occasions syncs `host_addrs` with the host's addresses.
fn spawn_address_watcher(
    host_netns: Option<String>,
    uplink: String,
    host_access: ebpf::HostAccess,
    tx: mpsc::Sender<Option<Ipv4Addr>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let ns_fd = host_netns.as_deref().map(netns::open).transpose()?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("uplink-watch".into())
        .spawn(move || {
            // This thread lives in the host namespace until the daemon
            // exits; it is never reused for anything else.
            let setup = || -> anyhow::Result<std::os::fd::OwnedFd> {
                if let Some(fd) = &ns_fd {
                    nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
                        .context("cannot enter the host namespace")?;
                }
                // The socket is opened after setns, so it belongs to the
                // host namespace and hears its events.
                let sock = socket(
                    AddressFamily::Netlink,
                    SockType::Raw,
                    SockFlag::SOCK_CLOEXEC,
                    SockProtocol::NetlinkRoute,
                )?;
                bind(
                    std::os::fd::AsRawFd::as_raw_fd(&sock),
                    &NetlinkAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR),
                )?;
                setsockopt(&sock, ReceiveTimeout, &TimeVal::new(0, 200_000))?;
                Ok(sock)
            };
            let sock = match setup() {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut buf = vec![0u8; 64 * 1024];
            let mut report = true;
            let mut blocked = None;
            while !stop.load(Ordering::SeqCst) {
                if report {
                    follow_host_addresses(&host_access, &mut blocked);
                    let addr = ebpf::uplink_ipv4(&uplink).ok();
                    if tx.send(addr).is_err() {
                        return;
                    }
                }
                // Any event may concern the uplink; re-reading the address
                // is cheaper and more robust than decoding every message.
                report = matches!(
                    recv(std::os::fd::AsRawFd::as_raw_fd(&sock), &mut buf, MsgFlags::empty()),
                    Ok(n) if n > 0
                );
            }
        })?;
    ready_rx
        .recv()
        .context("the address watcher did not start")??;
    Ok(handle)
}

/// Brings `host_addrs` in step with the host's addresses (on the watcher
/// thread, inside the host namespace); says so when the count changed.
fn follow_host_addresses(access: &ebpf::HostAccess, last: &mut Option<usize>) {
    if !access.dir.exists() {
        return; // the lab is going down; the main loop exits
    }
    match ebpf::sync_host_access(access) {
        Ok(n) if *last != Some(n) => {
            *last = Some(n);
            if !access.allowed {
                say(&format!(
                    "host access: {n} host addresses closed to the namespaces"
                ));
            }
        }
        Ok(_) => {}
        Err(e) => say(&format!("cannot update the host addresses: {e}")),
    }
}

/// Starts `netlab --lab LAB daemon` detached (new session, output to the
/// log file) and waits until it has written its pid file.
pub fn spawn_background(lab: &str, opts: &Options) -> anyhow::Result<i32> {
    if let Some(pid) = running_pid(lab) {
        return Ok(pid);
    }
    target(lab)?;
    fs::create_dir_all(state::STATE_DIR)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(lab))?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["--lab", lab, "daemon", "--interval"])
        .arg(opts.interval.as_secs_f64().to_string());
    if let Some(addr) = opts.metrics {
        // Already checked here; the child checks again and must not refuse.
        cmd.arg("--metrics").arg(addr.to_string());
        if !addr.ip().is_loopback() {
            cmd.arg("--metrics-allow-remote");
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from the
    // caller's terminal and process group.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        })
    };
    let mut child = cmd.spawn().context("cannot start the daemon")?;
    // It starts in milliseconds; the margin is for a machine under load
    // (`up` fails if the daemon does not come up).
    let deadline = Instant::now() + SPAWN_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(pid) = running_pid(lab) {
            return Ok(pid);
        }
        if let Some(status) = child.try_wait()? {
            // Another `up` may have started one at the same moment.
            if let Some(pid) = running_pid(lab) {
                return Ok(pid);
            }
            bail!("the daemon exited at once ({status}); {}", log_tail(lab));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "the daemon did not start within {SPAWN_TIMEOUT:?}; {}",
        log_tail(lab)
    )
}

/// The end of the daemon's log, for an error message (the log itself goes
/// with `netlab down`).
fn log_tail(lab: &str) -> String {
    let path = log_path(lab);
    let text = fs::read_to_string(&path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n  ");
    if tail.is_empty() {
        format!("its log {} is empty", path.display())
    } else {
        format!("the end of its log ({}):\n  {tail}", path.display())
    }
}

fn say(msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "netlab daemon: {msg}");
    let _ = out.flush();
}

/// The daemon's claim on its lab: the pid file, exclusively flock'ed for
/// the daemon's lifetime, so two daemons started at once cannot both run.
/// Removed when the daemon ends.
struct PidFile {
    path: PathBuf,
    _lock: Flock<fs::File>,
}

impl PidFile {
    fn claim(lab: &str) -> anyhow::Result<Self> {
        fs::create_dir_all(state::STATE_DIR)?;
        let path = pid_path(lab);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, _)) => {
                let pid = running_pid(lab).map_or("?".into(), |p| p.to_string());
                bail!("a daemon for lab {lab} is already running (pid {pid})");
            }
        };
        lock.set_len(0)?;
        writeln!(*lock, "{}", std::process::id())?;
        lock.flush()?;
        Ok(Self { path, _lock: lock })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::NatTimeouts;

    const MS: Duration = Duration::from_millis(1);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn cheap_sweeps_keep_the_interval() {
        assert_eq!(next_sweep_delay(S, MS, 30 * S), S);
        assert_eq!(next_sweep_delay(S, 20 * MS, 30 * S), S);
        assert_eq!(next_sweep_delay(5 * S, 100 * MS, 30 * S), 5 * S);
    }

    #[test]
    fn costly_sweeps_are_spaced_to_fifty_times_their_duration() {
        assert_eq!(next_sweep_delay(S, 40 * MS, 30 * S), 2 * S);
        assert_eq!(next_sweep_delay(S, 80 * MS, 30 * S), 4 * S);
    }

    #[test]
    fn the_delay_never_exceeds_a_quarter_of_the_shortest_timeout() {
        assert_eq!(next_sweep_delay(S, 200 * MS, 30 * S), 7500 * MS);
        // An interval longer than that quarter is the user's choice.
        assert_eq!(next_sweep_delay(10 * S, 2 * S, 8 * S), 10 * S);
        // Tiny timeouts (tests): never below the interval.
        assert_eq!(next_sweep_delay(S, 200 * MS, 2 * S), S);
    }

    #[test]
    fn the_shortest_timeout_includes_fragments() {
        let t = NatTimeouts::default();
        assert_eq!(shortest_timeout(&t), Duration::from_secs(t.udp.min(t.icmp)));
        let t = NatTimeouts {
            udp: 5,
            ..Default::default()
        };
        assert_eq!(shortest_timeout(&t), 5 * S);
        let t = NatTimeouts {
            tcp_established: 3600,
            tcp_closing: 600,
            tcp_syn: 600,
            udp: 600,
            icmp: 600,
        };
        assert_eq!(shortest_timeout(&t), nat::FRAG_TIMEOUT);
    }
}
