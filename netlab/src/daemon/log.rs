//! The daemon's output: one line per event on stdout, which is the log
//! file when the daemon runs in the background.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use crate::state;

/// The background daemon's log.
pub fn log_path(lab: &str) -> PathBuf {
    Path::new(state::STATE_DIR).join(format!("{lab}.daemon.log"))
}

/// The end of the daemon's log, for an error message (the log itself goes
/// with `netlab down`).
pub fn log_tail(lab: &str) -> String {
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

/// Writes one line of the daemon's log.
pub fn say(msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "netlab daemon: {msg}");
    let _ = out.flush();
}
