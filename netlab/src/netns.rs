//! Named network namespaces, made the way iproute2 makes them (so `ip netns`
//! sees ours and we see its): a new namespace bind-mounted on
//! `/run/netns/NAME`, with `/run/netns` a shared mount.
//!
//! `setns` moves only the calling thread, so all namespace work runs on a
//! dedicated OS thread ([`run_in`]) that enters the namespace first and is
//! thrown away afterwards; netlink sockets are opened on that thread, after
//! the switch, so they belong to the namespace.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

pub const NETNS_RUN_DIR: &str = "/run/netns";
/// The calling thread's network namespace (threads may differ: `setns`).
pub const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {0} already exists")]
    Exists(String),
    #[error("network namespace {0} does not exist")]
    Missing(String),
    #[error("{context}")]
    Sys {
        context: String,
        #[source]
        source: Errno,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the namespace thread panicked")]
    Panicked,
}

fn sys(context: impl Into<String>) -> impl FnOnce(Errno) -> NetnsError {
    let context = context.into();
    move |source| NetnsError::Sys { context, source }
}

/// Where namespace `name` is mounted. A name that is an absolute path is
/// that path: CNI containers' namespaces are passed by path
/// (`/run/netns/netns-…`, `/proc/PID/ns/net`), and lab namespace names
/// never hold a '/'.
pub fn path(name: &str) -> PathBuf {
    if name.starts_with('/') {
        return PathBuf::from(name);
    }
    Path::new(NETNS_RUN_DIR).join(name)
}

/// True when `/run/netns/NAME` exists (mounted or not).
pub fn exists(name: &str) -> bool {
    path(name).symlink_metadata().is_ok()
}

/// Names under /run/netns.
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// Opens a namespace handle (for `setns`, or IFLA_NET_NS_FD).
pub fn open(name: &str) -> Result<OwnedFd, NetnsError> {
    match File::open(path(name)) {
        Ok(f) => Ok(f.into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NetnsError::Missing(name.into())),
        Err(source) => Err(NetnsError::Io {
            context: format!("cannot open network namespace {name}"),
            source,
        }),
    }
}

/// Makes /run/netns exist and be a shared mount point, as `ip netns add`
/// does, so namespaces mounted here propagate into mount namespaces created
/// later (e.g. by `ip netns exec`) and their unmounts propagate too.
fn prepare_run_dir() -> Result<(), NetnsError> {
    std::fs::create_dir_all(NETNS_RUN_DIR).map_err(|source| NetnsError::Io {
        context: format!("cannot create {NETNS_RUN_DIR}"),
        source,
    })?;
    let mut bound = false;
    loop {
        match nix::mount::mount(
            Some("none"),
            NETNS_RUN_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            // Not a mount point yet: bind it on itself, then retry.
            Err(Errno::EINVAL) if !bound => {
                nix::mount::mount(
                    Some(NETNS_RUN_DIR),
                    NETNS_RUN_DIR,
                    Some("none"),
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(sys(format!("cannot bind-mount {NETNS_RUN_DIR} on itself")))?;
                bound = true;
            }
            Err(e) => {
                return Err(sys(format!("cannot make {NETNS_RUN_DIR} a shared mount"))(
                    e,
                ));
            }
        }
    }
}

/// Creates the named namespace. Fails with [`NetnsError::Exists`] when the
/// name is taken (the existing namespace is left alone).
pub fn create(name: &str) -> Result<(), NetnsError> {
    prepare_run_dir()?;
    let target = path(name);
    // O_EXCL: claim the name atomically; a concurrent creator loses cleanly.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&target)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists(name.into()));
        }
        Err(source) => {
            return Err(NetnsError::Io {
                context: format!("cannot create {}", target.display()),
                source,
            });
        }
    }
    // unshare on a throw-away thread: the new namespace is that thread's,
    // and the bind mount (/proc/thread-self, not /proc/self) keeps it alive
    // after the thread ends.
    let mounted = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), NetnsError> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(sys(format!(
                "cannot create network namespace {name} (unshare)"
            )))?;
            nix::mount::mount(
                Some(THREAD_NETNS),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys(format!("cannot bind-mount network namespace {name}")))
        })
        .join()
        .unwrap_or(Err(NetnsError::Panicked))
    });
    if let Err(e) = mounted {
        let _ = std::fs::remove_file(&target);
        return Err(e);
    }
    Ok(())
}

