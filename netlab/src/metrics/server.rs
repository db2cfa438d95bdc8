//! The metrics endpoint: an HTTP listener (tiny_http) that answers `GET
//! /metrics` (and `/`) with a fresh [`super::Snapshot`].
//!
//! Where it listens: in the network namespace `netlab daemon` was started
//! in (the root namespace when started from a shell, like any exporter),
//! not in the lab's sandbox host namespace, so a scraper on the machine
//! reaches it as it would any other. Only loopback addresses are accepted
//! unless `--metrics-allow-remote` is given: the metrics show the lab's
//! traffic (addresses, flows) to whoever can connect, and they have no
//! authentication. The address is bound before the daemon claims its lab,
//! so a taken or invalid address fails at once and changes nothing.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, bail};

/// Parses `--metrics ADDR`: `IP:PORT`, `[IPv6]:PORT`, or a bare `PORT`
/// (then 127.0.0.1). Refuses a non-loopback address unless `allow_remote`.
pub fn parse_address(text: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let addr = match text.parse::<u16>() {
        Ok(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        Err(_) => text.parse::<SocketAddr>().with_context(|| {
            format!(
                "--metrics {text:?}: not an address; use IP:PORT (e.g. 127.0.0.1:9434) or a port"
            )
        })?,
    };
    if !addr.ip().is_loopback() && !allow_remote {
        bail!(
            "--metrics {text}: {} is not a loopback address; the metrics (addresses, flows, \
             counters) would be readable by anyone who can connect, without authentication. \
             Add --metrics-allow-remote to serve them there anyway",
            addr.ip()
        );
    }
    Ok(addr)
}

/// Binds `addr` (in the calling thread's namespace) with errors that say
/// what is wrong.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the address is already in use (another exporter or daemon?)".to_string()
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "no interface of this network namespace has that address".to_string()
            }
            _ => e.to_string(),
        };
        anyhow::anyhow!("--metrics {addr}: cannot listen: {why}")
    })
}

/// The running endpoint; stops when dropped.
pub struct MetricsServer {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// BPF run-time statistics stay on while this lives.
    _stats: Option<crate::bpf::runstats::StatsOn>,
}

impl MetricsServer {
    /// Serves the lab's metrics on `listener` from a thread.
    pub fn start(lab: &str, listener: TcpListener) -> anyhow::Result<Self> {
        let address = listener.local_addr()?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {address}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let lab = lab.to_string();
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || serve(&server, &lab, &stop))?
        };
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
            _stats: crate::bpf::runstats::enable(),
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, lab: &str, stop: &AtomicBool) {
    let text_plain = |ct: &str| {
        tiny_http::Header::from_bytes(&b"Content-Type"[..], ct.as_bytes()).expect("valid header")
    };
    while !stop.load(Ordering::SeqCst) {
        let request = match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => continue,
        };
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let response = if *request.method() != tiny_http::Method::Get {
            tiny_http::Response::from_string("only GET\n").with_status_code(405)
        } else if path != "/metrics" && path != "/" {
            tiny_http::Response::from_string("netlab metrics are at /metrics\n")
                .with_status_code(404)
        } else {
            match super::Snapshot::read(lab).map(super::Snapshot::encode) {
                Ok(Ok(body)) => tiny_http::Response::from_string(body).with_header(text_plain(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                )),
                Ok(Err(_)) => tiny_http::Response::from_string("cannot encode the metrics\n")
                    .with_status_code(500),
                Err(e) => tiny_http::Response::from_string(format!(
                    "cannot read lab {lab}'s datapath: {e:#}\n"
                ))
                .with_status_code(503),
            }
        };
        let _ = request.respond(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback_and_remote_needs_consent() {
        assert_eq!(
            parse_address("9434", false).unwrap(),
            "127.0.0.1:9434".parse().unwrap()
        );
        assert!(parse_address("[::1]:9434", false).is_ok());
        let e = parse_address("0.0.0.0:9434", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--metrics-allow-remote"), "{e}");
        assert!(parse_address("0.0.0.0:9434", true).is_ok());
        let e = parse_address("localhost:x", false).unwrap_err().to_string();
        assert!(e.contains("not an address"), "{e}");
    }
}
