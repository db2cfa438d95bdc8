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
    /// "0.0.0.0" when published on every host address.
    pub host_address: String,
    pub host_ports: String,
    pub address: String,
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
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
                .to_string(),
            host_ports: p.spec.host_ports.to_string(),
            address: plan
                .endpoint(&p.namespace)
                .map(|e| e.address.to_string())
                .unwrap_or_default(),
            ports: p.spec.ports.to_string(),
        })
        .collect()
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
        t.add_row([
            r.namespace.clone(),
            format!("{}:{}", r.host_address, r.host_ports),
            format!("{}:{}", r.address, r.ports),
            r.protocol.clone(),
        ]);
    }
    format!("{t}\n")
}
