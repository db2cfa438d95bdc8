//! `netlab monitor`: the datapath's event stream, live.
//!
//! Every program writes typed events (`netlab_common::events::Event`, or
//! `Event6` for IPv6 packets and NAT66 flows) into
//! the lab's pinned `events` ring buffer while a monitor listens ([`gate`]);
//! NAT expiries come from the daemon's sweep, which injects them into the
//! same ring buffer ([`inject`]), so one stream holds everything in order.
//! Events that found the ring buffer full are counted by the programs
//! (`events_lost`) and reported here as `lost: N`.
//!
//! `netlab trace` ([`trace`]) reads the same ring buffer for another gate:
//! one frame event per frame through the switch, printed as one line each,
//! for debugging the program itself; `monitor` is the typed, filterable
//! stream of what happens. One reader at a time (see [`gate`]).

pub mod gate;
pub mod inject;
pub mod trace;
pub mod view;

use std::{
    io::Write,
    net::IpAddr,
    os::fd::{AsFd, AsRawFd},
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use aya::maps::{Map, MapData, RingBuf};
use netlab_common::{
    counters::Counter,
    events::{EVENTS_MAP, Event6},
    switch::TRACE_EVENTS,
};
use nix::sys::signal::{SigHandler, Signal, signal};
use serde::Serialize;

use crate::inspect::{Lab, decode, ebpf_lab};
use view::{EventType, Filter, Names};

/// `netlab monitor`'s options.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct MonitorArgs {
    /// Only these kinds of event (repeat or separate with commas).
    #[arg(long = "type", value_enum, value_delimiter = ',', value_name = "TYPE")]
    pub types: Vec<EventType>,
    /// Only events concerning this endpoint namespace ("gateway": the gateway port).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Only events on this interface: a switch port (`veth-1-br`, the
    /// gateway port) or the uplink.
    #[arg(long, value_name = "DEV")]
    pub port: Option<String>,
    /// Only this IP protocol: tcp, udp, icmp or a number.
    #[arg(long, value_name = "PROTO")]
    pub proto: Option<String>,
    /// One JSON object per line (shape in the README).
    #[arg(long)]
    pub json: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// A reader of the ring buffer (`monitor`, `trace`) runs until Ctrl-C or
/// SIGTERM: from now on those set [`stopped`] instead of killing it, so
/// that it switches its gate off on the way out.
pub(crate) fn stop_on_signals() -> anyhow::Result<()> {
    STOP.store(false, Ordering::SeqCst);
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        signal(Signal::SIGINT, SigHandler::Handler(on_signal))?;
        signal(Signal::SIGTERM, SigHandler::Handler(on_signal))?;
    }
    Ok(())
}

