//! Resolution of `[host]`: root mode (an existing uplink in the namespace
//! netlab runs in) or the sandbox (two namespaces and a veth pair that
//! play the host and the internet).

use super::ipv6::{DEFAULT_INTERNET_ADDRESS6, DEFAULT_UPLINK_ADDRESS6, reserved6_problem};
use super::problems::Problems;
use super::schema::LabConfig;
use super::schema::{HostConfig, HostMode};
use crate::cidr::{Ipv4Cidr, Ipv6Cidr};
use crate::names;
use crate::plan::{HostPlan, SandboxPlan};

const DEFAULT_UPLINK: &str = "uplink";
/// Documentation addresses (RFC 5737): never a real network.
const DEFAULT_UPLINK_ADDRESS: &str = "203.0.113.1/24";
const DEFAULT_INTERNET_ADDRESS: &str = "203.0.113.2/24";

impl LabConfig {
    pub(super) fn resolve_host(
        &self,
        p: &mut Problems,
        lab: &str,
        subnet: Option<Ipv4Cidr>,
    ) -> Option<HostPlan> {
        let h = self.host.clone().unwrap_or_default();
        let uplink = h.uplink.clone().unwrap_or_else(|| DEFAULT_UPLINK.into());
        p.check("host.uplink", &uplink, names::interface_name_problem);
        match h.mode.unwrap_or_default() {
            HostMode::Root => Some(root(p, &h, uplink)),
            HostMode::Sandbox => {
                let mut s = sandbox(p, &h, lab, uplink, subnet)?;
                if self.wants_ipv6() {
                    (s.uplink_address6, s.internet_address6) = sandbox6(p, &h);
                } else {
                    no_ipv6(p, &h);
                }
                Some(HostPlan::Sandbox(s))
            }
        }
    }
}

/// Root mode: the uplink must be named; the sandbox's fields mean nothing.
fn root(p: &mut Problems, h: &HostConfig, uplink: String) -> HostPlan {
    for (field, value) in [
        ("host.namespace", &h.namespace),
        ("host.internet_namespace", &h.internet_namespace),
        ("host.uplink_address", &h.uplink_address),
        ("host.internet_address", &h.internet_address),
        ("host.uplink_address6", &h.uplink_address6),
        ("host.internet_address6", &h.internet_address6),
    ] {
        if let Some(v) = value {
            p.push(field, v, "only meaningful with host.mode = \"sandbox\"");
        }
    }
    if h.uplink.is_none() {
        p.push(
            "host.uplink",
            "",
            "root mode needs the name of an existing uplink device (e.g. eth0)",
        );
    }
    HostPlan::Root { uplink }
}

fn sandbox(
    p: &mut Problems,
    h: &HostConfig,
    lab: &str,
    uplink: String,
    subnet: Option<Ipv4Cidr>,
) -> Option<SandboxPlan> {
    let namespace = h
        .namespace
        .clone()
        .unwrap_or_else(|| names::sandbox_host_netns(lab));
    let internet_namespace = h
        .internet_namespace
        .clone()
        .unwrap_or_else(|| names::sandbox_internet_netns(lab));
    p.check("host.namespace", &namespace, names::netns_name_problem);
    p.check(
        "host.internet_namespace",
        &internet_namespace,
        names::netns_name_problem,
    );
    let ua_text = h
        .uplink_address
        .as_deref()
        .unwrap_or(DEFAULT_UPLINK_ADDRESS);
    let ia_text = h
        .internet_address
        .as_deref()
        .unwrap_or(DEFAULT_INTERNET_ADDRESS);
    let ua = p.parse_cidr("host.uplink_address", ua_text);
    let ia = p.parse_cidr("host.internet_address", ia_text);
    if let Some(ua) = ua {
        check_uplink_address(p, ua, ua_text, subnet);
    }
    if let (Some(ua), Some(ia)) = (ua, ia) {
        check_internet_address(p, ua, ia, ia_text);
    }
    Some(SandboxPlan {
        namespace,
        internet_namespace,
        uplink,
        uplink_address: ua?,
        internet_device: names::SANDBOX_INTERNET_DEVICE.into(),
        internet_address: ia?,
        uplink_address6: None,
        internet_address6: None,
    })
}

/// The host side of the sandbox uplink: a host address, off the lab subnet.
fn check_uplink_address(p: &mut Problems, ua: Ipv4Cidr, text: &str, subnet: Option<Ipv4Cidr>) {
    if ua.addr == ua.network() || ua.addr == ua.broadcast() || ua.prefix_len > 30 {
        p.push(
            "host.uplink_address",
            text,
            "needs a host address in a /30 or larger",
        );
    }
    if let Some(s) = subnet
        && ua.overlaps(&s)
    {
        p.push(
            "host.uplink_address",
            text,
            format!("overlaps the lab subnet {s}"),
        );
    }
}

/// The internet server: another host address on the uplink's subnet.
fn check_internet_address(p: &mut Problems, ua: Ipv4Cidr, ia: Ipv4Cidr, text: &str) {
    let why = if !ua.contains(ia.addr) || ua.prefix_len != ia.prefix_len {
        format!("must be on the uplink's subnet {}", ua.trunc())
    } else if ia.addr == ua.addr {
        "same address as host.uplink_address".into()
    } else if ia.addr == ia.network() || ia.addr == ia.broadcast() {
        "network or broadcast address".into()
    } else {
        return;
    };
    p.push("host.internet_address", text, why);
}

/// The sandbox uplink's IPv6 addresses (documentation space by default):
/// a host address of its prefix, and the internet server's on the same
/// prefix. (Its overlap with `subnet6` is reported on `subnet6`.)
fn sandbox6(p: &mut Problems, h: &HostConfig) -> (Option<Ipv6Cidr>, Option<Ipv6Cidr>) {
    let ua_text = h
        .uplink_address6
        .as_deref()
        .unwrap_or(DEFAULT_UPLINK_ADDRESS6);
    let ia_text = h
        .internet_address6
        .as_deref()
        .unwrap_or(DEFAULT_INTERNET_ADDRESS6);
    let ua = p.parse_cidr6("host.uplink_address6", ua_text);
    let ia = p.parse_cidr6("host.internet_address6", ia_text);
    if let Some(ua) = ua {
        let why = if ua.prefix_len > 126 {
            Some("needs a host address in a /126 or larger".to_string())
        } else if ua.addr == ua.network() {
            Some("the subnet-router anycast address; give a host address".into())
        } else {
            reserved6_problem(&ua.trunc())
        };
        if let Some(why) = why {
            p.push("host.uplink_address6", ua_text, why);
        }
    }
    if let (Some(ua), Some(ia)) = (ua, ia) {
        let why = if !ua.contains(ia.addr) || ua.prefix_len != ia.prefix_len {
            Some(format!("must be on the uplink's prefix {}", ua.trunc()))
        } else if ia.addr == ua.addr {
            Some("same address as host.uplink_address6".into())
        } else if ia.addr == ia.network() {
            Some("the subnet-router anycast address; give a host address".into())
        } else {
            None
        };
        if let Some(why) = why {
            p.push("host.internet_address6", ia_text, why);
        }
    }
    (ua, ia)
}

/// `subnet6 = "none"`: IPv6 addresses for the uplink mean nothing.
fn no_ipv6(p: &mut Problems, h: &HostConfig) {
    for (field, value) in [
        ("host.uplink_address6", &h.uplink_address6),
        ("host.internet_address6", &h.internet_address6),
    ] {
        if let Some(v) = value {
            p.push(field, v, "the lab has no IPv6 (subnet6 = \"none\")");
        }
    }
}
