//! Configuration: `raw` (serde types 1:1 with the YAML) and `compile` (checks
//! every value, collects every problem with its YAML path, and builds the
//! immutable [`Runtime`]). This is the only way to build a `Runtime`; `run`,
//! `validate`, `routes` and SIGHUP reload all go through [`load_file`].

pub mod compile;
#[cfg(any(test, feature = "contracts"))]
mod contract;
pub mod raw;
pub mod routes;

#[cfg(any(test, feature = "contracts"))]
#[doc(hidden)]
pub use contract::check_contract;

use std::path::Path;

use crate::runtime::Runtime;

/// Every problem found in a configuration, each prefixed with its YAML path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} configuration error(s):\n  {}", .0.len(), .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// Reads, validates and compiles a configuration file.
pub fn load_file(path: &Path) -> Result<Runtime, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(vec![format!("{}: cannot read: {e}", path.display())]))?;
    load_str(&text, &|name| std::env::var(name).ok())
}

/// Validates and compiles configuration text; `env` resolves `${VAR}` placeholders.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Runtime, ConfigError> {
    compile::compile(text, env)
}
