//! Reverse tunnel (issue 8): a stdio MCP server behind NAT, next to
//! `mcp-edge tunnel`, dials out to the gateway over a WebSocket and is
//! served like any upstream. `protocol` owns the versioned frames that
//! multiplex MCP sessions over that WebSocket; `relay` owns one connected
//! tunnel on the gateway side (sessions, routing of process output to the
//! waiting HTTP requests and GET streams); `registry` the connected tunnels
//! by name and the bridge socket. See docs/tunnel.md.

pub mod bridge;
pub mod client;
pub mod clientconf;
pub mod endpoint;
pub mod local;
pub mod processes;
pub mod protocol;
pub mod registry;
pub mod relay;

pub use registry::{bridge_socket, registry, set_bridge_socket};
