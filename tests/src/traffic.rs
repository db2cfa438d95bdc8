//! Real traffic inside a lab's namespaces, for the integration tests.
//!
//! Sockets are opened on a thread inside the namespace ([`in_ns`]): a socket
//! belongs to the namespace it was created in for its whole life, so the
//! test can then use it from any thread. That gives exact, scriptable
//! clients and servers (echo servers that record their peers, streams that
//! must keep exchanging data) without parsing tool output. External tools
//! (iperf3, ping) run as child processes entered into the namespace before
//! exec; every one is waited for with a deadline and killed by its own PID.
//!
//! Everything here only ever talks to addresses of the test's own lab.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlab::netns;

/// Runs `f` on a new thread inside namespace `ns`.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    netns::run_in(Some(ns), f).unwrap_or_else(|e| panic!("cannot run in namespace {ns}: {e}"))
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns
/// whether it held. Timings are never asserted: timeouts are generous
/// bounds so a broken datapath fails instead of hanging.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("unexpected IPv6 peer {a}"),
    }
}

// ----------------------------------------------------------------------
// Sockets

/// A TCP connection opened from inside `ns` (IPv4 or IPv6).
pub fn tcp_connect(
    ns: &str,
    to: impl Into<SocketAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let to = to.into();
    in_ns(ns, || TcpStream::connect_timeout(&to, timeout))
}

/// `n` TCP connections opened from inside `ns`, all kept open.
pub fn tcp_connect_many(
    ns: &str,
    to: impl Into<SocketAddr>,
    n: usize,
    timeout: Duration,
) -> Vec<io::Result<TcpStream>> {
    let to = to.into();
    in_ns(ns, || {
        (0..n)
            .map(|_| TcpStream::connect_timeout(&to, timeout))
            .collect()
    })
}

/// A UDP socket bound inside `ns` (port 0: any; IPv4 or IPv6).
pub fn udp_socket(ns: &str, bind: impl Into<SocketAddr>) -> UdpSocket {
    let bind = bind.into();
    in_ns(ns, || UdpSocket::bind(bind))
        .unwrap_or_else(|e| panic!("cannot bind UDP {bind} in {ns}: {e}"))
}

/// Sends `payload` on `stream` and reads the echo; an error if it differs.
pub fn tcp_echo(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(payload)?;
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back)?;
    if back != payload {
        return Err(io::Error::other("echo differs from what was sent"));
    }
    Ok(())
}

/// Sends `payload` to `to` and waits up to `timeout` for the same bytes to
/// come back from `to` (datagrams from elsewhere, or stale ones, are skipped).
pub fn udp_echo(
    sock: &UdpSocket,
    to: impl Into<SocketAddr>,
    payload: &[u8],
    timeout: Duration,
) -> bool {
    let to = to.into();
    if sock.send_to(payload, to).is_err() {
        return false;
    }
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == to && buf[..n] == *payload => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// Deterministic pseudo-random bytes (xorshift), so transfers can be
/// checked byte for byte without storing them.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

// ----------------------------------------------------------------------
// Servers

/// A TCP echo server listening inside a namespace (IPv4 or IPv6);
/// records every peer it accepted (the source address and port it saw,
/// i.e. after NAT).
pub struct TcpEchoServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    accept: Option<JoinHandle<()>>,
}

