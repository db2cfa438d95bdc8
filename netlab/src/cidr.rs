//! IPv4 and IPv6 prefixes (`192.168.28.0/24`, `203.0.113.1/24`,
//! `fd00:192:168:28::/64`): just what the lab needs. Hand-written rather than `ipnet`: it is not otherwise a
//! dependency, its parse errors are part of the lab file's messages (they
//! name the value and show an example), and the whole type is a few
//! dozen lines. Every subnet mask in the crate is [`Ipv4Cidr::mask`].

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 address with a prefix length. The address may have host bits set
/// (an interface address such as `203.0.113.1/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= 32).then_some(Self { addr, prefix_len })
    }

    /// The netmask as a host-order u32 (`/24`: 0xffffff00).
    pub fn mask(&self) -> u32 {
        if self.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix_len)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// The same prefix with the host bits cleared.
    pub fn trunc(&self) -> Self {
        Self {
            addr: self.network(),
            prefix_len: self.prefix_len,
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// True when the two prefixes share at least one address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// Host addresses (network and broadcast excluded), in order.
    /// (Captures nothing of `self`, so it can outlive the borrow.)
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + Clone + use<> {
        let first = u32::from(self.network()).saturating_add(1);
        let last = u32::from(self.broadcast());
        (first..last).map(Ipv4Addr::from)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX (e.g. 192.168.28.0/24)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("`{len}` is not a prefix length (0..=32)"))?;
        Ok(Self { addr, prefix_len })
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv6 address with a prefix length; like [`Ipv4Cidr`] the address
/// may have host bits set (`2001:db8:203:113::1/64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Cidr {
    pub addr: Ipv6Addr,
    pub prefix_len: u8,
}

impl Ipv6Cidr {
    pub fn new(addr: Ipv6Addr, prefix_len: u8) -> Option<Self> {
        (prefix_len <= 128).then_some(Self { addr, prefix_len })
    }

    /// The netmask as a host-order u128 (`/64`: the upper 64 bits set).
    pub fn mask(&self) -> u128 {
        if self.prefix_len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix_len))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }

    /// The same prefix with the host bits cleared.
    pub fn trunc(&self) -> Self {
        Self {
            addr: self.network(),
            prefix_len: self.prefix_len,
        }
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network())
    }

    /// True when the two prefixes share at least one address.
    pub fn overlaps(&self, other: &Ipv6Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The address `offset` into the prefix (`fd00::/64` and 5:
    /// `fd00::5`); None when it does not fit in the host bits.
    pub fn nth(&self, offset: u128) -> Option<Ipv6Addr> {
        (offset & self.mask() == 0).then(|| Ipv6Addr::from(u128::from(self.network()) | offset))
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv6Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX (e.g. fd00:192:168:28::/64)"))?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv6 address"))?;
        let prefix_len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 128)
            .ok_or_else(|| format!("`{len}` is not a prefix length (0..=128)"))?;
        Ok(Self { addr, prefix_len })
    }
}

impl Serialize for Ipv6Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv6Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_computes() {
        let c: Ipv4Cidr = "192.168.28.7/24".parse().unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(192, 168, 28, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(192, 168, 28, 255));
        assert!(c.contains(Ipv4Addr::new(192, 168, 28, 200)));
        assert!(!c.contains(Ipv4Addr::new(192, 168, 29, 1)));
        assert_eq!(c.hosts().count(), 254);
        assert_eq!(c.to_string(), "192.168.28.7/24");
        assert_eq!(c.trunc().to_string(), "192.168.28.0/24");
    }

    #[test]
    fn rejects_garbage() {
        assert!("192.168.28.0".parse::<Ipv4Cidr>().is_err());
        assert!("192.168.28.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("300.1.1.1/24".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn ipv6_parses_and_computes() {
        let c: Ipv6Cidr = "fd00:192:168:28::7/64".parse().unwrap();
        assert_eq!(
            c.network(),
            "fd00:192:168:28::".parse::<Ipv6Addr>().unwrap()
        );
        assert!(c.contains("fd00:192:168:28:ffff::1".parse().unwrap()));
        assert!(!c.contains("fd00:192:168:29::1".parse().unwrap()));
        assert_eq!(c.nth(5), Some("fd00:192:168:28::5".parse().unwrap()));
        assert_eq!(c.nth(1 << 64), None);
        assert_eq!(c.trunc().to_string(), "fd00:192:168:28::/64");
        assert!("fd00::/129".parse::<Ipv6Cidr>().is_err());
        assert!("10.0.0.0/8".parse::<Ipv6Cidr>().is_err());
        let wide: Ipv6Cidr = "fd00::/8".parse().unwrap();
        assert!(wide.overlaps(&c) && c.overlaps(&wide));
    }

    #[test]
    fn overlap() {
        let a: Ipv4Cidr = "10.0.0.0/8".parse().unwrap();
        let b: Ipv4Cidr = "10.77.1.0/24".parse().unwrap();
        let c: Ipv4Cidr = "203.0.113.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}
