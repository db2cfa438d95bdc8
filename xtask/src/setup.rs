//! Machine preparation, idempotent: each step checks before it acts.
//!
//! 1. the nightly toolchain's `rust-src` (the eBPF crate builds `core` itself);
//! 2. bpf-linker 0.13 built against the nightly's own libLLVM
//!    (netlab/doc/ARCHITECTURE.md §9, "Toolchain");
//! 3. the Debian packages the lab, the tests and the benchmark use;
//! 4. bpffs mounted on /sys/fs/bpf.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::status;

/// Debian packages and a command each one provides. On Debian, dpkg is asked
/// (one query for the whole list); elsewhere the command tells whether the
/// package is there.
const PACKAGES: &[(&str, &str)] = &[
    ("iproute2", "ip"),
    ("iptables", "iptables"),
    ("nftables", "nft"),
    ("iperf3", "iperf3"),
    ("sockperf", "sockperf"),
    ("iputils-ping", "ping"),
    ("tcpdump", "tcpdump"),
    ("bpftool", "bpftool"),
    ("graphviz", "dot"),
    ("procps", "sysctl"),
    ("curl", "curl"),
    ("ethtool", "ethtool"),
    // Real container runtime for the CNI plugin's tests (runc: crun refuses
    // this VM's cgroup hybrid), and a static busybox to build root
    // filesystems from, since no image registry is reachable.
    ("podman", "podman"),
    ("runc", "runc"),
    ("busybox-static", "busybox"),
    // Frames no socket API can send (rogue RAs, spoofed NAs).
    ("python3-scapy", "scapy"),
    // `promtool check metrics` validates the metrics endpoint.
    ("prometheus", "promtool"),
    // The tests render `netlab man` with `man -l` and syntax-check the
    // zsh completion script with `zsh -n`.
    ("man-db", "man"),
    ("zsh", "zsh"),
];

const NIGHTLY: &str = "nightly";
const BPF_LINKER_VERSION: &str = "^0.13";

pub fn run(root: &Path) -> Result<()> {
    rust_src()?;
    bpf_linker(root)?;
    packages()?;
    bpffs()?;
    Ok(())
}

pub fn require_root(what: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        bail!(
            "{what} needs root (CAP_NET_ADMIN and CAP_BPF) to create namespaces and load \
             eBPF programs; run it as root, e.g. `sudo -E cargo xtask ...`"
        );
    }
    Ok(())
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

fn output(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

fn nightly_sysroot() -> Result<PathBuf> {
    let sysroot =
        output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
            .context("the nightly toolchain is needed to build the eBPF programs")?;
    Ok(PathBuf::from(sysroot))
}

fn rust_src() -> Result<()> {
    let sysroot = nightly_sysroot()?;
    if sysroot.join("lib/rustlib/src/rust/library/core").is_dir() {
        return Ok(());
    }
    eprintln!("setup: adding rust-src to the {NIGHTLY} toolchain");
    status(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
}

/// The folder bpf-linker's rpath points at. It must outlive the build, so it
/// is under the user's data directory, not a temporary one.
fn llvm_prefix() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".local/share")
        }
    };
    Ok(base.join("netlab/llvm"))
}

/// The nightly's libLLVM (`libLLVM.so.22.1-rust-<version>`).
fn nightly_libllvm(sysroot: &Path) -> Result<PathBuf> {
    let lib = sysroot.join("lib");
    let mut found = fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        })
        .collect::<Vec<_>>();
    found.sort();
    found.pop().with_context(|| {
        format!(
            "no libLLVM.so.*-rust-* in {}: the nightly toolchain ships none?",
            lib.display()
        )
    })
}

fn bpf_linker_works(stamp: &str, stamp_file: &Path) -> bool {
    let runs = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    runs && fs::read_to_string(stamp_file).is_ok_and(|s| s.trim() == stamp)
}

fn bpf_linker(root: &Path) -> Result<()> {
    let sysroot = nightly_sysroot()?;
    let libllvm = nightly_libllvm(&sysroot)?;
    let prefix = llvm_prefix()?;
    let lib_dir = prefix.join("lib");
    // The stamp names the libLLVM the linker was built against: a new nightly
    // means a new libLLVM, and the linker must be rebuilt.
    let stamp = libllvm.display().to_string();
    let stamp_file = prefix.join("bpf-linker.stamp");
    if bpf_linker_works(&stamp, &stamp_file) {
        return Ok(());
    }
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against {} (a few minutes, once)",
        libllvm.display()
    );
    fs::create_dir_all(&lib_dir)?;
    let soname = libllvm.file_name().expect("file name");
    // llvm-sys looks for lib/libLLVM.so under LLVM_PREFIX; the built binary
    // then needs the versioned soname next to it through its rpath.
    for link in [lib_dir.join("libLLVM.so"), lib_dir.join(soname)] {
        let _ = fs::remove_file(&link);
        symlink(&libllvm, &link).with_context(|| format!("linking {}", link.display()))?;
    }
    status(
        Command::new("cargo")
            .current_dir(root)
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", &prefix),
    )?;
    fs::write(&stamp_file, &stamp)?;
    if !bpf_linker_works(&stamp, &stamp_file) {
        bail!(
            "bpf-linker was built but `bpf-linker --version` does not run; is ~/.cargo/bin on PATH?"
        );
    }
    Ok(())
}

fn have_command(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(cmd).is_file())
    })
}

/// Whether dpkg has each package installed (None: no dpkg here).
fn dpkg_installed(packages: &[&str]) -> Option<Vec<bool>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Status}\\n"])
        .args(packages)
        .output()
        .ok()?;
    // dpkg-query exits 1 when some package is unknown; its stdout still
    // lists the known ones.
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        packages
            .iter()
            .map(|pkg| {
                text.lines().any(|line| {
                    line.strip_prefix(pkg)
                        .and_then(|rest| rest.strip_prefix(' '))
                        .is_some_and(|status| status.ends_with(" installed"))
                })
            })
            .collect(),
    )
}

fn packages() -> Result<()> {
    let names: Vec<&str> = PACKAGES.iter().map(|(pkg, _)| *pkg).collect();
    let installed = dpkg_installed(&names)
        .unwrap_or_else(|| PACKAGES.iter().map(|(_, cmd)| have_command(cmd)).collect());
    let missing: Vec<&str> = names
        .iter()
        .zip(installed)
        .filter(|(_, ok)| !ok)
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let debian = Path::new("/etc/debian_version").exists();
    if !(is_root() && debian) {
        bail!(
            "missing packages: {}. Install them (Debian/Ubuntu: `apt-get install {}`) and run again.",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!("setup: installing {}", missing.join(" "));
    status(Command::new("apt-get").args(["update", "-qq"]))?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn bpffs() -> Result<()> {
    let path = Path::new("/sys/fs/bpf");
    let kind = output(Command::new("stat").args(["-f", "-c", "%T"]).arg(path)).unwrap_or_default();
    if kind == "bpf_fs" {
        return Ok(());
    }
    if !is_root() {
        eprintln!("setup: /sys/fs/bpf is not a bpf filesystem; netlab mounts it when run as root");
        return Ok(());
    }
    eprintln!("setup: mounting bpffs on /sys/fs/bpf");
    fs::create_dir_all(path)?;
    status(Command::new("mount").args(["-t", "bpf", "bpf"]).arg(path))
}
