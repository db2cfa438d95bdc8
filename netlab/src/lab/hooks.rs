//! Test hooks (environment variables, for the integration tests):
//! - `NETLAB_FAIL_AT=STEP`: fail right after STEP completed (rollback test).
//! - `NETLAB_PAUSE_AT=STEP`: after STEP, print "netlab: paused after STEP"
//!   on stderr and sleep forever (SIGKILL test).
//!
//! STEP is one of [`STEPS`], or `endpoint:NAME` after one endpoint
//! namespace is wired, or `attach` (after `attach` built the endpoint).

/// The steps of `up`, in order.
pub const STEPS: &[&str] = &[
    "namespaces",
    "uplink",
    "ip-forward",
    "endpoints",
    "gateway",
    "datapath",
];

pub const FAIL_AT_ENV: &str = "NETLAB_FAIL_AT";
pub const PAUSE_AT_ENV: &str = "NETLAB_PAUSE_AT";
