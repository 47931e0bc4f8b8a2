//! Shared integration-test harness: the real `mcp-edge` binary started on a
//! reserved loopback port with a typed configuration, upstreams and peers to
//! put behind it, and a client to talk to it. Each concern has its module;
//! this file only declares and re-exports them (a test binary uses a part,
//! hence the allowances).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod audit;
pub mod client;
pub mod config;
pub mod fault;
pub mod launcher;
pub mod mcp;
pub mod peers;
pub mod ports;
pub mod procfs;
pub mod scripted;

#[allow(unused_imports)]
pub use {
    audit::*, client::*, config::*, fault::*, launcher::*, peers::*, ports::*, procfs::*,
    serde_json::json,
};
