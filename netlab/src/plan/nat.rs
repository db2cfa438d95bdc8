//! The source NAT as planned: the lab file's `[nat]` settings, the plan
//! the NAT control consumes, and the rules both are checked against (the
//! lab file's validation and the NAT's own refusal of a bad plan ask the
//! same functions).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::problem::Problem;
use crate::cidr::{Ipv4Cidr, Ipv6Cidr};

/// Per-protocol NAT timeouts in seconds (defaults follow the kernel's
/// conntrack: nf_conntrack_tcp_timeout_established etc.).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatTimeouts {
    pub tcp_established: u64,
    pub tcp_closing: u64,
    pub tcp_syn: u64,
    pub udp: u64,
    pub icmp: u64,
}

impl Default for NatTimeouts {
    fn default() -> Self {
        Self {
            tcp_established: 432_000,
            tcp_closing: 120,
            tcp_syn: 120,
            udp: 30,
            icmp: 30,
        }
    }
}

impl NatTimeouts {
    /// Each timeout with its lab-file field.
    pub fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("nat.tcp_established_timeout", self.tcp_established),
            ("nat.tcp_closing_timeout", self.tcp_closing),
            ("nat.tcp_syn_timeout", self.tcp_syn),
            ("nat.udp_timeout", self.udp),
            ("nat.icmp_timeout", self.icmp),
        ]
    }
}

/// The lab file's `[nat]`, resolved: what the lab's state records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSettings {
    pub port_min: u16,
    pub port_max: u16,
    pub max_entries: u32,
    pub timeouts: NatTimeouts,
}

impl Default for NatSettings {
    fn default() -> Self {
        Self {
            port_min: 20000,
            port_max: 29999,
            max_entries: 65536,
            timeouts: NatTimeouts::default(),
        }
    }
}

impl NatSettings {
    /// Every rule of [`nat_port_problem`], [`nat_range_problem`],
    /// [`nat_entries_problem`] and [`nat_timeout_problem`] this breaks,
    /// each naming its lab-file field.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (field, port) in [
            ("nat.port_min", self.port_min),
            ("nat.port_max", self.port_max),
        ] {
            if let Some(why) = nat_port_problem(port.into()) {
                out.push(Problem::new(field, port, why));
            }
        }
        if let Some(why) = nat_range_problem(self.port_min.into(), self.port_max.into()) {
            out.push(Problem::new("nat.port_max", self.port_max, why));
        }
        if let Some(why) = nat_entries_problem(self.max_entries) {
            out.push(Problem::new("nat.max_entries", self.max_entries, why));
        }
        for (field, secs) in self.timeouts.fields() {
            if let Some(why) = nat_timeout_problem(secs) {
                out.push(Problem::new(field, secs, why));
            }
        }
        out
    }
}

/// The lowest port the NAT hands out: below it are the privileged ports.
pub const NAT_PORT_FLOOR: u32 = 1024;

/// A NAT port bound (`nat.port_min`, `nat.port_max`), taken wider than u16
/// so an out-of-range value in the lab file is named, not truncated.
pub fn nat_port_problem(port: u32) -> Option<&'static str> {
    if port > u32::from(u16::MAX) {
        Some("ports are at most 65535")
    } else if port < NAT_PORT_FLOOR {
        Some("below 1024: privileged ports are not handed out by the NAT")
    } else {
        None
    }
}

/// The NAT's port range must hold at least one port.
pub fn nat_range_problem(port_min: u32, port_max: u32) -> Option<String> {
    (port_min > port_max)
        .then(|| format!("the range is reversed/empty: nat.port_min is {port_min}"))
}

/// The NAT maps need room for at least one translation.
pub fn nat_entries_problem(max_entries: u32) -> Option<&'static str> {
    (max_entries == 0).then_some("must be at least 1")
}

/// A timeout of 0 would expire every translation at once.
pub fn nat_timeout_problem(secs: u64) -> Option<&'static str> {
    (secs == 0).then_some("a timeout of 0 seconds would expire entries at once")
}

/// The source NAT on the uplink, as the NAT control consumes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatPlan {
    /// The uplink device in the host-side namespace (TC egress + ingress).
    pub uplink_dev: String,
    /// Masqueraded subnet.
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    /// Source ports / ICMP ids handed out, inclusive.
    pub port_min: u16,
    pub port_max: u16,
    /// Entries in each NAT map.
    pub max_entries: u32,
    pub timeouts: NatTimeouts,
    /// The IPv6 prefix NAT66 masquerades (same ports and timeouts); None:
    /// no IPv6 in the lab. The external IPv6 address is the uplink's,
    /// read at install.
    #[serde(default)]
    pub subnet6: Option<Ipv6Cidr>,
}

impl NatPlan {
    /// The masqueraded subnet (host bits cleared); None when the prefix
    /// length is above 32.
    pub fn masqueraded(&self) -> Option<Ipv4Cidr> {
        Ipv4Cidr::new(self.subnet, self.prefix_len).map(|c| c.trunc())
    }

    /// The settings part of the plan.
    pub fn settings(&self) -> NatSettings {
        NatSettings {
            port_min: self.port_min,
            port_max: self.port_max,
            max_entries: self.max_entries,
            timeouts: self.timeouts,
        }
    }

    /// Why the NAT must refuse this plan, if it must: the lab file's rules
    /// ([`NatSettings::problems`]) and a prefix length that exists.
    pub fn problem(&self) -> Option<String> {
        let mut problems: Vec<String> = self
            .settings()
            .problems()
            .iter()
            .map(Problem::to_string)
            .collect();
        if self.masqueraded().is_none() {
            problems.push(format!("prefix length {} is above 32", self.prefix_len));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// A valid plan for unit tests: 192.168.28.77/24 (host bits set, so
/// masking shows), ports 40000-40999, 1024 entries.
#[cfg(test)]
impl NatPlan {
    pub(crate) fn example() -> NatPlan {
        NatPlan {
            uplink_dev: "uplink".into(),
            subnet: Ipv4Addr::new(192, 168, 28, 77),
            prefix_len: 24,
            port_min: 40000,
            port_max: 40999,
            max_entries: 1024,
            timeouts: NatTimeouts::default(),
            subnet6: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_the_lab_file_and_the_nat() {
        assert_eq!(NatPlan::example().problem(), None);
        assert_eq!(
            NatPlan::example().masqueraded().unwrap().to_string(),
            "192.168.28.0/24"
        );
        for bad in [
            NatPlan {
                port_min: 50000,
                ..NatPlan::example()
            },
            NatPlan {
                port_min: 0,
                ..NatPlan::example()
            },
            NatPlan {
                prefix_len: 33,
                ..NatPlan::example()
            },
            NatPlan {
                max_entries: 0,
                ..NatPlan::example()
            },
        ] {
            assert!(bad.problem().is_some(), "{bad:?}");
        }
        let reversed = NatSettings {
            port_min: 30000,
            port_max: 20000,
            ..NatSettings::default()
        };
        let problems = reversed.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "nat.port_max");
        assert!(NatSettings::default().problems().is_empty());
    }
}
