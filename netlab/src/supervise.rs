//! The control loop (`netlab daemon`) as `up`, `down` and `status` see it.
//!
//! On the eBPF datapath `netlab up` starts the daemon in the background
//! (unless `--no-daemon`), and `up` on a running lab starts it again if it
//! is not running (it died, or was stopped). `down` stops it by the pid in
//! its pid file.
//!
//! The daemon keeps a small record next to its pid file,
//! `/run/netlab/<lab>.daemon.state` (JSON, replaced atomically): its pid,
//! when it started, its sweep interval, when it last swept and what that
//! sweep saw, and when it stopped cleanly. `status` reads it to tell a
//! running daemon from one that died (a record without a stop time whose
//! process is gone: SIGKILL, OOM, a crash) and to show the last sweep. The
//! file is not named `*.json` because that suffix marks a lab's state file.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{daemon, state};

/// The daemon's record of itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub pid: u32,
    /// Unix time (seconds) the daemon started.
    pub started_unix: f64,
    /// Seconds between sweeps (the shortest; large tables sweep less often).
    pub interval_s: f64,
    /// Unix time of the last completed sweep.
    pub last_sweep_unix: Option<f64>,
    /// NAT flows the last sweep examined.
    pub last_sweep_flows: usize,
    /// Flows expired since the daemon started.
    pub expired_total: u64,
    /// Unix time of a clean stop (SIGTERM, SIGINT, `down`, pins gone).
    pub stopped_unix: Option<f64>,
}

/// `/run/netlab/<lab>.daemon.state`.
pub fn record_path(lab: &str) -> PathBuf {
    Path::new(state::STATE_DIR).join(format!("{lab}.daemon.state"))
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Reads the lab's daemon record, if there is one (an unreadable or
/// malformed record counts as none: it is only ever informative).
pub fn read_record(lab: &str) -> Option<Record> {
    let text = fs::read_to_string(record_path(lab)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Where the record is written before it is renamed into place.
fn record_tmp_path(lab: &str) -> PathBuf {
    record_path(lab).with_extension("state.tmp")
}

/// Removes the record, and a temporary one a killed daemon may have left
/// (`down`).
pub fn remove_record(lab: &str) {
    let _ = fs::remove_file(record_path(lab));
    let _ = fs::remove_file(record_tmp_path(lab));
}

/// What the running daemon writes: created at start, updated after every
/// sweep, marked stopped on a clean exit.
pub struct Recorder {
    path: PathBuf,
    tmp: PathBuf,
    record: Record,
}

impl Recorder {
    pub fn start(lab: &str, interval: Duration) -> std::io::Result<Self> {
        let r = Self {
            path: record_path(lab),
            tmp: record_tmp_path(lab),
            record: Record {
                pid: std::process::id(),
                started_unix: unix_now(),
                interval_s: interval.as_secs_f64(),
                ..Default::default()
            },
        };
        r.write()?;
        Ok(r)
    }

    /// After a sweep that examined `flows` flows and expired `expired`.
    pub fn swept(&mut self, flows: usize, expired: usize) {
        self.record.last_sweep_unix = Some(unix_now());
        self.record.last_sweep_flows = flows;
        self.record.expired_total += expired as u64;
        if let Err(e) = self.write() {
            log::warn!("cannot update {}: {e}", self.path.display());
        }
    }

    /// A clean stop.
    pub fn stopped(mut self) {
        self.record.stopped_unix = Some(unix_now());
        let _ = self.write();
    }

    /// Written to a temporary file and renamed over the record, so a
    /// reader never sees half of it.
    fn write(&self) -> std::io::Result<()> {
        let mut f = fs::File::create(&self.tmp)?;
        f.write_all(serde_json::to_string(&self.record)?.as_bytes())?;
        fs::rename(&self.tmp, &self.path)
    }
}

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

    #[test]
    fn the_record_round_trips() {
        let r = Record {
            pid: 7,
            started_unix: 10.5,
            interval_s: 1.0,
            last_sweep_unix: Some(11.0),
            last_sweep_flows: 3,
            expired_total: 2,
            stopped_unix: None,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
    }
}
