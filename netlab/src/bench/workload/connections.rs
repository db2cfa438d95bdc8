//! New TCP connections per second: the client that opens and closes them
//! one after another, and the server that accepts them.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::socket::{setsockopt, sockopt};

use super::measured::Measured;
use crate::bench::{catalog::Metric, interrupt, nsexec::NsCpu};

/// The connection-rate accept loop.
pub const ACCEPT_PORT: u16 = 12865;
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
    server: impl Into<SocketAddr>,
    secs: u64,
) -> anyhow::Result<ConnRate> {
    let server = server.into();
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

/// Whether a TCP connection from the client namespace to `server` (one
/// [`AcceptServer`] listens there) completes within `within`: tried again
/// and again until it does or the time is up; the last error says why not.
/// The bench's probe of a path before it measures it.
pub fn connects_within(client: &NsCpu, server: SocketAddr, within: Duration) -> anyhow::Result<()> {
    client.run_in("bench-probe-connect", move || {
        let deadline = Instant::now() + within;
        loop {
            let error = match one_connection(server) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            interrupt::check()?;
            if Instant::now() >= deadline {
                return Err(error.context(format!(
                    "no TCP connection to {server} completed within {within:?}"
                )));
            }
            // A refused or unreachable attempt returns at once: do not spin.
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

fn one_connection(server: SocketAddr) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&server, timeout).context("connect")?;
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
    /// Listens on every IPv4 address of the namespace.
    pub fn start(ns: &NsCpu, port: u16) -> anyhow::Result<AcceptServer> {
        Self::start_at(ns, (Ipv4Addr::UNSPECIFIED, port).into())
    }

    /// Listens on one address (an IPv6 one for the IPv6 probe).
    pub fn start_at(ns: &NsCpu, at: SocketAddr) -> anyhow::Result<AcceptServer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = stop.clone();
        let handle = ns.spawn_thread("bench-accept", move || {
            let listener = match TcpListener::bind(at) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow!("binding TCP {at}: {e}")));
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
