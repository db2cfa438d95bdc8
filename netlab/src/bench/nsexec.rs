//! Running things inside a named network namespace, pinned to a CPU: child
//! processes (setns + sched_setaffinity between fork and exec) and threads
//! (setns changes only the calling thread, so each job gets a fresh thread
//! that is discarded afterwards).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sched::{CloneFlags, CpuSet, sched_setaffinity, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::interrupt;

/// A network namespace named under /run/netns, and the CPU work in it runs on.
#[derive(Clone, Debug)]
pub struct NsCpu {
    pub netns: String,
    pub cpu: usize,
}

impl NsCpu {
    pub fn new(netns: &str, cpu: usize) -> Self {
        Self {
            netns: netns.to_string(),
            cpu,
        }
    }

    fn open(&self) -> anyhow::Result<File> {
        File::open(crate::netns::path(&self.netns))
            .with_context(|| format!("opening network namespace {}", self.netns))
    }

    /// A command that will run inside the namespace on the CPU.
    pub fn command(&self, program: &str, args: &[String]) -> anyhow::Result<NsCommand> {
        Ok(NsCommand {
            netns_file: self.open()?,
            cpu: self.cpu,
            program: program.to_string(),
            args: args.to_vec(),
            netns: self.netns.clone(),
        })
    }

    /// Run `job` on a new thread that has entered the namespace and is pinned
    /// to the CPU. The thread ends with the job, so its namespace never leaks.
    pub fn spawn_thread<T, F>(
        &self,
        name: &str,
        job: F,
    ) -> anyhow::Result<JoinHandle<anyhow::Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce() -> anyhow::Result<T> + Send + 'static,
    {
        let file = self.open()?;
        let cpu = self.cpu;
        let netns = self.netns.clone();
        thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("entering network namespace {netns}"))?;
                drop(file);
                pin_current(cpu)?;
                job()
            })
            .context("spawning a thread")
    }

    /// `spawn_thread` and wait for it.
    pub fn run_in<T, F>(&self, name: &str, job: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> anyhow::Result<T> + Send + 'static,
    {
        self.spawn_thread(name, job)?
            .join()
            .map_err(|_| anyhow!("thread {name} panicked"))?
    }
}

/// Pin the calling thread (pid 0 = the caller) to one CPU.
fn pin_current(cpu: usize) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).context("CPU number out of range")?;
    sched_setaffinity(Pid::from_raw(0), &set).with_context(|| format!("pinning to CPU {cpu}"))
}

/// A program to start inside a namespace.
pub struct NsCommand {
    netns_file: File,
    netns: String,
    cpu: usize,
    program: String,
    args: Vec<String>,
}

impl NsCommand {
    fn build(&self, stdout: Stdio, stderr: Stdio) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let fd = self.netns_file.as_raw_fd();
        let cpu = self.cpu;
        // SAFETY: between fork and exec only async-signal-safe work: two
        // system calls on a descriptor that stays open until spawn returns
        // (it is close-on-exec, so the program does not inherit it) and a
        // stack-allocated CPU set.
        unsafe {
            cmd.pre_exec(move || {
                setns(BorrowedFd::borrow_raw(fd), CloneFlags::CLONE_NEWNET)?;
                let mut set = CpuSet::new();
                set.set(cpu)?;
                sched_setaffinity(Pid::from_raw(0), &set)?;
                Ok(())
            });
        }
        cmd
    }

    fn describe(&self) -> String {
        format!(
            "{} {} (in {})",
            self.program,
            self.args.join(" "),
            self.netns
        )
    }

    /// Start a long-running server; stopped by PID when the guard drops.
    pub fn spawn_server(&self) -> anyhow::Result<ServerProcess> {
        let child = self
            .build(Stdio::null(), Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.describe()))?;
        Ok(ServerProcess {
            child: Some(child),
            what: self.describe(),
        })
    }

    /// Run to completion (or kill after `timeout`) and return standard output.
    /// A non-zero exit is an error that quotes standard error.
    pub fn output(&self, timeout: Duration) -> anyhow::Result<String> {
        let mut child = self
            .build(Stdio::piped(), Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.describe()))?;
        let stdout = read_in_background(child.stdout.take());
        let stderr = read_in_background(child.stderr.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline || interrupt::requested() {
                stop_child(&mut child);
                let why = if interrupt::requested() {
                    "interrupted"
                } else {
                    "timed out"
                };
                bail!("{} {why}", self.describe());
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "{} failed ({status}): {}{}",
                self.describe(),
                stderr.trim(),
                stdout.trim()
            );
        }
        Ok(stdout)
    }
}

fn read_in_background<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// SIGTERM, a grace period, then SIGKILL; always reaped. Only ever our own child.
fn stop_child(child: &mut Child) {
    let pid = Pid::from_raw(child.id() as i32);
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A server process we started; killed by PID on drop.
pub struct ServerProcess {
    child: Option<Child>,
    what: String,
}

impl ServerProcess {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fail if the server already exited (e.g. port in use), with its stderr.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was stopped", self.what)
        };
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut err);
            }
            bail!("{} exited ({status}): {}", self.what, err.trim());
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Wait until something listens on TCP `port` in the namespace (read from
/// the namespace's own /proc/thread-self/net/tcp, so no probe connection
/// disturbs the server).
pub fn wait_tcp_listening(
    ns: &NsCpu,
    port: u16,
    server: &mut ServerProcess,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let listening = ns.run_in("bench-probe", move || tcp_listening(port))?;
        if listening {
            return Ok(());
        }
        server.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "{} does not listen on TCP port {port} after {timeout:?}",
                server.what
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the calling thread's namespace has a TCP socket in LISTEN on `port`.
fn tcp_listening(port: u16) -> anyhow::Result<bool> {
    let mut found = false;
    for table in ["/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        found |= crate::procnet::parse(&text)
            .any(|s| s.state == crate::procnet::TCP_LISTEN && s.port == port);
    }
    Ok(found)
}

/// Runs `ip ARGS` (iproute2; `-n NS` first for a namespace): the bench's
/// own devices and namespaces, the lab's being netlab's to make.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2): is it installed?")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
