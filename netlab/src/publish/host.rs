//! What the running host side says about publications: the addresses it
//! has, the ports its sockets already use, and the port reservation
//! (`net.ipv4.ip_local_reserved_ports`) that keeps its sockets off the
//! published ports afterwards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::netns::{self, NetnsError};
use crate::plan::{LabPlan, PortRange, Problem, Publication};
use crate::procnet;

/// A socket of the host side holding a local port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsedPort {
    pub protocol: u8,
    /// 0.0.0.0 or :: for a wildcard bind.
    pub address: IpAddr,
    pub port: u16,
}

impl UsedPort {
    /// Whether this socket holds the port on `host_address` (None: every
    /// address). A wildcard IPv6 socket is dual-stack unless it says
    /// otherwise (IPV6_V6ONLY, which the tables do not show), so it holds
    /// the port on every address of both families.
    fn holds(&self, host_address: Option<IpAddr>) -> bool {
        match (self.address, host_address) {
            (IpAddr::V6(a), _) if a.is_unspecified() => true,
            (IpAddr::V4(a), None | Some(IpAddr::V4(_))) if a.is_unspecified() => true,
            (_, None) => true,
            (a, Some(b)) => a == b,
        }
    }
}

/// The host side as it is now.
#[derive(Clone, Debug, Default)]
pub struct HostFacts {
    /// IPv4 and IPv6.
    pub addresses: Vec<IpAddr>,
    /// TCP sockets in LISTEN, and every bound UDP socket.
    pub used: Vec<UsedPort>,
}

/// The sockets of one /proc/net table holding a local port: TCP in
/// LISTEN (`listen_only`), or every bound UDP socket.
fn used_ports(text: &str, protocol: u8, listen_only: bool) -> Vec<UsedPort> {
    procnet::parse(text)
        .filter(|s| !listen_only || s.state == procnet::TCP_LISTEN)
        .filter_map(|s| {
            Some(UsedPort {
                protocol,
                address: s.address?,
                port: s.port,
            })
        })
        .collect()
}

