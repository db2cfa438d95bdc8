//! Collecting validation problems: every check of the lab file reports
//! here, so `resolve` can name every problem at once.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::cidr::{Ipv4Cidr, Ipv6Cidr};
use crate::plan::Problem;

/// Collects problems while validating.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn push(
        &mut self,
        field: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) {
        self.0.push(Problem::new(field, value, reason));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reports `rule(value)`, if it finds something, on `field`.
    pub(super) fn check(
        &mut self,
        field: impl Into<String>,
        value: &str,
        rule: impl FnOnce(&str) -> Option<String>,
    ) {
        if let Some(why) = rule(value) {
            self.push(field, value, why);
        }
    }

    pub(super) fn parse_ip(&mut self, field: &str, value: &str) -> Option<Ipv4Addr> {
        match value.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.push(field, value, "not an IPv4 address (e.g. 192.168.28.1)");
                None
            }
        }
    }

    pub(super) fn parse_ip6(&mut self, field: &str, value: &str) -> Option<Ipv6Addr> {
        match value.parse::<Ipv6Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.push(
                    field,
                    value,
                    "not an IPv6 address (e.g. fd00:192:168:28::1)",
                );
                None
            }
        }
    }

    pub(super) fn parse_cidr6(&mut self, field: &str, value: &str) -> Option<Ipv6Cidr> {
        match value.parse::<Ipv6Cidr>() {
            Ok(c) => Some(c),
            Err(e) => {
                self.push(field, value, e);
                None
            }
        }
    }

    pub(super) fn parse_cidr(&mut self, field: &str, value: &str) -> Option<Ipv4Cidr> {
        match value.parse::<Ipv4Cidr>() {
            Ok(c) => Some(c),
            Err(e) => {
                self.push(field, value, e);
                None
            }
        }
    }
}

/// Checks a lab address: inside the subnet, not its network or broadcast.
pub(super) fn lab_address_problem(subnet: &Ipv4Cidr, ip: Ipv4Addr) -> Option<String> {
    if !subnet.contains(ip) {
        Some(format!("outside the lab subnet {subnet}"))
    } else if ip == subnet.network() {
        Some(format!("{ip} is the network address of {subnet}"))
    } else if ip == subnet.broadcast() {
        Some(format!("{ip} is the broadcast address of {subnet}"))
    } else {
        None
    }
}

/// Names that must be unique across the lab: namespace names, and
/// interface names on the host side. Each remembers the field that
/// claimed it first, so a duplicate names both.
#[derive(Default)]
pub(super) struct UniqueNames {
    namespaces: HashMap<String, String>,
    host_interfaces: HashMap<String, String>,
}

impl UniqueNames {
    pub(super) fn namespace(&mut self, p: &mut Problems, field: String, name: &str) {
        claim(&mut self.namespaces, p, field, name, "namespace name");
    }

    pub(super) fn host_interface(&mut self, p: &mut Problems, field: String, name: &str) {
        claim(
            &mut self.host_interfaces,
            p,
            field,
            name,
            "host-side interface name",
        );
    }
}

fn claim(
    map: &mut HashMap<String, String>,
    p: &mut Problems,
    field: String,
    value: &str,
    what: &str,
) {
    if let Some(first) = map.get(value) {
        p.push(
            field,
            value,
            format!("duplicate {what}: also used by {first}"),
        );
    } else {
        map.insert(value.to_string(), field);
    }
}
