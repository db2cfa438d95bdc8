//! The control loop: sweeps, address changes, the monitor gate, until a
//! signal or the lab's pins going.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::sys::signal::{self, SigHandler, Signal};

use super::{
    log::say,
    pacing::{next_sweep_delay, shortest_timeout},
    process::PidFile,
    record::Recorder,
    target::{Options, Target, target},
    watch::spawn_address_watcher,
};
use crate::{datapath::ebpf, nat};

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
    let mut record =
        Recorder::start(lab, opts.interval).context("cannot write the daemon's state file")?;
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
                        expired.push(flow);
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
