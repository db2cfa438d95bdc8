//! The measurements: servers started in a namespace once per datapath per
//! round, and one client function per workload, run in the client namespace
//! pinned to the client CPU.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::socket::{setsockopt, sockopt};

use super::interrupt;
use super::nsexec::{NsCpu, ServerProcess, wait_tcp_listening};
use super::parse;
use super::plan::{Metric, PREFILL_DST_PORTS};

pub const IPERF3_PORT: u16 = 5201;
pub const SOCKPERF_PORT: u16 = 11111;
/// The connection-rate accept loop.
pub const ACCEPT_PORT: u16 = 12865;
/// Prefill flows go to PREFILL_DST_PORTS ports from here, where UDP sinks
/// are bound (so the internet side answers with nothing, not ICMP errors).
pub const PREFILL_DST_PORT_BASE: u16 = 40001;
/// Prefill flows come from source ports starting here (below the default
/// ephemeral range, so they never meet the connection-rate client's ports).
pub const PREFILL_SRC_PORT_BASE: u16 = 10000;
/// sockperf ping-pong message size.
pub const RR_MESSAGE_BYTES: u32 = 64;
/// iperf3 UDP datagram size.
pub const UDP_DATAGRAM_BYTES: u32 = 64;

/// What one measurement produced: the figures, plus details that explain
/// them (retransmits, losses, failures, NAT entries).
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub values: Vec<(Metric, f64)>,
    pub details: BTreeMap<String, f64>,
}

/// Missing tools are reported before anything is built.
pub fn check_tools(need_ip: bool) -> anyhow::Result<()> {
    let mut tools = vec![("iperf3", "iperf3"), ("sockperf", "sockperf")];
    if need_ip {
        tools.push(("ip", "iproute2"));
    }
    let missing: Vec<_> = tools
        .iter()
        .filter(|(bin, _)| which::which(bin).is_err())
        .collect();
    if !missing.is_empty() {
        let bins: Vec<_> = missing.iter().map(|(b, _)| *b).collect();
        let pkgs: Vec<_> = missing.iter().map(|(_, p)| *p).collect();
        bail!(
            "netlab bench needs {} in PATH: install it with `apt-get install {}` or run `cargo xtask setup`",
            bins.join(" and "),
            pkgs.join(" ")
        );
    }
    Ok(())
}

/// First line of `TOOL --version` that names a version.
pub fn tool_version(tool: &str) -> Option<String> {
    let out = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find(|l| l.contains("version") || l.starts_with("iperf"))
        .map(|l| l.trim().to_string())
}

/// The servers of one namespace for one round; all stopped on drop.
pub struct Servers {
    processes: Vec<ServerProcess>,
    accept: Option<AcceptServer>,
    _sinks: Vec<UdpSocket>,
}

