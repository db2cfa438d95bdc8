//! `netlab bench --micro`: each eBPF program on representative frames
//! under BPF_PROG_TEST_RUN, next to an empty classifier loaded in the same
//! run as the floor, plus each program's size as the verifier left it
//! (see README.md, "Performance").
//!
//! Two ways to run a case, each with its own floor:
//! * **warm**: one frame, `repeat` times in one call (the kernel times the
//!   loop): caches and branch predictors warm, the program's own cost.
//!   Only for frames the program leaves as they were (the kernel reruns
//!   the program on the same buffer, so a rewritten frame would take
//!   another path from the second run on).
//! * **single**: one run per call, `runs` calls, the median: for frames
//!   the program rewrites (NAT, ARP answers) and for new NAT flows, which
//!   need a new tuple every time. The kernel's timing of one run includes
//!   its clock reads, so the floor is measured the same way.
//!
//! Every run's verdict is checked against the one the case expects (and
//! new-flow cases against the NAT's creation counter): a case that took
//! another path than it names is an error, never a figure.

mod fixture;
mod frames;
mod run;

use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::bpf::maps::Counters;
use crate::bpf::verdict::{TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_PASS, XDP_REDIRECT};
use fixture::*;
use netlab_common::counters::Counter;

pub use run::load_empty_classifier;

use crate::bpf::loader::PORT_PROGRAM as PORT;
use crate::datapath::xdp::{PORT_XDP_PROGRAM as XDP_PORT, UPLINK_XDP_PROGRAM as XDP_UPLINK};
use crate::nat::{EGRESS_PROGRAM as EGRESS, INGRESS_PROGRAM as INGRESS};
/// The floor's name in the report.
pub const FLOOR: &str = "empty classifier";
/// Flows in the NAT table of the "100 000 flows" cases.
pub const PREFILLED_FLOWS: u32 = 100_000;
/// Single-run calls per case at most: the two new-flow cases' source ports
/// stay below the established flow's (the top of the range).
const MAX_RUNS: u32 = 15_000;
/// Warm calls per case; the median is reported.
const WARM_CALLS: usize = 5;

/// What `--micro` measures with.
#[derive(Clone, Copy, Debug)]
pub struct MicroArgs<'a> {
    /// Runs per warm call.
    pub repeat: u32,
    /// Calls per single-run case.
    pub runs: u32,
    /// Lab name prefix: the pins go to `/sys/fs/bpf/netlab/<prefix>-micro`.
    pub prefix: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Warm,
    Single,
}

/// One measured case.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub name: String,
    pub program: String,
    pub mode: Mode,
    /// Median nanoseconds per run.
    pub ns_per_run: f64,
    /// `ns_per_run` over the floor measured in the same mode.
    pub ratio_to_floor: f64,
    /// The verdict every run returned (checked against the expected one).
    pub verdict: u32,
}

/// A program as the kernel holds it after verification.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramSize {
    pub program: String,
    /// Translated (xlated) eBPF instructions.
    pub xlated_insns: u32,
    /// JIT-compiled machine code, bytes.
    pub jited_bytes: u32,
    /// Instructions the verifier processed (all paths walked).
    pub verified_insns: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MicroReport {
    pub repeat: u32,
    pub runs: u32,
    pub prefilled_flows: u32,
    pub cases: Vec<Case>,
    pub programs: Vec<ProgramSize>,
}

