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

use std::fmt;
use std::path::Path;

use crate::runtime::Runtime;

/// One problem in a configuration: where (its YAML path, or the file) and
/// what. Shown as `path: message`, or the message alone when the path is
/// empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The YAML path (`routing[2].upstream`), `(root)`, `(yaml)`, or the file.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl fmt::Display, message: impl fmt::Display) -> Self {
        Problem {
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    /// A problem from a helper that reports `path: message` text: split at
    /// the first `": "`; text without one is kept whole as the message.
    pub fn from_text(text: &str) -> Self {
        match text.split_once(": ") {
            Some((path, message)) => Problem::new(path, message),
            None => Problem::new("", text),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration, each with its YAML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} configuration error(s):\n  ", self.0.len())?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n  ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads, validates and compiles a configuration file.
pub fn load_file(path: &Path) -> Result<Runtime, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(vec![Problem::new(
            path.display(),
            format!("cannot read: {e}"),
        )])
    })?;
    load_str(&text, &|name| std::env::var(name).ok())
}

/// Validates and compiles configuration text; `env` resolves `${VAR}` placeholders.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Runtime, ConfigError> {
    compile::compile(text, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_path_and_message() {
        let e = ConfigError(vec![
            Problem::new("server.path", "\"x\" must be an absolute path"),
            Problem::new("", "bare message"),
        ]);
        assert_eq!(
            e.0[0].to_string(),
            "server.path: \"x\" must be an absolute path"
        );
        assert_eq!(e.0[1].to_string(), "bare message");
        assert_eq!(
            e.to_string(),
            "2 configuration error(s):\n  server.path: \"x\" must be an absolute path\n  bare message"
        );
        assert_eq!(
            Problem::from_text("a[1]: b: c"),
            Problem::new("a[1]", "b: c")
        );
        assert_eq!(Problem::from_text("plain"), Problem::new("", "plain"));
    }
}
