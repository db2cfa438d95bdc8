//! The soak: a lab under traffic from every namespace at once while its
//! control plane keeps restarting (issue 7, "Load").
//!
//! Shared by the suite's short run (tests/tests/soak.rs) and `cargo xtask
//! soak --seconds N`, which runs the same test with `NETLAB_SOAK_SECONDS`,
//! so both make the same checks. During [`SoakOptions::duration`]:
//!
//! * **traffic**, from every endpoint namespace at the same time, through
//!   the NAT to servers in the lab's internet namespace: an iperf3 TCP
//!   stream per namespace, a UDP echo exchange, pings (to the internet and,
//!   through the switch, to the next namespace), and a steady run of short
//!   TCP connections (connect, echo, orderly close) — thousands of them;
//! * **long-lived TCP connections** through the NAT, opened before the
//!   first restart and exchanging data all along; each must keep its
//!   translation and make progress after every restart;
//! * **the control plane restarting**: every [`SoakOptions::restart_every`]
//!   `netlab daemon` is killed (SIGKILL, by its PID) and started again, and
//!   every few restarts `netlab up` runs again on the running lab (it finds
//!   the pinned datapath, checks it and adopts it);
//! * the daemon's VmRSS is sampled (`/proc/PID/status`) all along.
//!
//! Then the traffic stops, the long-lived connections close with FIN, and
//! the NAT table must drain to zero entries by the daemon's expiry (the lab
//! file sets short timeouts: [`LAB_NAT_TIMEOUTS`]).
//!
//! [`SoakReport::problems`] lists what broke: any failed connection,
//! exchange or stream, a long-lived connection that broke, stalled or got
//! a new translation, NAT entries left, a daemon that did not stop
//! cleanly, daemon memory growing within an instance by more than a bound.
//! Timings are reported, never judged. Everything is bounded in time, every
//! process is the test's own child killed by its PID, and all traffic stays
//! between the lab's namespaces.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::traffic::{
    ChildGuard, EchoLoop, NsProcess, TcpEchoServer, UdpEchoServer, in_ns, iperf3_server, pattern,
    run_in_ns, tcp_connect, udp_socket,
};
use crate::{INTERNET_ADDRESS, TestLab};

/// The lab file's `[nat]` section for a soak: timeouts short enough that
/// the table drains within seconds of the traffic stopping.
pub const LAB_NAT_TIMEOUTS: &str = "[nat]\nudp_timeout = 3\nicmp_timeout = 3\n\
     tcp_closing_timeout = 3\ntcp_syn_timeout = 3\n";

/// Servers in the internet namespace.
const SHORT_PORT: u16 = 7000;
const LONG_PORT: u16 = 7001;
const UDP_PORT: u16 = 7002;
/// iperf3 server of namespace N: IPERF_BASE + N.
const IPERF_BASE: u16 = 5200;

/// Failure messages kept per kind (the counts are complete).
const KEEP_ERRORS: usize = 10;

/// What the soak does.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// How long the traffic runs.
    pub duration: Duration,
    /// Time between daemon restarts.
    pub restart_every: Duration,
    /// `netlab up` runs again on the running lab every this many restarts.
    pub up_every: u32,
    /// The daemon's sweep interval (`netlab daemon --interval`).
    pub daemon_interval: String,
    /// Short-connection workers per namespace, and their pause between
    /// connections (paced: the point is a steady stream for the whole run,
    /// not exhausting the namespace's ephemeral ports).
    pub short_workers_per_ns: usize,
    pub short_pause: Duration,
    /// Long-lived connections per namespace.
    pub long_lived_per_ns: usize,
    /// iperf3 TCP stream rate per namespace (`-b`): bounded, so a 2-core
    /// machine keeps time for every other flow.
    pub iperf3_rate: String,
    /// How long the NAT table may take to drain after the traffic stops
    /// (a bound against hanging; the longest timeout is 3 s).
    pub drain_timeout: Duration,
    /// The bound on a daemon instance's RSS growth (start to end).
    pub max_rss_growth_kib: u64,
}