impl Servers {
    /// iperf3 and sockperf servers, plus (internet side) the accept loop and
    /// the UDP sinks for the prefill.
    pub fn start(ns: &NsCpu, internet_side: bool) -> anyhow::Result<Servers> {
        let mut servers = Servers {
            processes: Vec::new(),
            accept: None,
            _sinks: Vec::new(),
        };
        let iperf3 = ns.command("iperf3", &strings(&["-s", "-p", &IPERF3_PORT.to_string()]))?;
        let sockperf = ns.command(
            "sockperf",
            &strings(&[
                "server",
                "--tcp",
                "-i",
                "0.0.0.0",
                "-p",
                &SOCKPERF_PORT.to_string(),
            ]),
        )?;
        for (cmd, port) in [(iperf3, IPERF3_PORT), (sockperf, SOCKPERF_PORT)] {
            let mut server = cmd.spawn_server()?;
            wait_tcp_listening(ns, port, &mut server, Duration::from_secs(5))?;
            servers.processes.push(server);
        }
        if internet_side {
            servers.accept = Some(AcceptServer::start(ns, ACCEPT_PORT)?);
            servers._sinks = ns.run_in("bench-udp-sink", || {
                (0..PREFILL_DST_PORTS)
                    .map(|i| {
                        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PREFILL_DST_PORT_BASE + i))
                            .context("binding a prefill UDP sink")
                    })
                    .collect()
            })?;
        }
        Ok(servers)
    }

    /// Adds the connection-rate accept loop (a lab-side server whose port
    /// is published).
    pub fn start_accept(&mut self, ns: &NsCpu) -> anyhow::Result<()> {
        self.accept = Some(AcceptServer::start(ns, ACCEPT_PORT)?);
        Ok(())
    }

    /// PIDs of the server processes (for the log).
    pub fn pids(&self) -> Vec<u32> {
        self.processes
            .iter()
            .filter_map(ServerProcess::pid)
            .collect()
    }

    pub fn stop(&mut self) -> anyhow::Result<()> {
        for p in &mut self.processes {
            p.stop();
        }
        if let Some(accept) = self.accept.take() {
            accept.stop()?;
        }
        Ok(())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Generous bound for a client run: its duration plus connect and teardown.
fn client_timeout(secs: u64) -> Duration {
    Duration::from_secs(secs + 20)
}

/// iperf3 client, retried briefly while the server still tears down the
/// previous test ("the server is busy").
fn iperf3_client(
    client: &NsCpu,
    server: Ipv4Addr,
    secs: u64,
    extra: &[&str],
) -> anyhow::Result<String> {
    let mut args = strings(&[
        "-c",
        &server.to_string(),
        "-p",
        &IPERF3_PORT.to_string(),
        "-J",
        "-t",
        &secs.to_string(),
        "--connect-timeout",
        "3000",
    ]);
    args.extend(strings(extra));
    let mut attempt = 0;
    loop {
        let out = client
            .command("iperf3", &args)?
            .output(client_timeout(secs))?;
        let busy = out.contains("server is busy");
        if !busy || attempt >= 5 {
            return Ok(out);
        }
        attempt += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// TCP throughput with `streams` parallel streams (iperf3 -P), as received.
pub fn tcp_throughput(
    client: &NsCpu,
    server: Ipv4Addr,
    streams: u32,
    secs: u64,
) -> anyhow::Result<Measured> {
    let out = iperf3_client(client, server, secs, &["-P", &streams.to_string()])?;
    let tcp = parse::iperf3_tcp(&out)?;
    let mut m = Measured::default();
    m.values.push((Metric::BitsPerSecond, tcp.bits_per_second));
    m.details
        .insert("retransmits".into(), tcp.retransmits as f64);
    Ok(m)
}

/// UDP 64-byte datagrams sent as fast as possible (iperf3 -u -l 64 -b 0):
/// datagrams received per second at the server.
pub fn udp_small_packets(client: &NsCpu, server: Ipv4Addr, secs: u64) -> anyhow::Result<Measured> {
    let len = UDP_DATAGRAM_BYTES.to_string();
    let out = iperf3_client(client, server, secs, &["-u", "-l", &len, "-b", "0"])?;
    let udp = parse::iperf3_udp(&out)?;
    let mut m = Measured::default();
    m.values
        .push((Metric::PacketsPerSecond, udp.packets_per_second));
    m.details
        .insert("sent_packets".into(), udp.sent_packets as f64);
    m.details
        .insert("received_packets".into(), udp.received_packets as f64);
    m.details
        .insert("lost_packets".into(), udp.lost_packets as f64);
    Ok(m)
}

/// TCP ping-pong, one 64-byte message in flight (sockperf --full-rtt).
pub fn request_response(client: &NsCpu, server: Ipv4Addr, secs: u64) -> anyhow::Result<Measured> {
    request_response_at(client, server, SOCKPERF_PORT, secs)
}

/// [`request_response`] against `server:port` (a published port).
pub fn request_response_at(
    client: &NsCpu,
    server: Ipv4Addr,
    port: u16,
    secs: u64,
) -> anyhow::Result<Measured> {
    let args = strings(&[
        "ping-pong",
        "--tcp",
        "-i",
        &server.to_string(),
        "-p",
        &port.to_string(),
        "-t",
        &secs.to_string(),
        "-m",
        &RR_MESSAGE_BYTES.to_string(),
        "--full-rtt",
    ]);
    let out = client
        .command("sockperf", &args)?
        .output(client_timeout(secs))?;
    let pp = parse::sockperf_pingpong(&out)?;
    let mut m = Measured::default();
    m.values.push((Metric::RttP50Us, pp.rtt_p50_us));
    m.values.push((Metric::RttP99Us, pp.rtt_p99_us));
    m.values
        .push((Metric::TransactionsPerSecond, pp.transactions_per_second));
    m.details.insert("rtt_avg_us".into(), pp.rtt_avg_us);
    m.details
        .insert("observations".into(), pp.observations as f64);
    Ok(m)
}

/// Result of the connection-rate client.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnRate {
    /// Connections that completed: connect, read the server's byte, close.
    pub connections: u64,
    pub failures: u64,
    pub seconds: f64,
}

impl ConnRate {
    /// The connections-per-second figure and its raw counts, as every
    /// connection workload reports them.
    pub fn record(&self, m: &mut Measured) {
        m.values.push((
            Metric::ConnectionsPerSecond,
            self.connections as f64 / self.seconds,
        ));
        m.details
            .insert("connections".into(), self.connections as f64);
        m.details.insert("failures".into(), self.failures as f64);
        m.details.insert("seconds".into(), self.seconds);
    }
}

/// New TCP connections per second for `secs` seconds, one after another:
/// connect (1 s timeout), read the one byte the server sends, close with
/// SO_LINGER 0 (an RST, so the client keeps no TIME_WAIT socket and does not
/// run out of ports; the NAT still sees a full handshake and a close).
pub fn connection_rate(
    client: &NsCpu,
    server: SocketAddrV4,
    secs: u64,
) -> anyhow::Result<ConnRate> {
    let rate = client.run_in("bench-conn-rate", move || {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let start = Instant::now();
        let (mut connections, mut failures) = (0u64, 0u64);
        let mut first_error = None;
        while Instant::now() < deadline && !interrupt::requested() {
            match one_connection(server) {
                Ok(()) => connections += 1,
                Err(e) => {
                    failures += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        interrupt::check()?;
        if connections == 0 {
            let why = first_error.map(|e| format!("{e:#}")).unwrap_or_default();
            bail!("no TCP connection to {server} succeeded ({failures} failed): {why}");
        }
        Ok(ConnRate {
            connections,
            failures,
            seconds,
        })
    })?;
    Ok(rate)
}

fn one_connection(server: SocketAddrV4) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&server.into(), timeout).context("connect")?;
    setsockopt(
        &stream,
        sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .context("SO_LINGER")?;
    stream.set_read_timeout(Some(timeout))?;
    let mut byte = [0u8; 1];
    stream
        .read_exact(&mut byte)
        .context("reading the server's byte")?;
    Ok(())
}

/// The connection-rate server: accept, send one byte, close. A thread in
/// the internet namespace, stopped through a flag (polled every 100 ms).
pub struct AcceptServer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<anyhow::Result<u64>>>,
}

impl AcceptServer {
    pub fn start(ns: &NsCpu, port: u16) -> anyhow::Result<AcceptServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = stop.clone();
        let handle = ns.spawn_thread("bench-accept", move || {
            let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow!("binding TCP port {port}: {e}")));
                    return Ok(0);
                }
            };
            listener.set_nonblocking(true)?;
            let _ = ready_tx.send(Ok(()));
            accept_loop(&listener, &flag)
        })?;
        let mut server = AcceptServer {
            stop,
            handle: Some(handle),
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(server),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                let _ = server.stop_inner();
                bail!("the accept server did not start")
            }
        }
    }

    fn stop_inner(&mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| anyhow!("accept server panicked"))?,
            None => Ok(0),
        }
    }

    /// Stop and return how many connections it served.
    pub fn stop(mut self) -> anyhow::Result<u64> {
        self.stop_inner()
    }
}

