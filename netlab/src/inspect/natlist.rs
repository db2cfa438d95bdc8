//! `netlab nat list`: the source NAT's translations, in the spirit of
//! `conntrack -L`: protocol, state, original tuple, the translated source
//! the remote side sees, age and time left before expiry.

use std::net::Ipv4Addr;

use anyhow::{Context as _, bail};
use netlab_common::nat::{NAT_ORIG_MAP, NAT_REPLY_MAP};
use serde::Serialize;

use super::{Lab, decode};
use crate::nat::{NatFlow, NatTable};

/// Which flows to show (all when every field is None).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Flows from this endpoint namespace.
    pub namespace: Option<String>,
    /// `tcp`, `udp`, `icmp` or a protocol number.
    pub proto: Option<String>,
    /// Flows where this address appears (original source, remote or translated).
    pub address: Option<Ipv4Addr>,
}

/// A flow's addresses and ports as `nat list` and `nat flush/delete`
/// print them: the original tuple and the translated source. For ICMP echo
/// the ports are the echo identifier (`sport`, `translated_sport`) and 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowEnds {
    pub src: String,
    pub sport: u16,
    pub dst: String,
    pub dport: u16,
    /// The translated source (for `nat flush/delete`: whose port, or ICMP
    /// id, is free again).
    pub translated_src: String,
    pub translated_sport: u16,
}

impl From<&NatFlow> for FlowEnds {
    fn from(f: &NatFlow) -> Self {
        FlowEnds {
            src: f.orig_src.ip().to_string(),
            sport: f.orig_src.port(),
            dst: f.remote.ip().to_string(),
            dport: f.remote.port(),
            translated_src: f.translated.ip().to_string(),
            translated_sport: f.translated.port(),
        }
    }
}

/// One translation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NatRow {
    /// "out": masquerade (a namespace's connection leaving the lab);
    /// "in": a published port (a client's connection coming in).
    pub direction: String,
    pub proto: String,
    pub state: String,
    /// The endpoint namespace the flow comes from, when known.
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub ends: FlowEnds,
    pub age_ms: u64,
    pub expires_in_ms: u64,
    /// False when one direction's entry is missing (evicted or half
    /// expired); the flow is still shown so it can be seen and expired.
    pub complete: bool,
}

struct Resolved {
    namespace_addr: Option<Ipv4Addr>,
    proto: Option<u8>,
    address: Option<Ipv4Addr>,
}

fn resolve(lab: &Lab, f: &Filter) -> anyhow::Result<Resolved> {
    let namespace_addr = match &f.namespace {
        None => None,
        Some(ns) => Some(
            lab.plan
                .endpoint(ns)
                .map(|e| e.address)
                .or_else(|| lab.plan.containers.find_by_name(ns).map(|c| c.address))
                .with_context(|| {
                    format!(
                        "namespace {ns} is not an endpoint or a CNI container of lab {}; its endpoints: {}",
                        lab.name,
                        lab.plan
                            .endpoints
                            .iter()
                            .map(|e| e.namespace.clone())
                            .chain(lab.plan.containers.attachments.iter().map(|c| c.short_id().to_string()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
        ),
    };
    let proto = match &f.proto {
        None => None,
        Some(p) => Some(decode::parse_proto(p).map_err(anyhow::Error::msg)?),
    };
    Ok(Resolved {
        namespace_addr,
        proto,
        address: f.address,
    })
}

fn keep(flow: &NatFlow, r: &Resolved) -> bool {
    r.namespace_addr.is_none_or(|a| *flow.orig_src.ip() == a)
        && r.proto.is_none_or(|p| flow.proto.number() == p)
        && r.address.is_none_or(|a| {
            *flow.orig_src.ip() == a || *flow.remote.ip() == a || *flow.translated.ip() == a
        })
}

/// The lab's NAT table, opened after checking that the pinned maps have
/// this build's layout (so nothing is misread, or deleted by a wrong key).
pub fn open_table(lab: &Lab) -> anyhow::Result<NatTable> {
    if !lab.dir.join(NAT_ORIG_MAP).exists() {
        bail!(
            "lab {} has no source NAT (no {NAT_ORIG_MAP} map pinned)",
            lab.name
        );
    }
    for map in [NAT_ORIG_MAP, NAT_REPLY_MAP] {
        super::maps::open(lab, map)?.check_layout()?;
    }
    Ok(NatTable::open(&lab.dir)?)
}

/// The flows `filter` selects, sorted for display. The filter is checked
/// (namespace, protocol) before the table is read.
pub fn flows(lab: &Lab, table: &NatTable, filter: &Filter) -> anyhow::Result<Vec<NatFlow>> {
    let resolved = resolve(lab, filter)?;
    let mut flows = table.flows()?;
    flows.retain(|f| keep(f, &resolved));
    Ok(flows)
}

pub fn rows(lab: &Lab, filter: &Filter) -> anyhow::Result<Vec<NatRow>> {
    resolve(lab, filter)?;
    let table = open_table(lab)?;
    let flows = flows(lab, &table, filter)?;
    let now = crate::nat::monotonic_now_ns();
    let timeouts = &lab.plan.nat.timeouts;
    Ok(flows
        .iter()
        .map(|f| NatRow {
            direction: if f.dnat { "in" } else { "out" }.into(),
            proto: f.proto.to_string(),
            state: f.state.to_string(),
            namespace: lab
                .plan
                .endpoints
                .iter()
                .find(|e| e.address == *f.orig_src.ip())
                .map(|e| e.namespace.clone())
                .or_else(|| (lab.plan.containers.by_address(*f.orig_src.ip())).map(|c| c.label())),
            ends: FlowEnds::from(f),
            age_ms: f.age(now).as_millis() as u64,
            expires_in_ms: f.expires_in(now, timeouts).as_millis() as u64,
            complete: f.orig_key.is_some() && f.reply_key.is_some(),
        })
        .collect())
}

pub fn render(rows: &[NatRow]) -> String {
    if rows.is_empty() {
        return "no NAT translations\n".into();
    }
    let mut t = super::table([
        "dir",
        "proto",
        "state",
        "from",
        "original",
        "translated source",
        "age",
        "expires in",
    ]);
    for r in rows {
        let ends = &r.ends;
        let (sp, dp) = if r.proto == "icmp" {
            (format!(" id={}", ends.sport), String::new())
        } else {
            (format!(":{}", ends.sport), format!(":{}", ends.dport))
        };
        let xp = if r.proto == "icmp" {
            format!(" id={}", ends.translated_sport)
        } else {
            format!(":{}", ends.translated_sport)
        };
        t.add_row(vec![
            r.direction.clone(),
            r.proto.clone(),
            format!("{}{}", r.state, if r.complete { "" } else { " (half)" }),
            r.namespace.clone().unwrap_or_else(|| "-".into()),
            format!("{}{sp} -> {}{dp}", ends.src, ends.dst),
            format!("{}{xp}", ends.translated_src),
            decode::duration(std::time::Duration::from_millis(r.age_ms)),
            decode::duration(std::time::Duration::from_millis(r.expires_in_ms)),
        ]);
    }
    format!("{t}\n{} translation(s)\n", rows.len())
}
