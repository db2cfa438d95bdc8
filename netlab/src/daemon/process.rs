//! The daemon as a process: its pid file (the claim on its lab), finding
//! it, starting it detached, stopping it.

use std::{
    fs,
    io::Write,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    fcntl::{Flock, FlockArg},
    sys::signal::{self, Signal},
    unistd::Pid,
};

use super::{
    log::{log_path, log_tail},
    record,
    target::{Options, target},
};
use crate::state;

/// How long `spawn_background` waits for the daemon's pid file.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(20);

/// The daemon's pid file.
pub fn pid_path(lab: &str) -> PathBuf {
    Path::new(state::STATE_DIR).join(format!("{lab}.daemon.pid"))
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
    record::remove_record(lab);
    // The log belongs to the lab too; `down` leaves nothing of it behind.
    let _ = fs::remove_file(log_path(lab));
    Ok(())
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

/// The daemon's claim on its lab: the pid file, exclusively flock'ed for
/// the daemon's lifetime, so two daemons started at once cannot both run.
/// Removed when the daemon ends.
pub struct PidFile {
    path: PathBuf,
    _lock: Flock<fs::File>,
}

impl PidFile {
    pub fn claim(lab: &str) -> anyhow::Result<Self> {
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
