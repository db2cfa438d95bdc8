//! `netlab nat list`: the source NAT's translations, in the spirit of
//! `conntrack -L`: protocol, state, original tuple, the translated source
//! the remote side sees, age and time left before expiry. IPv4 and NAT66
//! flows are listed together (IPv4 first); the table writes IPv6 ends as
//! `[addr]:port`, the JSON has the same fields plus `family`.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context as _, bail};
use netlab_common::{
    nat::{NAT_ORIG_MAP, NAT_REPLY_MAP},
    nat6::{NAT6_ORIG_MAP, NAT6_REPLY_MAP},
};
use serde::Serialize;

use super::{Lab, decode};
use crate::nat::{AnyFlow, NatTables};

/// Which flows to show (all when every field is None).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Flows from this endpoint namespace.
    pub namespace: Option<String>,
    /// `tcp`, `udp`, `icmp` or a protocol number.
    pub proto: Option<String>,
    /// Flows where this address appears (original source, remote or
    /// translated); IPv4 or IPv6.
    pub address: Option<IpAddr>,
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

impl From<&AnyFlow> for FlowEnds {
    fn from(f: &AnyFlow) -> Self {
        let a = f.addrs();
        FlowEnds {
            src: a.orig_src.ip().to_string(),
            sport: a.orig_src.port(),
            dst: a.remote.ip().to_string(),
            dport: a.remote.port(),
            translated_src: a.translated.ip().to_string(),
            translated_sport: a.translated.port(),
        }
    }
}

/// One translation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NatRow {
    /// "out": masquerade (a namespace's connection leaving the lab);
    /// "in": a published port (a client's connection coming in).
    pub direction: String,
    /// `ipv4` or `ipv6` (NAT66).
    pub family: String,
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
    /// The namespace's addresses (IPv4, and IPv6 when the lab has it).
    namespace_addrs: Option<Vec<IpAddr>>,
    proto: Option<u8>,
    address: Option<IpAddr>,
}

/// Every address of the endpoint or CNI container `ns` (None: no such).
fn addresses_of(lab: &Lab, ns: &str) -> Option<Vec<IpAddr>> {
    if let Some(e) = lab.plan.endpoint(ns) {
        return Some(
            [Some(IpAddr::from(e.address)), e.address6.map(IpAddr::from)]
                .into_iter()
                .flatten()
                .collect(),
        );
    }
    lab.plan
        .containers
        .find_by_name(ns)
        .map(|c| vec![IpAddr::from(c.address)])
}

/// The endpoint namespace (or container) a flow's original source is.
fn namespace_of(lab: &Lab, src: IpAddr) -> Option<String> {
    lab.plan
        .endpoints
        .iter()
        .find(|e| IpAddr::from(e.address) == src || e.address6.map(IpAddr::from) == Some(src))
        .map(|e| e.namespace.clone())
        .or_else(|| match src {
            IpAddr::V4(a) => lab.plan.containers.by_address(a).map(|c| c.label()),
            IpAddr::V6(_) => None,
        })
}

