//! The tool-call safety envelope (docs/tool-safety.md): what one call of a
//! tool may cost (`limits`: time, concurrency per principal, answer size),
//! matched by the tool's exposed name (after federation prefixes).
//! Pingora-free.

pub mod limits;

pub use limits::{Busy, Permit, Rule, ToolLimits};
