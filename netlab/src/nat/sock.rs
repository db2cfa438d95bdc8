//! The socket hooks of published ports (`netlab_sock_{connect,sendmsg,
//! recvmsg}{4,6}`, netlab-ebpf's `nat::sock` and `nat::sock6`): attached
//! to the cgroup v2 root
//! as pinned links, and the namespaces they act for (`publish_netns`).
//!
//! Why the cgroup root: the host side's and the namespaces' processes
//! (`ip netns exec`, containers) can live in any cgroup, and a cgroup hook
//! sees the sockets of its cgroup's subtree only. The programs are
//! therefore machine-wide, and each returns at its first map lookup for a
//! socket whose network namespace is not one of this lab's (multi-attach:
//! every lab has its own copy, reading its own maps).

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{HashMap, MapData},
    programs::{CgroupAttachMode, CgroupSockAddr, links::FdLink},
};
use netlab_common::nat::{PUBLISH_NETNS_MAP, PublishNetns};

use super::{NatError, maps};

/// Program names in the eBPF object and their link pins.
pub const SOCK_HOOKS: [(&str, &str); 6] = [
    ("netlab_sock_connect4", "link_sock_connect4"),
    ("netlab_sock_sendmsg4", "link_sock_sendmsg4"),
    ("netlab_sock_recvmsg4", "link_sock_recvmsg4"),
    ("netlab_sock_connect6", "link_sock_connect6"),
    ("netlab_sock_sendmsg6", "link_sock_sendmsg6"),
    ("netlab_sock_recvmsg6", "link_sock_recvmsg6"),
];

/// The mount point of the cgroup v2 hierarchy (`/sys/fs/cgroup` on a
/// unified system, `/sys/fs/cgroup/unified` on a hybrid one), from
/// /proc/self/mountinfo.
pub fn cgroup2_root() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mount_point = left.split_whitespace().nth(4)?;
        let root = left.split_whitespace().nth(3)?;
        (fstype == "cgroup2" && root == "/").then(|| PathBuf::from(mount_point))
    })
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> NatError {
    move |source| NatError::Io { what, source }
}

/// Loads the socket hooks of `ebpf` and attaches them to the cgroup v2
/// root, pinning each link as `<pin_dir>/link_sock_*`. A link already
/// pinned there (an earlier install) is replaced in one step (the new
/// one is pinned under a temporary name and renamed over it), so the
/// hooks never go missing. Returns false, changing nothing, when the
/// machine has no cgroup v2 hierarchy.
pub fn attach_sock_hooks(ebpf: &mut Ebpf, pin_dir: &Path) -> Result<bool, NatError> {
    let Some(root) = cgroup2_root() else {
        log::warn!(
            "no cgroup v2 hierarchy: published ports are not reachable from the lab's own sockets"
        );
        return Ok(false);
    };
    let cgroup = std::fs::File::open(&root).map_err(io(format!("opening {}", root.display())))?;
    for (name, pin) in SOCK_HOOKS {
        let perr = |source| NatError::Program { name, source };
        let prog: &mut CgroupSockAddr = ebpf
            .program_mut(name)
            .ok_or(NatError::MissingProgram { name })?
            .try_into()
            .map_err(perr)?;
        if prog.fd().is_err() {
            crate::bpf::loader::retry_eagain(|| prog.load()).map_err(perr)?;
        }
        // A bpf link (kernel >= 5.7) takes no attach flags (the kernel
        // refuses BPF_F_ALLOW_MULTI with EINVAL) and always coexists with
        // other links on the cgroup: "Single" is aya's name for flags 0.
        let id = prog
            .attach(&cgroup, CgroupAttachMode::Single)
            .map_err(perr)?;
        let link = prog.take_link(id).map_err(perr)?;
        let link: FdLink = link.try_into().map_err(|e| NatError::Io {
            what: format!("{name}: not a bpf link"),
            source: std::io::Error::other(format!("{e:?}")),
        })?;
        let path = pin_dir.join(pin);
        let tmp = pin_dir.join(format!("{pin}_new")); // bpffs names may not contain dots
        let _ = std::fs::remove_file(&tmp);
        link.pin(&tmp).map_err(|source| NatError::Pin {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(io(format!("replacing {}", path.display())))?;
    }
    Ok(true)
}

/// `SO_NETNS_COOKIE` (Linux 5.14): the cookie `bpf_get_netns_cookie`
/// returns for sockets of the namespace the socket was created in.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the calling thread's network namespace.
pub fn netns_cookie_here() -> std::io::Result<u64> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cookie: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: cookie and len are valid for writes of their sizes.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cookie)
}

