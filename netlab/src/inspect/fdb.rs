//! `netlab fdb`: the switch's forwarding database, like `bridge fdb show`.

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
}

pub fn rows(lab: &Lab) -> anyhow::Result<Vec<FdbRow>> {
    super::maps::open(lab, FDB_MAP)?.check_layout()?;
    let names = lab.ifnames();
    Ok(crate::datapath::ebpf::fdb(&lab.name)?
        .into_iter()
        .map(|(mac, e)| {
            let port = names.name(e.port_ifindex);
            FdbRow {
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
    let mut t = super::table(["mac", "port", "ifindex", "behind", "kind", "type"]);
    for r in rows {
        t.add_row(vec![
            r.mac.clone(),
            r.port.clone(),
            r.port_ifindex.to_string(),
            r.owner.clone().unwrap_or_else(|| "-".into()),
            r.kind.clone(),
            r.entry_type.clone(),
        ]);
    }
    t.to_string()
}
