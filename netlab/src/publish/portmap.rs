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

use std::fmt::Display;
use std::net::Ipv6Addr;

use crate::plan::{LabPlan, PublishedPort};

/// One iptables rule: table, chain, and the match/target arguments; an
/// ip6tables rule when `ipv6`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub ipv6: bool,
    pub table: String,
    pub chain: String,
    pub args: Vec<String>,
}

fn proto_name(n: u8) -> &'static str {
    if n == 17 { "udp" } else { "tcp" }
}

/// What differs between the iptables and the ip6tables rules.
struct Family {
    ipv6: bool,
    /// Host-route prefix length: 32 or 128.
    host_len: u8,
    /// The lab subnet, as `-s` takes it.
    subnet: String,
    /// The loopback network: 127.0.0.0/8 or ::1/128.
    loopback: &'static str,
}

impl Family {
    /// `--to-destination`: `a:port`, `[a]:port` for IPv6.
    fn target(&self, address: impl Display, port: u16) -> String {
        if self.ipv6 {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        }
    }
}

/// The rules for `ports` (IPv4) and `ports6` (IPv6) on `plan`'s lab, in
/// the order they are added.
///
/// IPv6 differs in one point: there is no `route_localnet` for IPv6, the
/// kernel never routes a packet from `::1` off the host, so a DNAT of the
/// host side's own connections to `[::1]` cannot work (Docker serves
/// those with its userland proxy). The IPv6 `OUTPUT` rule of a
/// publication on every address therefore leaves `::1` alone (`! -d
/// ::1/128`, as Docker's own `OUTPUT` jump does): a client of `[::1]:PORT`
/// is refused at once instead of waiting for a DNATed packet that never
/// leaves; the lab file refuses `[::1]` as a host address on this
/// datapath (`plan::publish`).
pub fn rules(
    plan: &LabPlan,
    ports: &[PublishedPort],
    ports6: &[PublishedPort<Ipv6Addr>],
) -> Vec<Rule> {
    let mut out = Vec::new();
    let v4 = Family {
        ipv6: false,
        host_len: 32,
        subnet: plan.subnet.to_string(),
        loopback: "127.0.0.0/8",
    };
    for p in ports {
        family_rules(plan, &v4, p, &mut out);
    }
    if let Some(v6) = plan.ipv6 {
        let v6 = Family {
            ipv6: true,
            host_len: 128,
            subnet: v6.subnet.to_string(),
            loopback: "::1/128",
        };
        for p in ports6 {
            family_rules(plan, &v6, p, &mut out);
        }
    }
    out
}

/// The four rules of one published port in family `f`.
fn family_rules<A: Display + Copy>(
    plan: &LabPlan,
    f: &Family,
    p: &PublishedPort<A>,
    out: &mut Vec<Rule>,
) {
    let comment = format!("netlab:{}", plan.name);
    let rule = |chain: &str, args: Vec<String>| Rule {
        ipv6: f.ipv6,
        table: "nat".into(),
        chain: chain.into(),
        args,
    };
    let proto = proto_name(p.protocol).to_string();
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let dest = |chain: &str| match p.host_address {
        Some(a) => vec!["-d".to_string(), format!("{a}/{}", f.host_len)],
        None if f.ipv6 && chain == "OUTPUT" => {
            let mut v = strings(&["!", "-d", f.loopback]);
            v.extend(strings(&["-m", "addrtype", "--dst-type", "LOCAL"]));
            v
        }
        None => strings(&["-m", "addrtype", "--dst-type", "LOCAL"]),
    };
    let dnat = |chain: &str| {
        let mut args = vec!["-p".to_string(), proto.clone()];
        args.extend(dest(chain));
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
            f.target(p.address, p.port),
        ]);
        rule(chain, args)
    };
    out.push(dnat("PREROUTING"));
    out.push(dnat("OUTPUT"));
    let sources = if f.ipv6 {
        vec![f.subnet.clone()]
    } else {
        vec![f.subnet.clone(), f.loopback.to_string()]
    };
    for source in sources {
        out.push(rule(
            "POSTROUTING",
            vec![
                "-s".into(),
                source,
                "-d".into(),
                format!("{}/{}", p.address, f.host_len),
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
        let r = rules(&plan, &[port], &[]);
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
        assert!(r.iter().all(|r| !r.ipv6));
    }

    #[test]
    fn ip6tables_twins_for_an_ipv6_port() {
        let mut plan = LabConfig::default().resolve().unwrap();
        plan.ipv6 = Some(crate::plan::Ipv6Plan {
            subnet: "fd00:192:168:28::/64".parse().unwrap(),
            gateway: "fd00:192:168:28::5".parse().unwrap(),
        });
        let port = |host_address| PublishedPort::<Ipv6Addr> {
            host_address,
            host_port: 8080,
            protocol: 17,
            address: "fd00:192:168:28::1".parse().unwrap(),
            port: 80,
        };
        let r = rules(&plan, &[], &[port(None)]);
        assert_eq!(
            r.len(),
            3,
            "no localhost masquerade: IPv6 has no route_localnet"
        );
        assert!(r.iter().all(|r| r.ipv6));
        assert_eq!(
            r[0].args.join(" "),
            "-p udp -m addrtype --dst-type LOCAL --dport 8080 -m comment --comment netlab:netlab -j DNAT --to-destination [fd00:192:168:28::1]:80"
        );
        assert!(
            r[1].args
                .join(" ")
                .starts_with("-p udp ! -d ::1/128 -m addrtype --dst-type LOCAL --dport 8080")
        );
        assert!(
            r[2].args
                .join(" ")
                .starts_with("-s fd00:192:168:28::/64 -d fd00:192:168:28::1/128 -p udp --dport 80")
        );
        let r = rules(
            &plan,
            &[],
            &[port(Some("2001:db8:203:113::1".parse().unwrap()))],
        );
        assert!(
            r[1].args
                .join(" ")
                .starts_with("-p udp -d 2001:db8:203:113::1/128 --dport 8080")
        );
        plan.ipv6 = None;
        assert!(rules(&plan, &[], &[port(None)]).is_empty());
    }
}
