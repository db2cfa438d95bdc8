//! `netlab trace`: switches the programs' aya-log events on, prints them
//! decoded (port names, the namespace behind each port, EtherType names,
//! drop reasons by name)
//! until Ctrl-C or SIGTERM, and switches them off again.

use std::{
    io::Write,
    os::fd::{AsFd, AsRawFd},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context as _;
use aya_log::EbpfLogger;
use nix::sys::signal::{SigHandler, Signal, signal};

use netlab_common::counters::Counter;

use super::{Lab, decode::IfNames};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Prints each event as one line on stdout.
struct Printer {
    names: IfNames,
    owners: Vec<(String, String)>,
}

impl Printer {
    fn port(&self, ifindex: &str) -> String {
        let Ok(i) = ifindex.parse::<u32>() else {
            return ifindex.to_string();
        };
        let name = self.names.name(i);
        match self.owners.iter().find(|(dev, _)| *dev == name) {
            Some((_, owner)) => format!("{name} ({owner})"),
            None => name,
        }
    }

    /// `port 5: ... unicast to port 4` → `port veth-1-br (ns1): ... unicast to port veth-2-br (ns2)`,
    /// `type 800` → `type 0x0800 IPv4`.
    pub fn decode(&self, msg: &str) -> String {
        let words: Vec<&str> = msg.split(' ').collect();
        let mut out = Vec::with_capacity(words.len());
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            if (w == "port" || w == "type" || w == "reason") && i + 1 < words.len() {
                let (val, tail) = split_trailing(words[i + 1]);
                let decoded = match w {
                    "port" => self.port(val),
                    "type" => ethertype(val),
                    _ => reason(val),
                };
                out.push(format!("{w} {decoded}{tail}"));
                i += 2;
                continue;
            }
            out.push(w.to_string());
            i += 1;
        }
        out.join(" ")
    }
}

fn split_trailing(w: &str) -> (&str, &str) {
    let end = w.trim_end_matches([':', ',', ')']).len();
    w.split_at(end)
}

/// A drop reason, sent as its `Counter` index: its name.
fn reason(index: &str) -> String {
    index
        .parse::<u32>()
        .ok()
        .and_then(|n| Counter::ALL.iter().find(|c| **c as u32 == n))
        .map_or_else(|| index.to_string(), |c| c.name().to_string())
}

fn ethertype(hex: &str) -> String {
    let Ok(t) = u16::from_str_radix(hex, 16) else {
        return hex.to_string();
    };
    let name = match t {
        0x0800 => " IPv4",
        0x0806 => " ARP",
        0x86dd => " IPv6",
        0x8100 => " VLAN",
        _ => "",
    };
    format!("{t:#06x}{name}")
}

impl log::Log for Printer {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let msg = record.args().to_string();
        let now = chrono_like_now();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{now} {}", self.decode(&msg));
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Wall-clock `HH:MM:SS.mmm` (UTC), without a date/time crate.
fn chrono_like_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s % 3600) / 60,
        s % 60,
        d.subsec_millis()
    )
}

/// Turns tracing off when dropped, so every way out (error, Ctrl-C) does.
struct TraceOff<'a>(&'a str);

impl Drop for TraceOff<'_> {
    fn drop(&mut self) {
        if let Err(e) = crate::datapath::ebpf::set_trace(self.0, false) {
            eprintln!(
                "netlab: warning: could not switch tracing off for lab {}: {e}",
                self.0
            );
        }
    }
}

pub fn run(lab: &Lab) -> anyhow::Result<()> {
    let id = super::programs::port_program_id(&lab.dir)?;
    let owners = lab
        .plan
        .endpoints
        .iter()
        .map(|e| (e.peer.clone(), e.namespace.clone()))
        .chain(
            lab.plan
                .containers
                .attachments
                .iter()
                .map(|c| (c.peer.clone(), c.label())),
        )
        .chain([(lab.plan.gateway_port.clone(), "gateway".to_string())])
        .collect();
    let printer = Printer {
        names: lab.ifnames(),
        owners,
    };
    let mut logger = EbpfLogger::init_from_id_with_logger(id, printer)
        .with_context(|| format!("cannot read the log buffer of program id {id}"))?;

    STOP.store(false, Ordering::SeqCst);
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        signal(Signal::SIGINT, SigHandler::Handler(on_signal))?;
        signal(Signal::SIGTERM, SigHandler::Handler(on_signal))?;
    }
    crate::datapath::ebpf::set_trace(&lab.name, true)?;
    let _off = TraceOff(&lab.name);
    eprintln!(
        "tracing lab {} (port program id {id}); Ctrl-C stops and switches tracing off",
        lab.name
    );
    while !STOP.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: logger.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, 200) };
        let ready = if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("waiting for trace events");
            }
            false
        } else {
            n > 0
        };
        if ready {
            logger.flush();
        }
    }
    // Events already in the buffer still get printed.
    std::thread::sleep(Duration::from_millis(50));
    logger.flush();
    eprintln!("tracing stopped; switched off for lab {}", lab.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_decoded() {
        let mut names = std::collections::BTreeMap::new();
        names.insert(5, "veth-1-br".to_string());
        names.insert(4, "veth-2-br".to_string());
        let p = Printer {
            names: IfNames(names),
            owners: vec![("veth-1-br".into(), "ns1".into())],
        };
        assert_eq!(
            p.decode("port 5: 02:4e:0a:4f:01:01 > 02:4e:0a:4f:01:02 type 800: unicast to port 4"),
            "port veth-1-br (ns1): 02:4e:0a:4f:01:01 > 02:4e:0a:4f:01:02 type 0x0800 IPv4: unicast to port veth-2-br"
        );
        assert_eq!(
            p.decode("port 9: 02:4e:0a:4f:01:01 asks who-has 10.79.1.5: answered"),
            "port if9: 02:4e:0a:4f:01:01 asks who-has 10.79.1.5: answered"
        );
        assert_eq!(
            p.decode("port 5: a > b type 806: flooded to 3 ports"),
            "port veth-1-br (ns1): a > b type 0x0806 ARP: flooded to 3 ports"
        );
        let spoofed = Counter::DropSpoofed as u32;
        assert_eq!(
            p.decode(&format!(
                "port 5: a > b type 800: dropped, reason {spoofed}"
            )),
            "port veth-1-br (ns1): a > b type 0x0800 IPv4: dropped, reason drop_spoofed"
        );
    }
}
