//! The plan checked before anything touches the kernel, with the rules of
//! `crate::names`: the lab name, the ports (names, MACs, addresses, one
//! gateway), the calling thread's namespace.

use std::{collections::BTreeSet, net::Ipv6Addr, os::unix::fs::MetadataExt, path::PathBuf};

use netlab_common::maps::MAX_PORTS;

use crate::bpf::{Error, Result, fs};
use crate::names::{format_mac, interface_name_problem, is_unicast_mac, lab_name_problem};
use crate::plan::{PortPlan, PortRole};

pub(super) fn installed_dir(lab: &str) -> Result<PathBuf> {
    let dir = fs::lab_dir(lab);
    if fs::prog_pin(&dir).exists() {
        Ok(dir)
    } else {
        Err(Error::NotInstalled {
            lab: lab.to_owned(),
            path: dir,
        })
    }
}

/// The lab name rule of `crate::names` (it becomes the pin directory).
pub(super) fn validate_lab(lab: &str) -> Result<()> {
    match lab_name_problem(lab) {
        None => Ok(()),
        Some(why) => Err(Error::InvalidPlan(format!("lab name {lab:?}: {why}"))),
    }
}

/// The interface name rule of `crate::names`.
fn validate_ifname(what: &str, name: &str) -> Result<()> {
    match interface_name_problem(name) {
        None => Ok(()),
        Some(why) => Err(Error::InvalidPlan(format!(
            "{what} {name:?} is not a valid interface name: {why}"
        ))),
    }
}

/// The ports are a switch's: each valid on its own ([`validate_port`]),
/// no device, MAC or address twice, at most one gateway, at most
/// `MAX_PORTS`.
pub(super) fn validate_ports(ports: &[PortPlan]) -> Result<()> {
    let invalid = |msg: String| Err(Error::InvalidPlan(msg));
    if ports.len() > MAX_PORTS as usize {
        return invalid(format!("{} ports; at most {MAX_PORTS}", ports.len()));
    }
    let mut devs = BTreeSet::new();
    let mut macs = BTreeSet::new();
    let mut ips = BTreeSet::new();
    let mut ips6 = BTreeSet::new();
    for port in ports {
        validate_port(port)?;
        if !devs.insert(port.port_dev.as_str()) {
            return invalid(format!("port device {} listed twice", port.port_dev));
        }
        if !macs.insert(port.mac) {
            return invalid(format!("MAC {} used by two ports", format_mac(&port.mac)));
        }
        if !ips.insert(port.ipv4) {
            return invalid(format!("address {} used by two ports", port.ipv4));
        }
        if let Some(v6) = port.ipv6
            && !ips6.insert(v6)
        {
            return invalid(format!("IPv6 address {v6} used by two ports"));
        }
    }
    let gateways = ports.iter().filter(|p| p.role == PortRole::Gateway).count();
    if gateways > 1 {
        return invalid(format!("{gateways} gateway ports; at most one"));
    }
    Ok(())
}

/// One port: a valid device name, a unicast MAC, a host address, and a
/// delivery device exactly when it is the gateway port.
fn validate_port(port: &PortPlan) -> Result<()> {
    let invalid = |msg: String| Err(Error::InvalidPlan(msg));
    let dev = &port.port_dev;
    validate_ifname("port device", dev)?;
    if !is_unicast_mac(&port.mac) {
        let mac = format_mac(&port.mac);
        return invalid(format!("port {dev}: MAC {mac} is not a unicast address"));
    }
    let ip = port.ipv4;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return invalid(format!("port {dev}: {ip} is not a host address"));
    }
    if let Some(v6) = port.ipv6
        && let Some(why) = ipv6_problem(v6)
    {
        return invalid(format!("port {dev}: IPv6 address {v6} {why}"));
    }
    match (port.role, &port.deliver_dev) {
        (PortRole::Gateway, Some(deliver)) => {
            validate_ifname("gateway device", deliver)?;
            if deliver == dev {
                return invalid(format!(
                    "gateway port {dev}: the delivery device must be the other end (vbridge)"
                ));
            }
            Ok(())
        }
        (PortRole::Gateway, None) => invalid(format!(
            "gateway port {dev}: no delivery device (vbridge) given"
        )),
        (PortRole::Endpoint, Some(deliver)) => invalid(format!(
            "endpoint port {dev}: a delivery device ({deliver}) is only for the gateway"
        )),
        (PortRole::Endpoint, None) => Ok(()),
    }
}

