//! `netlab nat flush` and `netlab nat delete`.

use serde::Serialize;

use crate::bpf::key::ipv4_key;
use crate::inspect::natlist::{self, FlowEnds};
use crate::inspect::{Lab, keys, print_json};
use crate::nat::{NatFlow, NatTable, Proto};

#[derive(Clone, Debug, clap::Args)]
pub struct NatFlushArgs {
    /// Only the flows from this endpoint namespace.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Only this protocol: tcp, udp, icmp (or a number).
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
    /// 0 as the destination's), e.g. `udp 192.168.28.1:5000 203.0.113.2:53`.
    #[arg(num_args = 3, required = true, value_names = ["PROTO", "SRC:PORT", "DST:PORT"])]
    pub flow: Vec<String>,
    /// Print what was removed as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A removed flow (`--json`: the elements of `flows`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemovedFlow {
    pub proto: String,
    #[serde(flatten)]
    pub ends: FlowEnds,
}

/// `--json` of both commands: `{"removed": N, "flows": [...],
/// "removed6": M}` (`removed6`: NAT66 flows, counted, not listed: listing
/// IPv6 flows is `nat list`'s).
#[derive(Clone, Debug, Serialize)]
pub struct Removed {
    pub removed: usize,
    pub flows: Vec<RemovedFlow>,
    pub removed6: usize,
}

fn removed_flow(f: &NatFlow) -> RemovedFlow {
    RemovedFlow {
        proto: f.proto.to_string(),
        ends: FlowEnds::from(f),
    }
}

fn describe(f: &RemovedFlow) -> String {
    let e = &f.ends;
    format!(
        "{} {}:{} -> {}:{} (translated {}:{})",
        f.proto, e.src, e.sport, e.dst, e.dport, e.translated_src, e.translated_sport
    )
}

fn remove(table: &mut NatTable, flows: &[NatFlow]) -> anyhow::Result<Removed> {
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
        removed6: 0,
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
    let mut removed = remove(&mut table, &flows)?;
    // NAT66's flows too, unless only one namespace's are asked for (its
    // IPv6 flows are named by its IPv6 address, which `nat list` shows).
    if args.namespace.is_none() {
        let proto = match &args.proto {
            Some(p) => Some(crate::inspect::decode::parse_proto(p).map_err(anyhow::Error::msg)?),
            None => None,
        };
        removed.removed6 = crate::nat::flush6(&lab.dir, proto)?;
    }
    Ok(removed)
}

/// Removes one flow, named by its original tuple.
pub fn delete(lab: &Lab, args: &NatDeleteArgs) -> anyhow::Result<Removed> {
    let words: Vec<&str> = args.flow.iter().map(String::as_str).collect();
    let key = keys::nat_key(&words).map_err(|e| anyhow::anyhow!("bad flow: {e}"))?;
    let mut table = natlist::open_table(lab)?;
    let wanted = |f: &NatFlow| {
        let (src, dst) = (f.orig_src, f.remote);
        Proto::from_number(key.proto) == f.proto
            && ipv4_key(*src.ip()) == key.saddr
            && src.port() == u16::from_be(key.sport)
            && ipv4_key(*dst.ip()) == key.daddr
            && dst.port() == u16::from_be(key.dport)
    };
    let flows: Vec<NatFlow> = table.flows()?.into_iter().filter(wanted).collect();
    if flows.is_empty() {
        anyhow::bail!(
            "lab {} has no NAT flow {} (see `netlab nat list`)",
            lab.name,
            words.join(" ")
        );
    }
    remove(&mut table, &flows)
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
    if r.removed6 > 0 {
        println!("{what}: {} IPv6 (NAT66) flows removed too", r.removed6);
    }
    Ok(())
}