impl SoakOptions {
    pub fn for_duration(duration: Duration) -> Self {
        Self {
            duration,
            restart_every: Duration::from_millis(2500),
            up_every: 2,
            daemon_interval: "0.2".into(),
            short_workers_per_ns: 2,
            short_pause: Duration::from_millis(10),
            long_lived_per_ns: 2,
            iperf3_rate: "50M".into(),
            drain_timeout: Duration::from_secs(30),
            max_rss_growth_kib: 8 * 1024,
        }
    }
}

/// One daemon process's memory, from its start to its end.
#[derive(Clone, Debug)]
pub struct DaemonMemory {
    pub pid: u32,
    pub start_kib: u64,
    pub end_kib: u64,
    pub peak_kib: u64,
    pub samples: u32,
    pub lived: Duration,
}

impl DaemonMemory {
    pub fn growth_kib(&self) -> i64 {
        self.end_kib as i64 - self.start_kib as i64
    }
}

/// Counts and the first few failure messages of one kind of traffic.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub done: u64,
    pub failed: u64,
    pub errors: Vec<String>,
}

impl Tally {
    fn fail(&mut self, e: String) {
        self.failed += 1;
        if self.errors.len() < KEEP_ERRORS {
            self.errors.push(e);
        }
    }
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub lab: String,
    pub subnet: String,
    pub namespaces: u32,
    /// How long the traffic actually ran.
    pub traffic_time: Duration,
    /// Short TCP connections through the NAT (each a full connect, echo,
    /// orderly close).
    pub short: Tally,
    /// Long-lived connections: opened, still working and untranslated at
    /// the end; their echo rounds; what broke.
    pub long_lived: u64,
    pub long_survived: u64,
    pub long_rounds: u64,
    pub long_errors: Vec<String>,
    /// UDP echo rounds and pings (one round = one request, one reply).
    pub udp: Tally,
    pub pings: Tally,
    /// iperf3 TCP streams and the bytes they delivered.
    pub iperf3: Tally,
    pub iperf3_bytes: u64,
    /// Control plane: daemon kills/restarts and `netlab up` on the running lab.
    pub daemon_restarts: u32,
    pub ups: Tally,
    pub daemons: Vec<DaemonMemory>,
    /// Daemons that did not end cleanly on SIGTERM at the end.
    pub daemon_errors: Vec<String>,
    /// NAT flows: most seen during the traffic, left at the end, and how
    /// long after the traffic stopped the table was empty.
    pub nat_peak_flows: usize,
    pub nat_flows_end: usize,
    pub nat_drain_time: Option<Duration>,
}

impl SoakReport {
    pub fn peak_rss_kib(&self) -> u64 {
        self.daemons.iter().map(|d| d.peak_kib).max().unwrap_or(0)
    }

    /// The largest start-to-end growth of one daemon instance.
    pub fn max_growth_kib(&self) -> i64 {
        self.daemons
            .iter()
            .map(DaemonMemory::growth_kib)
            .max()
            .unwrap_or(0)
    }

    /// Connections made through the NAT: short ones, long-lived ones and
    /// iperf3 streams (each iperf3 test is a control and a data connection;
    /// counted as one stream).
    pub fn connections_made(&self) -> u64 {
        self.short.done + self.long_lived + self.iperf3.done
    }

    pub fn connections_failed(&self) -> u64 {
        self.short.failed + (self.long_lived - self.long_survived) + self.iperf3.failed
    }

