//! The CNI wire types: network configuration in, results out, written with
//! serde (the Rust CNI crates stop at spec 1.0 and are unmaintained).
//!
//! Versions: 0.4.0, 1.0.0 and 1.1.0. A result is kept in one shape here
//! and written in the version the runtime asked for: 0.4.0 gives each IP a
//! `version` ("4"/"6"), 1.0.0 dropped it; 1.1.0 added route fields that
//! pass through untouched when a `prevResult` carries them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{CniError, code};
use crate::plan::{PortSpec, Protocol};
use std::net::{IpAddr, Ipv4Addr};

/// Spec versions this plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.4.0", "1.0.0", "1.1.0"];
/// GC and STATUS exist from this version on.
pub const GC_STATUS_SINCE: &str = "1.1.0";
/// The plugin's own `type`.
pub const PLUGIN_TYPE: &str = "netlab-cni";

/// Whether `v` is at least `min` (both `x.y.z`).
pub fn version_at_least(v: &str, min: &str) -> bool {
    let parse = |s: &str| -> Vec<u32> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(v) >= parse(min)
}

/// One `(CNI_CONTAINERID, CNI_IFNAME)` pair in GC's list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRef {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// One `runtimeConfig.portMappings` entry (podman `-p HOST:CONTAINER`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
}

/// The plugin configuration on stdin. Keys the runtime adds that netlab
/// does not use (`capabilities`, `args`, …) are ignored, as the spec asks.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    /// The network's name.
    pub name: String,
    #[serde(rename = "type")]
    pub plugin_type: String,
    /// The lab this network is; default: the network's name.
    #[serde(default)]
    pub lab: Option<String>,
    /// The lab file used when ADD has to create the lab.
    #[serde(default)]
    pub lab_file: Option<PathBuf>,
    /// Returned in the result as is.
    #[serde(default)]
    pub dns: Option<Dns>,
    /// The lab allocates addresses itself; an `ipam` section is refused.
    #[serde(default)]
    pub ipam: Option<Value>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// GC: the attachments that stay.
    #[serde(default, rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<AttachmentRef>>,
    /// GC, as libcni 1.2 spells it.
    #[serde(default, rename = "cni.dev/attachments")]
    pub attachments: Option<Vec<AttachmentRef>>,
}

