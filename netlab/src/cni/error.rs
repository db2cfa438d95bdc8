//! CNI errors: the spec's `{cniVersion, code, msg, details}` on stdout.

use serde::Serialize;

/// The spec's well-known codes (the CNI specification,
/// <https://github.com/containernetworking/cni/blob/main/SPEC.md>, "Error"),
/// and netlab's own (100+).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: cannot serve ADD.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: cannot serve ADD, and existing containers may have lost
    /// connectivity.
    pub const NOT_AVAILABLE_LIMITED: u32 = 51;
    /// netlab: building the lab or wiring the container failed.
    pub const LAB_FAILURE: u32 = 100;
    /// netlab: `CNI_IFNAME` already exists in the container.
    pub const INTERFACE_EXISTS: u32 = 101;
    /// netlab: the lab subnet has no free address left.
    pub const SUBNET_EXHAUSTED: u32 = 102;
    /// netlab: CHECK found the attachment not as ADD left it.
    pub const CHECK_FAILED: u32 = 103;
}

/// An error result. `msg` is short, `details` says what and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}: {details}")]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// A failure of the lab machinery (netlink, BPF, state file), with its
    /// whole chain of causes.
    pub fn lab(msg: impl Into<String>, e: impl Into<anyhow::Error>) -> Self {
        Self::new(code::LAB_FAILURE, msg, format!("{:#}", e.into()))
    }

    /// The JSON object the spec asks for.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            cni_version: &'a str,
            code: u32,
            msg: &'a str,
            details: &'a str,
        }
        serde_json::to_value(Wire {
            cni_version,
            code: self.code,
            msg: &self.msg,
            details: &self.details,
        })
        .expect("an error serializes")
    }
}

pub type CniResult<T> = std::result::Result<T, CniError>;
