//! The `direct` reference: two namespaces joined by a bare veth pair, no
//! bridge, no eBPF, no NAT. It is the ceiling for namespace→namespace traffic
//! on this machine.
//!
//! Built with iproute2 rather than netlab's own topology code on purpose: the
//! reference must not share code (or bugs) with what it is compared against.

use std::net::Ipv4Addr;

use anyhow::bail;

use super::nsexec::ip;

/// Interface names inside the two namespaces.
pub const CLIENT_DEV: &str = "veth-c";
pub const SERVER_DEV: &str = "veth-s";
/// The direct pair's own subnet (one subnet per datapath; see lab.rs).
pub const DIRECT_CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 3, 1);
pub const DIRECT_SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 3, 2);
const PREFIX_LEN: u8 = 24;

/// The two namespaces, deleted (with the veth pair in them) on drop.
#[derive(Debug)]
pub struct DirectPair {
    pub client_ns: String,
    pub server_ns: String,
    pub client_addr: Ipv4Addr,
    pub server_addr: Ipv4Addr,
    /// Namespaces this pair created, so drop deletes exactly those.
    created: Vec<String>,
}

impl DirectPair {
    /// Namespace names for a bench prefix.
    pub fn names(prefix: &str) -> (String, String) {
        (
            format!("{prefix}-direct-ns1"),
            format!("{prefix}-direct-ns2"),
        )
    }

    /// Create `<prefix>-direct-ns1` and `-ns2` joined by a veth pair with
    /// 10.201.3.1/24 and .2/24. Refuses to touch namespaces that already exist.
    pub fn create(prefix: &str) -> anyhow::Result<DirectPair> {
        let (client_ns, server_ns) = Self::names(prefix);
        for ns in [&client_ns, &server_ns] {
            if crate::netns::path(ns).exists() {
                bail!(
                    "network namespace {ns} already exists; if it is left over from an \
                     interrupted bench, remove it with `ip netns del {ns}`"
                );
            }
        }
        let mut pair = DirectPair {
            client_ns,
            server_ns,
            client_addr: DIRECT_CLIENT_ADDR,
            server_addr: DIRECT_SERVER_ADDR,
            created: Vec::new(),
        };
        // On error `pair` drops here and deletes whatever was created.
        pair.build()?;
        Ok(pair)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        for ns in [self.client_ns.clone(), self.server_ns.clone()] {
            ip(&["netns", "add", &ns])?;
            self.created.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        // Created directly inside the two namespaces: nothing appears in the
        // root namespace, not even for a moment.
        ip(&[
            "link",
            "add",
            CLIENT_DEV,
            "netns",
            &self.client_ns,
            "type",
            "veth",
            "peer",
            "name",
            SERVER_DEV,
            "netns",
            &self.server_ns,
        ])?;
        for (ns, dev, addr) in [
            (&self.client_ns, CLIENT_DEV, self.client_addr),
            (&self.server_ns, SERVER_DEV, self.server_addr),
        ] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/{PREFIX_LEN}"),
                "dev",
                dev,
            ])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }
}

impl Drop for DirectPair {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth end inside it, and with it
        // the pair.
        for ns in self.created.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("warning: {e}");
            }
        }
    }
}
