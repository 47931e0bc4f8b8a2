//! The problem collector every section compiles into: each problem is
//! recorded with its YAML path, and none stops the next from being found.

use crate::config::{ConfigError, Problem};

/// Every problem found so far, in the order found.
#[derive(Default)]
pub(super) struct Errors(Vec<Problem>);

impl Errors {
    /// Records `msg` under the YAML `path`.
    pub(super) fn push(&mut self, path: impl std::fmt::Display, msg: impl std::fmt::Display) {
        self.0.push(Problem::new(path, msg));
    }

    /// Records problems found by a helper that collects its own.
    pub(super) fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.0.extend(problems);
    }

    /// How many problems so far (a section compares before and after).
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok` when nothing was found, else every problem.
    pub(super) fn into_result(self) -> Result<(), ConfigError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.0))
        }
    }
}
