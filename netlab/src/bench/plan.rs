//! What a bench run measures: which datapaths, which workloads, how many
//! rounds, how long, on which CPUs. Validated before anything is created.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::catalog::{BenchDatapath, Figure, Workload};

/// `netlab bench` command line.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Datapaths to compare, in the order they run within a round.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = BenchDatapath::ALL)]
    pub datapaths: Vec<BenchDatapath>,
    /// Workloads to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Workload::ALL)]
    pub workloads: Vec<Workload>,
    /// Quick run: 2 rounds of 2 s (unless --rounds / --duration say otherwise).
    #[arg(long)]
    pub quick: bool,
    /// Rounds (default 5, quick 2). Each round measures every workload on every datapath.
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Seconds per measurement (default 5, quick 2).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Write every raw sample, the settings and the summaries as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write an SVG chart (one panel per figure, one bar per datapath).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// CPUs to pin the client and the server to.
    #[arg(long, value_delimiter = ',', default_values_t = [0usize, 1])]
    pub cpus: Vec<usize>,
    /// Prefix of the bench's lab and namespace names (`<prefix>-kernel`, ...).
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// Micro-benchmark instead: each eBPF program under BPF_PROG_TEST_RUN
    /// against an empty classifier, and the programs' sizes (no labs, no
    /// traffic; pins under `<prefix>-micro`).
    #[arg(long)]
    pub micro: bool,
    /// --micro: runs per warm BPF_PROG_TEST_RUN call.
    #[arg(long, default_value_t = 100_000, requires = "micro")]
    pub repeat: u32,
    /// --micro: calls per single-run case (rewritten frames, new NAT flows).
    #[arg(long, default_value_t = 2_000, requires = "micro")]
    pub runs: u32,
}

impl Default for BenchArgs {
    fn default() -> Self {
        Self {
            datapaths: BenchDatapath::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            quick: false,
            rounds: None,
            duration: None,
            json: None,
            svg: None,
            cpus: vec![0, 1],
            prefix: "bench".into(),
            micro: false,
            repeat: 100_000,
            runs: 2_000,
        }
    }
}

/// A validated run plan.
#[derive(Clone, Debug)]
pub struct Plan {
    pub datapaths: Vec<BenchDatapath>,
    pub workloads: Vec<Workload>,
    pub rounds: u32,
    pub duration_secs: u64,
    pub quick: bool,
    pub client_cpu: usize,
    pub server_cpu: usize,
    pub prefix: String,
}

impl Plan {
    pub fn from_args(args: &BenchArgs) -> anyhow::Result<Plan> {
        let mut datapaths = Vec::new();
        for d in &args.datapaths {
            if !datapaths.contains(d) {
                datapaths.push(*d);
            }
        }
        if datapaths.is_empty() {
            bail!("--datapaths: name at least one of kernel, ebpf, direct");
        }
        // Keep the canonical workload order whatever order was given.
        let workloads: Vec<Workload> = Workload::ALL
            .into_iter()
            .filter(|w| args.workloads.contains(w))
            .collect();
        if workloads.is_empty() {
            bail!("--workloads: name at least one workload");
        }
        let rounds = args.rounds.unwrap_or(if args.quick { 2 } else { 5 });
        if rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        let duration_secs = args.duration.unwrap_or(if args.quick { 2 } else { 5 });
        if !(1..=3600).contains(&duration_secs) {
            bail!("--duration must be between 1 and 3600 seconds");
        }
        let [client_cpu, server_cpu] = args.cpus[..] else {
            bail!(
                "--cpus takes exactly two CPUs: CLIENT,SERVER (got {:?})",
                args.cpus
            );
        };
        let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .context("reading this process's CPU affinity")?;
        for cpu in [client_cpu, server_cpu] {
            if !allowed.is_set(cpu).unwrap_or(false) {
                bail!("--cpus: CPU {cpu} is not available to this process");
            }
        }
        validate_prefix(&args.prefix)?;
        Ok(Plan {
            datapaths,
            workloads,
            rounds,
            duration_secs,
            quick: args.quick,
            client_cpu,
            server_cpu,
            prefix: args.prefix.clone(),
        })
    }

