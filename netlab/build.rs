//! Builds the eBPF programs (netlab-ebpf) with the nightly toolchain and
//! bpf-linker, and leaves the object in OUT_DIR for `include_bytes_aligned!`.
//!
//! aya-build relays everything the inner `cargo build` prints as
//! `cargo:warning=` lines, so a fresh build showed ~70 "warning:
//! netlab@0.1.0: Compiling ..." lines that a user reads as problems. Our
//! stdout (where cargo reads build-script instructions) is routed through a
//! filter while aya-build runs: the inner cargo's progress lines
//! (Compiling, Finished, ...) go to the build script's stderr instead,
//! which cargo keeps in the build log (shown with `cargo build -vv`, and
//! in full if the build fails); real warnings and errors stay warnings.
//! aya-build offers no hook for this, hence the file-descriptor plumbing.
use std::{
    fs::File,
    io::{BufRead, BufReader, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
};

/// The inner cargo's status verbs: progress, not problems.
const PROGRESS: &[&str] = &[
    "Compiling",
    "Finished",
    "Blocking",
    "Updating",
    "Downloading",
    "Downloaded",
    "Locking",
    "Adding",
    "Fresh",
    "Checking",
    "Running",
    "Dirty",
    "Unpacking",
];

/// Whether `line` (a build-script output line) is a relayed progress line.
fn is_progress(line: &str) -> bool {
    line.strip_prefix("cargo:warning=")
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|verb| PROGRESS.contains(&verb))
}

/// Runs `f` with fd 1 (stdout) redirected into a pipe whose lines are
/// filtered: progress lines to stderr, everything else to the real stdout.
fn with_filtered_stdout<T>(f: impl FnOnce() -> T) -> std::io::Result<T> {
    std::io::stdout().flush()?;
    let (reader, writer) = std::io::pipe()?;
    // SAFETY: dup(2) of our own stdout; the new fd is owned at once.
    let saved = unsafe { libc::dup(1) };
    if saved < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `saved` was just returned by dup and nothing else owns it.
    let saved = unsafe { OwnedFd::from_raw_fd(saved) };
    let mut real_stdout = File::from(saved.try_clone()?);
    let relay = std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if is_progress(&line) {
                eprintln!("{}", line.trim_start_matches("cargo:warning="));
            } else {
                let _ = writeln!(real_stdout, "{line}");
            }
        }
    });
    // SAFETY: dup2 onto fd 1; the pipe's writer stays owned by `writer`.
    if unsafe { libc::dup2(writer.as_raw_fd(), 1) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop(writer);
    let result = f();
    std::io::stdout().flush()?;
    // Restoring fd 1 closes the pipe's last writer: the relay sees EOF.
    // SAFETY: dup2 of the saved stdout back onto fd 1.
    if unsafe { libc::dup2(saved.as_raw_fd(), 1) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _ = relay.join();
    Ok(result)
}

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let ebpf_dir = manifest_dir.join("../netlab-ebpf");
    let ebpf_dir = ebpf_dir.to_str().expect("utf-8 path");
    with_filtered_stdout(|| {
        aya_build::build_ebpf(
            [aya_build::Package {
                name: "netlab-ebpf",
                root_dir: ebpf_dir,
                ..Default::default()
            }],
            aya_build::Toolchain::default(),
        )
    })??;
    // With AYA_BUILD_SKIP=1 (userspace-only work, clippy) aya-build builds
    // nothing; leave an empty object so the crate still compiles. Loading it
    // then fails with a clear "eBPF object is empty" error at run time.
    let object = out_dir.join("netlab");
    if !object.exists() {
        std::fs::write(&object, [])?;
    }
    Ok(())
}