impl Drop for AcceptServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool) -> anyhow::Result<u64> {
    let mut served = 0;
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                // The client may already have given up (timeout → RST); that
                // is its failure to count, not ours.
                let _ = stream.write_all(b"x");
                served += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait_readable(listener, Duration::from_millis(100))
                    .context("poll on the accept socket")?;
            }
            // ECONNABORTED and friends: the next connection is unaffected.
            Err(_) => {}
        }
    }
    Ok(served)
}

/// poll(2) for input (nix's poll module is not among the workspace's nix
/// features). EINTR counts as a timeout.
fn wait_readable(listener: &TcpListener, timeout: Duration) -> std::io::Result<()> {
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut fd, 1, timeout.as_millis() as libc::c_int) };
    let err = std::io::Error::last_os_error();
    if rc < 0 && err.raw_os_error() != Some(libc::EINTR) {
        return Err(err);
    }
    Ok(())
}

/// Result of filling the NAT table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prefill {
    /// Datagrams handed to the kernel (one per flow).
    pub sent: u64,
    /// Flows that could not be sent (port in use, send error).
    pub errors: u64,
    pub seconds: f64,
}

/// Open `flows` distinct UDP flows towards the internet side: one datagram
/// from each of `flows / PREFILL_DST_PORTS` source ports (bound one after
/// another from PREFILL_SRC_PORT_BASE) to each of PREFILL_DST_PORTS sink
/// ports. Each flow creates one NAT entry (conntrack entry for the kernel
/// datapath, NAT map entry for the eBPF one); the method is the same for both.
pub fn prefill_udp_flows(client: &NsCpu, target: Ipv4Addr, flows: u32) -> anyhow::Result<Prefill> {
    let sources = flows.div_ceil(PREFILL_DST_PORTS as u32);
    if PREFILL_SRC_PORT_BASE as u32 + sources > 32768 {
        bail!("prefill of {flows} flows needs source ports beyond the ephemeral range start");
    }
    client.run_in("bench-prefill", move || {
        let start = Instant::now();
        let (mut sent, mut errors) = (0u64, 0u64);
        let payload = [0u8; 16];
        for i in 0..sources {
            if i % 1024 == 0 {
                interrupt::check()?;
            }
            let src = PREFILL_SRC_PORT_BASE + i as u16;
            let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, src)) else {
                errors += PREFILL_DST_PORTS as u64;
                continue;
            };
            for d in 0..PREFILL_DST_PORTS {
                if sent + errors >= flows as u64 {
                    break;
                }
                let dst = SocketAddrV4::new(target, PREFILL_DST_PORT_BASE + d);
                match socket.send_to(&payload, dst) {
                    Ok(_) => sent += 1,
                    Err(_) => errors += 1,
                }
            }
        }
        Ok(Prefill {
            sent,
            errors,
            seconds: start.elapsed().as_secs_f64(),
        })
    })
}