impl NetConf {
    /// Parses and validates the configuration: JSON (code 6), version
    /// (code 1), fields (codes 2 and 7).
    pub fn parse(bytes: &[u8]) -> Result<Self, CniError> {
        let conf: NetConf = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                "cannot decode the network configuration",
                e.to_string(),
            )
        })?;
        if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                "incompatible CNI version",
                format!(
                    "cniVersion {:?} is not supported; netlab-cni speaks {}",
                    conf.cni_version,
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }
        if conf.plugin_type != PLUGIN_TYPE {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                "invalid network configuration",
                format!(
                    "type = {:?}: this plugin is {PLUGIN_TYPE:?}",
                    conf.plugin_type
                ),
            ));
        }
        if let Some(ipam) = &conf.ipam {
            return Err(CniError::new(
                code::UNSUPPORTED_FIELD,
                "unsupported field in the network configuration",
                format!(
                    "ipam = {ipam}: the lab allocates the addresses from its subnet; remove ipam"
                ),
            ));
        }
        Ok(conf)
    }

    /// `runtimeConfig.portMappings` as published-port specs. An address
    /// of "" or 0.0.0.0 means every host address; IPv6 host addresses and
    /// protocols other than tcp and udp are refused (code 2), naming them.
    pub fn port_specs(&self) -> Result<Vec<PortSpec>, CniError> {
        let unsupported = |m: &PortMapping, why: String| {
            CniError::new(
                code::UNSUPPORTED_FIELD,
                "unsupported port mapping",
                format!(
                    "runtimeConfig.portMappings {}:{}/{}: {why}",
                    m.host_port, m.container_port, m.protocol
                ),
            )
        };
        self.runtime_config
            .port_mappings
            .iter()
            .map(|m| {
                let protocol: Protocol = m.protocol.parse().map_err(|e| unsupported(m, e))?;
                let host_address = match m.host_ip.as_deref() {
                    None | Some("") | Some("0.0.0.0") => None,
                    // Containers get no IPv6 address (the plugin's IPAM
                    // is IPv4 only), so an IPv6 hostIP has nowhere to go.
                    Some(ip) => Some(IpAddr::V4(ip.parse::<Ipv4Addr>().map_err(|_| {
                        unsupported(m, format!("hostIP {ip:?} is not an IPv4 address"))
                    })?)),
                };
                if m.host_port == 0 || m.container_port == 0 {
                    return Err(unsupported(m, "port 0".into()));
                }
                Ok(PortSpec {
                    host_address,
                    ..PortSpec::new(m.host_port, m.container_port, protocol)
                })
            })
            .collect()
    }

    /// The lab's name: `lab`, else the network's name.
    pub fn lab_name(&self) -> &str {
        self.lab.as_deref().unwrap_or(&self.name)
    }

    /// GC's list of attachments that stay (either spelling; none = none stay).
    pub fn valid_attachments(&self) -> Vec<AttachmentRef> {
        self.valid_attachments
            .clone()
            .or_else(|| self.attachments.clone())
            .unwrap_or_default()
    }

    /// `prevResult`, decoded (code 6 when it is not a result).
    pub fn prev_result(&self) -> Result<Option<AddResult>, CniError> {
        self.prev_result
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| {
                serde_json::from_value(v.clone()).map_err(|e| {
                    CniError::new(
                        code::DECODE_FAILURE,
                        "cannot decode prevResult",
                        e.to_string(),
                    )
                })
            })
            .transpose()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Fields of other versions or plugins, passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpConfig {
    /// 0.4.0 only ("4" or "6").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// CIDR notation: the address and the subnet's prefix length.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    /// 1.1.0's mtu, advmss, priority, table, scope: passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    fn is_empty(&self) -> bool {
        *self == Dns::default()
    }
}

/// ADD's result, version-neutral (also `prevResult` as read).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AddResult {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

impl AddResult {
    /// Appends `mine` (this plugin's interfaces, IPs, routes, DNS) to a
    /// chained `prevResult`, re-pointing its IPs' interface indexes.
    pub fn chain(mut self, mine: AddResult) -> AddResult {
        let offset = self.interfaces.len();
        self.interfaces.extend(mine.interfaces);
        self.ips.extend(mine.ips.into_iter().map(|mut ip| {
            ip.interface = ip.interface.map(|i| i + offset);
            ip
        }));
        self.routes.extend(mine.routes);
        if self.dns.is_empty() {
            self.dns = mine.dns;
        }
        self
    }

    /// The JSON the spec defines for `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut r = self.clone();
        let legacy = !version_at_least(cni_version, "1.0.0");
        for ip in &mut r.ips {
            ip.version = legacy.then(|| {
                if ip.address.contains(':') {
                    "6".to_string()
                } else {
                    "4".to_string()
                }
            });
        }
        let mut v = serde_json::to_value(&r).expect("a result serializes");
        v.as_object_mut()
            .expect("an object")
            .insert("cniVersion".into(), Value::String(cni_version.into()));
        v
    }
}

