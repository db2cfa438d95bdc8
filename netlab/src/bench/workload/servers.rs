//! The server side of the measurements: the tools they need, and the
//! servers started in a namespace once per datapath per round.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use anyhow::{Context, bail};

use super::connections::{ACCEPT_PORT, AcceptServer};
use super::prefill::{PREFILL_DST_PORT_BASE, PREFILL_DST_PORTS};
use crate::bench::nsexec::{NsCpu, ServerProcess, wait_tcp_listening};

pub const IPERF3_PORT: u16 = 5201;
pub const SOCKPERF_PORT: u16 = 11111;
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

/// Owned arguments for a command line.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}
