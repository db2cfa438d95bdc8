//! `cargo xtask setup | run | test | lint | fuzz | soak | man | install-cni`: the project's
//! own commands.
//!
//! Every command runs `setup` first, which is cheap when the machine is
//! already prepared, so a fresh machine needs nothing by hand.

mod fuzz;
mod install_cni;
mod setup;
mod soak;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "netlab's build, run and test tasks")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the project needs (idempotent): rust-src, bpf-linker,
    /// Debian packages, the bpffs mount.
    Setup,
    /// Build, bring the default lab up and run `netlab check`.
    Run {
        /// Datapath for the lab: ebpf (default) or kernel.
        #[arg(long)]
        datapath: Option<String>,
        /// Lab file instead of the default walkthrough lab.
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
    },
    /// Build and run every test (unit, eBPF program, real-namespace).
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// rustfmt check and clippy on the host crates and the eBPF crate.
    Lint,
    /// Long fuzz run of every BPF program under BPF_PROG_TEST_RUN.
    Fuzz {
        /// Cases per program.
        #[arg(long, default_value_t = 100_000)]
        cases: u64,
        /// Seed (decimal or 0x hex); default: a fresh one, printed.
        #[arg(long, value_parser = fuzz::parse_seed)]
        seed: Option<u64>,
    },
    /// Build `netlab-cni`, install it for container runtimes and write a
    /// network configuration list for a lab.
    InstallCni {
        /// Where the plugin goes (runtimes' CNI plugin directory).
        #[arg(long, default_value = install_cni::DEFAULT_BIN_DIR)]
        dir: PathBuf,
        /// Where the conflist goes (runtimes' CNI configuration directory).
        #[arg(long, default_value = install_cni::DEFAULT_CONF_DIR)]
        conf_dir: PathBuf,
        /// The lab (and network) name.
        #[arg(long, default_value = "netlab")]
        lab: String,
        /// The lab file ADD builds the lab from when it is not up.
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
    },
    /// Traffic through the NAT from every namespace while the control
    /// plane restarts; prints connections, restarts, daemon memory.
    Soak {
        /// Seconds of traffic.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Write netlab's man pages (netlab.1 and one per subcommand).
    Man {
        /// Where to write them.
        #[arg(long, default_value = "target/man")]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Task::Setup => setup::run(&root),
        Task::Run { datapath, file } => {
            setup::run(&root)?;
            run(&root, datapath, file)
        }
        Task::Test { args } => {
            setup::run(&root)?;
            test(&root, &args)
        }
        Task::Lint => {
            setup::run(&root)?;
            lint(&root)
        }
        Task::Fuzz { cases, seed } => {
            setup::run(&root)?;
            fuzz::run(&root, cases, seed)
        }
        Task::InstallCni {
            dir,
            conf_dir,
            lab,
            file,
        } => install_cni::run(
            &root,
            &install_cni::Options {
                dir,
                conf_dir,
                lab,
                lab_file: file,
            },
        ),
        Task::Soak { seconds } => {
            setup::run(&root)?;
            soak::run(&root, seconds)
        }
        Task::Man { out } => {
            setup::run(&root)?;
            man(&root, &out)
        }
    }
}

/// The pages come from the CLI's own definition (`netlab man --dir`), so
/// they never drift from `--help`.
fn man(root: &Path, out: &Path) -> Result<()> {
    status(cargo(root).args(["build", "-p", "netlab", "--bin", "netlab"]))?;
    let out = root.join(out);
    status(
        Command::new(root.join("target/debug/netlab"))
            .args(["man", "--dir"])
            .arg(&out),
    )?;
    println!(
        "man pages written to {0}; read them with `man -l {0}/netlab.1`",
        out.display()
    );
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command, failing with its command line when it fails.
pub(crate) fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

fn run(root: &Path, datapath: Option<String>, file: Option<PathBuf>) -> Result<()> {
    setup::require_root("cargo xtask run")?;
    status(cargo(root).args(["build", "--release", "-p", "netlab"]))?;
    let netlab = root.join("target/release/netlab");
    let mut up = Command::new(&netlab);
    up.arg("up");
    if let Some(file) = &file {
        up.arg("-f").arg(file);
    }
    if let Some(datapath) = &datapath {
        up.args(["--datapath", datapath]);
    }
    // On the eBPF datapath `up` also starts the control loop (netlab daemon).
    status(&mut up)?;
    let mut check = Command::new(&netlab);
    check.arg("check");
    if let Some(file) = &file {
        check.arg("-f").arg(file);
    }
    status(&mut check)?;
    println!(
        "\nThe lab is up. Try `ip netns exec ns1 ping -c1 192.168.28.2`, `{0} status`; \
         remove it with `{0} down`.",
        netlab.display()
    );
    Ok(())
}

fn test(root: &Path, args: &[String]) -> Result<()> {
    setup::require_root("cargo xtask test")?;
    // The integration tests drive the real binaries (netlab, and the CNI
    // plugin netlab-cni); build them first and tell the tests where they are.
    status(cargo(root).args(["build", "-p", "netlab", "--bins"]))?;
    let netlab = root.join("target/debug/netlab");
    let netlab_cni = root.join("target/debug/netlab-cni");
    status(
        cargo(root)
            .args([
                "test",
                "--workspace",
                "--exclude",
                "netlab-ebpf",
                "--no-fail-fast",
            ])
            .arg("--")
            .args(args)
            .env("NETLAB_BIN", &netlab)
            .env("NETLAB_CNI_BIN", &netlab_cni),
    )
}

fn lint(root: &Path) -> Result<()> {
    status(cargo(root).args(["fmt", "--all", "--check"]))?;
    status(cargo(root).args([
        "clippy",
        "--workspace",
        "--exclude",
        "netlab-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The eBPF crate only builds for the BPF target, with nightly.
    status(
        Command::new("rustup")
            .current_dir(root.join("netlab-ebpf"))
            .args([
                "run",
                "nightly",
                "cargo",
                "clippy",
                "--release",
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
                "--target-dir",
            ])
            .arg(root.join("target/ebpf-clippy"))
            .args(["--", "-D", "warnings"]),
    )
}