    /// Everything that went wrong; empty when the soak passed.
    pub fn problems(&self, opts: &SoakOptions) -> Vec<String> {
        let mut p = Vec::new();
        let mut tally = |what: &str, t: &Tally| {
            if t.failed > 0 {
                p.push(format!(
                    "{what}: {} of {} failed: {:?}",
                    t.failed,
                    t.done + t.failed,
                    t.errors
                ));
            }
        };
        tally("short TCP connections", &self.short);
        tally("UDP echo rounds", &self.udp);
        tally("pings", &self.pings);
        tally("iperf3 streams", &self.iperf3);
        tally("netlab up on the running lab", &self.ups);
        if self.long_survived != self.long_lived || !self.long_errors.is_empty() {
            p.push(format!(
                "long-lived connections: {} of {} survived: {:?}",
                self.long_survived, self.long_lived, self.long_errors
            ));
        }
        let expected = u64::from(self.namespaces);
        if self.short.done == 0 || self.udp.done == 0 || self.pings.done == 0 {
            p.push(format!(
                "some traffic never ran: {} short connections, {} UDP rounds, {} pings",
                self.short.done, self.udp.done, self.pings.done
            ));
        }
        if self.iperf3.done + self.iperf3.failed != expected {
            p.push(format!(
                "{} of {expected} iperf3 streams ran",
                self.iperf3.done + self.iperf3.failed
            ));
        }
        if self.daemon_restarts == 0 {
            p.push("the daemon was never restarted".into());
        }
        if self.nat_flows_end != 0 {
            p.push(format!(
                "{} NAT flows left {:?} after the traffic stopped",
                self.nat_flows_end, opts.drain_timeout
            ));
        }
        p.extend(self.daemon_errors.iter().cloned());
        for d in &self.daemons {
            if d.growth_kib() > opts.max_rss_growth_kib as i64 {
                p.push(format!(
                    "daemon {} grew from {} to {} KiB in {:?}",
                    d.pid, d.start_kib, d.end_kib, d.lived
                ));
            }
        }
        p
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "soak of lab {} ({}, {} namespaces): {:.1} s of traffic",
            self.lab,
            self.subnet,
            self.namespaces,
            self.traffic_time.as_secs_f64()
        )?;
        writeln!(
            f,
            "  connections through NAT: {} made, {} failed",
            self.connections_made(),
            self.connections_failed()
        )?;
        writeln!(
            f,
            "    short TCP (connect, echo, close): {} made, {} failed",
            self.short.done, self.short.failed
        )?;
        writeln!(
            f,
            "    long-lived TCP: {} of {} survived every restart ({} echo rounds)",
            self.long_survived, self.long_lived, self.long_rounds
        )?;
        writeln!(
            f,
            "    iperf3 TCP streams: {} ok, {} failed, {:.1} MB delivered",
            self.iperf3.done,
            self.iperf3.failed,
            self.iperf3_bytes as f64 / 1e6
        )?;
        writeln!(
            f,
            "  UDP echo rounds: {} ok, {} failed; pings: {} ok, {} failed",
            self.udp.done, self.udp.failed, self.pings.done, self.pings.failed
        )?;
        writeln!(
            f,
            "  control plane: {} daemon restarts (SIGKILL), {} `netlab up` on the running lab ({} failed)",
            self.daemon_restarts, self.ups.done, self.ups.failed
        )?;
        let mut growth: Vec<i64> = self.daemons.iter().map(DaemonMemory::growth_kib).collect();
        growth.sort_unstable();
        let median = growth.get(growth.len() / 2).copied().unwrap_or(0);
        let (first, last) = (self.daemons.first(), self.daemons.last());
        writeln!(
            f,
            "  daemon RSS: peak {:.1} MiB over {} instances (sampled every 200 ms from the pid file's appearance); \
             growth start -> end per instance: median {:+.2} MiB, largest {:+.2} MiB; \
             first instance {:.1} -> {:.1} MiB, last {:.1} -> {:.1} MiB",
            mib(self.peak_rss_kib()),
            self.daemons.len(),
            median as f64 / 1024.0,
            self.max_growth_kib() as f64 / 1024.0,
            mib(first.map_or(0, |d| d.start_kib)),
            mib(first.map_or(0, |d| d.end_kib)),
            mib(last.map_or(0, |d| d.start_kib)),
            mib(last.map_or(0, |d| d.end_kib)),
        )?;
        let drain = match self.nat_drain_time {
            Some(t) => format!("{:.1} s after the traffic stopped", t.as_secs_f64()),
            None => "never drained".into(),
        };
        write!(
            f,
            "  NAT flows: peak {} during traffic, {} at the end ({drain})",
            self.nat_peak_flows, self.nat_flows_end
        )
    }
}

// ----------------------------------------------------------------------
// The daemon under watch

/// VmRSS of a process, in KiB (None once it is gone).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The running daemon and the memory samples of this instance.
struct WatchedDaemon {
    guard: ChildGuard,
    memory: DaemonMemory,
    started: Instant,
}

