//! A published-port spec, as `docker run -p` writes it, and the
//! [`Publication`] of one for a namespace:
//! `[HOST_ADDRESS:]HOST_PORT[-LAST]:PORT[-LAST][/tcp|/udp]`.
//!
//! `8080:80` (tcp by default), `5353:53/udp`, `127.0.0.1:9000:9000`,
//! `[2001:db8:203:113::1]:8080:80` (an IPv6 host address in brackets, as
//! Docker writes it), `8000-8009:8000-8009`. A range maps port for port,
//! so both sides must have the same length. Docker's `-p 80` (a random
//! host port) is not supported: a published port is something a user
//! types into a client.
//!
//! Without a host address (or with `0.0.0.0` or `[::]`, which mean the
//! same here) the port is published on every address of the host side,
//! IPv4 and IPv6 alike, as Docker does with ip6tables on; an IPv4 or IPv6
//! host address publishes on that one address, so in that family only.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The transport protocol of a publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(format!("protocol {other:?} is not tcp or udp")),
        }
    }
}

/// An inclusive port range; a single port is `first == last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub const fn single(port: u16) -> Self {
        Self {
            first: port,
            last: port,
        }
    }

    /// Number of ports in the range.
    pub const fn len(&self) -> u32 {
        self.last as u32 - self.first as u32 + 1
    }

    /// Never empty: the parser refuses reversed ranges. (For clippy.)
    pub const fn is_empty(&self) -> bool {
        false
    }

    pub const fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.first..=self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One published port (or range): what `-p` says.
///
/// This is the library's stable input type (the CNI plugin builds it from
/// `portMappings`): construct it directly or parse it from text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortSpec {
    /// The host address the port is published on; `None`: every address
    /// of the host side, IPv4 and IPv6 (Docker's 0.0.0.0 with ip6tables
    /// on).
    pub host_address: Option<IpAddr>,
    pub host_ports: PortRange,
    /// The port inside the namespace, same length as `host_ports`.
    pub ports: PortRange,
    pub protocol: Protocol,
}

impl PortSpec {
    /// `host_port` on every host address to `port` in the namespace.
    pub const fn new(host_port: u16, port: u16, protocol: Protocol) -> Self {
        Self {
            host_address: None,
            host_ports: PortRange::single(host_port),
            ports: PortRange::single(port),
            protocol,
        }
    }

    /// Whether both specs could receive the same packet: same protocol,
    /// overlapping host ports, and host addresses that overlap (equal, or
    /// one of them is every address).
    pub fn collides_with(&self, other: &PortSpec) -> bool {
        self.protocol == other.protocol
            && self.host_ports.overlaps(&other.host_ports)
            && match (self.host_address, other.host_address) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// (host port, namespace port) pairs, port for port.
    pub fn pairs(&self) -> impl Iterator<Item = (u16, u16)> {
        self.host_ports.ports().zip(self.ports.ports())
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_address {
            Some(IpAddr::V4(a)) => write!(f, "{a}:")?,
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            None => {}
        }
        write!(f, "{}:{}/{}", self.host_ports, self.ports, self.protocol)
    }
}

fn parse_port(text: &str, side: &str) -> Result<u16, String> {
    let n: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{side} port {text:?} is not a number"))?;
    if n == 0 {
        return Err(format!("{side} port 0 cannot be published"));
    }
    if n > 65535 {
        return Err(format!("{side} port {n} is above 65535"));
    }
    Ok(n as u16)
}

fn parse_range(text: &str, side: &str) -> Result<PortRange, String> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (first, last) = (parse_port(a, side)?, parse_port(b, side)?);
            if first > last {
                return Err(format!("{side} port range {text} is reversed"));
            }
            Ok(PortRange { first, last })
        }
        None => parse_port(text, side).map(PortRange::single),
    }
}

