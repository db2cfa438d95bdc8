//! The daemon's record of itself, next to its pid file:
//! `/run/netlab/<lab>.daemon.state` (JSON, replaced atomically): its pid,
//! when it started, its sweep interval, when it last swept and what that
//! sweep saw, and when it stopped cleanly. The running daemon writes it
//! ([`Recorder`]); `status` reads it (`crate::supervise`). The file is not
//! named `*.json` because that suffix marks a lab's state file.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::state;

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

pub fn unix_now() -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