impl WatchedDaemon {
    fn start(lab: &TestLab, interval: &str) -> Self {
        let guard = lab.start_daemon(interval);
        let pid = guard.pid();
        let rss = vm_rss_kib(pid).unwrap_or(0);
        Self {
            guard,
            memory: DaemonMemory {
                pid,
                start_kib: rss,
                end_kib: rss,
                peak_kib: rss,
                samples: 1,
                lived: Duration::ZERO,
            },
            started: Instant::now(),
        }
    }

    fn sample(&mut self) {
        if let Some(rss) = vm_rss_kib(self.memory.pid) {
            let m = &mut self.memory;
            m.end_kib = rss;
            m.peak_kib = m.peak_kib.max(rss);
            m.samples += 1;
        }
    }

    /// Last sample, then SIGKILL (by PID) and reap.
    fn kill(mut self) -> DaemonMemory {
        self.sample();
        self.memory.lived = self.started.elapsed();
        self.guard.kill();
        self.memory
    }

    /// Last sample, then SIGTERM: the clean stop, which must succeed.
    fn stop(mut self) -> (DaemonMemory, Option<String>) {
        self.sample();
        self.memory.lived = self.started.elapsed();
        let pid = self.memory.pid;
        let status = self.guard.terminate();
        let error =
            (!status.success()).then(|| format!("daemon {pid} ended with {status} on SIGTERM"));
        (self.memory, error)
    }
}

// ----------------------------------------------------------------------
// Traffic

/// A thread's outcome, shared with the soak.
type SharedTally = Arc<Mutex<Tally>>;

fn merge(into: &mut Tally, from: &SharedTally) {
    let t = from.lock().unwrap();
    into.done += t.done;
    into.failed += t.failed;
    for e in &t.errors {
        if into.errors.len() < KEEP_ERRORS {
            into.errors.push(e.clone());
        }
    }
}

/// One short connection: connect, echo `payload`, close the sending side
/// and wait for the server's FIN (an orderly close in both directions,
/// which is what moves the NAT entry to closing).
fn short_connection(to: SocketAddrV4, payload: &[u8]) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::V4(to), Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back)?;
    if back != payload {
        return Err(std::io::Error::other("echo differs from what was sent"));
    }
    s.shutdown(Shutdown::Write)?;
    let mut rest = [0u8; 16];
    match s.read(&mut rest)? {
        0 => Ok(()),
        n => Err(std::io::Error::other(format!(
            "{n} unexpected bytes before the server's FIN"
        ))),
    }
}

/// Short connections from `ns` until `stop`, one after another.
fn short_worker(
    ns: String,
    worker: usize,
    to: SocketAddrV4,
    pause: Duration,
    stop: Arc<AtomicBool>,
    tally: SharedTally,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        in_ns(&ns, || {
            let mut i: u64 = 0;
            while !stop.load(Ordering::SeqCst) {
                let payload = pattern((worker as u64) << 32 | i, 32 + (i as usize % 200));
                let result = short_connection(to, &payload);
                let mut t = tally.lock().unwrap();
                match result {
                    Ok(()) => t.done += 1,
                    Err(e) => t.fail(format!("{ns} worker {worker} connection {i}: {e}")),
                }
                drop(t);
                i += 1;
                std::thread::sleep(pause);
            }
        })
    })
}

/// An iperf3 TCP stream from `ns` for `secs` at `rate`, on its own thread.
fn iperf3_stream(
    ns: String,
    port: u16,
    secs: u64,
    rate: String,
    tally: SharedTally,
    bytes: Arc<AtomicU64>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let (server, p, t) = (
            INTERNET_ADDRESS.to_string(),
            port.to_string(),
            secs.to_string(),
        );
        let args = [
            "iperf3",
            "-c",
            &server,
            "-p",
            &p,
            "-t",
            &t,
            "-b",
            &rate,
            "-J",
            "--connect-timeout",
            "10000",
        ];
        let out = run_in_ns(&ns, &args, Duration::from_secs(secs + 60));
        let report: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
        let mut tally = tally.lock().unwrap();
        match report {
            Some(r) if out.status.success() && r.get("error").is_none() => {
                tally.done += 1;
                let got = r["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
                bytes.fetch_add(got, Ordering::SeqCst);
            }
            r => tally.fail(format!(
                "iperf3 from {ns}: {} {}",
                out.status,
                r.map_or_else(
                    || String::from_utf8_lossy(&out.stderr).into_owned(),
                    |r| r["error"].to_string()
                )
            )),
        }
    })
}