/// VERSION's answer.
pub fn version_json(cni_version: &str) -> Value {
    serde_json::json!({
        "cniVersion": cni_version,
        "supportedVersions": SUPPORTED_VERSIONS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Result<NetConf, CniError> {
        NetConf::parse(text.as_bytes())
    }

    #[test]
    fn parses_a_minimal_config_and_names_the_lab() {
        let c = conf(r#"{"cniVersion":"1.1.0","name":"net","type":"netlab-cni"}"#).unwrap();
        assert_eq!(c.lab_name(), "net");
        let c = conf(
            r#"{"cniVersion":"1.0.0","name":"net","type":"netlab-cni","lab":"c1","capabilities":{"portMappings":true}}"#,
        )
        .unwrap();
        assert_eq!(c.lab_name(), "c1");
    }

    #[test]
    fn refuses_bad_configs_with_the_spec_codes() {
        assert_eq!(conf("{").unwrap_err().code, code::DECODE_FAILURE);
        let e = conf(r#"{"cniVersion":"0.3.1","name":"n","type":"netlab-cni"}"#).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert!(e.details.contains("0.3.1"), "{e}");
        let e = conf(r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
        let e = conf(
            r#"{"cniVersion":"1.0.0","name":"n","type":"netlab-cni","ipam":{"type":"host-local"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        assert!(e.details.contains("ipam"), "{e}");
    }

    #[test]
    fn results_follow_the_version() {
        let r = AddResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                sandbox: Some("/run/netns/x".into()),
                ..Default::default()
            }],
            ips: vec![IpConfig {
                address: "10.1.0.2/24".into(),
                gateway: Some("10.1.0.1".into()),
                interface: Some(0),
                ..Default::default()
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".into(),
                gw: Some("10.1.0.1".into()),
                ..Default::default()
            }],
            dns: Dns::default(),
        };
        let old = r.to_json("0.4.0");
        assert_eq!(old["cniVersion"], "0.4.0");
        assert_eq!(old["ips"][0]["version"], "4");
        let new = r.to_json("1.1.0");
        assert_eq!(new["cniVersion"], "1.1.0");
        assert!(new["ips"][0].get("version").is_none());
        assert!(new.get("dns").is_none());
        assert_eq!(new["routes"][0]["gw"], "10.1.0.1");
    }

    #[test]
    fn chaining_keeps_the_previous_result_and_shifts_indexes() {
        let prev: AddResult = serde_json::from_str(
            r#"{"cniVersion":"0.4.0","interfaces":[{"name":"x","foo":1}],"ips":[{"version":"4","address":"1.2.3.4/8","interface":0}],"routes":[{"dst":"1.0.0.0/8","priority":5}]}"#,
        )
        .unwrap();
        let mine = AddResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                ..Default::default()
            }],
            ips: vec![IpConfig {
                address: "10.1.0.2/24".into(),
                interface: Some(0),
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = prev.chain(mine).to_json("1.1.0");
        assert_eq!(out["interfaces"][0]["foo"], 1);
        assert_eq!(out["interfaces"][1]["name"], "eth0");
        assert_eq!(out["ips"][1]["interface"], 1);
        assert_eq!(out["routes"][0]["priority"], 5);
    }

    #[test]
    fn port_mappings_become_published_port_specs() {
        let c = conf(
            r#"{"cniVersion":"1.0.0","name":"n","type":"netlab-cni","runtimeConfig":{"portMappings":[
                {"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":""},
                {"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"203.0.113.1"},
                {"hostPort":9000,"containerPort":90}]}}"#,
        )
        .unwrap();
        let specs: Vec<String> = c
            .port_specs()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            specs,
            ["8080:80/tcp", "203.0.113.1:5353:53/udp", "9000:90/tcp"]
        );
        for (bad, named) in [
            (
                r#"{"hostPort":1,"containerPort":2,"protocol":"sctp"}"#,
                "sctp",
            ),
            (r#"{"hostPort":1,"containerPort":2,"hostIP":"::"}"#, "::"),
            (r#"{"hostPort":0,"containerPort":2}"#, "port 0"),
        ] {
            let c = conf(&format!(
                r#"{{"cniVersion":"1.0.0","name":"n","type":"netlab-cni","runtimeConfig":{{"portMappings":[{bad}]}}}}"#
            ))
            .unwrap();
            let e = c.port_specs().unwrap_err();
            assert_eq!(e.code, code::UNSUPPORTED_FIELD);
            assert!(e.details.contains(named), "{e}");
        }
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("1.1.0", "1.0.0"));
        assert!(version_at_least("1.0.0", "1.0.0"));
        assert!(!version_at_least("0.4.0", "1.0.0"));
        assert!(!version_at_least("0.10.0", "1.0.0"));
    }
}
