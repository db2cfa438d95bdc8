//! Writing the NAT's configuration (`nat_config`) and its endpoint table
//! (`nat_endpoints`, the fast path's view of the lab).

use std::{net::Ipv4Addr, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map},
};
use netlab_common::{
    nat::{
        NAT_CONFIG_MAP, NAT_ENDPOINTS_MAP, NAT_FLAG_ENABLED, NAT_FLAG_FAST_PATH, NAT_ORIG_MAP,
        NAT_REPLY_MAP, NatConfig,
    },
    switch::Endpoint,
};

use super::{NatError, maps};
use crate::bpf::key::ipv4_key;
use crate::plan::NatPlan;

/// Sizes the NAT maps from the plan. Call on the loader before `load`.
/// (Pinned maps that already exist keep the size they were created with.)
pub fn loader_tweaks(loader: &mut EbpfLoader<'_>, plan: &NatPlan) {
    loader.map_max_entries(NAT_ORIG_MAP, plan.max_entries);
    loader.map_max_entries(NAT_REPLY_MAP, plan.max_entries);
}

/// The `nat_config` entry for `plan`, validated by the plan's own rules
/// ([`NatPlan::problem`], the same the lab file is checked with). `external` is the uplink's
/// address, `gateway_mac` `vbridge`'s MAC (the source MAC of fast-path
/// deliveries); `fast_path` enables delivering replies straight to the
/// endpoint's port.
pub fn nat_config(
    plan: &NatPlan,
    external: Ipv4Addr,
    gateway_mac: [u8; 6],
    fast_path: bool,
) -> Result<NatConfig, NatError> {
    if let Some(why) = plan.problem() {
        return Err(NatError::InvalidPlan(why));
    }
    let subnet = plan.masqueraded().expect("checked by problem()");
    if subnet.contains(external) {
        return Err(NatError::InvalidPlan(format!(
            "external address {external} lies inside the masqueraded subnet {subnet}"
        )));
    }
    let mut flags = NAT_FLAG_ENABLED;
    if fast_path {
        flags |= NAT_FLAG_FAST_PATH;
    }
    Ok(NatConfig {
        subnet: u32::from(subnet.network()).to_be(),
        mask: subnet.mask().to_be(),
        external: u32::from(external).to_be(),
        port_min: plan.port_min,
        port_max: plan.port_max,
        flags,
        gateway_mac,
        _pad: [0; 2],
    })
}

fn write_config(map: &mut Map, cfg: &NatConfig) -> Result<(), NatError> {
    let name = NAT_CONFIG_MAP;
    let mut array: Array<&mut aya::maps::MapData, NatConfig> =
        Array::try_from(map).map_err(|source| NatError::Map { name, source })?;
    array
        .set(0, cfg, 0)
        .map_err(|source| NatError::Map { name, source })
}

/// Writes `nat_config` of a loaded object (validated first; nothing is
/// written when the plan is invalid).
pub fn configure(
    ebpf: &mut Ebpf,
    plan: &NatPlan,
    external: Ipv4Addr,
    gateway_mac: [u8; 6],
    fast_path: bool,
) -> Result<(), NatError> {
    let cfg = nat_config(plan, external, gateway_mac, fast_path)?;
    write_config(maps::of_object(ebpf, NAT_CONFIG_MAP)?, &cfg)
}

/// Writes the pinned `nat_config` under `pin_dir`.
pub fn configure_pinned(
    pin_dir: &Path,
    plan: &NatPlan,
    external: Ipv4Addr,
    gateway_mac: [u8; 6],
    fast_path: bool,
) -> Result<(), NatError> {
    let cfg = nat_config(plan, external, gateway_mac, fast_path)?;
    write_config(&mut maps::open_pinned(pin_dir, NAT_CONFIG_MAP)?, &cfg)
}

fn endpoints(map: &mut Map) -> Result<HashMap<&mut aya::maps::MapData, u32, Endpoint>, NatError> {
    HashMap::try_from(map).map_err(|source| NatError::Map {
        name: NAT_ENDPOINTS_MAP,
        source,
    })
}

