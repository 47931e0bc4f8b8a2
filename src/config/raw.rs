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
    /// Whose forwarding headers to believe: `false`, `[cidr, …]` or
    /// `{proxies: [cidr, …], headers: {client_ip, protocol, host}}`.
    #[serde(default)]
    pub trust_proxy: Option<TrustProxy>,
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

/// `server.trust_proxy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TrustProxy {
    /// `false` (trust nobody); `true` is refused (name the proxies).
    Flag(bool),
    /// Trusted proxy addresses/CIDRs.
    List(Vec<String>),
    /// Proxies and the header names they use.
    Full(TrustProxyFull),
}

/// `server.trust_proxy: {proxies, headers}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustProxyFull {
    /// Trusted proxy addresses/CIDRs.
    pub proxies: Vec<String>,
    /// Header names (defaults: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host).
    #[serde(default)]
    pub headers: TrustHeaders,
}

/// `server.trust_proxy.headers`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustHeaders {
    /// Client address header: `X-Forwarded-For`, `Forwarded` or `X-Real-IP`.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// Original scheme header.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Original host header.
    #[serde(default)]
    pub host: Option<String>,
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
    /// Longest request target (path and query); longer gets 414.
    pub max_uri_bytes: u64,
    /// Time allowed to receive a request header, in milliseconds.
    pub header_timeout_ms: u64,
    /// Time allowed to receive a whole request body, in milliseconds.
    pub body_timeout_ms: u64,
    /// Deepest JSON nesting accepted in a request body.
    pub max_json_depth: u32,
    /// Most client connections open at once; further ones are closed at accept.
    pub max_connections: u64,
    /// Largest upstream answer the gateway relays: a JSON body, or all SSE
    /// events of one POST's answer (and any one event of a GET stream);
    /// beyond, a JSON-RPC error for the request (`tool_limits` may set
    /// another bound per tool).
    pub max_response_bytes: u64,
    /// After answering before the request body was read (401, 413, ...),
    /// how long the rest of the body is read and discarded so the client
    /// can read the answer (nginx's lingering close), in milliseconds.
    pub linger_ms: u64,
    /// At most this many bytes are read and discarded that way.
    pub linger_bytes: u64,
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
            max_uri_bytes: 8192,
            max_connections: 10_000,
            max_response_bytes: 8 << 20,
            linger_ms: 5_000,
            linger_bytes: 64 << 20,
        }
    }
}

/// One entry of `upstreams:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Unique name that routing rules refer to.
    pub name: String,
    /// `http` (default); `tunnel`: served by a reverse tunnel that
    /// registers under `name` (no url; see `tunnel:`); `stdio`: the gateway
    /// runs `command` itself, one process per MCP session; `sse`: a
    /// 2024-11-05 HTTP+SSE server at `url` (its stream).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `type: stdio`: program and arguments (argv, no shell).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// `type: stdio`: variables added to the process's minimal environment.
    #[serde(default)]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// `type: stdio`: processes at most (default 16); beyond, 503.
    #[serde(default)]
    pub max_processes: Option<usize>,
    /// `type: stdio` / `sse`: a session silent this long has its process
    /// (its legacy connection) stopped (default 600).
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// `type: sse`: legacy connections at most, one per client session
    /// (default 256); beyond, 503.
    #[serde(default)]
    pub max_sessions: Option<usize>,
    /// The upstream MCP endpoint, `http://host:port/path` or `https://…`.
    #[serde(default)]
    pub url: Option<String>,
    /// A pool of equivalent endpoints instead of one `url`.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// `round_robin` (default), `least_connections` or `random`.
    #[serde(default)]
    pub load_balancing: Option<String>,
    /// Active health checks (absent: TCP connect every 5 s).
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Response timeout in ms: longest wait for the upstream's response
    /// header (and between reads of a JSON body).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// TCP (and TLS) connect timeout in ms.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Longest silence on an open SSE stream (GET, or a POST answered with SSE), in ms.
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
    /// Field names whose values never appear in logs or audit (case-insensitive).
    pub redact_keys: Vec<String>,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            level: "info".into(),
            format: "json".into(),
            redact_keys: [
                "authorization",
                "x-api-key",
                "api-key",
                "cookie",
                "token",
                "access_token",
                "password",
                "secret",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// `auth:`: who may call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// `true` = unauthenticated requests get the principal `{tenant: anonymous}`.
    #[serde(default)]
    pub anonymous: bool,
    /// API keys, accepted from `Authorization: Bearer|Api-Key K`, `X-API-Key`, `Api-Key`.
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// JWT bearer tokens checked against a JWKS.
    #[serde(default)]
    pub jwt: Option<Jwt>,
    /// mTLS identity: a verified client certificate as the principal.
    #[serde(default)]
    pub client_cert: Option<ClientCert>,
    /// RFC 9728 protected-resource metadata, served at
    /// `/.well-known/oauth-protected-resource` and named in `WWW-Authenticate`.
    #[serde(default)]
    pub resource_metadata: Option<ResourceMetadata>,
}