/// Deletes the named namespace: unmount + unlink. The kernel frees it (and
/// its devices) once the last process or fd using it is gone. Succeeds when
/// it does not exist.
pub fn delete(name: &str) -> Result<(), NetnsError> {
    let target = path(name);
    if target.symlink_metadata().is_err() {
        return Ok(());
    }
    match nix::mount::umount2(&target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys(format!("cannot unmount {}", target.display()))(e)),
    }
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Io {
            context: format!("cannot remove {}", target.display()),
            source,
        }),
    }
}

/// Runs `f` on a new OS thread inside namespace `ns` (None: the process's
/// own namespace, i.e. the one netlab was started in) and returns its
/// result. The thread ends with `f`, so no thread is left in a foreign
/// namespace.
pub fn run_in<T, F>(ns: Option<&str>, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let fd = match ns {
        Some(name) => Some(open(name)?),
        None => None,
    };
    let thread_name = format!("netns-{}", ns.unwrap_or("self"));
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name(thread_name)
            .spawn_scoped(s, move || -> Result<T, NetnsError> {
                if let Some(fd) = fd {
                    nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys(
                        format!("cannot enter network namespace {}", ns.unwrap_or("")),
                    ))?;
                }
                Ok(f())
            })
            .map_err(|source| NetnsError::Io {
                context: "cannot start a namespace thread".into(),
                source,
            })?;
        handle.join().unwrap_or(Err(NetnsError::Panicked))
    })
}

/// Makes `cmd` run inside namespace `ns` (like `ip netns exec`): the child
/// enters the network namespace after fork, before exec. With `remount_sys`
/// the child also gets a private mount namespace with /sys remounted, so
/// /sys/class/net shows the namespace's own devices.
pub fn command_in(cmd: &mut Command, ns: &str, remount_sys: bool) -> Result<(), NetnsError> {
    let fd = open(ns)?;
    let raw = fd.as_raw_fd();
    // SAFETY: only async-signal-safe system calls on data prepared before
    // fork (the fd and static C strings) run in the child.
    unsafe {
        cmd.pre_exec(move || {
            let _keep = &fd;
            if libc::setns(raw, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if remount_sys && libc::unshare(libc::CLONE_NEWNS) == 0 {
                // Best effort, as in `ip netns exec`: do not let our mounts
                // propagate back, then replace /sys with this namespace's.
                let root = c"/".as_ptr();
                let sysfs = c"/sys".as_ptr();
                libc::mount(
                    c"none".as_ptr(),
                    root,
                    std::ptr::null(),
                    libc::MS_SLAVE | libc::MS_REC,
                    std::ptr::null(),
                );
                if libc::umount2(sysfs, libc::MNT_DETACH) == 0 {
                    libc::mount(
                        c"sysfs".as_ptr(),
                        sysfs,
                        c"sysfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    );
                }
            }
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_enter_delete() {
        // No skip: the suite runs as root (`cargo xtask test` insists), and
        // a test that passes without running would hide a broken netns.rs.
        assert!(
            nix::unistd::geteuid().is_root(),
            "needs root (CAP_SYS_ADMIN to create network namespaces): run as root, as `cargo xtask test` does"
        );
        let name = format!("netlab-unit-{}", std::process::id());
        create(&name).unwrap();
        assert!(matches!(create(&name), Err(NetnsError::Exists(_))));
        // A fresh namespace has only `lo`, with ifindex 1.
        let idx = run_in(Some(&name), || nix::net::if_::if_nametoindex("lo").unwrap()).unwrap();
        assert_eq!(idx, 1);
        let inode_in = run_in(Some(&name), || {
            std::fs::read_link("/proc/thread-self/ns/net").unwrap()
        })
        .unwrap();
        let inode_self = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        assert_ne!(inode_in, inode_self);
        delete(&name).unwrap();
        assert!(!exists(&name));
        delete(&name).unwrap();
        assert!(matches!(open(&name), Err(NetnsError::Missing(_))));
    }
}
