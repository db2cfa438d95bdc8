//! bpffs: mounting it, the per-lab pin directory and the names in it.
//!
//! Layout of `/sys/fs/bpf/netlab/<lab>/`:
//! - one file per pinned map, named after the map (`netlab_common::maps`);
//! - `prog_port`: the port program, so `add_port` can attach it later;
//! - `prog_port_new`: transient, while a re-install swaps the program pin;
//! - `link_port_<dev>`: the tcx link of each switch port. A pinned link
//!   keeps the program attached after netlab exits; removing the pin (with
//!   no fd open) detaches it.

use std::{
    collections::BTreeSet,
    fs, io,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MsFlags, mount},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};

use super::error::{Error, Result};

/// Where bpffs is (or gets) mounted.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";
/// netlab's directory in bpffs; one subdirectory per lab.
pub const NETLAB_PIN_ROOT: &str = "/sys/fs/bpf/netlab";
/// The pinned port program.
pub const PROG_PORT_PIN: &str = "prog_port";
/// Prefix of the pinned tcx links of the switch ports.
pub const LINK_PORT_PREFIX: &str = "link_port_";

/// Mounts bpffs at [`BPFFS_ROOT`] unless it is already there.
pub fn ensure_bpffs() -> Result<()> {
    let root = Path::new(BPFFS_ROOT);
    let bpffs_error = |source: io::Error| Error::Bpffs {
        path: root.to_path_buf(),
        source,
    };
    match statfs(root) {
        Ok(st) if st.filesystem_type() == BPF_FS_MAGIC => return Ok(()),
        Ok(_) => {}
        Err(errno) => return Err(bpffs_error(errno.into())),
    }
    mount(
        Some("bpf"),
        root,
        Some("bpf"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|errno| bpffs_error(errno.into()))?;
    log::info!("mounted bpffs at {BPFFS_ROOT}");
    Ok(())
}

/// Whether `path` is a bpffs mount (directory inside one).
fn is_bpffs(path: &Path) -> bool {
    statfs(path).is_ok_and(|st| st.filesystem_type() == BPF_FS_MAGIC)
}

/// The mount namespace a `/proc/PID/ns/mnt` file names (device, inode).
fn mount_ns(pid: &str) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(format!("/proc/{pid}/ns/mnt"))?;
    Ok((m.dev(), m.ino()))
}

/// The parent of process `pid` (field 4 of /proc/PID/stat, after the
/// parenthesised command name, which may itself hold spaces).
fn parent_of(pid: &str) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1).map(str::to_string)
}

/// `ip netns exec NS netlab ...` runs netlab in a private mount namespace
/// whose /sys is a fresh sysfs: the machine's bpffs is not mounted there,
/// and a bpffs netlab mounted there would vanish, with every pin (and so
/// every program and map), when the command exits. So when /sys/fs/bpf is
/// not bpffs here but is in the mount namespace of the nearest ancestor
/// process that has another one (the shell that ran `ip netns exec`),
/// netlab joins that mount namespace. Only mounts change: the network
/// namespace stays the one the user chose, and the working directory is
/// kept. Returns the pid whose namespace was joined.
///
/// Must run while the process has a single thread (`setns` of a mount
/// namespace requires it): first thing in `main`.
pub fn join_outer_bpffs() -> Result<Option<i32>> {
    if is_bpffs(Path::new(BPFFS_ROOT)) {
        return Ok(None);
    }
    let Ok(own) = mount_ns("self") else {
        return Ok(None);
    };
    let mut pid = nix::unistd::getppid().as_raw().to_string();
    // Bounded: a process tree is shallow, and /proc may change under us.
    for _ in 0..64 {
        if pid == "0" {
            break;
        }
        let Ok(ns) = mount_ns(&pid) else { break };
        if ns != own {
            let outer = PathBuf::from(format!("/proc/{pid}/root{BPFFS_ROOT}"));
            if !is_bpffs(&outer) {
                break;
            }
            let cwd = std::env::current_dir().ok();
            let join = |source: io::Error| Error::Bpffs {
                path: outer.clone(),
                source,
            };
            let nsfile = fs::File::open(format!("/proc/{pid}/ns/mnt")).map_err(join)?;
            nix::sched::setns(nsfile, nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| join(e.into()))?;
            if let Some(cwd) = cwd {
                // Best effort: the same path in the joined namespace.
                let _ = std::env::set_current_dir(cwd);
            }
            return Ok(pid.parse().ok());
        }
        match parent_of(&pid) {
            Some(parent) => pid = parent,
            None => break,
        }
    }
    Ok(None)
}