/// One `auth.api_keys[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Key id: what logs and audit show (never the key).
    pub id: String,
    /// The key in plain text (development only); `${VAR}` allowed.
    #[serde(default)]
    pub key: Option<String>,
    /// `sha256:<hex>` of the key (`mcp-edge hash-key KEY`); the production form.
    #[serde(default)]
    pub key_hash: Option<String>,
    /// Tenant of the principal.
    pub tenant: String,
    /// Client of the principal (default: the key id).
    #[serde(default)]
    pub client: Option<String>,
}

/// `auth.jwt:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    /// Required `iss`.
    pub issuer: String,
    /// Accepted `aud` values (a token needs one of them).
    pub audiences: Vec<String>,
    /// JWKS endpoint (http or https), fetched by the gateway.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// JWKS file, read at load (and on SIGHUP).
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// Accepted algorithms: RS256/384/512, PS256/384/512, ES256/384, EdDSA.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp`/`nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Claim naming the tenant (missing in a token = the issuer).
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Claim naming the client (missing = `sub`).
    #[serde(default = "default_client_claim")]
    pub client_claim: String,
    /// Verified claims sent upstream as request headers: `{claim: Header-Name}`.
    #[serde(default)]
    pub forward_claims: std::collections::BTreeMap<String, String>,
    /// How often a `jwks_url` is refetched, seconds.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_secs: u64,
    /// Shortest interval between refetches caused by an unknown `kid`, seconds.
    #[serde(default = "default_unknown_kid")]
    pub jwks_unknown_kid_refetch_secs: u64,
}

fn default_unknown_kid() -> u64 {
    30
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn default_leeway() -> u64 {
    60
}
fn default_tenant_claim() -> String {
    "tenant".into()
}
fn default_client_claim() -> String {
    "sub".into()
}
fn default_jwks_refresh() -> u64 {
    300
}

/// `auth.resource_metadata:` (RFC 9728).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceMetadata {
    /// The protected resource's identifier (its public MCP URL).
    pub resource: String,
    /// Authorization servers clients should obtain tokens from.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes the resource understands.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// `policy:`: deny by default; rules grant and deny by glob.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Only `deny` is accepted: anything not allowed is refused.
    #[serde(default = "deny")]
    pub default: String,
    /// All rules whose subject matches apply; any matching deny wins.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default: deny(),
            rules: Vec::new(),
        }
    }
}

fn deny() -> String {
    "deny".into()
}

/// One `policy.rules[]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// Which principals the rule applies to.
    pub subject: Subject,
    /// What it grants.
    #[serde(default)]
    pub allow: Grants,
    /// What it refuses (wins over any allow).
    #[serde(default)]
    pub deny: Grants,
}

/// `policy.rules[].subject`: globs over the principal.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Tenant glob (default `*`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Client glob (default `*`).
    #[serde(default)]
    pub client: Option<String>,
    /// JWT claim globs (`{plan: "gold*"}`): all must match a verified claim.
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
}

/// Glob lists over what a call touches.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// JSON-RPC method globs.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Tool name globs (`tools/call`, and `tools/list` filtering).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Resource URI globs.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Prompt name globs.
    #[serde(default)]
    pub prompts: Vec<String>,
}

/// `upstreams[].health_check`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Time between checks of one endpoint, ms.
    #[serde(default = "default_hc_interval")]
    pub interval_ms: u64,
    /// Time allowed for one check, ms.
    #[serde(default = "default_hc_timeout")]
    pub timeout_ms: u64,
    /// `GET` this path (2xx/3xx = healthy); absent = TCP connect.
    #[serde(default)]
    pub path: Option<String>,
}

fn default_hc_interval() -> u64 {
    5000
}
fn default_hc_timeout() -> u64 {
    1000
}

/// `sessions:`: keys that seal session ownership into the session id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    /// Secrets (≥ 32 characters, `${VAR}` allowed); the first seals, all open.
    pub keys: Vec<String>,
    /// Oldest session token accepted, in seconds (default 7 days).
    #[serde(default = "default_session_age")]
    pub max_age_secs: u64,
}

fn default_session_age() -> u64 {
    7 * 86_400
}

