//! What the sections' unit tests share: a minimal valid configuration and
//! helpers listing the problems a text compiles to.

use super::compile;
use crate::config::Problem;

/// The smallest configuration that compiles.
pub(super) const GOOD: &str = r#"
server:
  listen: 127.0.0.1:7332
upstreams:
  - name: a
    url: http://127.0.0.1:9000/mcp
routing:
  - match: {method: "*"}
    upstream: a
"#;

/// Every problem `text` compiles to, as values; `${SET}` is "v".
pub(super) fn problems(text: &str) -> Vec<Problem> {
    match compile(text, &|n| (n == "SET").then(|| "v".to_string())) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

/// Every problem `text` compiles to, as the operator reads them.
pub(super) fn errors(text: &str) -> Vec<String> {
    problems(text).iter().map(ToString::to_string).collect()
}

/// Asserts that one of the problems contains `want`.
pub(super) fn one_error(text: &str, want: &str) {
    let e = errors(text);
    assert!(
        e.iter().any(|l| l.contains(want)),
        "wanted {want:?} in {e:#?}"
    );
}
