//! The IPv6 settings of the lab's namespaces and devices (sysctls), and
//! its addresses and routes: what `up`, `attach` and `repair` apply next
//! to the IPv4 ones.
//!
//! With IPv6 (the plan has `ipv6`): duplicate address detection off and
//! EUI-64 link-locals (`addr_gen_mode = 0`), so every address is usable at
//! once and every link-local is `names::link_local_for(mac)`. Endpoint
//! namespaces keep `accept_ra = 1` (the kernel default). Without IPv6
//! (`subnet6 = "none"`): IPv6 disabled on the lab's devices, so they carry
//! no IPv6 address at all, not even a link-local.

use crate::plan::{EndpointPlan, LabPlan, SandboxPlan};
use crate::sysctl::{self, SysctlError, ipv6_device_key};
use crate::topology::{Netlink, TopologyError};

/// The per-device settings, by whether the lab has IPv6.
fn device_settings(ipv6: bool) -> &'static [(&'static str, &'static str)] {
    if ipv6 {
        &[("accept_dad", "0"), ("addr_gen_mode", "0")]
    } else {
        &[("disable_ipv6", "1")]
    }
}

/// A namespace the lab owns, before any device is made in it: its
/// `default` (new devices) and `all` settings. Nothing is recorded: the
/// settings go with the namespace.
pub(crate) fn namespace_settings(ns: &str, ipv6: bool) -> Result<(), SysctlError> {
    for conf in ["all", "default"] {
        for (key, value) in device_settings(ipv6) {
            // `all.addr_gen_mode` regenerates nothing useful; `default`
            // is what new devices copy.
            if conf == "all" && *key == "addr_gen_mode" {
                continue;
            }
            sysctl::write(Some(ns), &ipv6_device_key(conf, key), value)?;
        }
    }
    Ok(())
}

/// One device the lab made, before it is brought up (the link-local is
/// made on up). Goes with the device, so nothing is recorded.
pub(crate) fn device(netns: Option<&str>, dev: &str, ipv6: bool) -> Result<(), SysctlError> {
    for (key, value) in device_settings(ipv6) {
        sysctl::write(netns, &ipv6_device_key(dev, key), value)?;
    }
    Ok(())
}

/// An endpoint's IPv6 address (nodad) on its veth, and its default route
/// via gateway6. Runs in the endpoint's namespace, after the veth is up.
pub(crate) fn endpoint(
    nl: &Netlink,
    plan: &LabPlan,
    e: &EndpointPlan,
) -> Result<(), TopologyError> {
    if let (Some(v6), Some(a)) = (plan.ipv6, e.address6) {
        nl.add_address6(&e.veth, a, v6.subnet.prefix_len)?;
        nl.add_default_route6(v6.gateway)?;
    }
    Ok(())
}

/// The gateway's IPv6 address on `vbridge`. Runs in the host namespace.
pub(crate) fn gateway(nl: &Netlink, plan: &LabPlan) -> Result<(), TopologyError> {
    if let Some(v6) = plan.ipv6 {
        nl.add_address6(&plan.gateway_device, v6.gateway, v6.subnet.prefix_len)?;
    }
    Ok(())
}

/// The sandbox uplink's IPv6 addresses: `uplink` in the host namespace
/// (`host` = true) or `inet0` in the internet namespace.
pub(crate) fn sandbox_uplink(
    nl: &Netlink,
    s: &SandboxPlan,
    host: bool,
) -> Result<(), TopologyError> {
    let (dev, addr) = if host {
        (&s.uplink, s.uplink_address6)
    } else {
        (&s.internet_device, s.internet_address6)
    };
    if let Some(a) = addr {
        nl.add_address6(dev, a.addr, a.prefix_len)?;
    }
    Ok(())
}
