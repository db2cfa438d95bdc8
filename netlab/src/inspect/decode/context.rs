//! What decoding needs beyond the bytes: interface names (resolved in the
//! lab's host namespace, where the switch ports live) and the clock.

use std::collections::BTreeMap;

/// Interface names of the host namespace, by ifindex.
#[derive(Clone, Debug, Default)]
pub struct IfNames(pub BTreeMap<u32, String>);

impl IfNames {
    /// Reads the links of `netns` (None: netlab's own namespace). On error
    /// the names stay unknown and ifindexes are shown as numbers.
    pub fn of_namespace(netns: Option<&str>) -> Self {
        crate::topology::with_netlink(netns, |nl| nl.links())
            .map(|links| Self(links.into_iter().map(|l| (l.ifindex, l.name)).collect()))
            .unwrap_or_default()
    }

    /// The name, or `if<N>` when unknown.
    pub fn name(&self, ifindex: u32) -> String {
        self.0
            .get(&ifindex)
            .cloned()
            .unwrap_or_else(|| format!("if{ifindex}"))
    }
}

/// Decoding context: interface names and the current CLOCK_MONOTONIC time
/// (for ages).
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub ifnames: IfNames,
    pub now_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_interfaces_are_named_by_index() {
        let names = IfNames(BTreeMap::from([(5, "veth-1-br".to_string())]));
        assert_eq!(names.name(5), "veth-1-br");
        assert_eq!(names.name(77), "if77");
    }
}
