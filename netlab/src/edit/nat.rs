//! `netlab nat flush` and `netlab nat delete`, for IPv4 and NAT66 flows
//! alike (a flow named with IPv6 addresses, `[addr]:port`, is a NAT66 one).

use serde::Serialize;

use crate::inspect::keys::{self, AnyNatKey};
use crate::inspect::natlist::{self, FlowEnds};
use crate::inspect::{Lab, print_json};
use crate::nat::{AnyFlow, NatTables};

#[derive(Clone, Debug, clap::Args)]
pub struct NatFlushArgs {
    /// Only the flows from this endpoint namespace.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Only this protocol: tcp, udp, icmp, icmpv6 (or a number).
    #[arg(long, value_name = "PROTO")]
    pub proto: Option<String>,
    /// Print what was removed as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, clap::Args)]
pub struct NatDeleteArgs {
    /// The flow as `nat list` shows it, as the endpoint sent it:
    /// PROTO SRC:PORT DST:PORT (ICMP echo: the echo id as the source port,
    /// 0 as the destination's), e.g. `udp 192.168.28.1:5000 203.0.113.2:53`;
    /// IPv6 (NAT66) as `[ADDR]:PORT`, e.g. `udp [fd00:192:168:28::1]:5000
    /// [2001:db8:203:113::2]:53`.
    #[arg(num_args = 3, required = true, value_names = ["PROTO", "SRC:PORT", "DST:PORT"])]
    pub flow: Vec<String>,
    /// Print what was removed as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A removed flow (`--json`: the elements of `flows`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemovedFlow {
    /// `ipv4` or `ipv6`.
    pub family: String,
    pub proto: String,
    #[serde(flatten)]
    pub ends: FlowEnds,
}

/// `--json` of both commands: `{"removed": N, "flows": [...]}` (IPv4 and
/// NAT66 flows alike, each with its `family`).
#[derive(Clone, Debug, Serialize)]
pub struct Removed {
    pub removed: usize,
    pub flows: Vec<RemovedFlow>,
}

fn removed_flow(f: &AnyFlow) -> RemovedFlow {
    RemovedFlow {
        family: f.family().to_string(),
        proto: f.proto().to_string(),
        ends: FlowEnds::from(f),
    }
}

fn describe(f: &RemovedFlow) -> String {
    let e = &f.ends;
    // `[addr]:port` for IPv6, as socket addresses are written.
    let end = |a: &str, p: u16| match a.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, p).to_string(),
        Err(_) => format!("{a}:{p}"),
    };
    format!(
        "{} {} -> {} (translated {})",
        f.proto,
        end(&e.src, e.sport),
        end(&e.dst, e.dport),
        end(&e.translated_src, e.translated_sport)
    )
}

fn remove(table: &mut NatTables, flows: &[AnyFlow]) -> anyhow::Result<Removed> {
    let mut out = Vec::new();
    for f in flows {
        // A flow expired or deleted since it was read is not counted.
        if table.remove_flow(f)? {
            out.push(removed_flow(f));
        }
    }
    Ok(Removed {
        removed: out.len(),
        flows: out,
    })
}

/// Removes every flow the filters select (all without filters).
pub fn flush(lab: &Lab, args: &NatFlushArgs) -> anyhow::Result<Removed> {
    let filter = natlist::Filter {
        namespace: args.namespace.clone(),
        proto: args.proto.clone(),
        address: None,
    };
    let mut table = natlist::open_table(lab)?;
    let flows = natlist::flows(lab, &table, &filter)?;
    // NAT66's flows are among them (a namespace's by its IPv6 address too).
    remove(&mut table, &flows)
}

/// Removes one flow, named by its original tuple.
pub fn delete(lab: &Lab, args: &NatDeleteArgs) -> anyhow::Result<Removed> {
    let words: Vec<&str> = args.flow.iter().map(String::as_str).collect();
    let key = keys::any_nat_key(&words).map_err(|e| anyhow::anyhow!("bad flow: {e}"))?;
    let mut table = natlist::open_table(lab)?;
    if matches!(key, AnyNatKey::V6(_)) && table.v6.is_none() {
        anyhow::bail!(
            "lab {} has no NAT66 table (no nat6_orig map pinned): {} names an IPv6 flow",
            lab.name,
            words.join(" ")
        );
    }
    // The flow whose original tuple is the key, in its family's table.
    let wanted = |f: &AnyFlow| match (f, &key) {
        (AnyFlow::V4(f), AnyNatKey::V4(k)) => orig_tuple(f) == *k,
        (AnyFlow::V6(f), AnyNatKey::V6(k)) => orig_tuple6(f) == *k,
        _ => false,
    };
    let flows: Vec<AnyFlow> = table.flows()?.into_iter().filter(wanted).collect();
    if flows.is_empty() {
        anyhow::bail!(
            "lab {} has no NAT flow {} (see `netlab nat list`)",
            lab.name,
            words.join(" ")
        );
    }
    remove(&mut table, &flows)
}

/// The original tuple of an IPv4 flow as a key (a half flow whose orig
/// entry is gone has only its reply key).
fn orig_tuple(f: &crate::nat::NatFlow) -> netlab_common::nat::NatKey {
    netlab_common::nat::NatKey {
        saddr: crate::bpf::key::ipv4_key(*f.orig_src.ip()),
        daddr: crate::bpf::key::ipv4_key(*f.remote.ip()),
        sport: f.orig_src.port().to_be(),
        dport: f.remote.port().to_be(),
        proto: f.proto.number(),
        _pad: [0; 3],
    }
}

/// [`orig_tuple`] of a NAT66 flow.
fn orig_tuple6(f: &crate::nat::Nat6Flow) -> netlab_common::nat6::Nat6Key {
    netlab_common::nat6::Nat6Key {
        saddr: f.orig_src.ip().octets(),
        daddr: f.remote.ip().octets(),
        sport: f.orig_src.port().to_be(),
        dport: f.remote.port().to_be(),
        proto: f.proto.number(),
        _pad: [0; 3],
    }
}

pub fn print(r: &Removed, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        return print_json(r);
    }
    for f in &r.flows {
        println!("removed {}", describe(f));
    }
    println!(
        "{what}: {} flow{} removed; their ports are free again",
        r.removed,
        if r.removed == 1 { "" } else { "s" }
    );
    Ok(())
}
