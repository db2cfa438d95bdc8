//! What one measurement produced.

use std::collections::BTreeMap;

use crate::bench::catalog::Metric;

/// What one measurement produced: the figures, plus details that explain
/// them (retransmits, losses, failures, NAT entries).
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub values: Vec<(Metric, f64)>,
    pub details: BTreeMap<String, f64>,
}