/// `netlab bench --micro`: measure, print the tables, write `--json`.
pub fn run(args: &super::BenchArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        super::check_writable(path)?;
    }
    let report = measure(&MicroArgs {
        repeat: args.repeat,
        runs: args.runs,
        prefix: &args.prefix,
    })?;
    print!("{}", table(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(())
}

/// Runs the micro-benchmark on a thread inside a private network namespace.
pub fn measure(args: &MicroArgs<'_>) -> anyhow::Result<MicroReport> {
    if args.repeat == 0 || !(1..=MAX_RUNS).contains(&args.runs) {
        bail!("--repeat must be at least 1 and --runs between 1 and {MAX_RUNS}");
    }
    let lab = format!("{}-micro", args.prefix);
    if let Some(problem) = crate::names::lab_name_problem(&lab) {
        bail!(
            "--prefix {}: the micro lab name {lab}: {problem}",
            args.prefix
        );
    }
    let (repeat, runs) = (args.repeat, args.runs);
    std::thread::spawn(move || -> anyhow::Result<MicroReport> {
        enter_private_netns()?;
        let fx = build(&lab, &[PORT, EGRESS, INGRESS], &[XDP_PORT, XDP_UPLINK])?;
        let floor = load_empty_classifier().context("loading the empty classifier")?;
        let mut m = Measure {
            fx: &fx,
            repeat,
            runs,
            cases: Vec::new(),
        };
        m.cases(floor.as_fd())?;
        let programs = [PORT, EGRESS, INGRESS, XDP_PORT, XDP_UPLINK]
            .iter()
            .map(|name| size(&fx, name))
            .collect::<anyhow::Result<_>>()?;
        Ok(MicroReport {
            repeat,
            runs,
            prefilled_flows: PREFILLED_FLOWS,
            cases: m.cases,
            programs,
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the micro-benchmark thread panicked"))?
}

fn size(fx: &Fixture, name: &str) -> anyhow::Result<ProgramSize> {
    let info = match fx.ebpf.program(name) {
        Some(aya::programs::Program::Xdp(p)) => p.info()?,
        Some(aya::programs::Program::SchedClassifier(p)) => p.info()?,
        _ => bail!("{name}: not a loaded TC or XDP program"),
    };
    Ok(ProgramSize {
        program: name.to_string(),
        xlated_insns: info.size_translated().unwrap_or(0) / 8,
        jited_bytes: info.size_jitted(),
        verified_insns: info.verified_instruction_count(),
    })
}

struct Measure<'a> {
    fx: &'a Fixture,
    repeat: u32,
    runs: u32,
    cases: Vec<Case>,
}

impl Measure<'_> {
    fn cases(&mut self, floor: BorrowedFd<'_>) -> anyhow::Result<()> {
        let fx = self.fx;
        let (a, uplink) = (fx.ports.a, fx.ports.uplink);
        let port = fd(classifier(fx, PORT)?)?;
        let egress = fd(classifier(fx, EGRESS)?)?;
        let ingress = fd(classifier(fx, INGRESS)?)?;
        let xdp_port = xdp(fx, XDP_PORT)?.fd()?.as_fd();
        let xdp_uplink = xdp(fx, XDP_UPLINK)?.fd()?.as_fd();

        let unicast = frames::udp(B_MAC, A_MAC, A_IP, B_IP, (40000, 7));
        let flood = frames::udp([0xff; 6], A_MAC, A_IP, BROADCAST_IP, (40000, 7));
        let arp = frames::arp_request(A_MAC, A_IP, B_IP);
        // A flow whose source port is in the range and free: it keeps it,
        // so the reply's destination port is known.
        let out = frames::udp(REMOTE_MAC, UPLINK_MAC, A_IP, REMOTE, (PORT_MAX, 53));
        let reply = frames::udp(UPLINK_MAC, REMOTE_MAC, REMOTE, EXTERNAL, (53, PORT_MAX));
        let sk = run::skb_ctx;

        self.warm(FLOOR, FLOOR, floor, &unicast, &sk(a), TC_ACT_OK)?;
        self.warm(
            "unicast ns->ns",
            PORT,
            port,
            &unicast,
            &sk(a),
            TC_ACT_REDIRECT,
        )?;
        self.warm("flood (broadcast)", PORT, port, &flood, &sk(a), TC_ACT_SHOT)?;
        let xctx = run::xdp_ctx(unicast.len(), a);
        self.warm(
            "XDP unicast ns->ns",
            XDP_PORT,
            xdp_port,
            &unicast,
            &xctx,
            XDP_REDIRECT,
        )?;
        let xctx = run::xdp_ctx(reply.len(), uplink);
        self.warm(
            "XDP uplink reply",
            XDP_UPLINK,
            xdp_uplink,
            &reply,
            &xctx,
            XDP_PASS,
        )?;

        self.single(FLOOR, FLOOR, floor, |_| unicast.clone(), &sk(a), TC_ACT_OK)?;
        self.single(
            "ARP answer",
            PORT,
            port,
            |_| arp.clone(),
            &sk(a),
            TC_ACT_REDIRECT,
        )?;
        self.new_flows("NAT new flow (empty table)", egress, 0)?;
        // The established flow: created once, then every run finds it.
        run::test_run(egress, &out, &[], 1)?;
        self.single(
            "NAT established",
            EGRESS,
            egress,
            |_| out.clone(),
            &[],
            TC_ACT_OK,
        )?;
        self.single(
            "reverse NAT fast path",
            INGRESS,
            ingress,
            |_| reply.clone(),
            &[],
            TC_ACT_REDIRECT,
        )?;
        prefill_nat(fx, PREFILLED_FLOWS)?;
        self.new_flows("NAT new flow (100 000 flows)", egress, 1)?;
        Ok(())
    }

    fn push(&mut self, name: &str, program: &str, mode: Mode, ns: f64, verdict: u32) {
        let floor = self
            .cases
            .iter()
            .find(|c| c.program == FLOOR && c.mode == mode)
            .map_or(ns, |c| c.ns_per_run);
        self.cases.push(Case {
            name: name.to_string(),
            program: program.to_string(),
            mode,
            ns_per_run: ns,
            ratio_to_floor: if floor > 0.0 { ns / floor } else { 0.0 },
            verdict,
        });
    }

    fn warm(
        &mut self,
        name: &str,
        program: &str,
        prog: BorrowedFd<'_>,
        frame: &[u8],
        ctx: &[u8],
        expect: u32,
    ) -> anyhow::Result<()> {
        let mut ns = Vec::with_capacity(WARM_CALLS);
        for _ in 0..WARM_CALLS {
            let r = run::test_run(prog, frame, ctx, self.repeat)
                .with_context(|| format!("{name}: BPF_PROG_TEST_RUN"))?;
            check(name, r.verdict, expect)?;
            ns.push(f64::from(r.ns));
        }
        self.push(name, program, Mode::Warm, median(ns), expect);
        Ok(())
    }

    fn single(
        &mut self,
        name: &str,
        program: &str,
        prog: BorrowedFd<'_>,
        frame: impl Fn(u32) -> Vec<u8>,
        ctx: &[u8],
        expect: u32,
    ) -> anyhow::Result<()> {
        let mut ns = Vec::with_capacity(self.runs as usize);
        for i in 0..self.runs {
            let r = run::test_run(prog, &frame(i), ctx, 1)
                .with_context(|| format!("{name}: BPF_PROG_TEST_RUN"))?;
            check(name, r.verdict, expect)?;
            ns.push(f64::from(r.ns));
        }
        self.push(name, program, Mode::Single, median(ns), expect);
        Ok(())
    }

    /// `runs` new UDP flows through the egress, each from another source
    /// (`batch` keeps the two new-flow cases' tuples apart); every one must
    /// have been created.
    fn new_flows(&mut self, name: &str, egress: BorrowedFd<'_>, batch: u32) -> anyhow::Result<()> {
        let counters = Counters::open(&self.fx.dir)?;
        let before = counters.get(Counter::NatCreated)?;
        let runs = self.runs;
        let frame = |i: u32| {
            let n = batch * runs + i;
            // One client's new connections: consecutive source ports in the
            // range, each kept (the first probe), as a client's ephemeral
            // ports mostly are; another source every 40 000 flows.
            let src = [10, 155, 0, 100 + (n / 40_000 % 100) as u8];
            let sport = PORT_MIN + (n % 40_000) as u16;
            frames::udp(REMOTE_MAC, UPLINK_MAC, src, REMOTE, (sport, 53))
        };
        let drops = |counters: &Counters| -> String {
            counters
                .all()
                .map(|all| {
                    all.iter()
                        .filter(|(c, n)| *n > 0 && c.name().contains("drop"))
                        .map(|(c, n)| format!("{} {n}", c.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        self.single(name, EGRESS, egress, frame, &[], TC_ACT_OK)
            .with_context(|| format!("NAT drop counters: {}", drops(&counters)))?;
        let created = counters.get(Counter::NatCreated)? - before;
        if created != u64::from(runs) {
            bail!("{name}: {runs} new flows sent, {created} created");
        }
        Ok(())
    }
}

fn fd(p: &aya::programs::SchedClassifier) -> anyhow::Result<BorrowedFd<'_>> {
    Ok(p.fd()?.as_fd())
}

fn check(name: &str, got: u32, want: u32) -> anyhow::Result<()> {
    if got != want {
        bail!("{name}: the program returned {got}, the case expects {want} (it took another path)");
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The two tables `netlab bench --micro` prints.
pub fn table(report: &MicroReport) -> String {
    let mut s = format!(
        "BPF_PROG_TEST_RUN, warm: {} runs per call (median of {WARM_CALLS} calls); single: median of {} calls\n",
        report.repeat, report.runs
    );
    s += &format!(
        "{:<30} {:<22} {:<7} {:>9} {:>9}\n",
        "case", "program", "mode", "ns/run", "x floor"
    );
    for c in &report.cases {
        s += &format!(
            "{:<30} {:<22} {:<7} {:>9.0} {:>9.2}\n",
            c.name,
            c.program,
            format!("{:?}", c.mode).to_lowercase(),
            c.ns_per_run,
            c.ratio_to_floor
        );
    }
    s += &format!(
        "\n{:<22} {:>12} {:>12} {:>14}\n",
        "program", "xlated insns", "jited bytes", "verified insns"
    );
    for p in &report.programs {
        s += &format!(
            "{:<22} {:>12} {:>12} {:>14}\n",
            p.program,
            p.xlated_insns,
            p.jited_bytes,
            p.verified_insns.map_or("-".into(), |n| n.to_string())
        );
    }
    s
}
