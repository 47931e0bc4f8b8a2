//! The tool-call safety envelope (docs/tool-safety.md): what one call of a
//! tool may cost (`limits`: time, concurrency per principal, answer size)
//! what clients see of a tool (`overrides`: its name and description), by
//! the tool's exposed name (after federation prefixes); and whether a
//! tool's definition is still the one pinned (`integrity`), by upstream
//! and the upstream's own name. Pingora-free.

pub mod integrity;
pub mod limits;
pub mod overrides;

pub use limits::{Busy, Permit, Rule, ToolLimits};
pub use overrides::{Called, Override, ToolOverrides};
