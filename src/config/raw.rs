//! Serde types that mirror the YAML file one to one (`deny_unknown_fields`).
//! Runtime code never sees these: `compile` turns them into [`crate::runtime::Runtime`].
//! Key names are the agreed interface in CONFIG.md: add keys, rename none.

use serde::Deserialize;

/// One address or a list of addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `listen: 127.0.0.1:7332`
    One(String),
    /// `listen: [127.0.0.1:7332, "[::1]:7332"]`
    Many(Vec<String>),
}

/// `server:`, the public listener and request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Public listener address(es), `host:port`.
    pub listen: OneOrMany,
    /// The MCP endpoint path (default `/mcp`).
    #[serde(default = "default_path")]
    pub path: String,
    /// Worker threads; 0 = one per core.
    #[serde(default)]
    pub threads: usize,
    /// Allowed `Origin` values; a present Origin not listed gets 403. Absent Origin is allowed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Optional `Host` allowlist (DNS-rebinding defence); empty = any host.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Request size and time limits.
    #[serde(default)]
    pub limits: Limits,
    /// Seconds in-flight requests (and SSE streams) get to finish on SIGTERM/SIGQUIT.
    #[serde(default = "default_grace")]
    pub grace_period_secs: u64,
    /// PID file written by `run` (needed for `-d` and upgrades).
    #[serde(default)]
    pub pid_file: Option<String>,
    /// Unix socket a new binary started with `-u` takes the listeners over.
    #[serde(default)]
    pub upgrade_sock: Option<String>,
}

fn default_path() -> String {
    "/mcp".into()
}
fn default_grace() -> u64 {
    30
}

/// `server.limits:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body inspected and forwarded whole; larger gets 413.
    pub max_body_bytes: u64,
    /// Largest total size of request header names and values.
    pub max_header_bytes: u64,
    /// Most request header fields.
    pub max_headers: u64,
    /// Time allowed to receive a request header, in milliseconds.
    pub header_timeout_ms: u64,
    /// Time allowed between body reads, in milliseconds.
    pub body_timeout_ms: u64,
    /// Deepest JSON nesting accepted in a request body.
    pub max_json_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_json_depth: 64,
        }
    }
}

/// One entry of `upstreams:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Unique name that routing rules refer to.
    pub name: String,
    /// The upstream MCP endpoint, `http://host:port/path` or `https://…`.
    pub url: String,
    /// Response timeout in ms: longest wait for the upstream's next bytes on a POST.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// TCP (and TLS) connect timeout in ms.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Longest silence on an open GET SSE stream, in ms.
    #[serde(default = "default_sse_idle")]
    pub sse_idle_timeout_ms: u64,
    /// A credential header the gateway adds to every request to this upstream.
    #[serde(default)]
    pub auth: Option<UpstreamAuth>,
    /// TLS settings for `https://` upstreams.
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
}

fn default_timeout() -> u64 {
    30_000
}
fn default_connect_timeout() -> u64 {
    2_000
}
fn default_sse_idle() -> u64 {
    300_000
}

/// `upstreams[].auth:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamAuth {
    /// Header name, e.g. `Authorization`.
    pub header: String,
    /// Header value; `${VAR}` placeholders are read from the environment.
    pub value: String,
}

/// `upstreams[].tls:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// Verify the upstream certificate and host name (default true).
    #[serde(default = "yes")]
    pub verify: bool,
    /// CA bundle to verify with instead of the system store.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// SNI / verified name, when it differs from the URL host.
    #[serde(default)]
    pub sni: Option<String>,
}

fn yes() -> bool {
    true
}

/// One entry of `routing:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// What the rule matches; all given fields must match.
    #[serde(rename = "match")]
    pub matches: RouteMatch,
    /// Name of the upstream that takes matching calls.
    pub upstream: String,
}

/// `routing[].match:`; globs with `*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// JSON-RPC method glob.
    #[serde(default)]
    pub method: Option<String>,
    /// Tool name glob (`tools/call`).
    #[serde(default)]
    pub tool: Option<String>,
    /// Resource URI glob (`resources/read`, `subscribe`, `unsubscribe`).
    #[serde(default)]
    pub resource: Option<String>,
    /// Prompt name glob (`prompts/get`).
    #[serde(default)]
    pub prompt: Option<String>,
}

/// `upstream_headers:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamHeaders {
    /// Request headers passed upstream (besides content headers and X-Request-ID).
    pub forward: Vec<String>,
}

impl Default for UpstreamHeaders {
    fn default() -> Self {
        UpstreamHeaders {
            forward: [
                "accept",
                "content-type",
                "mcp-session-id",
                "mcp-protocol-version",
                "last-event-id",
                "mcp-method",
                "mcp-name",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// `logging:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logging {
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides.
    pub level: String,
    /// `json` or `text`.
    pub format: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "info".into(),
            format: "json".into(),
        }
    }
}

/// `auth:` (identity schemes arrive with later issues).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// `true` = unauthenticated requests get the principal `{tenant: anonymous}`.
    #[serde(default)]
    pub anonymous: bool,
}