/// Whether Ctrl-C or SIGTERM came since [`stop_on_signals`].
pub(crate) fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Waits up to 200 ms for `ring` to hold records (a signal ends the wait
/// early), so the reader checks [`stopped`] at least five times a second.
pub(crate) fn wait_for_records(ring: &RingBuf<MapData>) -> std::io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: ring.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    if unsafe { libc::poll(&mut pfd, 1, 200) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Validates the filters against the lab (before anything is switched on).
fn resolve_filter(lab: &Lab, args: &MonitorArgs) -> anyhow::Result<Filter> {
    if let Some(ns) = &args.namespace
        && ns != "gateway"
        && lab.plan.endpoint(ns).is_none()
    {
        bail!(
            "--namespace {ns}: not an endpoint of lab {} (its endpoints: {}, or \"gateway\")",
            lab.name,
            endpoint_names(lab)
        );
    }
    let ports = port_names(lab);
    if let Some(p) = &args.port
        && !ports.contains(p)
    {
        bail!(
            "--port {p}: not an interface of lab {}'s datapath (its ports: {})",
            lab.name,
            ports.join(", ")
        );
    }
    let proto = match &args.proto {
        None => None,
        Some(p) => Some(decode::parse_proto(p).map_err(|e| anyhow::anyhow!("--proto: {e}"))?),
    };
    Ok(Filter {
        types: args.types.clone(),
        namespace: args.namespace.clone(),
        port: args.port.clone(),
        proto,
    })
}

fn endpoint_names(lab: &Lab) -> String {
    lab.plan
        .endpoints
        .iter()
        .map(|e| e.namespace.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The interfaces the programs run on: switch ports and the uplink.
fn port_names(lab: &Lab) -> Vec<String> {
    let mut v: Vec<String> = lab.plan.endpoints.iter().map(|e| e.peer.clone()).collect();
    v.push(lab.plan.gateway_port.clone());
    v.push(lab.plan.uplink().to_string());
    v
}

fn names(lab: &Lab) -> Names {
    Names {
        ifnames: lab.ifnames(),
        port_owners: lab
            .plan
            .endpoints
            .iter()
            .map(|e| (e.peer.clone(), e.namespace.clone()))
            .chain([(lab.plan.gateway_port.clone(), "gateway".to_string())])
            .collect(),
        endpoints: lab
            .plan
            .endpoints
            .iter()
            .flat_map(|e| {
                let ns = e.namespace.clone();
                // IPv4, and IPv6 (global when the lab has it, link-local).
                [
                    Some(IpAddr::from(e.address)),
                    e.address6.map(IpAddr::from),
                    Some(IpAddr::from(crate::names::link_local_for(e.mac))),
                ]
                .into_iter()
                .flatten()
                .map(move |a| (a, ns.clone()))
            })
            .collect(),
    }
}

/// Converts the programs' clock (`bpf_ktime_get_ns`, CLOCK_MONOTONIC) to
/// local wall-clock time: wall = realtime now − (monotonic now − stamp).
/// Re-read for every batch, so a clock step is followed.
pub struct Clock {
    offset_ns: i128,
    tz: jiff::tz::TimeZone,
}

impl Clock {
    pub fn new() -> Self {
        let mut c = Self {
            offset_ns: 0,
            tz: jiff::tz::TimeZone::system(),
        };
        c.sync();
        c
    }

    pub fn sync(&mut self) {
        let mono = crate::nat::monotonic_now_ns() as i128;
        let real = jiff::Timestamp::now().as_nanosecond();
        self.offset_ns = real - mono;
    }

    pub fn zoned(&self, ts_ns: u64) -> jiff::ZonedDateTime {
        let wall = jiff::Timestamp::from_nanosecond(ts_ns as i128 + self.offset_ns)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        wall.to_zoned_datetime(self.tz.clone())
    }

    /// RFC 3339 with the local offset (JSON).
    pub fn rfc3339(&self, ts_ns: u64) -> String {
        self.zoned(ts_ns)
            .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
            .to_string()
    }

    /// `HH:MM:SS.micro` local time (text lines).
    pub fn time_of_day(&self, ts_ns: u64) -> String {
        self.zoned(ts_ns).strftime("%H:%M:%S%.6f").to_string()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Serialize)]
struct LostLine {
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    lost: u64,
    lost_total: u64,
}

pub(crate) fn open_ring(dir: &Path, lab: &str) -> anyhow::Result<RingBuf<MapData>> {
    let path = dir.join(EVENTS_MAP);
    if !path.exists() {
        bail!(
            "lab {lab} has no event stream ({} is missing: it was brought up by a netlab \
             without `monitor`); run `netlab down` and `netlab up` to rebuild it",
            path.display()
        );
    }
    let data =
        MapData::from_pin(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let map = Map::from_map_data(data).context("cannot open the events map")?;
    RingBuf::try_from(map).context("the events map is not a ring buffer")
}

fn lost_total(lab: &str) -> u64 {
    crate::datapath::ebpf::counter(lab, Counter::EventsLost).unwrap_or(0)
}

/// Runs the monitor until Ctrl-C, SIGTERM, a closed stdout or the lab
/// going down.
pub fn run(lab_name: &str, args: &MonitorArgs) -> anyhow::Result<()> {
    let lab = ebpf_lab(lab_name)?;
    let filter = resolve_filter(&lab, args)?;
    let mut ring = open_ring(&lab.dir, lab_name)?;
    let names = names(&lab);
    let mut clock = Clock::new();

    stop_on_signals()?;
    // Whatever an earlier monitor left unread is not news: drop it before
    // the gate opens.
    let _listening = gate::Listening::claim(lab_name, &lab.dir, TRACE_EVENTS, || {
        while ring.next().is_some() {}
        Ok(())
    })?;
    let lost_at_start = lost_total(lab_name);
    let mut lost_reported = lost_at_start;
    // Read by the tests (and scripts) to know events are being captured.
    eprintln!(
        "netlab monitor: listening to lab {lab_name}'s events{}; Ctrl-C stops",
        if args.json {
            " (JSON lines on stdout)"
        } else {
            ""
        }
    );

    let mut shown: u64 = 0;
    let mut out = std::io::stdout().lock();
    let mut last_lost_check = Instant::now();
    let result = loop {
        if stopped() {
            break Ok(());
        }
        if !lab.dir.exists() {
            eprintln!("netlab monitor: lab {lab_name} went down");
            break Ok(());
        }
        if let Err(e) = wait_for_records(&ring) {
            break Err(e).context("waiting for events");
        }
        clock.sync();
        let mut write_failed = false;
        while let Some(item) = ring.next() {
            let Some(event) = Event6::from_record(&item) else {
                continue;
            };
            drop(item);
            let time = if args.json {
                clock.rfc3339(event.event.ts_ns)
            } else {
                clock.time_of_day(event.event.ts_ns)
            };
            let Some(v) = view::view(&event, &names, time) else {
                continue;
            };
            if !filter.matches(&v) {
                continue;
            }
            let line = if args.json {
                serde_json::to_string(&v)?
            } else {
                view::text(&v)
            };
            if writeln!(out, "{line}").is_err() {
                write_failed = true;
                break;
            }
            shown += 1;
        }
        if last_lost_check.elapsed() >= Duration::from_millis(200) {
            last_lost_check = Instant::now();
            let total = lost_total(lab_name);
            if total > lost_reported {
                let lost = total - lost_reported;
                lost_reported = total;
                let line = if args.json {
                    serde_json::to_string(&LostLine {
                        time: clock.rfc3339(crate::nat::monotonic_now_ns()),
                        kind: "lost",
                        lost,
                        lost_total: total - lost_at_start,
                    })?
                } else {
                    format!(
                        "{} lost: {lost} events (the ring buffer was full; {} since start)",
                        clock.time_of_day(crate::nat::monotonic_now_ns()),
                        total - lost_at_start
                    )
                };
                write_failed |= writeln!(out, "{line}").is_err();
            }
        }
        if write_failed || out.flush().is_err() {
            break Ok(()); // stdout closed (`| head`): a normal end
        }
    };
    eprintln!(
        "netlab monitor: stopped; {shown} events shown, lost: {}",
        lost_total(lab_name).saturating_sub(lost_at_start)
    );
    result
}
