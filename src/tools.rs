//! The tool-call safety envelope (docs/tool-safety.md): what one call of a
//! tool may cost (`limits`: time, concurrency per principal, answer size)
//! and what clients see of a tool (`overrides`: its name and description),
//! by the tool's exposed name (after federation prefixes). Pingora-free.

pub mod limits;
pub mod overrides;

pub use limits::{Busy, Permit, Rule, ToolLimits};
pub use overrides::{Called, Override, ToolOverrides};