/// `tls:`: HTTPS on `server.listen` (switching it on or off needs a restart).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain, leaf first (PEM).
    pub cert_file: String,
    /// Private key of the leaf (PEM).
    pub key_file: String,
    /// CA bundle client certificates must chain to (PEM); enables mTLS.
    #[serde(default)]
    pub client_ca: Option<String>,
    /// `required` (default with `client_ca`) or `optional`.
    #[serde(default)]
    pub client_auth: Option<String>,
}

/// `auth.client_cert:`: how a verified client certificate names the principal.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCert {
    /// `cn` (default), `san_dns`, `san_email` or `san_uri`.
    #[serde(default = "default_client_from")]
    pub client_from: String,
    /// `o` (default), `ou`, `cn` or `fixed`.
    #[serde(default = "default_tenant_from")]
    pub tenant_from: String,
    /// Tenant when `tenant_from` is `fixed` or the field is absent (default `mtls`).
    #[serde(default = "default_cert_tenant")]
    pub tenant: String,
}

fn default_client_from() -> String {
    "cn".into()
}
fn default_tenant_from() -> String {
    "o".into()
}
fn default_cert_tenant() -> String {
    "mtls".into()
}

/// `proxy_protocol:` (HAProxy PROXY protocol v1/v2 on the plaintext listener).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyProtocol {
    /// Expect PROXY headers from trusted peers.
    #[serde(default)]
    pub enabled: bool,
    /// Peers that must send a header (mandatory when enabled).
    #[serde(default)]
    pub trusted_cidrs: Vec<String>,
    /// Time allowed for the header, ms.
    #[serde(default = "default_pp_timeout")]
    pub header_timeout_ms: u64,
}

fn default_pp_timeout() -> u64 {
    5000
}

/// `rate_limit:`: per-identity request rates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Prefix of bucket keys (env `RATE_LIMIT_KEY_PREFIX` overrides).
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// Requests per minute per identity, any method (0 = none).
    #[serde(default)]
    pub default_rpm: u32,
    /// Requests per minute per identity for a method.
    #[serde(default)]
    pub by_method: std::collections::BTreeMap<String, u32>,
    /// Requests per minute per identity for a tool.
    #[serde(default)]
    pub by_tool: std::collections::BTreeMap<String, u32>,
    /// Refused requests (401, 403, refused tool calls, forged sessions) per
    /// minute per client address before that address gets 429 for
    /// everything (0 = off; default 60, also without a `rate_limit` section).
    #[serde(default)]
    pub refusals_rpm: Option<u32>,
    /// Shared limits through Redis (absent = in memory).
    #[serde(default)]
    pub redis: Option<RateLimitRedis>,
}

fn default_prefix() -> String {
    "mcp-edge".into()
}

/// `rate_limit.redis:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRedis {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Longest wait for Redis per decision, ms.
    #[serde(default = "default_redis_timeout")]
    pub timeout_ms: u64,
    /// `local` | `allow` | `deny` when Redis fails at runtime.
    #[serde(default = "default_on_error")]
    pub on_error: String,
}

fn default_redis_timeout() -> u64 {
    100
}
fn default_on_error() -> String {
    "local".into()
}

/// `tunnel:`: the reverse-tunnel endpoint on the public listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tunnel {
    /// Accept tunnels at all.
    #[serde(default)]
    pub enabled: bool,
    /// The WebSocket path on the public listener.
    #[serde(default = "default_tunnel_path")]
    pub path: String,
    /// Who may register which upstream names.
    #[serde(default)]
    pub tokens: Vec<TunnelToken>,
    /// WebSocket ping interval in ms; a tunnel silent for two intervals is dropped.
    #[serde(default = "default_tunnel_keepalive")]
    pub keepalive_ms: u64,
}

fn default_tunnel_path() -> String {
    "/reverse-proxy/ws".into()
}
fn default_tunnel_keepalive() -> u64 {
    20_000
}

/// One entry of `virtual_servers:` (federation, docs/federation.md): one MCP
/// server at its own path composed from member upstreams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServer {
    /// The public path clients connect to (unique; not `server.path`).
    pub path: String,
    /// `serverInfo.name` announced to clients.
    pub name: String,
    /// The member upstreams, in order (the order breaks ties).
    pub members: Vec<VirtualMember>,
    /// Exposed tool/prompt name = prefix + separator + the member's own name.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// `always` | `conflicts` | `never`.
    #[serde(default = "default_prefix_mode")]
    pub prefix_mode: String,
    /// Bound on each member's part of a fan-out (initialize, lists).
    #[serde(default = "default_member_timeout")]
    pub member_timeout_ms: u64,
}

