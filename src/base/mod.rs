//! The base layer: small shared pieces that import nothing from the rest of
//! the crate. Globs (`glob`), digests and the constant-time compare
//! (`digest`), the clock (`clock`), made-up identifiers (`ids`).

pub mod clock;
pub mod digest;
pub mod glob;
pub mod ids;
