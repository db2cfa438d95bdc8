//! Writing the NAT's configuration (`nat_config`) and the sizes of its
//! translation tables. The fast path's view of the lab is the switch's
//! `endpoints` table, which the switch's control plane fills
//! (`SwitchMaps`): one table, one writer.

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
};

use aya::maps::Array;
use netlab_common::{
    nat::{
        NAT_CONFIG_MAP, NAT_FLAG_ENABLED, NAT_FLAG_FAST_PATH, NAT_ORIG_MAP, NAT_REPLY_MAP,
        NatConfig,
    },
    nat6::{NAT6_CONFIG_MAP, NAT6_ORIG_MAP, NAT6_REPLY_MAP, Nat6Config},
};

use super::{NatError, maps};
use crate::{bpf::loader::MapSize, plan::NatPlan};

/// The sizes of the translation tables (`nat_orig`, `nat_reply` and
/// NAT66's `nat6_orig`, `nat6_reply`: one `max_entries` for both
/// families) for the loader. Pinned maps that already exist keep the size
/// they were created with.
pub fn map_sizes(plan: &NatPlan) -> [MapSize; 4] {
    [NAT_ORIG_MAP, NAT_REPLY_MAP, NAT6_ORIG_MAP, NAT6_REPLY_MAP].map(|map| MapSize {
        map,
        max_entries: plan.max_entries,
    })
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

/// Writes the pinned `nat_config` under `pin_dir` (validated first;
/// nothing is written when the plan is invalid). The loader pinned the
/// maps when it loaded the object, so the pins are the one place the
/// installer, the daemon and the tests all write through.
pub fn configure(
    pin_dir: &Path,
    plan: &NatPlan,
    external: Ipv4Addr,
    gateway_mac: [u8; 6],
    fast_path: bool,
) -> Result<(), NatError> {
    let cfg = nat_config(plan, external, gateway_mac, fast_path)?;
    let name = NAT_CONFIG_MAP;
    let mut map = maps::open_pinned(pin_dir, name)?;
    let mut array: Array<&mut aya::maps::MapData, NatConfig> =
        Array::try_from(&mut map).map_err(|source| NatError::Map { name, source })?;
    array
        .set(0, cfg, 0)
        .map_err(|source| NatError::Map { name, source })
}

/// The `nat6_config` entry for `plan`: NAT66 of `plan.subnet6` to
/// `external` (the uplink's global IPv6 address) with the IPv4 NAT's port
/// range and flags. `None` (NAT66 off) when the lab has no IPv6 or the
/// uplink no global IPv6 address.
pub fn nat6_config(
    plan: &NatPlan,
    external: Option<Ipv6Addr>,
    gateway_mac: [u8; 6],
    fast_path: bool,
) -> Result<Option<Nat6Config>, NatError> {
    let v4 = nat_config(plan, Ipv4Addr::UNSPECIFIED, gateway_mac, fast_path)?;
    let (Some(subnet), Some(external)) = (plan.subnet6, external) else {
        return Ok(None);
    };
    if subnet.contains(external) {
        return Err(NatError::InvalidPlan(format!(
            "external IPv6 address {external} lies inside the masqueraded prefix {subnet}"
        )));
    }
    Ok(Some(Nat6Config {
        subnet: subnet.network().octets(),
        external: external.octets(),
        prefix_len: subnet.prefix_len,
        _pad: 0,
        port_min: v4.port_min,
        port_max: v4.port_max,
        gateway_mac,
        flags: v4.flags,
    }))
}

/// Writes the pinned `nat6_config` under `pin_dir` ([`nat6_config`];
/// NAT66 off is an all-zero entry, which both programs read as "pass
/// every IPv6 packet"). Returns whether NAT66 is on.
pub fn configure6(
    pin_dir: &Path,
    plan: &NatPlan,
    external: Option<Ipv6Addr>,
    gateway_mac: [u8; 6],
    fast_path: bool,
) -> Result<bool, NatError> {
    let cfg = nat6_config(plan, external, gateway_mac, fast_path)?;
    let name = NAT6_CONFIG_MAP;
    let mut map = maps::open_pinned(pin_dir, name)?;
    let mut array: Array<&mut aya::maps::MapData, Nat6Config> =
        Array::try_from(&mut map).map_err(|source| NatError::Map { name, source })?;
    array
        .set(0, cfg.unwrap_or_default(), 0)
        .map_err(|source| NatError::Map { name, source })?;
    Ok(cfg.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_masked_and_in_network_order() {
        let cfg = nat_config(
            &NatPlan::example(),
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
        let cfg = nat_config(
            &NatPlan::example(),
            Ipv4Addr::new(203, 0, 113, 1),
            [0; 6],
            false,
        )
        .unwrap();
        assert_eq!(cfg.flags, NAT_FLAG_ENABLED);
    }

    #[test]
    fn nat6_config_takes_the_prefix_the_range_and_the_flags() {
        let ext: Ipv6Addr = "2001:db8:203:113::1".parse().unwrap();
        let mut plan = NatPlan::example();
        assert_eq!(nat6_config(&plan, Some(ext), [0; 6], true).unwrap(), None);
        plan.subnet6 = Some("fd00:192:168:28::77/64".parse().unwrap());
        assert_eq!(nat6_config(&plan, None, [0; 6], true).unwrap(), None);
        let cfg = nat6_config(&plan, Some(ext), [2, 0, 0, 0, 0, 5], true)
            .unwrap()
            .unwrap();
        let subnet: Ipv6Addr = "fd00:192:168:28::".parse().unwrap();
        assert_eq!(cfg.subnet, subnet.octets());
        assert_eq!(cfg.prefix_len, 64);
        assert_eq!(cfg.external, ext.octets());
        assert_eq!((cfg.port_min, cfg.port_max), (40000, 40999));
        assert_eq!(cfg.flags, NAT_FLAG_ENABLED | NAT_FLAG_FAST_PATH);
        let inside: Ipv6Addr = "fd00:192:168:28::9".parse().unwrap();
        assert!(nat6_config(&plan, Some(inside), [0; 6], true).is_err());
    }

    #[test]
    fn bad_plans_are_rejected() {
        let ext = Ipv4Addr::new(203, 0, 113, 1);
        let mut p = NatPlan::example();
        p.port_min = 50000;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
        let mut p = NatPlan::example();
        p.port_min = 0;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
        let mut p = NatPlan::example();
        p.prefix_len = 33;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
        assert!(
            nat_config(
                &NatPlan::example(),
                Ipv4Addr::new(192, 168, 28, 5),
                [0; 6],
                false
            )
            .is_err()
        );
        let mut p = NatPlan::example();
        p.max_entries = 0;
        assert!(nat_config(&p, ext, [0; 6], false).is_err());
    }
}
