//! `netlab fdb`: the switch's forwarding database, like `bridge fdb show`,
//! with the addresses the switch knows for each MAC (IPv4, and IPv6:
//! global and link-local).

use netlab_common::maps::FDB_MAP;
use serde::Serialize;

use super::{Lab, decode};

/// One FDB entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FdbRow {
    pub mac: String,
    /// The switch port (host-side device) the MAC lives behind.
    pub port: String,
    pub port_ifindex: u32,
    /// The endpoint namespace behind the port, or "gateway".
    pub owner: Option<String>,
    /// `endpoint` or `gateway`.
    pub kind: String,
    /// `static` (set by netlab) or `learned` (from a source MAC).
    #[serde(rename = "type")]
    pub entry_type: String,
    /// The MAC's IPv4 address in `endpoints` (what the ARP responder
    /// answers), if any.
    pub ipv4: Option<String>,
    /// Its IPv6 addresses (`endpoints6`, `ports6`): global first, then
    /// link-local; empty without IPv6.
    pub ipv6: Vec<String>,
}

pub fn rows(lab: &Lab) -> anyhow::Result<Vec<FdbRow>> {
    super::maps::open(lab, FDB_MAP)?.check_layout()?;
    let names = lab.ifnames();
    let entries = crate::datapath::ebpf::fdb(&lab.name)?;
    // An endpoint port's own MAC: the static entry behind it.
    let port_macs = entries
        .iter()
        .filter(|(_, e)| e.flags & netlab_common::switch::FDB_FLAG_STATIC != 0)
        .map(|(mac, e)| (e.port_ifindex, *mac))
        .collect();
    let addrs = super::addrs::by_mac(lab, &port_macs);
    Ok(entries
        .into_iter()
        .map(|(mac, e)| {
            let port = names.name(e.port_ifindex);
            let a = addrs.get(&mac).cloned().unwrap_or_default();
            FdbRow {
                ipv4: a.ipv4.map(|ip| ip.to_string()),
                ipv6: a.ipv6_strings(),
                mac: decode::mac(&mac),
                owner: lab.port_owner(&port),
                port,
                port_ifindex: e.port_ifindex,
                kind: decode::port_kind(e.kind),
                entry_type: decode::fdb_flags(e.flags),
            }
        })
        .collect())
}

pub fn render(rows: &[FdbRow]) -> String {
    let mut t = super::table([
        "mac", "port", "ifindex", "behind", "kind", "type", "ipv4", "ipv6",
    ]);
    for r in rows {
        t.add_row(vec![
            r.mac.clone(),
            r.port.clone(),
            r.port_ifindex.to_string(),
            r.owner.clone().unwrap_or_else(|| "-".into()),
            r.kind.clone(),
            r.entry_type.clone(),
            r.ipv4.clone().unwrap_or_else(|| "-".into()),
            if r.ipv6.is_empty() {
                "-".into()
            } else {
                r.ipv6.join("\n")
            },
        ]);
    }
    t.to_string()
}
