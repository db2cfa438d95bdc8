//! The host side's own addresses, as the datapath needs them: those the
//! endpoints may not reach (`host_addrs` and `host_addrs6`, the
//! host-access rule) and the uplink's (the address the NAT masquerades
//! with).

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use netlab_common::switch::{HOST_ADDR_BROADCAST, HOST_ADDR_LOCAL};

use super::validate::{installed_dir, validate_lab};
use crate::bpf::{
    Error, Result, fs,
    key::{ipv4_key, ipv4_of_key},
    maps::HostAddrs,
    maps6::HostAddrs6,
};
use crate::names::link_local_for;
use crate::plan::{PortRole, SwitchPlan};

/// What the host-access rule needs to know about a lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAccess {
    /// The lab's pin directory.
    pub dir: PathBuf,
    /// Always reachable: the namespaces' router.
    pub gateway: Option<Ipv4Addr>,
    /// Its IPv6 addresses (global, and `vbridge`'s link-local), always
    /// reachable too; empty without IPv6.
    pub gateway6: Vec<Ipv6Addr>,
    /// `[host] allow_host_access`: nothing is blocked.
    pub allowed: bool,
}

impl HostAccess {
    pub fn of(plan: &SwitchPlan) -> Self {
        let gateway = plan.ports.iter().find(|p| p.role == PortRole::Gateway);
        Self {
            dir: fs::lab_dir(&plan.lab),
            gateway: gateway.map(|p| p.ipv4),
            gateway6: gateway
                .and_then(|p| p.ipv6.map(|global| vec![global, link_local_for(p.mac)]))
                .unwrap_or_default(),
            allowed: plan.allow_host_access,
        }
    }
}

/// The host side's IPv4 addresses that endpoints may not reach, read in
/// the calling thread's namespace: every interface address except the
/// gateway's, and the broadcast address of each such address (the host
/// stack delivers those locally as well; the gateway's own subnet
/// broadcast is the lab segment's and stays reachable, like
/// 255.255.255.255). Keys in network order, values HOST_ADDR_*.
pub fn blocked_host_addrs(gateway: Option<Ipv4Addr>) -> Result<BTreeMap<u32, u8>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|source| Error::NoDevice {
        dev: "(host interfaces)".to_owned(),
        source,
    })?;
    let mut out = BTreeMap::new();
    let mut broadcasts = Vec::new();
    for a in addrs {
        let Some(ip) = a
            .address
            .and_then(|s| s.as_sockaddr_in().map(|sin| sin.ip()))
        else {
            continue;
        };
        if Some(ip) == gateway {
            continue;
        }
        out.insert(ipv4_key(ip), HOST_ADDR_LOCAL);
        if let Some(b) = a
            .broadcast
            .and_then(|s| s.as_sockaddr_in().map(|sin| sin.ip()))
            && !b.is_broadcast()
            && !b.is_unspecified()
        {
            broadcasts.push(b);
        }
    }
    for b in broadcasts {
        // An address wins over a broadcast address with the same value.
        out.entry(ipv4_key(b)).or_insert(HOST_ADDR_BROADCAST);
    }
    Ok(out)
}

/// The host side's IPv6 addresses that endpoints may not reach, read in
/// the calling thread's namespace: every interface address (link-local
/// ones and `::1` included) except the gateway's. Values HOST_ADDR_LOCAL.
pub fn blocked_host_addrs6(gateway: &[Ipv6Addr]) -> Result<BTreeMap<Ipv6Addr, u8>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|source| Error::NoDevice {
        dev: "(host interfaces)".to_owned(),
        source,
    })?;
    Ok(addrs
        .filter_map(|a| a.address?.as_sockaddr_in6().map(|sin6| sin6.ip()))
        .filter(|ip| !gateway.contains(ip))
        .map(|ip| (ip, HOST_ADDR_LOCAL))
        .collect())
}

/// Makes `host_addrs` and `host_addrs6` match the host namespace's
/// addresses now (empty when host access is allowed). Must run on a
/// thread inside the host namespace. Returns how many addresses are
/// blocked (both families).
pub fn sync_host_access(access: &HostAccess) -> Result<usize> {
    let (wanted, wanted6) = if access.allowed {
        (BTreeMap::new(), BTreeMap::new())
    } else {
        (
            blocked_host_addrs(access.gateway)?,
            blocked_host_addrs6(&access.gateway6)?,
        )
    };
    HostAddrs::open(&access.dir)?.sync(&wanted)?;
    HostAddrs6::open(&access.dir)?.sync(&wanted6)?;
    Ok(wanted.len() + wanted6.len())
}

/// The entries of `host_addrs`: (address, HOST_ADDR_*), sorted.
pub fn host_addrs(lab: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    validate_lab(lab)?;
    let mut v: Vec<_> = HostAddrs::open(&installed_dir(lab)?)?
        .entries()?
        .into_iter()
        .map(|(k, kind)| (ipv4_of_key(k), kind))
        .collect();
    v.sort();
    Ok(v)
}

/// The entries of `host_addrs6`: (address, HOST_ADDR_*), sorted.
pub fn host_addrs6(lab: &str) -> Result<Vec<(Ipv6Addr, u8)>> {
    validate_lab(lab)?;
    let mut v = HostAddrs6::open(&installed_dir(lab)?)?.entries()?;
    v.sort();
    Ok(v)
}

/// The first IPv4 address of `dev` in the calling thread's namespace: the
/// address the NAT masquerades with.
pub fn uplink_ipv4(dev: &str) -> Result<Ipv4Addr> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|source| Error::NoDevice {
        dev: dev.to_owned(),
        source,
    })?;
    addrs
        .filter(|a| a.interface_name == dev)
        .find_map(|a| a.address?.as_sockaddr_in().map(|sin| sin.ip()))
        .ok_or_else(|| Error::NoUplinkAddress {
            dev: dev.to_owned(),
        })
}

/// The uplink's first global IPv6 address (NAT66's external address), read
/// in the calling thread's namespace: not link-local, loopback, multicast
/// or unspecified, and not inside the lab's own prefix `lab6`. `None`: the
/// uplink has none, and NAT66 stays off.
pub fn uplink_ipv6(dev: &str, lab6: Option<crate::cidr::Ipv6Cidr>) -> Result<Option<Ipv6Addr>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|source| Error::NoDevice {
        dev: dev.to_owned(),
        source,
    })?;
    Ok(addrs
        .filter(|a| a.interface_name == dev)
        .filter_map(|a| a.address?.as_sockaddr_in6().map(|sin| sin.ip()))
        .find(|ip| {
            !ip.is_unicast_link_local()
                && !ip.is_loopback()
                && !ip.is_multicast()
                && !ip.is_unspecified()
                && !lab6.is_some_and(|p| p.contains(*ip))
        }))
}