/// `virtual_servers[].members[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualMember {
    /// An upstream name of `upstreams:`.
    pub upstream: String,
    /// Prefix of the member's tool and prompt names (absent: the upstream name).
    #[serde(default)]
    pub prefix: Option<String>,
}

fn default_separator() -> String {
    "__".into()
}
fn default_prefix_mode() -> String {
    "always".into()
}
fn default_member_timeout() -> u64 {
    3000
}

/// `tool_limits[]`: what one call of the tools it names may cost; the first
/// entry naming a tool applies. Each bound is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLimit {
    /// Exposed tool names (globs, after federation prefixes).
    pub tools: Vec<String>,
    /// A call still running after this many milliseconds is answered with a
    /// JSON-RPC error and cancelled upstream.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Calls one principal may have running at once; beyond, 429.
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// The largest answer of a call (its JSON body, or all its SSE events);
    /// replaces `server.limits.max_response_bytes` for these tools.
    #[serde(default)]
    pub max_response_bytes: Option<u64>,
}

/// `tool_overrides[]`: what clients see of one tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolOverride {
    /// The tool's exposed name (exact, after federation prefixes).
    pub tool: String,
    /// The name clients see and call instead (the old one is not callable).
    #[serde(default)]
    pub name: Option<String>,
    /// The description clients see instead.
    #[serde(default)]
    pub description: Option<String>,
}

/// `tool_integrity:`: tool definitions pinned per upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolIntegrity {
    /// `off` | `warn` | `block`.
    #[serde(default = "default_integrity_mode")]
    pub mode: String,
    /// Where pins are kept across restarts and shared by replicas (absent:
    /// in memory only).
    #[serde(default)]
    pub pins_file: Option<String>,
}

fn default_integrity_mode() -> String {
    "off".into()
}

/// `legacy_sse:`: the client-facing HTTP+SSE (2024-11-05) endpoint for
/// clients that speak nothing newer (off by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacySse {
    /// Serve it at all.
    #[serde(default)]
    pub enabled: bool,
    /// GET opens the stream; its `endpoint` event names `<path>/message`.
    #[serde(default = "default_legacy_sse_path")]
    pub path: String,
}

fn default_legacy_sse_path() -> String {
    "/sse".into()
}

/// `tunnel.tokens[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelToken {
    /// Names the token in logs and the admin API.
    pub id: String,
    /// The token in plaintext (development; `${VAR}` allowed).
    #[serde(default)]
    pub token: Option<String>,
    /// `sha256:<hex>` of the token (`mcp-edge hash-key TOKEN`).
    #[serde(default)]
    pub token_hash: Option<String>,
    /// Upstream names (declared `type: tunnel`) it may register.
    pub upstreams: Vec<String>,
}

/// `admin:`: the operator listener (health, metrics, tunnel sessions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// `host:port`; keep it on loopback or a management network.
    pub listen: String,
    /// Bearer token for every admin endpoint except `/healthz` and `/health`
    /// (usually `${MCP_EDGE_ADMIN_TOKEN}`). Without it those endpoints answer 403.
    #[serde(default)]
    pub token: Option<String>,
}

/// `audit:`: one JSON line per request, including every rejection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Audit on or off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// JSONL file, or `-` for stdout.
    #[serde(default = "default_audit_path")]
    pub path: String,
    /// Environments (globs) where audit runs; `MCP_EDGE_ENV` names the current one.
    #[serde(default = "any")]
    pub environments: Vec<String>,
    /// Rotate the file when it reaches this size (the old one becomes `<path>.1`).
    #[serde(default = "default_max_file")]
    pub max_file_bytes: u64,
    /// `block` (wait for the writer) or `drop` (count and drop) when the queue is full.
    #[serde(default = "default_on_full")]
    pub on_full: String,
    /// Lines that may wait for the writer (the bound on audit memory: about
    /// 0.5 KiB a line); `on_full` applies once they are all taken.
    #[serde(default = "default_queue_lines")]
    pub queue_lines: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            enabled: false,
            path: default_audit_path(),
            environments: any(),
            max_file_bytes: default_max_file(),
            on_full: default_on_full(),
            queue_lines: default_queue_lines(),
        }
    }
}

fn default_audit_path() -> String {
    "-".into()
}
fn any() -> Vec<String> {
    vec!["*".into()]
}
fn default_max_file() -> u64 {
    100 * 1024 * 1024
}
fn default_on_full() -> String {
    "block".into()
}

fn default_queue_lines() -> usize {
    64 * 1024
}