fn put_endpoint(
    map: &mut Map,
    ipv4: Ipv4Addr,
    mac: [u8; 6],
    port_ifindex: u32,
) -> Result<(), NatError> {
    let value = Endpoint {
        mac,
        _pad: [0; 2],
        port_ifindex,
    };
    endpoints(map)?
        .insert(ipv4_key(ipv4), value, 0)
        .map_err(|source| NatError::Map {
            name: NAT_ENDPOINTS_MAP,
            source,
        })
}

fn delete_endpoint(map: &mut Map, ipv4: Ipv4Addr) -> Result<(), NatError> {
    match endpoints(map)?.remove(&ipv4_key(ipv4)) {
        Ok(()) => Ok(()),
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(s))
            if s.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        Err(source) => Err(NatError::Map {
            name: NAT_ENDPOINTS_MAP,
            source,
        }),
    }
}

/// Tells the fast path where endpoint `ipv4` lives: its MAC and its switch
/// port's ifindex (`veth-N-br`, in the host namespace).
pub fn set_endpoint(
    ebpf: &mut Ebpf,
    ipv4: Ipv4Addr,
    mac: [u8; 6],
    port_ifindex: u32,
) -> Result<(), NatError> {
    put_endpoint(
        maps::of_object(ebpf, NAT_ENDPOINTS_MAP)?,
        ipv4,
        mac,
        port_ifindex,
    )
}

/// [`set_endpoint`] on the pinned map.
pub fn set_endpoint_pinned(
    pin_dir: &Path,
    ipv4: Ipv4Addr,
    mac: [u8; 6],
    port_ifindex: u32,
) -> Result<(), NatError> {
    put_endpoint(
        &mut maps::open_pinned(pin_dir, NAT_ENDPOINTS_MAP)?,
        ipv4,
        mac,
        port_ifindex,
    )
}

/// Forgets endpoint `ipv4` (replies to it then take the host stack).
/// Succeeds when it was not there.
pub fn remove_endpoint(ebpf: &mut Ebpf, ipv4: Ipv4Addr) -> Result<(), NatError> {
    delete_endpoint(maps::of_object(ebpf, NAT_ENDPOINTS_MAP)?, ipv4)
}

/// [`remove_endpoint`] on the pinned map.
pub fn remove_endpoint_pinned(pin_dir: &Path, ipv4: Ipv4Addr) -> Result<(), NatError> {
    delete_endpoint(&mut maps::open_pinned(pin_dir, NAT_ENDPOINTS_MAP)?, ipv4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::NatTimeouts;

    fn plan() -> NatPlan {
        NatPlan {
            uplink_dev: "uplink".into(),
            subnet: Ipv4Addr::new(192, 168, 28, 77),
            prefix_len: 24,
            port_min: 40000,
            port_max: 40999,
            max_entries: 1024,
            timeouts: NatTimeouts::default(),
        }
    }

    #[test]
    fn config_is_masked_and_in_network_order() {
        let cfg = nat_config(
            &plan(),
            Ipv4Addr::new(203, 0, 113, 1),
            [2, 0, 0, 0, 0, 5],
            true,
        )
        .unwrap();
        assert_eq!(cfg.subnet.to_ne_bytes(), [192, 168, 28, 0]);
        assert_eq!(cfg.mask.to_ne_bytes(), [255, 255, 255, 0]);
        assert_eq!(cfg.external.to_ne_bytes(), [203, 0, 113, 1]);
        assert_eq!((cfg.port_min, cfg.port_max), (40000, 40999));
        assert_eq!(cfg.flags, NAT_FLAG_ENABLED | NAT_FLAG_FAST_PATH);
        let cfg = nat_config(&plan(), Ipv4Addr::new(203, 0, 113, 1), [0; 6], false).unwrap();
        assert_eq!(cfg.flags, NAT_FLAG_ENABLED);
    }

    #[test]
    fn bad_plans_are_rejected() {
        let ext = Ipv4Addr::new(203, 0, 113, 1);
        let mut p = plan();
        p.port_min = 50000;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
        let mut p = plan();
        p.port_min = 0;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
        let mut p = plan();
        p.prefix_len = 33;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
        assert!(nat_config(&plan(), Ipv4Addr::new(192, 168, 28, 5), [0; 6], false).is_err());
        let mut p = plan();
        p.max_entries = 0;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
    }
}