/// Reads the facts in the calling thread's namespace. /proc/thread-self
/// (not /proc/self, which follows the thread group leader) shows the
/// sockets of the namespace this thread entered.
fn read_here() -> std::io::Result<HostFacts> {
    let addresses = nix::ifaddrs::getifaddrs()
        .map_err(std::io::Error::from)?
        .filter_map(|a| {
            let a = a.address?;
            a.as_sockaddr_in()
                .map(|s| IpAddr::V4(s.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
        })
        .collect();
    let mut used = Vec::new();
    for (table, protocol) in [("tcp", 6), ("udp", 17), ("tcp6", 6), ("udp6", 17)] {
        // The IPv6 tables are absent when the kernel has no IPv6.
        let Ok(text) = std::fs::read_to_string(format!("/proc/thread-self/net/{table}")) else {
            continue;
        };
        used.extend(used_ports(&text, protocol, protocol == 6));
    }
    Ok(HostFacts { addresses, used })
}

/// Reads the host side's facts (None: the root namespace).
pub fn read(host_netns: Option<&str>) -> Result<HostFacts, NetnsError> {
    netns::run_in(host_netns, read_here)?.map_err(|source| NetnsError::Io {
        context: "cannot read the host side's addresses and sockets".into(),
        source,
    })
}

/// Problems of `new` against the running host: a host address it does not
/// have, a host port one of its sockets already uses (a listener on that
/// address or on every address). Ports already published by the lab are
/// netlab's, not the host's, and are skipped.
pub fn check(
    plan: &LabPlan,
    facts: &HostFacts,
    existing: &[Publication],
    new: &[(String, Publication)],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut known = facts.addresses.clone();
    known.push(Ipv4Addr::LOCALHOST.into());
    known.push(Ipv6Addr::LOCALHOST.into());
    if let Some(s) = plan.sandbox() {
        known.push(s.uplink_address.addr.into());
        known.extend(s.uplink_address6.map(|c| IpAddr::V6(c.addr)));
    }
    for (field, p) in new {
        let value = p.spec.to_string();
        if let Some(addr) = p.spec.host_address
            && !known.contains(&addr)
        {
            problems.push(Problem::new(
                field,
                &value,
                format!("host address {addr} is not an address of the host side"),
            ));
        }
        let ours = |u: &UsedPort| {
            existing.iter().any(|q| {
                q.spec.protocol.number() == u.protocol
                    && q.spec.host_ports.ports().any(|x| x == u.port)
            })
        };
        let taken = facts.used.iter().find(|u| {
            u.protocol == p.spec.protocol.number()
                && p.spec.host_ports.ports().any(|x| x == u.port)
                && u.holds(p.spec.host_address)
                && !ours(u)
        });
        if let Some(u) = taken {
            problems.push(Problem::new(
                field,
                &value,
                format!(
                    "the host side already listens on {}/{}",
                    std::net::SocketAddr::new(u.address, u.port),
                    if u.protocol == 6 { "tcp" } else { "udp" }
                ),
            ));
        }
    }
    problems
}

/// `net.ipv4.ip_local_reserved_ports`.
pub const RESERVED_PORTS_KEY: &str = "net.ipv4.ip_local_reserved_ports";

/// The ranges of a reservation list as the kernel prints it (`22,8000-8080`).
fn reserved_ranges(list: &str) -> impl Iterator<Item = PortRange> + '_ {
    list.split(',').filter_map(|item| {
        let item = item.trim();
        let (first, last) = item.split_once('-').unwrap_or((item, item));
        Some(PortRange {
            first: first.trim().parse().ok()?,
            last: last.trim().parse().ok()?,
        })
    })
}

/// Whether reservation list `list` already holds every port of `range`
/// within one of its ranges.
pub fn reserves(list: &str, range: PortRange) -> bool {
    reserved_ranges(list).any(|r| r.first <= range.first && range.last <= r.last)
}

/// The reservation a lab wants, the one rule for `up` (the NAT range) and
/// for publishing (the NAT range and the published ports): the value it
/// found (`original`, kept as it is: the host's own settings are not ours
/// to drop), then the NAT's range (eBPF datapath) and every published host
/// port, so no host socket can take a NAT or published port (a published
/// one would shadow the publication, or be shadowed). A range already held
/// by one range of the list is not added again, so a value that reserves
/// everything comes back unchanged (and `up` then neither writes nor
/// records it).
pub fn reserved_ports(
    original: &str,
    nat: Option<(u16, u16)>,
    publications: &[Publication],
) -> String {
    let mut items: Vec<String> = original
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut ports: Vec<_> = publications.iter().map(|p| p.spec.host_ports).collect();
    ports.sort();
    let nat = nat.map(|(first, last)| PortRange { first, last });
    for range in nat.into_iter().chain(ports) {
        if !reserves(&items.join(","), range) {
            items.push(range.to_string());
        }
    }
    items.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_ports_are_tcp_listeners_and_bound_udp() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n";
        let used = used_ports(tcp, 6, true);
        assert_eq!(
            used,
            vec![UsedPort {
                protocol: 6,
                address: Ipv4Addr::LOCALHOST.into(),
                port: 8080
            }]
        );
        assert_eq!(used_ports(tcp, 17, false).len(), 2);
    }

    #[test]
    fn which_sockets_hold_a_published_port() {
        let used = |a: &str| UsedPort {
            protocol: 6,
            address: a.parse().unwrap(),
            port: 8080,
        };
        let at = |a: &str| Some(a.parse::<IpAddr>().unwrap());
        assert!(used("::").holds(at("203.0.113.1")), "dual-stack wildcard");
        assert!(used("0.0.0.0").holds(None));
        assert!(!used("0.0.0.0").holds(at("2001:db8::1")));
        assert!(used("2001:db8::1").holds(None));
        assert!(used("2001:db8::1").holds(at("2001:db8::1")));
        assert!(!used("2001:db8::1").holds(at("2001:db8::2")));
        assert!(!used("127.0.0.1").holds(at("::1")));
    }

    #[test]
    fn reservation_keeps_the_original_and_adds_ports() {
        let p = |s: &str| Publication {
            namespace: "ns1".into(),
            spec: s.parse().unwrap(),
        };
        assert_eq!(
            reserved_ports(
                "22",
                Some((20000, 29999)),
                &[p("8080:80"), p("8000-8009:80-89")]
            ),
            "22,20000-29999,8000-8009,8080"
        );
        assert_eq!(reserved_ports("", None, &[]), "");
        assert_eq!(
            reserved_ports("", None, &[p("8080:80"), p("8080:80/udp")]),
            "8080"
        );
    }

    #[test]
    fn a_range_already_reserved_is_not_added_again() {
        let nat = Some((40000, 40999));
        assert_eq!(reserved_ports("", nat, &[]), "40000-40999");
        assert_eq!(
            reserved_ports("22,8000-8080", nat, &[]),
            "22,8000-8080,40000-40999"
        );
        assert_eq!(reserved_ports("40000-40999", nat, &[]), "40000-40999");
        assert_eq!(reserved_ports("30000-50000", nat, &[]), "30000-50000");
        assert_eq!(
            reserved_ports("40000-40500", nat, &[]),
            "40000-40500,40000-40999"
        );
        let range = |first, last| PortRange { first, last };
        assert!(reserves("22, 30000-50000", range(40000, 40999)));
        assert!(!reserves("40000-40500", range(40000, 40999)));
        assert!(!reserves("", range(22, 22)));
    }
}
