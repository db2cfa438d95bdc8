//! Typed views of the switch's IPv6 maps: `ports6` and `endpoints6` (the
//! source check's and the ND responder's tables) and `host_addrs6` (the
//! host-access rule's), opened from their pins like [`super::maps`].

use std::{collections::BTreeMap, net::Ipv6Addr, path::Path};

use aya::maps::{HashMap, MapData};
use netlab_common::{
    maps::{ENDPOINTS6_MAP, HOST_ADDRS_SIZE, HOST_ADDRS6_MAP, PORTS6_MAP},
    switch::{Endpoint, Port6},
};

use super::{
    error::{Error, Result},
    maps::{open_pinned, remove_key},
};

/// Deletes `key` (absent is fine: [`remove_key`]).
fn remove<K: aya::Pod, V: aya::Pod>(
    map: &mut HashMap<MapData, K, V>,
    key: &K,
    name: &'static str,
) -> Result<()> {
    remove_key(map, key).map_err(Error::map(name))?;
    Ok(())
}

/// The switch's IPv6 tables.
pub struct SwitchMaps6 {
    pub ports6: HashMap<MapData, u32, Port6>,
    pub endpoints6: HashMap<MapData, [u8; 16], Endpoint>,
}

impl SwitchMaps6 {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            ports6: open_pinned(dir, PORTS6_MAP)?,
            endpoints6: open_pinned(dir, ENDPOINTS6_MAP)?,
        })
    }

    /// Every endpoint port's IPv6 addresses, by ifindex.
    pub fn ports6(&self) -> Result<Vec<(u32, Port6)>> {
        self.ports6
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::map(PORTS6_MAP))
    }

    /// Every known IPv6 address.
    pub fn endpoints6(&self) -> Result<Vec<(Ipv6Addr, Endpoint)>> {
        self.endpoints6
            .iter()
            .map(|r| r.map(|(k, v)| (Ipv6Addr::from(k), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::map(ENDPOINTS6_MAP))
    }

    /// Registers the IPv6 side of the port on `ifindex` with `mac`:
    /// `addrs` (global and link-local) in `endpoints6` and, for an
    /// endpoint port, in `ports6` (the source check); no addresses: the
    /// port's `ports6` row goes (it sends no IPv6). Entries of addresses
    /// the port no longer has are left to [`SwitchMaps6::retain`] /
    /// [`SwitchMaps6::erase_port`].
    pub fn write_port(
        &mut self,
        ifindex: u32,
        mac: [u8; 6],
        endpoint: bool,
        addrs: Option<Port6>,
    ) -> Result<()> {
        let Some(addrs) = addrs else {
            return remove(&mut self.ports6, &ifindex, PORTS6_MAP);
        };
        let value = Endpoint {
            mac,
            _pad: [0; 2],
            port_ifindex: ifindex,
        };
        for addr in [addrs.global, addrs.link_local] {
            self.endpoints6
                .insert(addr, value, 0)
                .map_err(Error::map(ENDPOINTS6_MAP))?;
        }
        if endpoint {
            self.ports6
                .insert(ifindex, addrs, 0)
                .map_err(Error::map(PORTS6_MAP))?;
        } else {
            remove(&mut self.ports6, &ifindex, PORTS6_MAP)?;
        }
        Ok(())
    }

    /// Deletes what does not belong to the ports `keep` (ifindex →
    /// addresses, only ports with IPv6): `ports6` rows of other ports and
    /// `endpoints6` entries that are not one of a kept port's addresses
    /// on that port.
    pub fn retain(&mut self, keep: &BTreeMap<u32, Port6>) -> Result<()> {
        for (ifindex, _) in self.ports6()? {
            if !keep.contains_key(&ifindex) {
                remove(&mut self.ports6, &ifindex, PORTS6_MAP)?;
            }
        }
        for (addr, entry) in self.endpoints6()? {
            let kept = keep
                .get(&entry.port_ifindex)
                .is_some_and(|p| p.global == addr.octets() || p.link_local == addr.octets());
            if !kept {
                remove(&mut self.endpoints6, &addr.octets(), ENDPOINTS6_MAP)?;
            }
        }
        Ok(())
    }

    /// Deletes the `endpoints6` entries of the port on `ifindex` that are
    /// not among `addrs` (after a refresh wrote them: the addresses that
    /// stay are never missing in between).
    pub fn prune_port(&mut self, ifindex: u32, addrs: Option<Port6>) -> Result<()> {
        for (addr, entry) in self.endpoints6()? {
            let kept =
                addrs.is_some_and(|p| p.global == addr.octets() || p.link_local == addr.octets());
            if entry.port_ifindex == ifindex && !kept {
                remove(&mut self.endpoints6, &addr.octets(), ENDPOINTS6_MAP)?;
            }
        }
        Ok(())
    }

    /// Deletes every IPv6 entry of the port on `ifindex`.
    pub fn erase_port(&mut self, ifindex: u32) -> Result<()> {
        remove(&mut self.ports6, &ifindex, PORTS6_MAP)?;
        for (addr, entry) in self.endpoints6()? {
            if entry.port_ifindex == ifindex {
                remove(&mut self.endpoints6, &addr.octets(), ENDPOINTS6_MAP)?;
            }
        }
        Ok(())
    }
}

/// `host_addrs6`: the host's IPv6 addresses endpoints may not reach.
pub struct HostAddrs6 {
    map: HashMap<MapData, [u8; 16], u8>,
}

impl HostAddrs6 {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            map: open_pinned(dir, HOST_ADDRS6_MAP)?,
        })
    }

    /// Every entry: address → HOST_ADDR_* kind.
    pub fn entries(&self) -> Result<Vec<(Ipv6Addr, u8)>> {
        self.map
            .iter()
            .map(|r| r.map(|(k, v)| (Ipv6Addr::from(k), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::map(HOST_ADDRS6_MAP))
    }

    /// Makes the map hold exactly `wanted`: new entries are written before
    /// stale ones go, so an address that stays blocked is never reachable
    /// in between.
    pub fn sync(&mut self, wanted: &BTreeMap<Ipv6Addr, u8>) -> Result<()> {
        if wanted.len() > HOST_ADDRS_SIZE as usize {
            return Err(Error::InvalidPlan(format!(
                "the host has {} local IPv6 addresses; the switch can block at most \
                 {HOST_ADDRS_SIZE}",
                wanted.len()
            )));
        }
        let current = self.entries()?;
        for (ip, kind) in wanted {
            if !current.contains(&(*ip, *kind)) {
                self.map
                    .insert(ip.octets(), kind, 0)
                    .map_err(Error::map(HOST_ADDRS6_MAP))?;
            }
        }
        for (ip, _) in current {
            if !wanted.contains_key(&ip) {
                remove(&mut self.map, &ip.octets(), HOST_ADDRS6_MAP)?;
            }
        }
        Ok(())
    }
}