/// A long-lived connection through the NAT and its exchange.
struct LongLived {
    name: String,
    orig: SocketAddrV4,
    translated: SocketAddrV4,
    flow: EchoLoop,
}

fn local_v4(s: &TcpStream) -> SocketAddrV4 {
    match s.local_addr() {
        Ok(SocketAddr::V4(a)) => a,
        other => panic!("unexpected local address {other:?}"),
    }
}

/// The translation the NAT table holds for TCP from `orig` to `remote`.
fn translation(lab: &TestLab, orig: SocketAddrV4, remote: SocketAddrV4) -> Option<SocketAddrV4> {
    lab.nat_flows()
        .into_iter()
        .find(|f| f.proto == netlab::nat::Proto::Tcp && f.orig_src == orig && f.remote == remote)
        .map(|f| f.translated)
}

// ----------------------------------------------------------------------
// The run

/// Runs the soak on `lab`, which must be up (eBPF datapath, sandbox, its
/// lab file with [`LAB_NAT_TIMEOUTS`]) with no daemon running. Leaves the
/// lab up and no daemon running.
pub fn run(lab: &TestLab, opts: &SoakOptions) -> SoakReport {
    let mut report = SoakReport {
        lab: lab.name.clone(),
        subnet: lab.subnet(),
        namespaces: lab.namespace_count,
        ..Default::default()
    };
    let servers = Servers::start(lab);
    let daemon = WatchedDaemon::start(lab, &opts.daemon_interval);
    let long = open_long_lived(lab, servers.long.addr_v4(), opts, &mut report);

    let traffic = Traffic::start(lab, &servers, opts);
    let mut daemon = churn(lab, opts, daemon, &long, traffic.started, &mut report);
    traffic.finish(&mut report);
    drop(servers.iperf3);

    close_long_lived(lab, long, &servers.long, &mut report);
    drain(lab, &mut daemon, opts.drain_timeout, &mut report);
    let (memory, error) = daemon.stop();
    report.daemons.push(memory);
    report.daemon_errors.extend(error);
    report
}

/// The servers in the lab's internet namespace.
struct Servers {
    short: TcpEchoServer,
    long: TcpEchoServer,
    udp: UdpEchoServer,
    iperf3: Vec<NsProcess>,
}

impl Servers {
    fn start(lab: &TestLab) -> Self {
        let ns = lab.inet_ns();
        let at = |port| SocketAddrV4::new(INTERNET_ADDRESS, port);
        Self {
            short: TcpEchoServer::start(&ns, at(SHORT_PORT)),
            long: TcpEchoServer::start(&ns, at(LONG_PORT)),
            udp: UdpEchoServer::start(&ns, at(UDP_PORT)),
            iperf3: (1..=lab.namespace_count)
                .map(|n| iperf3_server(&ns, INTERNET_ADDRESS, IPERF_BASE + n as u16))
                .collect(),
        }
    }
}

/// Opens the long-lived connections (each exchanging data from then on)
/// and notes their translations.
fn open_long_lived(
    lab: &TestLab,
    server: SocketAddrV4,
    opts: &SoakOptions,
    report: &mut SoakReport,
) -> Vec<LongLived> {
    let mut long = Vec::new();
    for n in 1..=lab.namespace_count {
        for j in 0..opts.long_lived_per_ns {
            report.long_lived += 1;
            let name = format!("{} #{j}", lab.ns(n));
            let stream = match tcp_connect(&lab.ns(n), server, Duration::from_secs(10)) {
                Ok(s) => s,
                Err(e) => {
                    report.long_errors.push(format!("{name}: connect: {e}"));
                    continue;
                }
            };
            let orig = local_v4(&stream);
            let flow = EchoLoop::tcp(stream, Duration::from_millis(50));
            if !flow.wait_rounds(3, Duration::from_secs(20)) {
                report
                    .long_errors
                    .push(format!("{name}: no echo at the start"));
            }
            let translated = translation(lab, orig, server).unwrap_or_else(|| {
                report
                    .long_errors
                    .push(format!("{name}: no NAT entry for {orig}"));
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)
            });
            long.push(LongLived {
                name,
                orig,
                translated,
                flow,
            });
        }
    }
    long
}

