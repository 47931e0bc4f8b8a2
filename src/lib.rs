//! mcp-edge: an edge gateway for MCP (Model Context Protocol) servers on
//! Cloudflare's Pingora. See `docs/ARCHITECTURE.md` for the module map and the
//! request flow.
#![forbid(unsafe_code)]

pub mod addr;
pub mod admin;
pub mod answer;
pub mod auth;
pub mod base;
pub mod call;
pub mod checker;
pub mod cli;
pub mod config;
pub mod edge;
pub mod error;
pub mod federation;
pub mod health;
pub mod hygiene;
pub mod jsonrpc;
pub mod jwks;
pub mod logsetup;
pub mod mcp;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod reload;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod tls_material;
pub mod tools;
pub mod tunnel;
pub mod upgrade;
pub mod upstream;
pub mod uri;
