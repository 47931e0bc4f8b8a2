//! Upstream MCP servers: pools of endpoints, their credential header,
//! timeouts, balancing, and the Pingora `HttpPeer` built for each request.
//!
//! Selection uses pingora-load-balancing's algorithms (`RoundRobin`,
//! `Random`) over the healthy members; least connections counts in-flight
//! requests per endpoint. Pingora's `LoadBalancer` itself is not used: a
//! sealed session must find its endpoint again by identity (`host:port/path`)
//! across restarts and reloads, health must survive reloads and take passive
//! ejections (module `health`), and it has no least-connections selection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use pingora_load_balancing::selection::{
    algorithms::{Random, RoundRobin},
    SelectionAlgorithm,
};

/// The next index below `n` from a pingora-load-balancing selection
/// algorithm (its own `LoadBalancer` is not used: sessions need endpoints
/// by identity, least connections and passive ejection, see module doc).
fn turn(alg: &impl SelectionAlgorithm, n: usize) -> usize {
    (alg.next(b"") % n as u64) as usize
}

/// The round-robin sequence of a pool.
struct Rotation(RoundRobin);

impl std::fmt::Debug for Rotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoundRobin")
    }
}

/// A credential header added to every request to an upstream.
#[derive(Clone)]
pub struct UpstreamAuth {
    /// Header name.
    pub header: HeaderName,
    /// Header value (marked sensitive).
    pub value: HeaderValue,
}

impl std::fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UpstreamAuth({}: <redacted>)", self.header)
    }
}

impl UpstreamAuth {
    /// Validates the header name and value.
    pub fn new(header: &str, value: &str) -> Result<Self, String> {
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("\"{header}\" is not a valid header name"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| "value is not a valid header value".to_string())?;
        value.set_sensitive(true);
        Ok(UpstreamAuth { header, value })
    }
}

/// One upstream MCP endpoint.
#[derive(Debug)]
pub struct Upstream {
    /// Name used by routing rules and logs.
    pub name: Arc<str>,
    /// The configured URL(s), for display.
    pub url: String,
    /// The pool: one endpoint per configured URL.
    pub endpoints: Vec<Arc<Endpoint>>,
    /// How a new session or a stateless call picks an endpoint.
    pub balance: Balance,
    /// Verify the upstream certificate.
    pub verify_tls: bool,
    /// CA bundle for verification instead of the system store.
    pub ca_file: Option<String>,
    /// Credential added to each request.
    pub auth: Option<UpstreamAuth>,
    /// Longest wait for upstream bytes on POST requests.
    pub timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence on a GET SSE stream.
    pub sse_idle_timeout: Duration,
    /// Active health checks of the endpoints.
    pub health_check: crate::health::CheckSettings,
    /// Trust anchors from `tls.ca_file` (instead of the system store).
    pub ca: Option<Arc<Box<[openssl::x509::X509]>>>,
    /// What the gateway spawns for a `type: stdio` upstream.
    pub spawn: Option<Spawn>,
    /// The legacy server's stream URL of a `type: sse` upstream.
    pub legacy: Option<Arc<Endpoint>>,
    /// `type: sse`: legacy connections at most (one per client session)
    /// and how long a silent one is kept.
    pub legacy_limits: (usize, Duration),
    /// pingora-load-balancing's round-robin sequence (also the tie-break
    /// start for least connections).
    rotation: Rotation,
}

/// `upstreams[].load_balancing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// In turn.
    RoundRobin,
    /// The endpoint with the fewest requests in flight (ties: in turn).
    LeastConnections,
    /// Uniformly at random.
    Random,
}

impl Balance {
    /// The config word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Balance::RoundRobin => "round_robin",
            Balance::LeastConnections => "least_connections",
            Balance::Random => "random",
        }
    }

    /// Parses the config word.
    pub fn parse(s: &str) -> Option<Balance> {
        Some(match s {
            "round_robin" => Balance::RoundRobin,
            "least_connections" => Balance::LeastConnections,
            "random" => Balance::Random,
            _ => return None,
        })
    }
}

/// One member of an upstream pool.
#[derive(Debug)]
pub struct Endpoint {
    /// The configured URL.
    pub url: String,
    /// Stable identity sealed into session tokens (`host:port/path` as configured).
    pub key: String,
    /// Resolved address (resolved at config load).
    pub addr: SocketAddr,
    /// `https://` endpoint.
    pub tls: bool,
    /// SNI and verified host name for TLS.
    pub sni: String,
    /// `Host` header sent upstream (`host[:port]` from the URL).
    pub host_header: String,
    /// Request path (and query) of the MCP endpoint.
    pub path: String,
    /// `path` as a request URI.
    pub uri: http::Uri,
    /// Requests in flight (least connections).
    pub in_flight: AtomicUsize,
    /// Health, shared by every configuration snapshot naming this endpoint.
    pub health: Arc<crate::health::Health>,
    /// Served through the gateway's bridge socket (`type: tunnel`,
    /// `stdio`), not at `addr`.
    pub bridge: Option<Bridge>,
}

