//! Network sysctls of a given namespace.
//!
//! /proc/sys/net is resolved against the network namespace of the thread
//! that opens the file (the kernel's net sysctl lookup uses
//! `current->nsproxy->net_ns`), so reading or writing from a thread that
//! entered the namespace ([`crate::netns::run_in`]) reaches that
//! namespace's value even while other threads live elsewhere. The unit test
//! below checks exactly that. (/proc/net, by contrast, follows the thread
//! group leader: it is /proc/self/net.)

use std::path::PathBuf;

use crate::netns::{self, NetnsError};

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("sysctl {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// `net.ipv4.ip_forward` → /proc/sys/net/ipv4/ip_forward. A key with a
/// `/` is already a path (`sysctl` takes both forms): that is how a
/// device's key is written, since a device name may contain a dot.
fn key_path(key: &str) -> PathBuf {
    if key.contains('/') {
        PathBuf::from("/proc/sys").join(key)
    } else {
        PathBuf::from("/proc/sys").join(key.replace('.', "/"))
    }
}

/// The IPv6 setting `key` of device `dev` (`net/ipv6/conf/<dev>/<key>`).
pub fn ipv6_device_key(dev: &str, key: &str) -> String {
    format!("net/ipv6/conf/{dev}/{key}")
}

/// Reads a sysctl in namespace `ns` (None: netlab's own), trimmed.
pub fn read(ns: Option<&str>, key: &str) -> Result<String, SysctlError> {
    let path = key_path(key);
    netns::run_in(ns, || std::fs::read_to_string(&path))?
        .map(|s| s.trim().to_string())
        .map_err(|source| SysctlError::Io {
            key: key.into(),
            source,
        })
}

/// Writes a sysctl in namespace `ns` (None: netlab's own). A newline is
/// appended as `echo` would: some handlers ignore an empty write, so
/// restoring an empty list (ip_local_reserved_ports) needs it.
pub fn write(ns: Option<&str>, key: &str, value: &str) -> Result<(), SysctlError> {
    let path = key_path(key);
    let line = format!("{value}\n");
    netns::run_in(ns, || std::fs::write(&path, &line))?.map_err(|source| SysctlError::Io {
        key: key.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_reaches_only_the_namespace() {
        // No skip: the suite runs as root (`cargo xtask test` insists).
        assert!(
            nix::unistd::geteuid().is_root(),
            "needs root (to create a network namespace and write its sysctls): run as root, as `cargo xtask test` does"
        );
        let name = format!("netlab-sysctl-{}", std::process::id());
        netns::create(&name).unwrap();
        let outside = read(None, "net.ipv4.ip_forward").unwrap();
        assert_eq!(read(Some(&name), "net.ipv4.ip_forward").unwrap(), "0");
        write(Some(&name), "net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(read(Some(&name), "net.ipv4.ip_forward").unwrap(), "1");
        assert_eq!(read(None, "net.ipv4.ip_forward").unwrap(), outside);
        // An empty value really clears a list.
        let key = "net.ipv4.ip_local_reserved_ports";
        write(Some(&name), key, "20000-29999").unwrap();
        assert_eq!(read(Some(&name), key).unwrap(), "20000-29999");
        write(Some(&name), key, "").unwrap();
        assert_eq!(read(Some(&name), key).unwrap(), "");
        netns::delete(&name).unwrap();
    }

    #[test]
    fn device_keys_are_paths() {
        assert_eq!(
            key_path(&ipv6_device_key("eth0.100", "accept_dad")),
            PathBuf::from("/proc/sys/net/ipv6/conf/eth0.100/accept_dad")
        );
        assert_eq!(
            key_path("net.ipv6.conf.all.forwarding"),
            PathBuf::from("/proc/sys/net/ipv6/conf/all/forwarding")
        );
    }
}
