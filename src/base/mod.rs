//! The base layer: small shared pieces that import nothing from the rest of
//! the crate. Globs (`glob`), digests and the constant-time compare
//! (`digest`), the clock (`clock`), made-up identifiers (`ids`), and the switch that
//! keeps configuration compiling off the file system and DNS (`hermetic`).

pub mod clock;
pub mod digest;
pub mod glob;
pub mod hermetic;
pub mod ids;