/// What serves a bridged endpoint (path `/<kind>/<name>` on the bridge socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bridge {
    /// The reverse tunnel registered under the upstream's name.
    Tunnel,
    /// Processes the gateway spawns itself, one per MCP session.
    Stdio,
    /// A legacy HTTP+SSE (2024-11-05) server the gateway is a client of.
    Sse,
}

impl Bridge {
    /// The `type:` word, also the bridge path's first segment.
    pub fn as_str(&self) -> &'static str {
        match self {
            Bridge::Tunnel => "tunnel",
            Bridge::Stdio => "stdio",
            Bridge::Sse => "sse",
        }
    }
}

/// What an upstream served from inside the gateway is configured with
/// (`tunnel::local`).
#[derive(Debug, Clone)]
pub enum LocalSpec {
    /// A `type: stdio` upstream.
    Stdio(Spawn),
    /// A `type: sse` upstream (its legacy endpoint, credential, timeouts).
    Sse(Arc<Upstream>),
}

impl PartialEq for LocalSpec {
    fn eq(&self, other: &LocalSpec) -> bool {
        match (self, other) {
            (LocalSpec::Stdio(a), LocalSpec::Stdio(b)) => a == b,
            (LocalSpec::Sse(a), LocalSpec::Sse(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// What a `type: stdio` upstream runs: `command` (argv, no shell) per MCP
/// session, with exactly `env` as its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawn {
    /// Program and arguments.
    pub command: Vec<String>,
    /// The whole environment of the process (the minimal base plus `env:`).
    pub env: Vec<(String, String)>,
    /// Processes at most (sessions beyond get 503).
    pub max_processes: usize,
    /// A session silent this long has its process stopped.
    pub idle_timeout: Duration,
}

/// Holds an endpoint's in-flight slot for one request (released on drop).
#[derive(Debug)]
pub struct Picked(pub Arc<Endpoint>);

impl Picked {
    /// Counts a request on `e`.
    pub fn new(e: Arc<Endpoint>) -> Picked {
        e.in_flight.fetch_add(1, Ordering::Relaxed);
        Picked(e)
    }
}

impl Drop for Picked {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Endpoint {
    /// An endpoint from a parsed URL.
    pub fn new(url: &str, p: ParsedUrl, sni: Option<String>, uri: http::Uri) -> Endpoint {
        let key = format!("{}{}", p.host_header, p.path);
        Endpoint {
            url: url.to_string(),
            health: crate::health::state_of(&key),
            key,
            addr: p.addr,
            tls: p.tls,
            sni: sni.unwrap_or(p.host),
            host_header: p.host_header,
            path: p.path,
            uri,
            in_flight: AtomicUsize::new(0),
            bridge: None,
        }
    }

    /// The endpoint of a `type: tunnel` upstream: the gateway's own tunnel
    /// bridge (a Unix socket), path `/tunnel/<name>`. It is up while a
    /// tunnel is registered under `name`.
    pub fn tunnel(name: &str) -> Endpoint {
        Self::bridged(Bridge::Tunnel, name)
    }

    /// The endpoint of a bridged upstream: path `/<kind>/<name>` on the
    /// bridge socket. A tunnel starts down (the tunnel registry keeps its
    /// state: up while connected); a stdio upstream is up.
    pub fn bridged(kind: Bridge, name: &str) -> Endpoint {
        let key = format!("{}/{name}", kind.as_str());
        let path = format!("/{}/{name}", kind.as_str());
        let health = crate::health::state_or(&key, kind != Bridge::Tunnel);
        Endpoint {
            url: format!("{}://{name}", kind.as_str()),
            uri: http::Uri::try_from(path.as_str()).unwrap_or_else(|_| http::Uri::from_static("/")),
            health,
            key,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            sni: String::new(),
            host_header: format!("{}.mcp-edge.internal", kind.as_str()),
            path,
            in_flight: AtomicUsize::new(0),
            bridge: Some(kind),
        }
    }
}

impl Endpoint {
    /// This endpoint's origin with another path (a legacy server's POST
    /// endpoint); `None` for a bridged endpoint or a path that is not a
    /// request target.
    pub fn with_path(&self, path: &str) -> Option<Endpoint> {
        if self.bridge.is_some() || !path.starts_with('/') {
            return None;
        }
        let uri = http::Uri::try_from(path).ok()?;
        let scheme = if self.tls { "https" } else { "http" };
        Some(Endpoint {
            url: format!("{scheme}://{}{path}", self.host_header),
            key: format!("{}{path}", self.host_header),
            addr: self.addr,
            tls: self.tls,
            sni: self.sni.clone(),
            host_header: self.host_header.clone(),
            path: path.to_owned(),
            uri,
            in_flight: AtomicUsize::new(0),
            health: self.health.clone(),
            bridge: None,
        })
    }
}

/// The parts of an upstream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `https`.
    pub tls: bool,
    /// Host without brackets.
    pub host: String,
    /// `Host` header value.
    pub host_header: String,
    /// Path and query, at least `/`.
    pub path: String,
    /// First resolved address.
    pub addr: SocketAddr,
}

/// Parses and resolves `http(s)://host[:port]/path`.
pub fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("\"{url}\" is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(format!("\"{url}\": scheme must be http or https")),
    };
    let auth = uri
        .authority()
        .ok_or_else(|| format!("\"{url}\": missing host"))?;
    if auth.as_str().contains('@') {
        return Err(format!(
            "\"{url}\": credentials in the URL are not allowed; use auth"
        ));
    }
    let host = auth
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = auth.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let addr = crate::base::hermetic::resolve_host(&host, port)
        .ok_or_else(|| format!("\"{url}\": cannot resolve host \"{host}\""))?;
    Ok(ParsedUrl {
        tls,
        host_header: auth.as_str().to_string(),
        host,
        path,
        addr,
    })
}

impl Upstream {
    /// Builds an upstream over its pool.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        endpoints: Vec<Endpoint>,
        balance: Balance,
        verify_tls: bool,
        ca_file: Option<String>,
        auth: Option<UpstreamAuth>,
        timeout: Duration,
        connect_timeout: Duration,
        sse_idle_timeout: Duration,
    ) -> Upstream {
        Upstream {
            name: name.into(),
            url: endpoints
                .iter()
                .map(|e| e.url.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            endpoints: endpoints.into_iter().map(Arc::new).collect(),
            balance,
            verify_tls,
            ca_file,
            auth,
            timeout,
            connect_timeout,
            sse_idle_timeout,
            health_check: crate::health::CheckSettings::default(),
            ca: None,
            spawn: None,
            legacy: None,
            legacy_limits: (256, Duration::from_secs(600)),
            rotation: Rotation(RoundRobin::new()),
        }
    }

    /// With these health-check settings.
    pub fn with_health_check(mut self, c: crate::health::CheckSettings) -> Upstream {
        self.health_check = c;
        self
    }

    /// With what a `type: stdio` upstream runs.
    pub fn with_spawn(mut self, spawn: Spawn) -> Upstream {
        self.spawn = Some(spawn);
        self
    }

    /// A `type: sse` upstream from one compiled like `http`: its endpoint
    /// becomes the legacy stream URL, and the gateway's bridge serves it.
    pub fn into_legacy_sse(mut self, max_sessions: usize, idle: Duration) -> Upstream {
        self.legacy = self.endpoints.pop();
        self.endpoints = vec![Arc::new(Endpoint::bridged(Bridge::Sse, &self.name))];
        self.legacy_limits = (max_sessions, idle);
        self
    }

    /// With a private CA for upstream TLS.
    pub fn with_ca(mut self, ca: Option<Arc<Box<[openssl::x509::X509]>>>) -> Upstream {
        self.ca = ca;
        self
    }

    /// Endpoints taking new work now.
    pub fn up_count(&self) -> usize {
        self.endpoints.iter().filter(|e| e.health.is_up()).count()
    }

    /// Picks a healthy endpoint for a new session or a stateless call
    /// (every endpoint when none is healthy: panic mode).
    pub fn pick(&self) -> Option<Picked> {
        self.pick_except(None)
    }

    /// Like [`Self::pick`], never `except` unless it is the only choice.
    pub fn pick_except(&self, except: Option<&str>) -> Option<Picked> {
        // no allocation on the request path: count, choose an index, walk to it
        let other = |e: &&Arc<Endpoint>| Some(e.key.as_str()) != except;
        let any_up = self
            .endpoints
            .iter()
            .filter(other)
            .any(|e| e.health.is_up());
        let eligible = |e: &&Arc<Endpoint>| other(e) && (!any_up || e.health.is_up());
        let n = self.endpoints.iter().filter(eligible).count();
        if n == 0 {
            return None;
        }
        let nth = |i: usize| self.endpoints.iter().filter(eligible).nth(i);
        let chosen = match self.balance {
            Balance::RoundRobin => nth(turn(&self.rotation.0, n)),
            Balance::Random => nth(turn(&Random, n)),
            Balance::LeastConnections => {
                // start at the round-robin position so ties rotate
                let start = turn(&self.rotation.0, n);
                self.endpoints
                    .iter()
                    .filter(eligible)
                    .cycle()
                    .skip(start)
                    .take(n)
                    .min_by_key(|e| e.in_flight.load(Ordering::Relaxed))
            }
        };
        chosen.map(|e| Picked::new(e.clone()))
    }

    /// The endpoint a session token names: `Err` with the refusal label when
    /// it left the pool or is down (its clients re-initialize elsewhere).
    pub fn endpoint(&self, key: &str) -> Result<Picked, &'static str> {
        let e = self
            .endpoints
            .iter()
            .find(|e| e.key == key)
            .ok_or("session_endpoint_gone")?;
        if !e.health.is_up() {
            return Err("session_endpoint_down");
        }
        Ok(Picked::new(e.clone()))
    }