impl TcpEchoServer {
    pub fn start(ns: &str, addr: impl Into<SocketAddr>) -> Self {
        let addr = addr.into();
        let listener = in_ns(ns, || TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("cannot listen on {addr} in {ns}: {e}"));
        // std listens with a backlog of 128; the tests open hundreds of
        // connections at once. listen() again just raises the backlog.
        // SAFETY: a valid listening socket fd.
        unsafe { libc::listen(listener.as_raw_fd(), 4096) };
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (stop, peers) = (stop.clone(), peers.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            peers.lock().unwrap().push(peer);
                            let stop = stop.clone();
                            std::thread::spawn(move || echo_tcp(stream, &stop));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        Self {
            addr,
            stop,
            peers,
            accept: Some(accept),
        }
    }

    /// The address of an IPv4 server.
    pub fn addr_v4(&self) -> SocketAddrV4 {
        v4(self.addr)
    }

    /// Every peer accepted so far, in order (an IPv4 server's).
    pub fn peers(&self) -> Vec<SocketAddrV4> {
        self.peers_any().into_iter().map(v4).collect()
    }

    /// Every peer accepted so far, in order, of either family.
    pub fn peers_any(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

fn echo_tcp(mut stream: TcpStream, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

impl Drop for TcpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A UDP echo server inside a namespace (IPv4 or IPv6); records every
/// datagram's source.
pub struct UdpEchoServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEchoServer {
    pub fn start(ns: &str, addr: impl Into<SocketAddr>) -> Self {
        Self::start_with(ns, addr.into(), true)
    }

    /// A sink: records what arrives, answers nothing.
    pub fn sink(ns: &str, addr: impl Into<SocketAddr>) -> Self {
        Self::start_with(ns, addr.into(), false)
    }

    fn start_with(ns: &str, addr: SocketAddr, echo: bool) -> Self {
        let sock = udp_socket(ns, addr);
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, peers, received) = (stop.clone(), peers.clone(), received.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        peers.lock().unwrap().push(from);
                        received.lock().unwrap().push(buf[..n].to_vec());
                        if echo {
                            let _ = sock.send_to(&buf[..n], from);
                        }
                    }
                }
            })
        };
        Self {
            addr,
            stop,
            peers,
            received,
            thread: Some(thread),
        }
    }

    /// The address of an IPv4 server.
    pub fn addr_v4(&self) -> SocketAddrV4 {
        v4(self.addr)
    }

    /// Every datagram's source so far (an IPv4 server's).
    pub fn peers(&self) -> Vec<SocketAddrV4> {
        self.peers_any().into_iter().map(v4).collect()
    }

    /// Every datagram's source so far, of either family.
    pub fn peers_any(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }

    /// Payloads received so far, in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for UdpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

// ----------------------------------------------------------------------
// Flows that must keep going

/// A background exchange that must never fail: every round sends a
/// numbered message and waits for its echo. Rounds are counted, so a test
/// can wait for progress after an event.
pub struct EchoLoop {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl EchoLoop {
    /// Rounds over an established TCP connection to an echo server.
    pub fn tcp(mut stream: TcpStream, pause: Duration) -> Self {
        Self::spawn(
            move |round| {
                let msg = pattern(round + 1, 64 + (round as usize % 1400));
                tcp_echo(&mut stream, &msg).map_err(|e| format!("round {round}: {e}"))
            },
            pause,
        )
    }

    /// Rounds of UDP datagrams to an echo server; a reply must come within
    /// 2 s (a loss on an idle veth path is a datapath failure).
    pub fn udp(sock: UdpSocket, to: impl Into<SocketAddr>, pause: Duration) -> Self {
        let to = to.into();
        Self::spawn(
            move |round| {
                let mut msg = round.to_be_bytes().to_vec();
                msg.extend_from_slice(&pattern(round + 7, 32));
                if udp_echo(&sock, to, &msg, Duration::from_secs(2)) {
                    Ok(())
                } else {
                    Err(format!("round {round}: no echo from {to}"))
                }
            },
            pause,
        )
    }

    /// Single pings (`ping -c 1 -W 2`) from `ns`, one after the other.
    pub fn ping(ns: &str, to: Ipv4Addr, pause: Duration) -> Self {
        let ns = ns.to_owned();
        Self::spawn(
            move |round| {
                let out = run_in_ns(
                    &ns,
                    &["ping", "-n", "-c", "1", "-W", "2", &to.to_string()],
                    Duration::from_secs(10),
                );
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "round {round}: ping {to} from {ns} failed: {}",
                        crate::describe(&out)
                    ))
                }
            },
            pause,
        )
    }

    fn spawn(
        mut round: impl FnMut(u64) -> Result<(), String> + Send + 'static,
        pause: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, rounds) = (stop.clone(), rounds.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    if let Err(e) = round(n) {
                        failures.push(e);
                        if failures.len() >= 5 {
                            break;
                        }
                    }
                    n += 1;
                    rounds.store(n, Ordering::SeqCst);
                    std::thread::sleep(pause);
                }
                failures
            })
        };
        Self {
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    /// Rounds completed so far (successful or not).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::SeqCst)
    }

    /// Waits until `more` further rounds completed; false on timeout (the
    /// flow is stuck).
    pub fn wait_rounds(&self, more: u64, timeout: Duration) -> bool {
        let target = self.rounds() + more;
        wait_until(timeout, || self.rounds() >= target)
    }

    /// Stops the loop and returns (rounds, failures).
    pub fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self
            .thread
            .take()
            .unwrap()
            .join()
            .unwrap_or_else(|_| vec!["the loop panicked".into()]);
        (self.rounds(), failures)
    }
}

impl Drop for EchoLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

// ----------------------------------------------------------------------
// Raw frames: capture and injection

/// ETH_P_ALL in network order, as AF_PACKET wants it.
fn eth_p_all() -> u16 {
    (libc::ETH_P_ALL as u16).to_be()
}