fn netns_map(
    map: &mut aya::maps::Map,
) -> Result<HashMap<&mut MapData, u64, PublishNetns>, NatError> {
    HashMap::try_from(map).map_err(|source| NatError::Map {
        name: PUBLISH_NETNS_MAP,
        source,
    })
}

/// Makes `publish_netns` exactly `entries` (cookie → namespace).
pub fn sync_netns(pin_dir: &Path, entries: &[(u64, PublishNetns)]) -> Result<(), NatError> {
    let mut raw = maps::open_pinned(pin_dir, PUBLISH_NETNS_MAP)?;
    let current: Vec<(u64, PublishNetns)> = maps::read_hash(&raw, PUBLISH_NETNS_MAP)?;
    let mut map = netns_map(&mut raw)?;
    for (cookie, _) in current {
        if !entries.iter().any(|(c, _)| *c == cookie) {
            let _ = map.remove(&cookie);
        }
    }
    for (cookie, value) in entries {
        map.insert(cookie, value, 0)
            .map_err(|source| NatError::Map {
                name: PUBLISH_NETNS_MAP,
                source,
            })?;
    }
    Ok(())
}

/// Adds (`Some`) or removes (`None`) one namespace's cookie.
pub fn set_netns(pin_dir: &Path, cookie: u64, value: Option<PublishNetns>) -> Result<(), NatError> {
    let mut raw = maps::open_pinned(pin_dir, PUBLISH_NETNS_MAP)?;
    let mut map = netns_map(&mut raw)?;
    match value {
        Some(v) => map.insert(cookie, v, 0).map_err(|source| NatError::Map {
            name: PUBLISH_NETNS_MAP,
            source,
        }),
        None => {
            let _ = map.remove(&cookie);
            Ok(())
        }
    }
}

fn netns_io(ns: &str) -> impl Fn(std::io::Error) -> NatError + '_ {
    move |source| NatError::Io {
        what: format!("reading the namespace cookie of {ns}"),
        source,
    }
}

/// The cookie of endpoint namespace `ns` and its `publish_netns` value.
pub fn endpoint_netns(
    ns: &str,
    gateway: std::net::Ipv4Addr,
) -> Result<(u64, PublishNetns), NatError> {
    let cookie = crate::netns::run_in(Some(ns), netns_cookie_here)
        .map_err(|e| netns_io(ns)(std::io::Error::other(e)))?
        .map_err(netns_io(ns))?;
    Ok((
        cookie,
        PublishNetns {
            gateway: crate::bpf::key::ipv4_key(gateway),
            host: 0,
            _pad: [0; 3],
        },
    ))
}

/// The lab's namespaces for `publish_netns`: the calling thread's (the
/// host side; the installer runs there) and each of `endpoints`.
pub fn lab_netns(
    endpoints: &[&str],
    gateway: std::net::Ipv4Addr,
) -> Result<Vec<(u64, PublishNetns)>, NatError> {
    let host = netns_cookie_here().map_err(netns_io("the host side"))?;
    let mut out = vec![(
        host,
        PublishNetns {
            gateway: crate::bpf::key::ipv4_key(gateway),
            host: 1,
            _pad: [0; 3],
        },
    )];
    for ns in endpoints {
        out.push(endpoint_netns(ns, gateway)?);
    }
    Ok(out)
}