/// Splits a leading host address off `body`: `[IPv6]:rest` (Docker's
/// bracket syntax) or `IPv4:HOST:PORT`. The unspecified addresses
/// (`0.0.0.0`, `[::]`) mean every address (None).
fn split_host_address(body: &str) -> Result<(Option<IpAddr>, Vec<&str>), String> {
    let (address, rest) = if let Some(bracketed) = body.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("host address [{bracketed} has no closing ]"))?;
        let rest = after.strip_prefix(':').ok_or_else(|| {
            format!("host address [{inside}] must be followed by :HOST_PORT:PORT")
        })?;
        let addr: std::net::Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("host address [{inside}] is not an IPv6 address"))?;
        (Some(IpAddr::V6(addr)), rest.split(':').collect::<Vec<_>>())
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.as_slice() {
            [addr, host, inner] => {
                let addr: Ipv4Addr = addr.parse().map_err(|_| {
                    format!(
                        "host address {addr:?} is not an IPv4 address (an IPv6 one goes in brackets: [2001:db8::1]:8080:80)"
                    )
                })?;
                (Some(IpAddr::V4(addr)), vec![*host, *inner])
            }
            _ if parts.len() > 3 => {
                return Err(
                    "expected [HOST_ADDRESS:]HOST_PORT:PORT[/tcp|/udp] (an IPv6 host address goes in brackets: [2001:db8::1]:8080:80)"
                        .into(),
                );
            }
            _ => (None, parts),
        }
    };
    Ok((address.filter(|a| !a.is_unspecified()), rest))
}

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (body, protocol) = match text.rsplit_once('/') {
            Some((body, proto)) => (body, proto.parse()?),
            None => (text, Protocol::Tcp),
        };
        let (host_address, parts) = split_host_address(body)?;
        let (host, inner) = match parts.as_slice() {
            [host, inner] => (*host, *inner),
            [_] => {
                return Err(
                    "expected HOST_PORT:PORT (publishing on a random host port is not supported)"
                        .into(),
                );
            }
            _ => return Err("expected [HOST_ADDRESS:]HOST_PORT:PORT[/tcp|/udp]".into()),
        };
        let host_ports = parse_range(host, "host")?;
        let ports = parse_range(inner, "namespace")?;
        if host_ports.len() != ports.len() {
            return Err(format!(
                "the host range {host_ports} has {} ports and the namespace range {ports} has {}; they must be the same length",
                host_ports.len(),
                ports.len()
            ));
        }
        Ok(PortSpec {
            host_address,
            host_ports,
            ports,
            protocol,
        })
    }
}

impl TryFrom<String> for PortSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PortSpec> for String {
    fn from(s: PortSpec) -> String {
        s.to_string()
    }
}

/// One spec published for one namespace: what the lab's state records.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Publication {
    pub namespace: String,
    pub spec: PortSpec,
}

impl fmt::Display for Publication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.namespace, self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_docker_accepts() {
        let s: PortSpec = "8080:80".parse().unwrap();
        assert_eq!(s, PortSpec::new(8080, 80, Protocol::Tcp));
        let s: PortSpec = "5353:53/udp".parse().unwrap();
        assert_eq!(s, PortSpec::new(5353, 53, Protocol::Udp));
        let s: PortSpec = "127.0.0.1:9000:9000".parse().unwrap();
        assert_eq!(s.host_address, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let s: PortSpec = "0.0.0.0:9000:9000/TCP".parse().unwrap();
        assert_eq!(s.host_address, None);
        let s: PortSpec = "[::]:9000:9000".parse().unwrap();
        assert_eq!(s.host_address, None);
        let s: PortSpec = "[2001:db8:203:113::1]:8080:80/udp".parse().unwrap();
        assert_eq!(s.host_address, Some("2001:db8:203:113::1".parse().unwrap()));
        assert_eq!(s.protocol, Protocol::Udp);
        let s: PortSpec = "8000-8009:9000-9009".parse().unwrap();
        assert_eq!(s.pairs().count(), 10);
        assert_eq!(s.pairs().last(), Some((8009, 9009)));
        assert_eq!(s.to_string(), "8000-8009:9000-9009/tcp");
        for text in [
            "8080:80/tcp",
            "127.0.0.1:1-2:3-4/udp",
            "[2001:db8::1]:8080:80/tcp",
            "[::1]:1-2:3-4/udp",
        ] {
            assert_eq!(text.parse::<PortSpec>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_with_a_reason() {
        for (text, why) in [
            ("80", "random host port"),
            ("0:80", "port 0"),
            ("8080:0", "port 0"),
            ("70000:80", "above 65535"),
            ("8080:80/sctp", "not tcp or udp"),
            ("8000-8009:80", "same length"),
            ("8009-8000:80-89", "reversed"),
            ("1.2.3:80:80", "not an IPv4"),
            ("a:b", "not a number"),
            ("1:2:3:4", "expected"),
            ("2001:db8::1:8080:80", "brackets"),
            ("[2001:db8::1:8080:80", "no closing ]"),
            ("[2001:db8::1]8080:80", "must be followed by :HOST_PORT"),
            ("[192.0.2.1]:8080:80", "not an IPv6 address"),
            ("[2001:db8::1]:80", "random host port"),
        ] {
            let e = text.parse::<PortSpec>().unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn collisions() {
        let a: PortSpec = "8080:80".parse().unwrap();
        let b: PortSpec = "127.0.0.1:8080:81".parse().unwrap();
        let c: PortSpec = "8080:80/udp".parse().unwrap();
        let d: PortSpec = "8000-8080:8000-8080".parse().unwrap();
        let e: PortSpec = "10.0.0.1:8080:80".parse().unwrap();
        assert!(a.collides_with(&b) && b.collides_with(&a));
        assert!(!a.collides_with(&c));
        assert!(a.collides_with(&d));
        assert!(!b.collides_with(&e));
        let f: PortSpec = "[::1]:8080:80".parse().unwrap();
        assert!(a.collides_with(&f) && !b.collides_with(&f));
    }
}