/// Why `ip` cannot be a port's global IPv6 address (its link-local one
/// is derived from the MAC), or `None`.
fn ipv6_problem(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() || ip.is_loopback() {
        Some("is not a host address")
    } else if ip.is_multicast() {
        Some("is a multicast address")
    } else if ip.is_unicast_link_local() {
        Some("is link-local (the port's link-local address comes from its MAC)")
    } else if ip.to_ipv4_mapped().is_some() {
        Some("is an IPv4-mapped address")
    } else {
        None
    }
}

/// Refuses to run from the wrong network namespace: ifindexes and tcx
/// attachments would silently refer to other devices. `None` (root mode)
/// is the namespace of the netlab process itself, the one it was started
/// in or entered at start (crate::hostns), whatever PID 1's is.
pub(super) fn check_namespace(expected: Option<&str>) -> Result<()> {
    let (path, name) = match expected {
        Some(ns) => (crate::netns::path(ns), ns.to_owned()),
        None => (
            PathBuf::from("/proc/self/ns/net"),
            "the netlab process's own namespace (mode = \"root\")".to_owned(),
        ),
    };
    let wrong = || Error::WrongNamespace {
        expected: name.clone(),
    };
    let target = std::fs::metadata(&path).map_err(|_| wrong())?;
    let current = std::fs::metadata(crate::netns::THREAD_NETNS).map_err(|_| wrong())?;
    if (target.dev(), target.ino()) == (current.dev(), current.ino()) {
        Ok(())
    } else {
        Err(wrong())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn port(dev: &str, role: PortRole, mac_last: u8, ip_last: u8) -> PortPlan {
        PortPlan {
            port_dev: dev.to_owned(),
            role,
            mac: [0x02, 0, 0, 0, 0, mac_last],
            ipv4: Ipv4Addr::new(10, 0, 0, ip_last),
            ipv6: None,
            namespace: None,
            deliver_dev: (role == PortRole::Gateway).then(|| "vbridge".to_owned()),
            peer_dev: None,
        }
    }

    #[test]
    fn plans_are_validated() {
        let ok = [
            port("veth-1-br", PortRole::Endpoint, 1, 1),
            port("vbridge-p", PortRole::Gateway, 5, 5),
        ];
        validate_ports(&ok).unwrap();

        let dup_ip = [
            port("a", PortRole::Endpoint, 1, 1),
            port("b", PortRole::Endpoint, 2, 1),
        ];
        assert!(validate_ports(&dup_ip).is_err());
        let dup_mac = [
            port("a", PortRole::Endpoint, 1, 1),
            port("b", PortRole::Endpoint, 1, 2),
        ];
        assert!(validate_ports(&dup_mac).is_err());
        let two_gw = [
            port("a", PortRole::Gateway, 1, 1),
            port("b", PortRole::Gateway, 2, 2),
        ];
        assert!(validate_ports(&two_gw).is_err());
        let mut long = port("a-very-long-device-name", PortRole::Endpoint, 1, 1);
        assert!(validate_ports(std::slice::from_ref(&long)).is_err());
        long.port_dev = "ok".into();
        long.mac = [0xff; 6];
        assert!(validate_ports(std::slice::from_ref(&long)).is_err());
        let mut gw = port("g", PortRole::Gateway, 1, 1);
        gw.deliver_dev = None;
        assert!(validate_ports(&[gw]).is_err());

        let mut v6 = [
            port("a", PortRole::Endpoint, 1, 1),
            port("b", PortRole::Endpoint, 2, 2),
        ];
        v6[0].ipv6 = Some("fd00:10:0:0::1".parse().unwrap());
        validate_ports(&v6).unwrap();
        v6[1].ipv6 = v6[0].ipv6;
        let e = validate_ports(&v6).unwrap_err().to_string();
        assert!(
            e.contains("IPv6 address fd00:10::1 used by two ports"),
            "{e}"
        );
        for bad in ["::", "::1", "ff02::1", "fe80::1", "::ffff:10.0.0.1"] {
            v6[1].ipv6 = Some(bad.parse().unwrap());
            let e = validate_ports(&v6).unwrap_err().to_string();
            assert!(e.contains(&format!("port b: IPv6 address {bad}")), "{e}");
        }

        assert!(validate_lab("netlab").is_ok());
        assert!(validate_lab("../etc").is_err());
        assert!(validate_lab("").is_err());
        // The lab file's limit, not a looser one of the datapath's own.
        let longest = "a".repeat(crate::names::MAX_LAB_NAME_LEN);
        assert!(validate_lab(&longest).is_ok());
        assert!(validate_lab(&format!("{longest}a")).is_err());
    }
}
