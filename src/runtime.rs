//! The immutable compiled configuration snapshot. Requests take one `Arc` of it
//! at the start and keep it to the end; a reload builds a new one and swaps it
//! whole (`ArcSwap`), and a failed reload keeps the old one.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::auth::Authenticator;
use crate::hygiene::HeaderPolicy;
use crate::policy::Policy;
use crate::routing::Routes;
use crate::telemetry::audit::Audit;
use crate::telemetry::sink::{OnFull, Target};
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
    /// Longest request target.
    pub max_uri_bytes: usize,
    /// Request header read timeout.
    pub header_timeout: Duration,
    /// Time allowed for a whole request body.
    pub body_timeout: Duration,
    /// Deepest JSON nesting.
    pub max_json_depth: u32,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// Largest upstream JSON answer (or SSE event) inspected.
    pub max_response_bytes: usize,
    /// Longest lingering read after an early answer.
    pub linger: Duration,
    /// Most bytes read and discarded after an early answer.
    pub linger_bytes: u64,
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
    /// Whose forwarding headers are believed.
    pub trust_proxy: crate::addr::trusted::TrustProxy,
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
    /// Identity: anonymous access and API keys.
    pub auth: Authenticator,
    /// RFC 9728 protected-resource metadata, when configured.
    pub resource_metadata: Option<ResourceMetadata>,
    /// Deny-by-default authorization.
    pub policy: Policy,
    /// Audit settings (`None` = off, or off in this environment).
    pub audit_settings: Option<(Target, OnFull, usize)>,
    /// The audit writer, opened by [`Runtime::open_audit`] when serving.
    pub audit: std::sync::OnceLock<Option<Audit>>,
    /// TLS on the listener (`None` = plaintext): checked certificate, key and client CA.
    pub tls: Option<Arc<crate::tls_material::Material>>,
    /// Session sealing keys (`sessions:`; `None` = not configured).
    pub sessions: Option<Arc<crate::session::SessionKeys>>,
    /// PROXY protocol on the listener (`None` = off).
    pub proxy_protocol: Option<crate::addr::proxy_protocol::ProxyProtocol>,
    /// Per-identity rate limits (`None` = no `rate_limit` section).
    pub rate_limits: Option<crate::ratelimit::Limits>,
    /// `rate_limit.refusals_rpm`: refused requests per minute per client
    /// address (0 = off).
    pub refusals_rpm: u32,
    /// Field names never logged (`logging.redact_keys`, lowercase).
    pub redact_keys: Vec<String>,
    /// The admin listener (`None` = no admin listener).
    pub admin: Option<AdminSettings>,
    /// The reverse-tunnel endpoint (`None` = tunnels refused).
    pub tunnel: Option<TunnelSettings>,
    /// `virtual_servers:` (federation), each at its own path.
    pub virtual_servers: Vec<Arc<VirtualServer>>,
    /// `legacy_sse.path` when the client-facing HTTP+SSE endpoint is on.
    pub legacy_sse: Option<String>,
    /// With `legacy_sse`: each legacy front (where a stream opens, the MCP
    /// endpoint it speaks to): `<path>` for `server.path`, `<vs.path><path>`
    /// for each virtual server ([`legacy_fronts`]).
    pub legacy_fronts: Vec<(String, String)>,
    /// `tool_limits:`: what one call of a tool may cost.
    pub tool_limits: crate::tools::ToolLimits,
    /// `tool_overrides:`: what clients see of a tool.
    pub tool_overrides: Arc<crate::tools::ToolOverrides>,
    /// `tool_integrity:`: tool definitions pinned per upstream.
    pub tool_integrity: crate::tools::integrity::Settings,
    /// Log level.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
}

/// The legacy fronts of `legacy_sse.path` `base`: (where a stream opens,
/// its MCP endpoint), `server.path` first.
pub fn legacy_fronts(
    base: &str,
    mcp_path: &str,
    virtual_servers: &[Arc<VirtualServer>],
) -> Vec<(String, String)> {
    let mut out = vec![(base.to_string(), mcp_path.to_string())];
    for vs in virtual_servers {
        out.push((
            format!("{}{base}", vs.path.trim_end_matches('/')),
            vs.path.clone(),
        ));
    }
    out
}

/// `tunnel:`: where tunnels connect and who may register what.
#[derive(Debug, Clone)]
pub struct TunnelSettings {
    /// The WebSocket path on the public listener.
    pub path: String,
    /// Tunnel tokens.
    pub tokens: Vec<TunnelToken>,
    /// WebSocket ping interval; two silent intervals drop the tunnel.
    pub keepalive: std::time::Duration,
}

/// One `tunnel.tokens[]` entry.
#[derive(Clone)]
pub struct TunnelToken {
    /// Its id (logs, admin API).
    pub id: String,
    /// SHA-256 of the token.
    pub digest: [u8; 32],
    /// Upstream names it may register.
    pub upstreams: Vec<String>,
}

impl std::fmt::Debug for TunnelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelToken")
            .field("id", &self.id)
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

