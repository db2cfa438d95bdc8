//! `netlab fdb add MAC PORT` and `netlab fdb del MAC`: FDB entries the
//! control plane does not own.
//!
//! The control plane installs a static entry for every endpoint and the
//! gateway; those are refused here (deleting one would cut its namespace
//! off until the next `up`; overwriting one would send its frames
//! elsewhere). An entry added by hand is marked `manual`; like a learned
//! entry it is not static, so learning (when on) may move it if the MAC
//! shows up behind another port, and `fdb del` removes it.

use aya::maps::{HashMap, MapData, MapError};
use netlab_common::{
    maps::FDB_MAP,
    switch::{FDB_FLAG_MANUAL, FDB_FLAG_STATIC, FdbEntry, FdbKey},
};
use serde::Serialize;

use crate::bpf::maps::{SwitchMaps, open_pinned};
use crate::inspect::{Lab, keys, print_json};

/// bpf(2) update flags (uapi/linux/bpf.h).
const BPF_NOEXIST: u64 = 1;
const BPF_EXIST: u64 = 2;

#[derive(Clone, Debug, clap::Subcommand)]
pub enum FdbCommand {
    /// Add (or move) a non-static entry: frames for MAC go out of PORT.
    Add {
        /// e.g. 02:aa:00:00:00:01 (unicast only).
        mac: String,
        /// A switch port device of the lab (`veth-N-br`, or the gateway port).
        port: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a learned or hand-added entry (static entries are refused).
    Del {
        mac: String,
        #[arg(long)]
        json: bool,
    },
}

/// `--json` of `fdb add` / `fdb del`.
#[derive(Clone, Debug, Serialize)]
pub struct FdbChange {
    /// `added`, `moved`, `deleted`.
    pub action: String,
    pub mac: String,
    pub port: String,
    pub port_ifindex: u32,
    /// The entry's type before (`learned`, `manual`), for `moved`/`deleted`.
    pub was: Option<String>,
}

fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

fn fdb_map(lab: &Lab) -> anyhow::Result<HashMap<MapData, FdbKey, FdbEntry>> {
    crate::inspect::maps::open(lab, FDB_MAP)?.check_layout()?;
    Ok(open_pinned(&lab.dir, FDB_MAP)?)
}

fn current(
    fdb: &HashMap<MapData, FdbKey, FdbEntry>,
    key: &FdbKey,
) -> anyhow::Result<Option<FdbEntry>> {
    match fdb.get(key, 0) {
        Ok(e) => Ok(Some(e)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read map {FDB_MAP}: {e}")),
    }
}

fn refuse_static(lab: &Lab, mac: &str, e: &FdbEntry, doing: &str) -> anyhow::Result<()> {
    if e.flags & FDB_FLAG_STATIC != 0 {
        let port = lab.ifnames().name(e.port_ifindex);
        let owner = lab.port_owner(&port).unwrap_or_else(|| port.clone());
        anyhow::bail!(
            "refusing to {doing} {mac}: it is a static entry the control plane set for {owner} \
             (port {port}); changing it would cut {owner} off. Endpoints are added and removed \
             with `netlab attach` / `netlab detach`"
        );
    }
    Ok(())
}

pub fn add(lab: &Lab, mac_text: &str, port: &str) -> anyhow::Result<FdbChange> {
    let mac = keys::parse_mac(mac_text).map_err(|e| anyhow::anyhow!("bad MAC: {e}"))?;
    if is_group(&mac) {
        anyhow::bail!(
            "{mac_text} is a multicast/broadcast MAC: the switch floods those and never looks them up"
        );
    }
    let names = lab.ifnames();
    let ifindex = names
        .0
        .iter()
        .find(|(_, n)| n.as_str() == port)
        .map(|(i, _)| *i)
        .ok_or_else(|| anyhow::anyhow!("no device {port} in lab {}'s host side", lab.name))?;
    let switch = SwitchMaps::open(&lab.dir)?;
    let info = switch
        .ports()?
        .into_iter()
        .find(|(i, _)| *i == ifindex)
        .map(|(_, p)| p)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{port} is not a port of lab {}'s switch (its ports: {})",
                lab.name,
                lab.plan
                    .endpoints
                    .iter()
                    .map(|e| e.peer.as_str())
                    .chain([lab.plan.gateway_port.as_str()])
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let mut fdb = fdb_map(lab)?;
    let key = FdbKey::new(mac);
    let before = current(&fdb, &key)?;
    if let Some(e) = &before {
        refuse_static(lab, mac_text, e, "overwrite")?;
    }
    let entry = FdbEntry {
        port_ifindex: ifindex,
        kind: info.kind,
        flags: FDB_FLAG_MANUAL,
        slot: info.slot as u16,
    };
    // NOEXIST for a new entry: if the control plane raced us with a static
    // entry, the static one stays. EXIST for a move: it must still be there.
    let flags = if before.is_some() {
        BPF_EXIST
    } else {
        BPF_NOEXIST
    };
    fdb.insert(key, entry, flags)
        .map_err(|e| anyhow::anyhow!("cannot update map {FDB_MAP}: {e}"))?;
    Ok(FdbChange {
        action: if before.is_some() { "moved" } else { "added" }.into(),
        mac: crate::inspect::decode::mac(&mac),
        port: port.to_string(),
        port_ifindex: ifindex,
        was: before.map(|e| crate::inspect::decode::fdb_flags(e.flags)),
    })
}

pub fn del(lab: &Lab, mac_text: &str) -> anyhow::Result<FdbChange> {
    let mac = keys::parse_mac(mac_text).map_err(|e| anyhow::anyhow!("bad MAC: {e}"))?;
    let mut fdb = fdb_map(lab)?;
    let key = FdbKey::new(mac);
    let Some(e) = current(&fdb, &key)? else {
        anyhow::bail!(
            "lab {} has no FDB entry for {mac_text} (see `netlab fdb`)",
            lab.name
        );
    };
    refuse_static(lab, mac_text, &e, "delete")?;
    match fdb.remove(&key) {
        Ok(()) | Err(MapError::KeyNotFound) => {}
        Err(e) => anyhow::bail!("cannot update map {FDB_MAP}: {e}"),
    }
    Ok(FdbChange {
        action: "deleted".into(),
        mac: crate::inspect::decode::mac(&mac),
        port: lab.ifnames().name(e.port_ifindex),
        port_ifindex: e.port_ifindex,
        was: Some(crate::inspect::decode::fdb_flags(e.flags)),
    })
}

pub fn run(lab: &Lab, cmd: &FdbCommand) -> anyhow::Result<()> {
    let (change, json) = match cmd {
        FdbCommand::Add { mac, port, json } => (add(lab, mac, port)?, *json),
        FdbCommand::Del { mac, json } => (del(lab, mac)?, *json),
    };
    if json {
        return print_json(&change);
    }
    match change.action.as_str() {
        "deleted" => println!(
            "deleted {} ({}, port {})",
            change.mac,
            change.was.as_deref().unwrap_or("-"),
            change.port
        ),
        action => println!(
            "{action} {} -> port {} (manual entry{})",
            change.mac,
            change.port,
            change
                .was
                .as_deref()
                .map(|w| format!("; was {w}"))
                .unwrap_or_default()
        ),
    }
    Ok(())
}
