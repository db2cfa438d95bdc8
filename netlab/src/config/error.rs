//! What reading and resolving a lab file can fail with.

use crate::plan::Problem;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read lab file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lab file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("invalid lab:\n  {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, for tests and for callers that want to match on fields.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(p) => p,
            _ => &[],
        }
    }
}