impl TunnelSettings {
    /// The token entry `presented` matches (digest compare, no early exit
    /// per byte), if any.
    pub fn token(&self, presented: &str) -> Option<&TunnelToken> {
        let d = crate::auth::apikey::digest(presented.as_bytes());
        self.tokens
            .iter()
            .find(|t| crate::base::digest::ct_eq(&t.digest, &d))
    }
}

/// `admin:`: where the operator endpoints listen and who may use them.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// The admin listener address (fixed until restart or upgrade).
    pub listen: std::net::SocketAddr,
    /// Bearer token for non-health endpoints (`None` = those answer 403).
    pub token: Option<AdminToken>,
}

/// The admin token, kept as its SHA-256 so a comparison takes the same time
/// whatever the presented value.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Keeps the digest of `token`.
    pub fn new(token: &str) -> Self {
        AdminToken(crate::base::digest::sha256(token.as_bytes()))
    }

    /// Whether `presented` is the token (compares digests, no early exit).
    pub fn matches(&self, presented: &str) -> bool {
        crate::base::digest::ct_eq(&crate::base::digest::sha256(presented.as_bytes()), &self.0)
    }
}

/// One `virtual_servers:` entry (docs/federation.md): an MCP server at its
/// own path composed from member upstreams.
#[derive(Debug)]
pub struct VirtualServer {
    /// The public path.
    pub path: String,
    /// `serverInfo.name` announced to clients.
    pub name: String,
    /// The members in order (ties go to the earlier one).
    pub members: Vec<Member>,
    /// How member names are exposed.
    pub naming: crate::federation::Naming,
    /// Bound on each member's part of a fan-out.
    pub member_timeout: std::time::Duration,
    /// What the members listed last (names, URIs): the snapshot's own,
    /// rebuilt after a reload from the next lists.
    pub catalog: std::sync::RwLock<crate::federation::Catalog>,
    /// Which members (by index) speak 2026-07-28 (`server/discover`
    /// probed on first need; the snapshot's own).
    pub stateless: std::sync::RwLock<std::collections::HashMap<usize, bool>>,
    /// Members' list pages kept as their `ttlMs`/`cacheScope` allow (by
    /// member index; the snapshot's own).
    pub lists: crate::federation::cache::ListCache,
    /// When a miss last made the gateway list each kind again.
    pub relisted: std::sync::Mutex<
        std::collections::HashMap<crate::federation::merge::ListKind, std::time::Instant>,
    >,
}

/// A member of a virtual server.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its upstream.
    pub upstream: Arc<Upstream>,
    /// Its prefix.
    pub prefix: String,
}

impl VirtualServer {
    /// The member on upstream `name`.
    pub fn member(&self, name: &str) -> Option<(usize, &Member)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, m)| *m.upstream.name == *name)
    }
}

/// The RFC 9728 document and where it is served.
#[derive(Debug, Clone)]
pub struct ResourceMetadata {
    /// The JSON document.
    pub document: bytes::Bytes,
    /// Its public URL, named in `WWW-Authenticate: Bearer resource_metadata="…"`.
    pub url: String,
    /// Paths the gateway answers it on (bare and path-suffixed).
    pub paths: Vec<String>,
}

impl Runtime {
    /// The upstreams served from inside the gateway (`type: stdio`, `sse`).
    pub fn local_upstreams(&self) -> Vec<(String, crate::upstream::LocalSpec)> {
        use crate::upstream::{Bridge, LocalSpec as Spec};
        self.upstreams
            .iter()
            .filter_map(
                |u| match (&u.spawn, u.endpoints.first().and_then(|e| e.bridge)) {
                    (Some(s), _) => Some((u.name.to_string(), Spec::Stdio(s.clone()))),
                    (None, Some(Bridge::Sse)) => Some((u.name.to_string(), Spec::Sse(u.clone()))),
                    _ => None,
                },
            )
            .collect()
    }

    /// The virtual server at `path`.
    pub fn virtual_server(&self, path: &str) -> Option<&Arc<VirtualServer>> {
        self.virtual_servers.iter().find(|v| v.path == path)
    }

    /// The keys sessions are sealed with: `sessions.keys`, else per-process.
    pub fn session_keys(&self) -> &crate::session::SessionKeys {
        match &self.sessions {
            Some(k) => k,
            None => crate::session::ephemeral(),
        }
    }

    /// Opens the audit writer (at startup and after a reload) so a bad
    /// `audit.path` is reported at once; requests then find it ready.
    pub fn open_audit(&self) -> std::io::Result<()> {
        if self.audit.get().is_some() {
            return Ok(());
        }
        let audit = match &self.audit_settings {
            Some((target, on_full, lines)) => Some(Audit::new(target.clone(), *on_full, *lines)?),
            None => None,
        };
        let _ = self.audit.set(audit);
        Ok(())
    }

    /// The process's tool pins keep to `tool_integrity.pins_file` (read
    /// and merged: its approvals win), at start and at every reload.
    pub fn open_pins(&self) -> Result<(), String> {
        crate::tools::integrity::pins().open(self.tool_integrity.pins_file.as_deref())
    }

    /// The audit writer, if audit is on.
    pub fn audit(&self) -> Option<&Audit> {
        self.audit.get().and_then(|a| a.as_ref())
    }

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