    /// A placeholder upstream for unit tests.
    pub fn for_tests(name: &str) -> Upstream {
        let url = format!("http://127.0.0.1:1/{name}");
        let endpoints = parse_url(&url)
            .map(|p| vec![Endpoint::new(&url, p, None, http::Uri::from_static("/"))])
            .unwrap_or_default();
        Upstream::new(
            name,
            endpoints,
            Balance::RoundRobin,
            true,
            None,
            None,
            Duration::from_secs(30),
            Duration::from_secs(2),
            Duration::from_secs(300),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = parse_url("http://127.0.0.1:9000/mcp").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.addr, SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!(p.path, "/mcp");
        assert_eq!(p.host_header, "127.0.0.1:9000");
        assert!(!p.tls);
        let p = parse_url("https://localhost/x?y=1").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.tls);
        assert_eq!(p.addr.port(), 443);
        assert_eq!(p.path, "/x?y=1");
        assert_eq!(p.host, "localhost");
        let p = parse_url("http://[::1]:8080").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.path, "/");
        assert_eq!(p.host, "::1");
        for bad in [
            "ftp://x/y",
            "not a url",
            "http://u:p@127.0.0.1/x",
            "/just/path",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    fn pool(ports: &[u16], balance: Balance) -> Upstream {
        let eps = ports
            .iter()
            .map(|p| {
                let url = format!("http://127.0.0.1:{p}/pick");
                let parsed = parse_url(&url).unwrap_or_else(|e| panic!("{e}"));
                Endpoint::new(&url, parsed, None, http::Uri::from_static("/pick"))
            })
            .collect();
        let d = Duration::from_secs(1);
        Upstream::new("p", eps, balance, true, None, None, d, d, d)
    }

    fn port_of(p: &Picked) -> u16 {
        p.0.addr.port()
    }

    #[test]
    fn picks_rotate_skip_down_members_and_fall_back_to_all() {
        let u = pool(&[61001, 61002, 61003], Balance::RoundRobin);
        let seq: Vec<u16> = (0..6)
            .filter_map(|_| u.pick())
            .map(|p| port_of(&p))
            .collect();
        assert_eq!(seq, [61001, 61002, 61003, 61001, 61002, 61003]);
        u.endpoints[1].health.eject();
        assert!((0..6)
            .filter_map(|_| u.pick())
            .all(|p| port_of(&p) != 61002));
        let except = u.endpoints[0].key.clone();
        assert!((0..4)
            .filter_map(|_| u.pick_except(Some(&except)))
            .all(|p| port_of(&p) == 61003));
        // every member down: all are used again (panic mode)
        u.endpoints[0].health.eject();
        u.endpoints[2].health.eject();
        let mut seen: Vec<u16> = (0..3)
            .filter_map(|_| u.pick())
            .map(|p| port_of(&p))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [61001, 61002, 61003]);
    }

    #[test]
    fn least_connections_prefers_the_idle_member() {
        let u = pool(&[61011, 61012], Balance::LeastConnections);
        let held = u.pick().unwrap_or_else(|| panic!("empty pool"));
        // the held request keeps its member busy: the next picks go to the other
        for _ in 0..3 {
            let p = u.pick().unwrap_or_else(|| panic!("empty pool"));
            assert_ne!(port_of(&p), port_of(&held));
        }
    }

    #[test]
    fn auth_header_is_sensitive_and_redacted() {
        let a =
            UpstreamAuth::new("Authorization", "Bearer s3cret").unwrap_or_else(|e| panic!("{e}"));
        assert!(a.value.is_sensitive());
        assert!(!format!("{a:?}").contains("s3cret"));
        assert!(UpstreamAuth::new("bad name", "v").is_err());
        assert!(UpstreamAuth::new("x", "bad\nvalue").is_err());
    }
}