/// `/sys/fs/bpf/netlab/<lab>`.
pub fn lab_dir(lab: &str) -> PathBuf {
    Path::new(NETLAB_PIN_ROOT).join(lab)
}

/// The pinned tcx link of the port on `dev`.
pub fn link_pin(dir: &Path, dev: &str) -> PathBuf {
    dir.join(format!("{LINK_PORT_PREFIX}{}", encode_name(dev)))
}

/// bpffs refuses names containing '.' (EPERM), which interface names may
/// contain (`eth0.100`): pin names spell it `%2e` (and '%' as `%25`).
pub fn encode_name(name: &str) -> String {
    name.replace('%', "%25").replace('.', "%2e")
}

/// The inverse of [`encode_name`].
pub fn decode_name(name: &str) -> String {
    name.replace("%2e", ".").replace("%25", "%")
}

/// The pinned port program.
pub fn prog_pin(dir: &Path) -> PathBuf {
    dir.join(PROG_PORT_PIN)
}

/// Where a new program is pinned before it replaces [`prog_pin`].
pub fn prog_pin_new(dir: &Path) -> PathBuf {
    dir.join(format!("{PROG_PORT_PIN}_new"))
}

/// Names of the entries of a pin directory (empty when it does not exist).
pub fn entries(dir: &Path) -> Result<BTreeSet<String>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(source) => return Err(pin_error("cannot read pin directory", dir, source)),
    };
    let mut names = BTreeSet::new();
    for entry in read {
        let entry = entry.map_err(|source| pin_error("cannot read pin directory", dir, source))?;
        names.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// The devices that have a pinned port link in `dir`.
pub fn linked_devices(dir: &Path) -> Result<BTreeSet<String>> {
    Ok(entries(dir)?
        .into_iter()
        .filter_map(|name| name.strip_prefix(LINK_PORT_PREFIX).map(decode_name))
        .collect())
}

/// Creates the lab's pin directory; returns whether it was created now.
pub fn create_lab_dir(dir: &Path) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    // 0755 whatever the umask: others must not add or unlink pins (an
    // unlinked link pin detaches a port's program).
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o755)
        .create(dir)
        .map_err(|source| pin_error("cannot create pin directory", dir, source))?;
    Ok(true)
}

/// Removes one pin; a missing pin is fine.
pub fn remove_pin(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(pin_error("cannot remove pin", path, source)),
    }
}

/// Removes every pin of a lab and its directory: links first (that detaches
/// the programs from the ports), then the program, then the maps. Succeeds
/// when the directory does not exist.
pub fn remove_lab_dir(dir: &Path) -> Result<()> {
    let names = entries(dir)?;
    let (links, rest): (Vec<_>, Vec<_>) = names
        .into_iter()
        // Every tcx link (ports and uplink) goes first, so nothing keeps
        // running against maps that are being removed.
        .partition(|name| name.starts_with("link_"));
    for name in links.iter().chain(rest.iter()) {
        let path = dir.join(name);
        if path.is_dir() {
            fs::remove_dir_all(&path)
                .map_err(|source| pin_error("cannot remove pin directory", &path, source))?;
        } else {
            remove_pin(&path)?;
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(pin_error("cannot remove pin directory", dir, source)),
    }
    // The shared parent /sys/fs/bpf/netlab stays: removing it could race
    // with another lab being installed at the same time.
    Ok(())
}

fn pin_error(what: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Pin {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_names_avoid_dots() {
        let pin = link_pin(Path::new("/x"), "eth0.100");
        assert_eq!(pin, Path::new("/x/link_port_eth0%2e100"));
        assert_eq!(decode_name("eth0%2e100"), "eth0.100");
        assert_eq!(decode_name(&encode_name("a%2e.b")), "a%2e.b");
    }
}
