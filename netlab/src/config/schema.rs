//! The lab file as written (serde) and read: every field optional,
//! unknown fields rejected. The defaults are decided by resolution, not
//! here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use crate::plan::{DatapathKind, SwitchHook};

/// The lab file as written: every field optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabConfig {
    pub name: Option<String>,
    pub datapath: Option<DatapathKind>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    /// The lab's IPv6 prefix; `"none"` turns IPv6 off.
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    pub gateway_device: Option<String>,
    pub gateway_port: Option<String>,
    pub namespace_count: Option<u32>,
    pub namespace_prefix: Option<String>,
    pub host: Option<HostConfig>,
    pub namespaces: Option<Vec<NamespaceConfig>>,
    pub nat: Option<NatConfig>,
    /// Published ports by namespace name (for `namespace_count` labs);
    /// `[[namespaces]] publish` says the same per namespace.
    pub publish: Option<BTreeMap<String, Vec<String>>>,
    pub switch: Option<SwitchHook>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMode {
    /// Namespaces play the host and the internet; nothing touches the machine.
    #[default]
    Sandbox,
    /// The host side is the network namespace netlab runs in (on a machine
    /// its root namespace, in a container the container's), and the uplink
    /// is a device there. `"current"` says the same.
    #[serde(alias = "current")]
    Root,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub mode: Option<HostMode>,
    pub namespace: Option<String>,
    pub internet_namespace: Option<String>,
    pub uplink: Option<String>,
    pub uplink_address: Option<String>,
    pub internet_address: Option<String>,
    pub uplink_address6: Option<String>,
    pub internet_address6: Option<String>,
    pub allow_host_access: Option<bool>,
    pub uplink_xdp: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    pub name: String,
    pub address: Option<String>,
    pub address6: Option<String>,
    pub veth: Option<String>,
    pub peer: Option<String>,
    /// Published ports: `["8080:80/tcp", "127.0.0.1:9000:9000"]`.
    pub publish: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    // Wider than u16 so an out-of-range value gets our message, naming the field.
    pub port_min: Option<u32>,
    pub port_max: Option<u32>,
    pub max_entries: Option<u32>,
    pub tcp_established_timeout: Option<u64>,
    pub tcp_closing_timeout: Option<u64>,
    pub tcp_syn_timeout: Option<u64>,
    pub udp_timeout: Option<u64>,
    pub icmp_timeout: Option<u64>,
}

impl LabConfig {
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}
