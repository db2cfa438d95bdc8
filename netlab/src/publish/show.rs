//! `netlab ports`: the lab's published ports, like `docker port`, as a
//! table or JSON.

use serde::Serialize;

use crate::plan::LabPlan;

/// One published spec as `netlab ports --json` prints it.
#[derive(Debug, Serialize)]
pub struct PortRow {
    pub namespace: String,
    pub spec: String,
    pub protocol: String,
    /// "0.0.0.0" when published on every host address (IPv4 and IPv6).
    pub host_address: String,
    pub host_ports: String,
    /// The namespace's address the port leads to: IPv4, or IPv6 when the
    /// host address is IPv6.
    pub address: String,
    /// A publication on every host address also leads to the namespace's
    /// IPv6 address (when it has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address6: Option<String>,
    pub ports: String,
}

/// The rows of `plan`'s publications.
pub fn rows(plan: &LabPlan) -> Vec<PortRow> {
    plan.publications
        .iter()
        .map(|p| PortRow {
            namespace: p.namespace.clone(),
            spec: p.spec.to_string(),
            protocol: p.spec.protocol.to_string(),
            host_address: p
                .spec
                .host_address
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
                .to_string(),
            host_ports: p.spec.host_ports.to_string(),
            address: plan
                .endpoint(&p.namespace)
                .map(|e| match (p.spec.host_address, e.address6) {
                    (Some(std::net::IpAddr::V6(_)), Some(a6)) => a6.to_string(),
                    _ => e.address.to_string(),
                })
                .unwrap_or_default(),
            address6: plan
                .endpoint(&p.namespace)
                .and_then(|e| e.address6)
                .filter(|_| p.spec.host_address.is_none())
                .map(|a6| a6.to_string()),
            ports: p.spec.ports.to_string(),
        })
        .collect()
}

/// An IPv6 address in brackets, as it is written before `:PORT`.
fn bracketed(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}

/// The text `netlab ports [--json]` prints.
pub fn render(plan: &LabPlan, json: bool) -> String {
    let rows = rows(plan);
    if json {
        return serde_json::to_string_pretty(&rows).expect("rows serialize") + "\n";
    }
    if rows.is_empty() {
        return format!("lab {} publishes no ports\n", plan.name);
    }
    let mut t = crate::inspect::table(["namespace", "published on", "to", "protocol"]);
    for r in &rows {
        let mut to = format!("{}:{}", bracketed(&r.address), r.ports);
        if let Some(a6) = &r.address6 {
            to.push_str(&format!(", [{a6}]:{}", r.ports));
        }
        t.add_row([
            r.namespace.clone(),
            format!("{}:{}", bracketed(&r.host_address), r.host_ports),
            to,
            r.protocol.clone(),
        ]);
    }
    format!("{t}\n")
}
