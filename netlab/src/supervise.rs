//! The control loop (`netlab daemon`) as `up`, `down` and `status` see it.
//!
//! On the eBPF datapath `netlab up` starts the daemon in the background
//! (unless `--no-daemon`), and `up` on a running lab starts it again if it
//! is not running (it died, or was stopped). `down` stops it by the pid in
//! its pid file.
//!
//! `status` reads the daemon's record (`crate::daemon::record`) to tell a
//! running daemon from one that died (a record without a stop time whose
//! process is gone: SIGKILL, OOM, a crash) and to show the last sweep.

use serde::Serialize;

use crate::daemon::{
    self,
    record::{read_record, unix_now},
};

/// Whether the daemon runs, as `status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    Running,
    /// Its process is gone without a clean stop (killed, crashed).
    Died,
    /// Stopped cleanly (by a signal, or because the lab's pins went).
    Stopped,
    /// No daemon ever recorded itself (`up --no-daemon`, or a lab brought
    /// up by an older netlab).
    NotStarted,
}

/// `status`'s daemon section (`status --json`: the `daemon` object).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DaemonStatus {
    pub state: DaemonState,
    /// The running daemon's pid, or the pid of the one that died/stopped.
    pub pid: Option<u32>,
    pub started_unix: Option<f64>,
    pub interval_s: Option<f64>,
    pub last_sweep_unix: Option<f64>,
    /// Seconds since the last sweep (at the time of `status`).
    pub last_sweep_ago_s: Option<f64>,
    pub last_sweep_flows: Option<usize>,
    pub expired_total: Option<u64>,
    pub stopped_unix: Option<f64>,
    /// The background daemon's log.
    pub log: String,
}

/// The lab's daemon, now.
pub fn status(lab: &str) -> DaemonStatus {
    let running = daemon::running_pid(lab);
    let record = read_record(lab);
    let now = unix_now();
    let state = match (&record, running) {
        (_, Some(_)) => DaemonState::Running,
        (None, None) => DaemonState::NotStarted,
        (Some(r), None) if r.stopped_unix.is_some() => DaemonState::Stopped,
        (Some(_), None) => DaemonState::Died,
    };
    // A running daemon that has not written its record yet (it is just
    // starting) still has a pid.
    let r = record.filter(|r| running.is_none_or(|p| p as u32 == r.pid));
    DaemonStatus {
        state,
        pid: running
            .map(|p| p as u32)
            .or_else(|| r.as_ref().map(|r| r.pid)),
        started_unix: r.as_ref().map(|r| r.started_unix),
        interval_s: r.as_ref().map(|r| r.interval_s),
        last_sweep_unix: r.as_ref().and_then(|r| r.last_sweep_unix),
        last_sweep_ago_s: r
            .as_ref()
            .and_then(|r| r.last_sweep_unix)
            .map(|t| (now - t).max(0.0)),
        last_sweep_flows: r.as_ref().map(|r| r.last_sweep_flows),
        expired_total: r.as_ref().map(|r| r.expired_total),
        stopped_unix: r.as_ref().and_then(|r| r.stopped_unix),
        log: daemon::log_path(lab).display().to_string(),
    }
}

/// One line for `status`.
pub fn render(s: &DaemonStatus) -> String {
    let pid = s.pid.map_or_else(|| "?".into(), |p| p.to_string());
    match s.state {
        DaemonState::Running => {
            let swept = match s.last_sweep_ago_s {
                Some(ago) => format!(
                    "last swept {ago:.1}s ago ({} NAT flows, {} expired since start)",
                    s.last_sweep_flows.unwrap_or(0),
                    s.expired_total.unwrap_or(0)
                ),
                None => "no sweep yet".into(),
            };
            format!("daemon: running (pid {pid}), {swept}")
        }
        DaemonState::Died => format!(
            "daemon: DIED (pid {pid} is gone without a clean stop; see {}); `netlab up` restarts it",
            s.log
        ),
        DaemonState::Stopped => {
            "daemon: stopped; NAT entries do not expire (`netlab up` starts it again)".into()
        }
        DaemonState::NotStarted => {
            "daemon: not running; NAT entries do not expire (`netlab up` or `netlab daemon` starts it)"
                .into()
        }
    }
}

/// What [`ensure_running`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// A daemon was already running (left alone).
    AlreadyRunning(i32),
    /// Started; `replaced` is the state of the one before it, if any.
    Started { pid: i32, before: DaemonState },
}

/// Starts the lab's daemon in the background unless one runs; `metrics`:
/// the address a newly started daemon serves metrics at (already checked
/// against the address policy).
pub fn ensure_running(lab: &str, metrics: Option<std::net::SocketAddr>) -> anyhow::Result<Ensured> {
    if let Some(pid) = daemon::running_pid(lab) {
        return Ok(Ensured::AlreadyRunning(pid));
    }
    let before = status(lab).state;
    let opts = daemon::Options {
        interval: daemon::DEFAULT_INTERVAL,
        metrics,
    };
    log::info!(
        "lab {lab}: starting its control loop (daemon before: {before:?}, sweep every {:?})",
        opts.interval
    );
    let pid = daemon::spawn_background(lab, &opts)?;
    log::info!("lab {lab}: daemon running as pid {pid}");
    Ok(Ensured::Started { pid, before })
}

/// `up`'s last step on the eBPF datapath: the control loop runs (started,
/// or restarted if it died), unless `no_daemon`. Returns the line `up`
/// prints about it.
pub fn after_up(
    lab: &str,
    no_daemon: bool,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if no_daemon {
        return Ok(match daemon::running_pid(lab) {
            Some(pid) => {
                format!("control loop: netlab daemon already running (pid {pid}); left running")
            }
            None => "control loop: not started (--no-daemon); NAT entries do not expire until \
                     `netlab daemon` runs"
                .into(),
        });
    }
    let log = daemon::log_path(lab);
    let ensured = ensure_running(lab, metrics).with_context(|| {
        format!(
            "lab {lab} is up, but its control loop (netlab daemon) did not start; \
             `netlab up` retries"
        )
    })?;
    Ok(match ensured {
        Ensured::AlreadyRunning(pid) => format!("control loop: netlab daemon running (pid {pid})"),
        Ensured::Started {
            pid,
            before: DaemonState::Died,
        } => format!(
            "control loop: the daemon had died; restarted it (pid {pid}, log {})",
            log.display()
        ),
        Ensured::Started { pid, .. } => format!(
            "control loop: netlab daemon started in the background (pid {pid}, log {})",
            log.display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_status_says_when_it_last_swept() {
        let s = DaemonStatus {
            state: DaemonState::Running,
            pid: Some(42),
            started_unix: Some(1.0),
            interval_s: Some(1.0),
            last_sweep_unix: Some(2.0),
            last_sweep_ago_s: Some(0.4),
            last_sweep_flows: Some(7),
            expired_total: Some(3),
            stopped_unix: None,
            log: "/run/netlab/x.daemon.log".into(),
        };
        assert_eq!(
            render(&s),
            "daemon: running (pid 42), last swept 0.4s ago (7 NAT flows, 3 expired since start)"
        );
        let died = DaemonStatus {
            state: DaemonState::Died,
            ..s
        };
        assert!(render(&died).contains("DIED (pid 42"));
    }
}