/// An AF_PACKET socket bound to `dev`, opened inside `ns`.
fn packet_socket(ns: &str, dev: &str) -> io::Result<OwnedFd> {
    let dev = dev.to_owned();
    in_ns(ns, move || {
        let ifindex = nix::net::if_::if_nametoindex(dev.as_str())
            .map_err(|e| io::Error::other(format!("no device {dev}: {e}")))?;
        // SAFETY: plain socket(2); the fd is owned at once.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, eth_p_all() as i32) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket(2) and is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = eth_p_all();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: sll is a valid sockaddr_ll of the given length.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    })
}

fn set_sockopt_int(fd: &OwnedFd, level: i32, name: i32, value: i32) {
    // SAFETY: an int option on a valid socket.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
}

/// Sends raw Ethernet frames out of `dev` inside `ns`.
pub fn send_frames(ns: &str, dev: &str, frames: &[Vec<u8>]) {
    let fd = packet_socket(ns, dev).unwrap_or_else(|e| panic!("packet socket on {dev}: {e}"));
    for f in frames {
        // SAFETY: sending a buffer of the given length on a bound socket.
        let n = unsafe { libc::send(fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        assert_eq!(
            n,
            f.len() as isize,
            "send on {dev}: {}",
            io::Error::last_os_error()
        );
    }
}

/// Sends one raw Ethernet frame out of `dev` inside `ns`; the kernel's
/// answer (bytes sent, or the error it refused the frame with).
pub fn try_send_frame(ns: &str, dev: &str, frame: &[u8]) -> io::Result<usize> {
    let fd = packet_socket(ns, dev)?;
    // SAFETY: sending a buffer of the given length on a bound socket.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// What a capture saw.
#[derive(Debug, Default, Clone)]
pub struct CaptureSummary {
    /// IPv4 packets by (source, destination).
    pub ipv4: BTreeMap<(Ipv4Addr, Ipv4Addr), u64>,
    /// ARP frames by (sender address, target address).
    pub arp: BTreeMap<(Ipv4Addr, Ipv4Addr), u64>,
    /// Every other frame.
    pub other: u64,
    /// Frames kept by the capture's filter (first 256 bytes).
    pub kept: Vec<Vec<u8>>,
}

impl CaptureSummary {
    /// Every IPv4 address seen as a source or destination, in IPv4 packets
    /// and ARP frames.
    pub fn addresses(&self) -> std::collections::BTreeSet<Ipv4Addr> {
        self.ipv4
            .keys()
            .chain(self.arp.keys())
            .flat_map(|(a, b)| [*a, *b])
            .collect()
    }

    pub fn from_source(&self, src: Ipv4Addr) -> u64 {
        self.ipv4
            .iter()
            .filter(|((s, _), _)| *s == src)
            .map(|(_, n)| n)
            .sum()
    }
}

/// A packet capture (AF_PACKET, both directions) on one device of one
/// namespace, running until [`Capture::finish`].
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<CaptureSummary>>,
}

impl Capture {
    /// Starts capturing; frames for which `keep` is true are stored.
    pub fn start(ns: &str, dev: &str, keep: impl Fn(&[u8]) -> bool + Send + 'static) -> Self {
        let fd = packet_socket(ns, dev).unwrap_or_else(|e| panic!("capture on {dev}: {e}"));
        set_sockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 32 << 20);
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        // SAFETY: a timeval option on a valid socket.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut summary = CaptureSummary::default();
                let mut buf = vec![0u8; 65536];
                loop {
                    // SAFETY: receiving into a buffer of the given length.
                    let n = unsafe {
                        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    if n <= 0 {
                        // Timeout: stop only once the queue is drained.
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        continue;
                    }
                    let frame = &buf[..n as usize];
                    record(&mut summary, frame);
                    if keep(frame) {
                        summary.kept.push(frame[..frame.len().min(256)].to_vec());
                    }
                }
                summary
            })
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> CaptureSummary {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().expect("capture thread")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

fn ip_at(frame: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3])
}

fn record(summary: &mut CaptureSummary, frame: &[u8]) {
    if frame.len() < 14 {
        summary.other += 1;
        return;
    }
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 if frame.len() >= 34 => {
            *summary
                .ipv4
                .entry((ip_at(frame, 26), ip_at(frame, 30)))
                .or_default() += 1;
        }
        0x0806 if frame.len() >= 42 => {
            *summary
                .arp
                .entry((ip_at(frame, 28), ip_at(frame, 38)))
                .or_default() += 1;
        }
        _ => summary.other += 1,
    }
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ----------------------------------------------------------------------
// Child processes inside namespaces

/// A child process running inside a namespace, killed (by its PID) and
/// reaped when dropped.
pub struct NsProcess {
    child: Child,
    what: String,
}

impl NsProcess {
    /// Starts `args` inside `ns`, output discarded.
    pub fn spawn(ns: &str, args: &[&str]) -> Self {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        netns::command_in(&mut cmd, ns, false).expect("enter namespace");
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?} in {ns}: {e}"));
        Self {
            child,
            what: format!("{args:?} in {ns}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
        }
        if let Err(e) = self.child.wait() {
            eprintln!("cannot reap {}: {e}", self.what);
        }
    }
}

/// Runs a command to completion with a deadline: killed (by PID) when it
/// overruns, which is then a panic naming it.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = Output {
                status: std::os::unix::process::ExitStatusExt::from_raw(9),
                stdout: out_reader.join().unwrap_or_default(),
                stderr: err_reader.join().unwrap_or_default(),
            };
            panic!(
                "{cmd:?} did not finish within {timeout:?}: {}",
                crate::describe(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Runs `args` inside `ns` to completion, with a deadline.
pub fn run_in_ns(ns: &str, args: &[&str], timeout: Duration) -> Output {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    netns::command_in(&mut cmd, ns, false).expect("enter namespace");
    run_bounded(&mut cmd, timeout)
}

/// `count` pings from `ns` to `to`, `interval` seconds apart; returns
/// (transmitted, received) from ping's summary.
pub fn ping_count(ns: &str, to: Ipv4Addr, count: u32, interval: &str) -> (u32, u32) {
    let count_s = count.to_string();
    let out = run_in_ns(
        ns,
        &[
            "ping",
            "-n",
            "-q",
            "-c",
            &count_s,
            "-i",
            interval,
            "-W",
            "2",
            &to.to_string(),
        ],
        Duration::from_secs(60 + u64::from(count)),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary: {}", crate::describe(&out)));
    let nums: Vec<u32> = line
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Whether one of three single pings from `ns` to `to` gets a reply
/// (`ping -6` for an IPv6 address).
pub fn ping_ok(ns: &str, to: impl Into<std::net::IpAddr>) -> bool {
    let to = to.into();
    let family = if to.is_ipv6() { "-6" } else { "-4" };
    (0..3).any(|_| {
        run_in_ns(
            ns,
            &["ping", family, "-n", "-c", "1", "-W", "1", &to.to_string()],
            Duration::from_secs(10),
        )
        .status
        .success()
    })
}

/// Waits (up to 20 s) until something listens on TCP `port` inside `ns`.
pub fn wait_listening(ns: &str, port: u16) {
    let filter = format!("sport = :{port}");
    let ok = wait_until(Duration::from_secs(20), || {
        let out = run_in_ns(ns, &["ss", "-Hltn", &filter], Duration::from_secs(10));
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    });
    assert!(ok, "nothing listens on TCP port {port} in {ns}");
}

/// An iperf3 server for one test (`-1`) on `bind:port` inside `ns`, ready.
pub fn iperf3_server(ns: &str, bind: Ipv4Addr, port: u16) -> NsProcess {
    let (b, p) = (bind.to_string(), port.to_string());
    let server = NsProcess::spawn(ns, &["iperf3", "-s", "-1", "-B", &b, "-p", &p]);
    wait_listening(ns, port);
    server
}

/// Runs an iperf3 client from `ns` for `secs` seconds (UDP at 50 Mbit/s
/// with `udp`) and returns its JSON report; panics if it fails.
pub fn iperf3_client(
    ns: &str,
    server: Ipv4Addr,
    port: u16,
    secs: u32,
    udp: bool,
) -> serde_json::Value {
    let (s, p, t) = (server.to_string(), port.to_string(), secs.to_string());
    let mut args = vec![
        "iperf3",
        "-c",
        &s,
        "-p",
        &p,
        "-t",
        &t,
        "-J",
        "--connect-timeout",
        "10000",
    ];
    if udp {
        args.extend(["-u", "-b", "50M"]);
    }
    let out = run_in_ns(ns, &args, Duration::from_secs(u64::from(secs) + 60));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3 printed no JSON ({e}): {}", crate::describe(&out)));
    assert!(
        out.status.success() && report.get("error").is_none(),
        "iperf3 {args:?} from {ns} failed: {report:#}"
    );
    report
}

/// A child process of the test (e.g. `netlab daemon`), killed by its PID
/// and reaped when dropped unless it already ended.
pub struct ChildGuard {
    child: Child,
    what: String,
}

impl ChildGuard {
    pub fn new(child: Child, what: &str) -> Self {
        Self {
            child,
            what: what.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to 10 s for it to exit; returns its status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within 10 s of SIGTERM",
                self.what
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
