//! The immutable compiled configuration snapshot. Requests take one `Arc` of it
//! at the start and keep it to the end; a reload builds a new one and swaps it
//! whole (`ArcSwap`), and a failed reload keeps the old one.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::hygiene::HeaderPolicy;
use crate::routing::Routes;
use crate::upstream::Upstream;

/// Compiled request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body inspected and forwarded.
    pub max_body_bytes: usize,
    /// Largest total request header size.
    pub max_header_bytes: usize,
    /// Most request header fields.
    pub max_headers: usize,
    /// Request header read timeout.
    pub header_timeout: Duration,
    /// Time allowed between body reads.
    pub body_timeout: Duration,
    /// Deepest JSON nesting.
    pub max_json_depth: u32,
}

/// Compiled `server:` section.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listener addresses.
    pub listen: Vec<String>,
    /// MCP endpoint path.
    pub path: String,
    /// Worker threads (resolved: never 0).
    pub threads: usize,
    /// Allowed Origins (`*` allows any).
    pub allowed_origins: Vec<String>,
    /// Allowed Host names (lowercase; empty = any).
    pub allowed_hosts: Vec<String>,
    /// Request limits.
    pub limits: Limits,
    /// Drain time on shutdown/upgrade.
    pub grace_period_secs: u64,
    /// PID file.
    pub pid_file: Option<String>,
    /// Upgrade socket.
    pub upgrade_sock: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Text,
}

/// Everything a request needs, compiled from one configuration file.
#[derive(Debug)]
pub struct Runtime {
    /// Listener and limits.
    pub server: ServerSettings,
    /// Routing table.
    pub routes: Routes,
    /// All upstreams, in file order.
    pub upstreams: Vec<Arc<Upstream>>,
    /// Which client headers go upstream.
    pub headers: HeaderPolicy,
    /// Unauthenticated requests are accepted as tenant `anonymous`.
    pub anonymous: bool,
    /// Log level.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
}

impl Runtime {
    /// Whether an `Origin` header value is allowed.
    pub fn origin_allowed(&self, origin: &[u8]) -> bool {
        self.server
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.as_bytes().eq_ignore_ascii_case(origin))
    }

    /// Whether a `Host` header value is allowed (port ignored).
    pub fn host_allowed(&self, host: &[u8]) -> bool {
        if self.server.allowed_hosts.is_empty() {
            return true;
        }
        let host = std::str::from_utf8(host).unwrap_or("");
        let name = if host.starts_with('[') {
            host.split(']').next().map(|h| &h[1..]).unwrap_or(host)
        } else {
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        };
        self.server
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(host))
    }
}

/// The live snapshot shared by all workers.
pub type SharedRuntime = Arc<ArcSwap<Runtime>>;