/// The traffic from every namespace, running until [`Traffic::finish`].
struct Traffic {
    started: Instant,
    stop: Arc<AtomicBool>,
    short_workers: Vec<JoinHandle<()>>,
    short: SharedTally,
    iperf3_clients: Vec<JoinHandle<()>>,
    iperf3: SharedTally,
    iperf3_bytes: Arc<AtomicU64>,
    udp: Vec<(String, EchoLoop)>,
    pings: Vec<(String, EchoLoop)>,
}

impl Traffic {
    fn start(lab: &TestLab, servers: &Servers, opts: &SoakOptions) -> Self {
        let count = lab.namespace_count;
        let mut t = Self {
            started: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
            short_workers: Vec::new(),
            short: SharedTally::default(),
            iperf3_clients: Vec::new(),
            iperf3: SharedTally::default(),
            iperf3_bytes: Arc::new(AtomicU64::new(0)),
            udp: Vec::new(),
            pings: Vec::new(),
        };
        for n in 1..=count {
            let ns = lab.ns(n);
            for w in 0..opts.short_workers_per_ns {
                t.short_workers.push(short_worker(
                    ns.clone(),
                    (n as usize) * 100 + w,
                    servers.short.addr_v4(),
                    opts.short_pause,
                    t.stop.clone(),
                    t.short.clone(),
                ));
            }
            t.iperf3_clients.push(iperf3_stream(
                ns.clone(),
                IPERF_BASE + n as u16,
                opts.duration.as_secs().max(1),
                opts.iperf3_rate.clone(),
                t.iperf3.clone(),
                t.iperf3_bytes.clone(),
            ));
            let sock = udp_socket(&ns, SocketAddrV4::new(lab.ip(n as u8), 0));
            t.udp.push((
                format!("UDP {ns}"),
                EchoLoop::udp(sock, servers.udp.addr, Duration::from_millis(20)),
            ));
            t.pings.push((
                format!("ping {ns} -> internet"),
                EchoLoop::ping(&ns, INTERNET_ADDRESS, Duration::from_millis(100)),
            ));
            // Through the switch only, no NAT: the other half of the lab.
            let next = n % count + 1;
            t.pings.push((
                format!("ping {ns} -> {}", lab.ns(next)),
                EchoLoop::ping(&ns, lab.ip(next as u8), Duration::from_millis(200)),
            ));
        }
        t
    }

    /// Stops everything (iperf3 ends by itself after its `-t`) and adds
    /// the outcome to `report`.
    fn finish(self, report: &mut SoakReport) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.short_workers {
            if w.join().is_err() {
                self.short
                    .lock()
                    .unwrap()
                    .fail("a short-connection worker panicked".into());
            }
        }
        for (name, l) in self.udp {
            finish_loop(&mut report.udp, &name, l);
        }
        for (name, l) in self.pings {
            finish_loop(&mut report.pings, &name, l);
        }
        for c in self.iperf3_clients {
            if c.join().is_err() {
                self.iperf3
                    .lock()
                    .unwrap()
                    .fail("an iperf3 client thread panicked".into());
            }
        }
        report.traffic_time = self.started.elapsed();
        merge(&mut report.short, &self.short);
        merge(&mut report.iperf3, &self.iperf3);
        report.iperf3_bytes = self.iperf3_bytes.load(Ordering::SeqCst);
    }
}