    /// Every figure the plan can produce, in display order.
    pub fn figures(&self) -> Vec<Figure> {
        self.workloads
            .iter()
            .flat_map(|&workload| {
                workload
                    .metrics()
                    .iter()
                    .map(move |&metric| Figure { workload, metric })
            })
            .collect()
    }

    /// The datapaths a workload runs on, in round order.
    pub fn datapaths_for(&self, workload: Workload) -> impl Iterator<Item = BenchDatapath> + '_ {
        self.datapaths
            .iter()
            .copied()
            .filter(move |d| workload.skip_reason(*d).is_none())
    }

    /// Measurements per round (progress bar length).
    pub fn measurements_per_round(&self) -> u64 {
        self.workloads
            .iter()
            .map(|&w| self.datapaths_for(w).count() as u64)
            .sum()
    }
}

/// The prefix ends up in namespace names (`<prefix>-ebpf-host`) and file
/// names: keep it short and plain.
fn validate_prefix(prefix: &str) -> anyhow::Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 16
        && prefix.starts_with(|c: char| c.is_ascii_alphanumeric())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "--prefix {prefix:?}: use 1 to 16 characters from [A-Za-z0-9_-], starting with a letter or digit"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn default_matches_the_command_line_defaults() {
        let parsed = Cli::parse_from(["netlab"]).bench;
        assert_eq!(parsed, BenchArgs::default());
    }

    #[test]
    fn quick_and_explicit_values() {
        let args = Cli::parse_from(["netlab", "--quick", "--datapaths", "direct,ebpf"]).bench;
        let plan = Plan::from_args(&args).unwrap();
        assert_eq!((plan.rounds, plan.duration_secs), (2, 2));
        assert_eq!(
            plan.datapaths,
            vec![BenchDatapath::Direct, BenchDatapath::Ebpf]
        );
        let args = Cli::parse_from(["netlab", "--quick", "--rounds", "3", "--duration", "1"]).bench;
        let plan = Plan::from_args(&args).unwrap();
        assert_eq!((plan.rounds, plan.duration_secs), (3, 1));
    }

    #[test]
    fn nat_workloads_skip_direct() {
        let plan = Plan::from_args(&BenchArgs::default()).unwrap();
        let ns: Vec<_> = plan.datapaths_for(Workload::NsTcp1).collect();
        assert_eq!(ns, BenchDatapath::ALL.to_vec());
        let inet: Vec<_> = plan.datapaths_for(Workload::InetConnRate).collect();
        let netlab_labs = vec![
            BenchDatapath::Kernel,
            BenchDatapath::Ebpf,
            BenchDatapath::EbpfXdp,
        ];
        assert_eq!(inet, netlab_labs);
        let published: Vec<_> = plan.datapaths_for(Workload::PubRr).collect();
        assert_eq!(published, netlab_labs);
        // 4 ns workloads x 4 + 8 inet (2 over IPv6) and 2 published-port
        // workloads x 3
        assert_eq!(plan.measurements_per_round(), 46);
    }

    #[test]
    fn bad_input_is_refused() {
        let mut args = BenchArgs {
            cpus: vec![0],
            ..Default::default()
        };
        assert!(Plan::from_args(&args).is_err());
        args.cpus = vec![0, 4096];
        assert!(Plan::from_args(&args).is_err());
        let args = BenchArgs {
            rounds: Some(0),
            ..Default::default()
        };
        assert!(Plan::from_args(&args).is_err());
        let args = BenchArgs {
            prefix: "a b".into(),
            ..Default::default()
        };
        assert!(Plan::from_args(&args).is_err());
        let args = BenchArgs {
            datapaths: vec![],
            ..Default::default()
        };
        assert!(Plan::from_args(&args).is_err());
    }
}