fn resolve(lab: &Lab, f: &Filter) -> anyhow::Result<Resolved> {
    let namespace_addrs = match &f.namespace {
        None => None,
        Some(ns) => Some(addresses_of(lab, ns).with_context(|| {
            format!(
                "namespace {ns} is not an endpoint or a CNI container of lab {}; its endpoints: {}",
                lab.name,
                lab.plan
                    .endpoints
                    .iter()
                    .map(|e| e.namespace.clone())
                    .chain(
                        lab.plan
                            .containers
                            .attachments
                            .iter()
                            .map(|c| c.short_id().to_string())
                    )
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
    };
    let proto = match &f.proto {
        None => None,
        Some(p) => Some(decode::parse_proto(p).map_err(anyhow::Error::msg)?),
    };
    Ok(Resolved {
        namespace_addrs,
        proto,
        address: f.address,
    })
}

fn keep(flow: &AnyFlow, r: &Resolved) -> bool {
    let a = flow.addrs();
    let is = |s: SocketAddr, ip: IpAddr| s.ip() == ip;
    r.namespace_addrs
        .as_ref()
        .is_none_or(|addrs| addrs.iter().any(|ip| is(a.orig_src, *ip)))
        && r.proto.is_none_or(|p| flow.proto().number() == p)
        && r.address
            .is_none_or(|ip| is(a.orig_src, ip) || is(a.remote, ip) || is(a.translated, ip))
}

/// The lab's NAT tables (IPv4, and NAT66 when pinned), opened after
/// checking that the pinned maps have this build's layout (so nothing is
/// misread, or deleted by a wrong key).
pub fn open_table(lab: &Lab) -> anyhow::Result<NatTables> {
    if !lab.dir.join(NAT_ORIG_MAP).exists() {
        bail!(
            "lab {} has no source NAT (no {NAT_ORIG_MAP} map pinned)",
            lab.name
        );
    }
    for map in [NAT_ORIG_MAP, NAT_REPLY_MAP] {
        super::maps::open(lab, map)?.check_layout()?;
    }
    if lab.dir.join(NAT6_ORIG_MAP).exists() {
        for map in [NAT6_ORIG_MAP, NAT6_REPLY_MAP] {
            super::maps::open(lab, map)?.check_layout()?;
        }
    }
    Ok(NatTables::open(&lab.dir)?)
}

/// The flows `filter` selects, sorted for display. The filter is checked
/// (namespace, protocol) before the table is read.
pub fn flows(lab: &Lab, table: &NatTables, filter: &Filter) -> anyhow::Result<Vec<AnyFlow>> {
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
            direction: if f.dnat() { "in" } else { "out" }.into(),
            family: f.family().into(),
            proto: f.proto().to_string(),
            state: f.state().to_string(),
            namespace: namespace_of(lab, f.addrs().orig_src.ip()),
            ends: FlowEnds::from(f),
            age_ms: f.age(now).as_millis() as u64,
            expires_in_ms: f.expires_in(now, timeouts).as_millis() as u64,
            complete: f.complete(),
        })
        .collect())
}

/// `addr:port`, `[addr]:port` for IPv6, or `addr id=N` for an ICMP echo.
fn end(addr: &str, port: u16, icmp: bool, with_port: bool) -> String {
    let v6 = addr.contains(':');
    match (icmp, with_port, v6) {
        (true, true, _) => format!("{addr} id={port}"),
        (true, false, _) => addr.to_string(),
        (false, _, true) => format!("[{addr}]:{port}"),
        (false, _, false) => format!("{addr}:{port}"),
    }
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
        let icmp = r.proto == "icmp" || r.proto == "icmpv6";
        t.add_row(vec![
            r.direction.clone(),
            r.proto.clone(),
            format!("{}{}", r.state, if r.complete { "" } else { " (half)" }),
            r.namespace.clone().unwrap_or_else(|| "-".into()),
            format!(
                "{} -> {}",
                end(&ends.src, ends.sport, icmp, true),
                end(&ends.dst, ends.dport, icmp, false)
            ),
            end(&ends.translated_src, ends.translated_sport, icmp, true),
            decode::duration(std::time::Duration::from_millis(r.age_ms)),
            decode::duration(std::time::Duration::from_millis(r.expires_in_ms)),
        ]);
    }
    format!("{t}\n{} translation(s)\n", rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(family: &str, proto: &str, src: &str, dst: &str, x: &str) -> NatRow {
        NatRow {
            direction: "out".into(),
            family: family.into(),
            proto: proto.into(),
            state: "-".into(),
            namespace: Some("ns1".into()),
            ends: FlowEnds {
                src: src.into(),
                sport: 5000,
                dst: dst.into(),
                dport: 53,
                translated_src: x.into(),
                translated_sport: 20001,
            },
            age_ms: 1500,
            expires_in_ms: 28_500,
            complete: true,
        }
    }

    #[test]
    fn ipv6_ends_are_bracketed_and_icmp_shows_ids() {
        let out = render(&[
            row("ipv4", "udp", "10.0.0.1", "203.0.113.2", "203.0.113.1"),
            row(
                "ipv6",
                "udp",
                "fd00:10::1",
                "2001:db8:203:113::2",
                "2001:db8:203:113::1",
            ),
            row(
                "ipv6",
                "icmpv6",
                "fd00:10::1",
                "2001:db8:203:113::2",
                "2001:db8:203:113::1",
            ),
        ]);
        assert!(
            out.contains("10.0.0.1:5000 -> 203.0.113.2:53") && out.contains("203.0.113.1:20001"),
            "{out}"
        );
        assert!(
            out.contains("[fd00:10::1]:5000 -> [2001:db8:203:113::2]:53")
                && out.contains("[2001:db8:203:113::1]:20001"),
            "{out}"
        );
        assert!(
            out.contains("fd00:10::1 id=5000 -> 2001:db8:203:113::2 ")
                && out.contains("2001:db8:203:113::1 id=20001"),
            "{out}"
        );
        assert!(out.ends_with("3 translation(s)\n"), "{out}");
        let json = serde_json::to_value(row(
            "ipv6",
            "udp",
            "fd00:10::1",
            "2001:db8::2",
            "2001:db8::1",
        ))
        .unwrap();
        assert_eq!(json["family"], "ipv6");
        assert_eq!(json["src"], "fd00:10::1");
        assert_eq!(json["translated_sport"], 20001);
    }
}