/// The control plane's churn for the traffic's duration: the daemon
/// sampled every 200 ms, killed and restarted every `restart_every`,
/// `netlab up` every `up_every` restarts, and after each restart every
/// long-lived connection must make progress. Returns the last daemon.
fn churn(
    lab: &TestLab,
    opts: &SoakOptions,
    mut daemon: WatchedDaemon,
    long: &[LongLived],
    started: Instant,
    report: &mut SoakReport,
) -> WatchedDaemon {
    let end = started + opts.duration;
    let up_every = opts.up_every.max(1);
    let mut next_restart = started + opts.restart_every;
    let mut next_nat_sample = started;
    // Seconds of traffic done; a line every few seconds where there is no
    // terminal (CI logs).
    let progress = netlab::progress::Progress::new("soak", Some(opts.duration.as_secs()));
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
        daemon.sample();
        if Instant::now() >= next_nat_sample {
            next_nat_sample += Duration::from_secs(1);
            let flows = lab.nat_flows().len();
            report.nat_peak_flows = report.nat_peak_flows.max(flows);
            progress.set_position(started.elapsed().as_secs());
            progress.set_message(format!(
                "{} daemon restarts, {flows} NAT flows",
                report.daemon_restarts
            ));
        }
        // No restart in the last second: the last one is seen under traffic.
        if Instant::now() < next_restart || Instant::now() + Duration::from_secs(1) >= end {
            continue;
        }
        next_restart = Instant::now() + opts.restart_every;
        report.daemon_restarts += 1;
        let restart = report.daemon_restarts;
        // `netlab up` alternately while the daemon runs and while no
        // control plane runs at all.
        let up_alone = restart.is_multiple_of(2 * up_every);
        let up_with_daemon = restart.is_multiple_of(up_every) && !up_alone;
        if up_with_daemon {
            up_again(lab, restart, &mut report.ups);
        }
        report.daemons.push(daemon.kill());
        if up_alone {
            up_again(lab, restart, &mut report.ups);
        }
        daemon = WatchedDaemon::start(lab, &opts.daemon_interval);
        for l in long {
            if !l.flow.wait_rounds(2, Duration::from_secs(20)) {
                report
                    .long_errors
                    .push(format!("{}: stalled after restart {restart}", l.name));
            }
        }
    }
    progress.finish_and_clear();
    daemon
}

/// Checks that each long-lived connection kept its translation and was
/// never re-established (the server saw it once), then closes it with FIN.
fn close_long_lived(
    lab: &TestLab,
    long: Vec<LongLived>,
    server: &TcpEchoServer,
    report: &mut SoakReport,
) {
    for l in long {
        let now = translation(lab, l.orig, server.addr_v4());
        let (rounds, failures) = l.flow.finish();
        report.long_rounds += rounds;
        let seen = server
            .peers()
            .iter()
            .filter(|p| **p == l.translated)
            .count();
        let mut problems = Vec::new();
        if !failures.is_empty() {
            problems.push(format!("{} ({rounds} rounds): {failures:?}", l.name));
        }
        if now != Some(l.translated) {
            problems.push(format!(
                "{}: translation {} at the start, {now:?} at the end",
                l.name, l.translated
            ));
        }
        if seen != 1 {
            problems.push(format!(
                "{}: the server saw {} {seen} times",
                l.name, l.translated
            ));
        }
        report.long_survived += u64::from(problems.is_empty());
        report.long_errors.extend(problems);
    }
    // More peers than connections opened: one was re-established.
    if server.peers().len() as u64 > report.long_lived {
        report.long_errors.push(format!(
            "the long-lived server accepted more connections than were opened: {:?}",
            server.peers()
        ));
    }
}

/// Waits (up to `timeout`) for the daemon's expiry to empty the NAT table.
fn drain(lab: &TestLab, daemon: &mut WatchedDaemon, timeout: Duration, report: &mut SoakReport) {
    let stopped = Instant::now();
    loop {
        daemon.sample();
        report.nat_flows_end = lab.nat_flows().len();
        if report.nat_flows_end == 0 {
            report.nat_drain_time = Some(stopped.elapsed());
            return;
        }
        if stopped.elapsed() >= timeout {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `netlab up` on the running lab: must find it whole and change nothing.
fn up_again(lab: &TestLab, restart: u32, tally: &mut Tally) {
    // --no-daemon: the soak kills and restarts its own daemon (and samples
    // its memory); `up` must not start another one in between.
    let out = lab.netlab(&["up", "--no-daemon"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("already up") {
        tally.done += 1;
    } else {
        tally.fail(format!("at restart {restart}: {}", crate::describe(&out)));
    }
}

fn finish_loop(tally: &mut Tally, name: &str, l: EchoLoop) {
    let (rounds, failures) = l.finish();
    let failed = failures.len() as u64;
    tally.done += rounds.saturating_sub(failed);
    for f in failures {
        tally.fail(format!("{name}: {f}"));
    }
}
