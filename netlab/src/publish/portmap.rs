//! The kernel datapath's publications: iptables DNAT the way CNI `portmap`
//! writes it, so the baseline behaves like the tools users know and the
//! two datapaths can be compared.
//!
//! Per published port, in the host side's `nat` table:
//! * `PREROUTING`: packets arriving for a local address (`-m addrtype
//!   --dst-type LOCAL`, or the one host address of the spec) and the host
//!   port are DNATed to the namespace's address and port;
//! * `OUTPUT`: the same for the host side's own connections (to its uplink
//!   address, to 127.0.0.1);
//! * `POSTROUTING`, hairpin: DNATed packets from the lab subnet to the
//!   namespace (another namespace, or the namespace itself, through the
//!   host address) are masqueraded to the gateway address, or the reply
//!   would go straight back over the bridge with the wrong source;
//! * `POSTROUTING`, localhost: DNATed packets from 127.0.0.0/8 are
//!   masqueraded too (a namespace cannot answer 127.0.0.1), and the
//!   gateway device gets `route_localnet=1` so the kernel routes them at all.
//!
//! Each rule carries the comment `netlab:<lab>` and is recorded in the
//! state file before it is added, so `unpublish` and `down` remove exactly
//! it (`iptables -D` with the same arguments).

use crate::plan::{LabPlan, PublishedPort};

/// One iptables rule: table, chain, and the match/target arguments.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub table: String,
    pub chain: String,
    pub args: Vec<String>,
}

fn proto_name(n: u8) -> &'static str {
    if n == 17 { "udp" } else { "tcp" }
}

/// The rules for `ports` on `plan`'s lab, in the order they are added.
pub fn rules(plan: &LabPlan, ports: &[PublishedPort]) -> Vec<Rule> {
    let comment = format!("netlab:{}", plan.name);
    let mut out = Vec::new();
    let rule = |chain: &str, args: Vec<String>| Rule {
        table: "nat".into(),
        chain: chain.into(),
        args,
    };
    for p in ports {
        let proto = proto_name(p.protocol).to_string();
        let dest = match p.host_address {
            Some(a) => vec!["-d".to_string(), format!("{a}/32")],
            None => ["-m", "addrtype", "--dst-type", "LOCAL"]
                .map(str::to_string)
                .to_vec(),
        };
        let dnat = |chain: &str| {
            let mut args = vec!["-p".to_string(), proto.clone()];
            args.extend(dest.iter().cloned());
            args.extend([
                "--dport".to_string(),
                p.host_port.to_string(),
                "-m".into(),
                "comment".into(),
                "--comment".into(),
                comment.clone(),
                "-j".into(),
                "DNAT".into(),
                "--to-destination".into(),
                format!("{}:{}", p.address, p.port),
            ]);
            rule(chain, args)
        };
        out.push(dnat("PREROUTING"));
        out.push(dnat("OUTPUT"));
        for source in [plan.subnet.to_string(), "127.0.0.0/8".to_string()] {
            out.push(rule(
                "POSTROUTING",
                vec![
                    "-s".into(),
                    source,
                    "-d".into(),
                    format!("{}/32", p.address),
                    "-p".into(),
                    proto.clone(),
                    "--dport".into(),
                    p.port.to_string(),
                    "-m".into(),
                    "conntrack".into(),
                    "--ctstate".into(),
                    "DNAT".into(),
                    "-m".into(),
                    "comment".into(),
                    "--comment".into(),
                    comment.clone(),
                    "-j".into(),
                    "MASQUERADE".into(),
                ],
            ));
        }
    }
    out
}

/// The sysctl that lets the kernel route DNATed 127.0.0.1 traffic out of
/// the gateway device (as portmap sets it on the bridge).
pub fn route_localnet_key(plan: &LabPlan) -> String {
    format!("net.ipv4.conf.{}.route_localnet", plan.gateway_device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LabConfig;
    use std::net::Ipv4Addr;

    #[test]
    fn portmap_rules_for_one_port() {
        let plan = LabConfig::default().resolve().unwrap();
        let port = PublishedPort {
            host_address: None,
            host_port: 8080,
            protocol: 6,
            address: Ipv4Addr::new(192, 168, 28, 1),
            port: 80,
        };
        let r = rules(&plan, &[port]);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].chain, "PREROUTING");
        assert_eq!(
            r[0].args.join(" "),
            "-p tcp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment netlab:netlab -j DNAT --to-destination 192.168.28.1:80"
        );
        assert_eq!(r[1].chain, "OUTPUT");
        assert!(
            r[2].args
                .join(" ")
                .starts_with("-s 192.168.28.0/24 -d 192.168.28.1/32")
        );
        assert!(r[3].args.join(" ").starts_with("-s 127.0.0.0/8"));
    }
}
