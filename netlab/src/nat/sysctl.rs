//! Reserving the NAT's port range on the host (`ip_local_reserved_ports`),
//! so the host's own sockets never pick a port the NAT hands out: a packet
//! to the external address with no reply entry is then always the host's.

use super::NatError;

/// Per network namespace: `/proc/sys/net` shows the namespace of the
/// calling thread.
pub const RESERVED_PORTS_SYSCTL: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

fn parse(list: &str) -> Vec<(u16, u16)> {
    list.trim()
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .filter_map(|item| {
            let item = item.trim();
            match item.split_once('-') {
                Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
                None => {
                    let p = item.parse().ok()?;
                    Some((p, p))
                }
            }
        })
        .collect()
}

/// The new value of the sysctl with `min..=max` added to `current`, or
/// `None` when the range is already reserved. Existing reservations are
/// kept (the host's own settings are not ours to drop).
pub fn merge_reserved_ports(current: &str, min: u16, max: u16) -> Option<String> {
    let ranges = parse(current);
    if ranges.iter().any(|&(a, b)| a <= min && max <= b) {
        return None;
    }
    let mut items: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    items.push(format!("{min}-{max}"));
    Some(items.join(","))
}

/// Reserves `min..=max` in the calling thread's network namespace. Run it
/// on a thread inside the lab's host namespace.
pub fn reserve_ports(min: u16, max: u16) -> Result<(), NatError> {
    let io = |what: &str| {
        let what = format!("{what} {RESERVED_PORTS_SYSCTL}");
        move |source| NatError::Io { what, source }
    };
    let current = std::fs::read_to_string(RESERVED_PORTS_SYSCTL).map_err(io("reading"))?;
    if let Some(new) = merge_reserved_ports(&current, min, max) {
        std::fs::write(RESERVED_PORTS_SYSCTL, new).map_err(io("writing"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_without_dropping_existing_reservations() {
        assert_eq!(
            merge_reserved_ports("\n", 40000, 40999).as_deref(),
            Some("40000-40999")
        );
        assert_eq!(
            merge_reserved_ports("22,8000-8080\n", 40000, 40999).as_deref(),
            Some("22,8000-8080,40000-40999")
        );
        assert_eq!(merge_reserved_ports("40000-40999\n", 40000, 40999), None);
        assert_eq!(merge_reserved_ports("30000-50000", 40000, 40999), None);
        assert_eq!(
            merge_reserved_ports("40000-40500", 40000, 40999).as_deref(),
            Some("40000-40500,40000-40999")
        );
    }
}
