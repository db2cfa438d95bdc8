//! The addresses the switch knows for each MAC (`endpoints`,
//! `endpoints6`, `ports6`), for `fdb` and `stats`: the IPv4 one, then the
//! IPv6 ones (global first, then link-local).
//!
//! `endpoints6` holds every endpoint's and the gateway's IPv6 addresses
//! (what the Neighbour Discovery responder answers); `ports6` the
//! addresses each endpoint port may send from (its source check). Both
//! are read, so a port whose two tables disagree shows every address
//! either holds. A lab pinned before IPv6 has neither map: no IPv6
//! addresses, not an error.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, Ipv6Addr},
};

use aya::maps::{HashMap, MapData};
use netlab_common::{
    maps::{ENDPOINTS_MAP, ENDPOINTS6_MAP, PORTS6_MAP},
    switch::{Endpoint, Port6},
};

use super::Lab;
use crate::bpf::{key::ipv4_of_key, maps::open_pinned};

/// One MAC's addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MacAddrs {
    pub ipv4: Option<Ipv4Addr>,
    /// Global addresses first, then link-local; each once.
    pub ipv6: Vec<Ipv6Addr>,
}

impl MacAddrs {
    fn add6(&mut self, a: Ipv6Addr) {
        if a.is_unspecified() || self.ipv6.contains(&a) {
            return;
        }
        self.ipv6.push(a);
        // Global before link-local, each kind in address order.
        self.ipv6.sort_by_key(|a| (a.is_unicast_link_local(), *a));
    }

    /// The IPv6 addresses as strings (what `--json` prints).
    pub fn ipv6_strings(&self) -> Vec<String> {
        self.ipv6.iter().map(Ipv6Addr::to_string).collect()
    }
}

/// Every MAC's addresses, keyed by MAC. `ports6` entries are placed by
/// the MAC of the port they belong to (`port_macs`: port ifindex → MAC).
pub fn by_mac(lab: &Lab, port_macs: &BTreeMap<u32, [u8; 6]>) -> BTreeMap<[u8; 6], MacAddrs> {
    let mut out: BTreeMap<[u8; 6], MacAddrs> = BTreeMap::new();
    let pinned = |name: &str| lab.dir.join(name).exists();
    if pinned(ENDPOINTS_MAP)
        && let Ok(map) = open_pinned::<HashMap<MapData, u32, Endpoint>>(&lab.dir, ENDPOINTS_MAP)
    {
        for (k, e) in map.iter().flatten() {
            out.entry(e.mac).or_default().ipv4 = Some(ipv4_of_key(k));
        }
    }
    if pinned(ENDPOINTS6_MAP)
        && let Ok(map) =
            open_pinned::<HashMap<MapData, [u8; 16], Endpoint>>(&lab.dir, ENDPOINTS6_MAP)
    {
        for (k, e) in map.iter().flatten() {
            out.entry(e.mac).or_default().add6(Ipv6Addr::from(k));
        }
    }
    if pinned(PORTS6_MAP)
        && let Ok(map) = open_pinned::<HashMap<MapData, u32, Port6>>(&lab.dir, PORTS6_MAP)
    {
        for (ifindex, p) in map.iter().flatten() {
            if let Some(mac) = port_macs.get(&ifindex) {
                let a = out.entry(*mac).or_default();
                a.add6(Ipv6Addr::from(p.global));
                a.add6(Ipv6Addr::from(p.link_local));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_addresses_come_before_link_local_ones_and_each_once() {
        let mut a = MacAddrs::default();
        for s in [
            "fe80::4e:aff:fe4f:101",
            "fd00:10:79:1::1",
            "fe80::4e:aff:fe4f:101",
            "::",
        ] {
            a.add6(s.parse().unwrap());
        }
        assert_eq!(
            a.ipv6_strings(),
            ["fd00:10:79:1::1", "fe80::4e:aff:fe4f:101"]
        );
    }
}
