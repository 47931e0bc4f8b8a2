//! Raw YAML → [`Runtime`]. Each top-level section and each list entry is
//! deserialized on its own so that one mistake does not hide the next: the
//! operator gets every problem, each with its YAML path
//! (`routing[2].upstream: unknown upstream "mcp-kb"`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::raw;
use super::ConfigError;
use crate::auth::{apikey, ApiKeys, Authenticator};
use crate::base::glob::Glob;
use crate::hygiene::HeaderPolicy;
use crate::policy::{self, Globs, Policy};
use crate::routing::{Routes, Rule};
use crate::runtime::{Limits, LogFormat, ResourceMetadata, Runtime, ServerSettings};
use crate::telemetry::sink::OnFull;
use crate::upstream::{Upstream, UpstreamAuth};

/// Sections this version understands; anything else at the top level is an error.
const SECTIONS: &[&str] = &[
    "server",
    "upstreams",
    "routing",
    "upstream_headers",
    "logging",
    "auth",
    "policy",
    "audit",
    "rate_limit",
    "proxy_protocol",
    "tls",
    "sessions",
    "admin",
    "tunnel",
];

/// Deepest `max_json_depth` accepted (serde_json's own recursion guard is 128).
pub const MAX_JSON_DEPTH_LIMIT: u32 = 100;

struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, path: impl std::fmt::Display, msg: impl std::fmt::Display) {
        self.0.push(format!("{path}: {msg}"));
    }
}

/// Deserializes `value` as `T`, reporting a failure under `path` plus the inner path.
fn section<T: DeserializeOwned>(value: &Value, path: &str, errs: &mut Errors) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                format!("{path}.{inner}")
            };
            errs.push(full, e.into_inner());
            None
        }
    }
}

/// Replaces `${VAR}` placeholders; a missing or empty variable is an error.
pub fn expand_env(
    s: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    errs.push(format!("{path}: invalid placeholder \"${{{name}}}\""));
                } else {
                    match env(name) {
                        Some(v) if !v.is_empty() => out.push_str(&v),
                        _ => errs.push(format!(
                            "{path}: environment variable {name} is not set or empty"
                        )),
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                errs.push(format!("{path}: unterminated \"${{\" placeholder"));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Compiles configuration text into a runtime snapshot.
pub fn compile(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Runtime, ConfigError> {
    let mut errs = Errors(Vec::new());
    let doc: Value = match serde_yaml::from_str(text) {
        Ok(Value::Null) => return Err(ConfigError(vec!["(root): configuration is empty".into()])),
        Ok(v) => v,
        Err(e) => return Err(ConfigError(vec![format!("(yaml): {e}")])),
    };
    let Value::Mapping(root) = &doc else {
        return Err(ConfigError(vec![
            "(root): expected a mapping of sections".into()
        ]));
    };
    for key in root.keys() {
        match key.as_str() {
            Some(k) if SECTIONS.contains(&k) => {}
            Some(k) => errs.push(
                k,
                format!("unknown section (known: {})", SECTIONS.join(", ")),
            ),
            None => errs.push("(root)", "section names must be strings"),
        }
    }
    let get = |k: &str| root.get(k);

    let server = match get("server") {
        Some(v) => section::<raw::Server>(v, "server", &mut errs),
        None => {
            errs.push("server", "missing (server.listen is required)");
            None
        }
    };
    let logging = get("logging")
        .and_then(|v| section::<raw::Logging>(v, "logging", &mut errs))
        .unwrap_or_default();
    let auth = get("auth")
        .and_then(|v| section::<raw::Auth>(v, "auth", &mut errs))
        .unwrap_or_default();
    let policy_raw = get("policy")
        .and_then(|v| section::<raw::Policy>(v, "policy", &mut errs))
        .unwrap_or_default();
    let audit_raw = get("audit").and_then(|v| section::<raw::Audit>(v, "audit", &mut errs));
    let admin_raw = get("admin").and_then(|v| section::<raw::Admin>(v, "admin", &mut errs));
    let tunnel_raw = get("tunnel").and_then(|v| section::<raw::Tunnel>(v, "tunnel", &mut errs));
    let tls_raw = get("tls").and_then(|v| section::<raw::Tls>(v, "tls", &mut errs));
    let sessions_raw =
        get("sessions").and_then(|v| section::<raw::Sessions>(v, "sessions", &mut errs));
    let pp_raw = get("proxy_protocol")
        .and_then(|v| section::<raw::ProxyProtocol>(v, "proxy_protocol", &mut errs));
    let rate_raw =
        get("rate_limit").and_then(|v| section::<raw::RateLimit>(v, "rate_limit", &mut errs));
    let headers = get("upstream_headers")
        .and_then(|v| section::<raw::UpstreamHeaders>(v, "upstream_headers", &mut errs))
        .unwrap_or_default();

    // upstreams: each entry on its own
    let mut upstreams: Vec<Arc<Upstream>> = Vec::new();
    let mut names = HashSet::new();
    match get("upstreams") {
        Some(Value::Sequence(list)) => {
            for (i, item) in list.iter().enumerate() {
                let path = format!("upstreams[{i}]");
                let Some(u) = section::<raw::Upstream>(item, &path, &mut errs) else {
                    continue;
                };
                if !names.insert(u.name.clone()) {
                    errs.push(
                        format!("{path}.name"),
                        format!("duplicate upstream \"{}\"", u.name),
                    );
                }
                if let Some(up) = compile_upstream(&u, &path, env, &mut errs) {
                    upstreams.push(Arc::new(up));
                }
            }
            if list.is_empty() {
                errs.push("upstreams", "at least one upstream is required");
            }
        }
        Some(_) => errs.push("upstreams", "expected a list"),
        None => errs.push("upstreams", "missing (at least one upstream is required)"),
    }

    // routing
    let mut rules = Vec::new();
    match get("routing") {
        Some(Value::Sequence(list)) => {
            for (i, item) in list.iter().enumerate() {
                let path = format!("routing[{i}]");
                let Some(r) = section::<raw::Route>(item, &path, &mut errs) else {
                    continue;
                };
                let m = &r.matches;
                for (field, value) in [
                    ("method", &m.method),
                    ("tool", &m.tool),
                    ("resource", &m.resource),
                    ("prompt", &m.prompt),
                ] {
                    if matches!(value.as_deref(), Some("")) {
                        errs.push(format!("{path}.match.{field}"), "empty pattern");
                    }
                }
                if let Some(Err(e)) = m.resource.as_deref().map(crate::uri::check_pattern) {
                    errs.push(format!("{path}.match.resource"), e);
                }
                let target = upstreams.iter().find(|u| *u.name == *r.upstream).cloned();
                let Some(upstream) = target else {
                    if !names.contains(&r.upstream) {
                        errs.push(
                            format!("{path}.upstream"),
                            format!("unknown upstream \"{}\"", r.upstream),
                        );
                    }
                    continue;
                };
                rules.push(Rule {
                    method: m.method.as_deref().map(Glob::new),
                    tool: m.tool.as_deref().map(Glob::new),
                    resource: m.resource.as_deref().map(Glob::new),
                    prompt: m.prompt.as_deref().map(Glob::new),
                    upstream,
                });
            }
            if list.is_empty() {
                errs.push("routing", "at least one rule is required");
            }
        }
        Some(_) => errs.push("routing", "expected a list"),
        None => errs.push("routing", "missing (at least one rule is required)"),
    }

    let mut forward_errs = Vec::new();
    let header_policy = HeaderPolicy::new(&headers.forward, &mut forward_errs);
    for e in forward_errs {
        errs.0.push(format!("upstream_headers.forward{e}"));
    }

    let level = logging.level.to_ascii_lowercase();
    if !["error", "warn", "info", "debug", "trace", "off"].contains(&level.as_str()) {
        errs.push(
            "logging.level",
            format!("unknown level \"{}\"", logging.level),
        );
    }
    let format = match logging.format.as_str() {
        "json" => LogFormat::Json,
        "text" => LogFormat::Text,
        other => {
            errs.push(
                "logging.format",
                format!("expected json or text, got \"{other}\""),
            );
            LogFormat::Json
        }
    };

    let server = server.and_then(|s| compile_server(s, &mut errs));
    let authenticator = compile_auth(&auth, env, &mut errs);
    let resource_metadata = auth.resource_metadata.as_ref().and_then(|m| {
        compile_resource_metadata(m, server.as_ref().map(|s| s.path.as_str()), &mut errs)
    });
    let policy = compile_policy(&policy_raw, &mut errs);
    let audit_settings = audit_raw.and_then(|a| compile_audit(&a, env, &mut errs));
    // on by default, with or without a rate_limit section
    let refusals_rpm = rate_raw
        .as_ref()
        .and_then(|r| r.refusals_rpm)
        .unwrap_or(crate::ratelimit::refusals::DEFAULT_RPM);
    let rate_limits = rate_raw.and_then(|r| compile_rate_limit(&r, env, &mut errs));
    let proxy_protocol = pp_raw.and_then(|p| compile_proxy_protocol(&p, &mut errs));
    let sessions = sessions_raw.and_then(|s| compile_sessions(&s, env, &mut errs));
    let has_client_ca = tls_raw.as_ref().is_some_and(|t| t.client_ca.is_some());
    let tls = tls_raw.and_then(|t| compile_tls(&t, &mut errs));
    if authenticator.client_cert.is_some() && !has_client_ca {
        errs.push(
            "auth.client_cert",
            "needs tls.client_ca (client certificates are only verified with it)",
        );
    }
    let admin = admin_raw.and_then(|a| {
        compile_admin(
            &a,
            server.as_ref().map_or(&[][..], |s| &s.listen[..]),
            env,
            &mut errs,
        )
    });
    let tunnel = compile_tunnel(
        tunnel_raw.as_ref(),
        &upstreams,
        server.as_ref().map(|s| s.path.as_str()),
        env,
        &mut errs,
    );
    let redact_keys = logging
        .redact_keys
        .iter()
        .map(|k| k.to_ascii_lowercase())
        .collect();

    if !errs.0.is_empty() {
        return Err(ConfigError(errs.0));
    }
    let Some(server) = server else {
        return Err(ConfigError(vec!["server: invalid".into()]));
    };
    Ok(Runtime {
        server,
        routes: Routes::new(rules),
        upstreams,
        headers: header_policy,
        auth: authenticator,
        resource_metadata,
        policy,
        audit_settings,
        audit: std::sync::OnceLock::new(),
        rate_limits,
        refusals_rpm,
        proxy_protocol,
        tls,
        sessions,
        redact_keys,
        admin,
        tunnel,
        log_level: level,
        log_format: format,
    })
}

fn compile_server(s: raw::Server, errs: &mut Errors) -> Option<ServerSettings> {
    let listen = match s.listen {
        raw::OneOrMany::One(a) => vec![a],
        raw::OneOrMany::Many(v) => v,
    };
    if listen.is_empty() {
        errs.push("server.listen", "at least one address is required");
    }
    for (i, a) in listen.iter().enumerate() {
        if crate::base::hermetic::resolve(a).is_none() {
            errs.push(
                format!("server.listen[{i}]"),
                format!("\"{a}\" is not a host:port address"),
            );
        }
    }
    if !s.path.starts_with('/') || s.path.contains(['?', '#', ' ']) {
        errs.push(
            "server.path",
            format!("\"{}\" must be an absolute path", s.path),
        );
    }
    for (i, o) in s.allowed_origins.iter().enumerate() {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            errs.push(
                format!("server.allowed_origins[{i}]"),
                format!("\"{o}\" must be a scheme://host[:port] origin or \"*\""),
            );
        }
    }
    let l = &s.limits;
    if l.max_body_bytes == 0 || l.max_body_bytes > 64 << 20 {
        errs.push(
            "server.limits.max_body_bytes",
            "must be between 1 and 67108864",
        );
    }
    if l.max_json_depth == 0 || l.max_json_depth > MAX_JSON_DEPTH_LIMIT {
        errs.push(
            "server.limits.max_json_depth",
            format!("must be between 1 and {MAX_JSON_DEPTH_LIMIT}"),
        );
    }
    if l.max_uri_bytes < 256 {
        errs.push("server.limits.max_uri_bytes", "must be at least 256");
    }
    if l.max_headers == 0 {
        errs.push("server.limits.max_headers", "must be at least 1");
    }
    if l.max_header_bytes < 1024 {
        errs.push("server.limits.max_header_bytes", "must be at least 1024");
    }
    if l.header_timeout_ms == 0 {
        errs.push("server.limits.header_timeout_ms", "must be at least 1");
    }
    if l.body_timeout_ms == 0 {
        errs.push("server.limits.body_timeout_ms", "must be at least 1");
    }
    if l.max_connections == 0 {
        errs.push("server.limits.max_connections", "must be at least 1");
    }
    if l.max_response_bytes < 1024 {
        errs.push("server.limits.max_response_bytes", "must be at least 1024");
    }
    let trust_proxy = compile_trust_proxy(s.trust_proxy.as_ref(), errs);
    let threads = if s.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        s.threads
    };
    Some(ServerSettings {
        listen,
        path: s.path,
        threads,
        allowed_origins: s.allowed_origins,
        allowed_hosts: s
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        trust_proxy,
        limits: Limits {
            max_body_bytes: usize::try_from(l.max_body_bytes).unwrap_or(usize::MAX),
            max_header_bytes: usize::try_from(l.max_header_bytes).unwrap_or(usize::MAX),
            max_headers: usize::try_from(l.max_headers).unwrap_or(usize::MAX),
            max_uri_bytes: usize::try_from(l.max_uri_bytes).unwrap_or(usize::MAX),
            header_timeout: ms(l.header_timeout_ms),
            body_timeout: ms(l.body_timeout_ms),
            max_json_depth: l.max_json_depth,
            max_connections: usize::try_from(l.max_connections).unwrap_or(usize::MAX),
            max_response_bytes: usize::try_from(l.max_response_bytes).unwrap_or(usize::MAX),
            linger: ms(l.linger_ms),
            linger_bytes: l.linger_bytes,
        },
        grace_period_secs: s.grace_period_secs,
        pid_file: s.pid_file,
        upgrade_sock: s.upgrade_sock,
    })
}

fn compile_auth(
    auth: &raw::Auth,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Authenticator {
    let mut keys = ApiKeys::default();
    let mut ids = HashSet::new();
    for (i, k) in auth.api_keys.iter().enumerate() {
        let path = format!("auth.api_keys[{i}]");
        if k.id.is_empty() {
            errs.push(format!("{path}.id"), "must not be empty");
        } else if !ids.insert(k.id.clone()) {
            errs.push(
                format!("{path}.id"),
                format!("duplicate key id \"{}\"", k.id),
            );
        }
        if k.tenant.is_empty() {
            errs.push(format!("{path}.tenant"), "must not be empty");
        }
        let digest = match (&k.key, &k.key_hash) {
            (Some(_), Some(_)) => {
                errs.push(&path, "give either key or key_hash, not both");
                None
            }
            (None, None) => {
                errs.push(&path, "key or key_hash is required");
                None
            }
            (Some(plain), None) => {
                let mut env_errs = Vec::new();
                let plain = expand_env(plain, &format!("{path}.key"), env, &mut env_errs);
                errs.0.extend(env_errs);
                if plain.len() < 8 {
                    errs.push(format!("{path}.key"), "keys must be at least 8 characters");
                }
                Some(apikey::digest(plain.as_bytes()))
            }
            (None, Some(h)) => match apikey::parse_hash(h) {
                Ok(d) => Some(d),
                Err(e) => {
                    errs.push(format!("{path}.key_hash"), e);
                    None
                }
            },
        };
        if let Some(d) = digest {
            let client = k.client.as_deref().unwrap_or(&k.id);
            if let Err(e) = keys.insert(&k.id, d, &k.tenant, client) {
                errs.push(&path, e);
            }
        }
    }
    let jwt = auth
        .jwt
        .as_ref()
        .and_then(|j| compile_jwt(j, errs))
        .map(std::sync::Arc::new);
    let client_cert = auth.client_cert.as_ref().and_then(|c| {
        use crate::auth::mtls::{CertIdentity, ClientField, TenantField};
        let client_from = ClientField::parse(&c.client_from);
        if client_from.is_none() {
            errs.push(
                "auth.client_cert.client_from",
                format!(
                    "expected cn, san_dns, san_email or san_uri, got \"{}\"",
                    c.client_from
                ),
            );
        }
        let tenant_from = TenantField::parse(&c.tenant_from);
        if tenant_from.is_none() {
            errs.push(
                "auth.client_cert.tenant_from",
                format!("expected o, ou, cn or fixed, got \"{}\"", c.tenant_from),
            );
        }
        if c.tenant.is_empty() {
            errs.push("auth.client_cert.tenant", "must not be empty");
        }
        Some(CertIdentity {
            client_from: client_from?,
            tenant_from: tenant_from?,
            tenant: c.tenant.clone(),
        })
    });
    Authenticator {
        anonymous: auth.anonymous,
        keys,
        jwt,
        client_cert,
    }
}

fn compile_tls(t: &raw::Tls, errs: &mut Errors) -> Option<Arc<crate::tls_material::Material>> {
    use crate::tls_material::{ClientAuth, Material, TlsFiles};
    let client_auth = match (t.client_ca.as_deref(), t.client_auth.as_deref()) {
        (None, None) => ClientAuth::None,
        (None, Some(_)) => {
            errs.push("tls.client_auth", "needs tls.client_ca");
            ClientAuth::None
        }
        (Some(_), None | Some("required")) => ClientAuth::Required,
        (Some(_), Some("optional")) => ClientAuth::Optional,
        (Some(_), Some(other)) => {
            errs.push(
                "tls.client_auth",
                format!("expected required or optional, got \"{other}\""),
            );
            ClientAuth::Required
        }
    };
    let files = TlsFiles {
        cert_file: t.cert_file.clone().into(),
        key_file: t.key_file.clone().into(),
        client_ca: t.client_ca.clone().map(Into::into),
        client_auth,
    };
    match Material::load(&files) {
        Ok(m) => Some(Arc::new(m)),
        Err(problems) => {
            for (key, msg) in problems {
                errs.push(key, msg);
            }
            None
        }
    }
}

fn compile_jwt(j: &raw::Jwt, errs: &mut Errors) -> Option<crate::auth::jwt::JwtVerifier> {
    use crate::auth::jwt::{parse_algorithm, JwksSource, JwtSettings, JwtVerifier};
    let before = errs.0.len();
    if j.issuer.is_empty() {
        errs.push("auth.jwt.issuer", "must not be empty");
    }
    if j.audiences.is_empty() {
        errs.push("auth.jwt.audiences", "at least one audience is required");
    }
    let mut algorithms = Vec::new();
    for (i, a) in j.algorithms.iter().enumerate() {
        match parse_algorithm(a) {
            Ok(alg) => algorithms.push(alg),
            Err(e) => errs.push(format!("auth.jwt.algorithms[{i}]"), e),
        }
    }
    if j.algorithms.is_empty() {
        errs.push("auth.jwt.algorithms", "at least one algorithm is required");
    }
    let source = match (&j.jwks_url, &j.jwks_file) {
        (Some(u), None) => {
            if !(u.starts_with("https://") || u.starts_with("http://"))
                || u.parse::<http::Uri>().is_err()
            {
                errs.push("auth.jwt.jwks_url", "must be an http:// or https:// URL");
            }
            JwksSource::Url(u.clone())
        }
        (None, Some(f)) => JwksSource::File(f.clone()),
        _ => {
            errs.push("auth.jwt", "give exactly one of jwks_url and jwks_file");
            return None;
        }
    };
    let mut forward_claims = Vec::new();
    for (claim, header) in &j.forward_claims {
        match http::HeaderName::from_bytes(header.as_bytes()) {
            Ok(h) if !crate::hygiene::NEVER_FORWARDED.contains(&h.as_str()) => {
                forward_claims.push((claim.clone(), h))
            }
            _ => errs.push(
                format!("auth.jwt.forward_claims.{claim}"),
                format!("\"{header}\" cannot be used as an upstream header"),
            ),
        }
    }
    if j.jwks_unknown_kid_refetch_secs == 0 {
        errs.push(
            "auth.jwt.jwks_unknown_kid_refetch_secs",
            "must be at least 1",
        );
    }
    if j.jwks_refresh_secs < 10 {
        errs.push("auth.jwt.jwks_refresh_secs", "must be at least 10");
    }
    if errs.0.len() != before {
        return None;
    }
    let settings = JwtSettings {
        issuer: j.issuer.clone(),
        audiences: j.audiences.clone(),
        algorithms,
        leeway_secs: j.leeway_secs,
        tenant_claim: j.tenant_claim.clone(),
        client_claim: j.client_claim.clone(),
        forward_claims,
        source,
        refresh: Duration::from_secs(j.jwks_refresh_secs),
        unknown_kid_refetch: Duration::from_secs(j.jwks_unknown_kid_refetch_secs),
    };
    match JwtVerifier::new(settings) {
        Ok(v) => Some(v),
        Err(e) => {
            errs.push("auth.jwt.jwks_file", e);
            None
        }
    }
}

fn compile_resource_metadata(
    m: &raw::ResourceMetadata,
    mcp_path: Option<&str>,
    errs: &mut Errors,
) -> Option<ResourceMetadata> {
    let uri: http::Uri = match m.resource.parse() {
        Ok(u) => u,
        Err(_) => {
            errs.push(
                "auth.resource_metadata.resource",
                "must be an absolute https:// or http:// URL",
            );
            return None;
        }
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        errs.push(
            "auth.resource_metadata.resource",
            "must be an absolute https:// or http:// URL",
        );
        return None;
    };
    for (i, a) in m.authorization_servers.iter().enumerate() {
        if !(a.starts_with("https://") || a.starts_with("http://")) {
            errs.push(
                format!("auth.resource_metadata.authorization_servers[{i}]"),
                "must be a URL",
            );
        }
    }
    const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
    let resource_path = uri.path().trim_end_matches('/');
    let mut paths = vec![WELL_KNOWN.to_string()];
    for p in [Some(resource_path), mcp_path] {
        if let Some(p) = p.filter(|p| !p.is_empty() && *p != "/") {
            let suffixed = format!("{WELL_KNOWN}{p}");
            if !paths.contains(&suffixed) {
                paths.push(suffixed);
            }
        }
    }
    let mut doc = serde_json::json!({
        "resource": m.resource,
        "authorization_servers": m.authorization_servers,
        "bearer_methods_supported": ["header"],
    });
    if !m.scopes_supported.is_empty() {
        doc["scopes_supported"] = serde_json::json!(m.scopes_supported);
    }
    Some(ResourceMetadata {
        document: bytes::Bytes::from(doc.to_string()),
        url: format!("{scheme}://{authority}{WELL_KNOWN}{resource_path}"),
        paths,
    })
}

fn compile_globs(list: &[String], path: &str, errs: &mut Errors) -> Vec<Glob> {
    list.iter()
        .enumerate()
        .filter_map(|(i, g)| {
            if g.is_empty() {
                errs.push(format!("{path}[{i}]"), "empty pattern");
                None
            } else {
                Some(Glob::new(g))
            }
        })
        .collect()
}

/// Resource globs: matched against normalized URIs (`crate::uri`), so a
/// pattern must be written in normal form too.
fn compile_resource_globs(list: &[String], path: &str, errs: &mut Errors) -> Vec<Glob> {
    for (i, g) in list.iter().enumerate() {
        if let Err(e) = crate::uri::check_pattern(g) {
            errs.push(format!("{path}[{i}]"), e);
        }
    }
    compile_globs(list, path, errs)
}

fn compile_grants(g: &raw::Grants, path: &str, errs: &mut Errors) -> Globs {
    Globs {
        methods: compile_globs(&g.methods, &format!("{path}.methods"), errs),
        tools: compile_globs(&g.tools, &format!("{path}.tools"), errs),
        resources: compile_resource_globs(&g.resources, &format!("{path}.resources"), errs),
        prompts: compile_globs(&g.prompts, &format!("{path}.prompts"), errs),
    }
}

fn compile_policy(p: &raw::Policy, errs: &mut Errors) -> Policy {
    if p.default != "deny" {
        errs.push(
            "policy.default",
            "only \"deny\" is supported (deny by default)",
        );
    }
    let rules = p
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| policy::Rule {
            tenant: Glob::new(r.subject.tenant.as_deref().unwrap_or("*")),
            client: Glob::new(r.subject.client.as_deref().unwrap_or("*")),
            claims: r
                .subject
                .claims
                .iter()
                .map(|(k, g)| (k.clone(), Glob::new(g)))
                .collect(),
            allow: compile_grants(&r.allow, &format!("policy.rules[{i}].allow"), errs),
            deny: compile_grants(&r.deny, &format!("policy.rules[{i}].deny"), errs),
        })
        .collect();
    Policy { rules }
}

fn compile_rate_limit(
    r: &raw::RateLimit,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<crate::ratelimit::Limits> {
    let before = errs.0.len();
    for (m, v) in &r.by_method {
        if *v == 0 {
            errs.push(
                format!("rate_limit.by_method.{m}"),
                "must be at least 1 per minute",
            );
        }
    }
    for (t, v) in &r.by_tool {
        if *v == 0 {
            errs.push(
                format!("rate_limit.by_tool.{t}"),
                "must be at least 1 per minute",
            );
        }
    }
    let redis_url = env("REDIS_URL").or_else(|| r.redis.as_ref().map(|x| x.url.clone()));
    let (timeout_ms, on_error) = r
        .redis
        .as_ref()
        .map_or((100, "local"), |x| (x.timeout_ms, x.on_error.as_str()));
    use crate::ratelimit::redis::{OnError, RedisStore};
    let on_error = match on_error {
        "local" => OnError::Local,
        "allow" => OnError::Allow,
        "deny" => OnError::Deny,
        other => {
            errs.push(
                "rate_limit.redis.on_error",
                format!("expected local, allow or deny, got \"{other}\""),
            );
            OnError::Local
        }
    };
    if timeout_ms == 0 {
        errs.push("rate_limit.redis.timeout_ms", "must be at least 1");
    }
    let redis = match redis_url {
        Some(url) => match RedisStore::new(&url, Duration::from_millis(timeout_ms), on_error) {
            Ok(s) => Some(std::sync::Arc::new(s)),
            Err(e) => {
                errs.push("rate_limit.redis.url", e);
                None
            }
        },
        None => None,
    };
    if errs.0.len() != before {
        return None;
    }
    Some(crate::ratelimit::Limits {
        default_rpm: r.default_rpm,
        by_method: r.by_method.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        by_tool: r.by_tool.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        prefix: env("RATE_LIMIT_KEY_PREFIX").unwrap_or_else(|| r.key_prefix.clone()),
        redis,
    })
}

/// Environment name when `MCP_EDGE_ENV` is not set.
pub const DEFAULT_ENV: &str = "production";

/// Shortest accepted `admin.token`.
const MIN_ADMIN_TOKEN: usize = 16;

fn compile_admin(
    a: &raw::Admin,
    public: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<crate::runtime::AdminSettings> {
    let listen = match a.listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errs.push(
                "admin.listen",
                format!(
                    "expected host:port with an IP address, got \"{}\"",
                    a.listen
                ),
            );
            None
        }
    };
    if public.contains(&a.listen) {
        errs.push("admin.listen", "must differ from server.listen");
    }
    let token = a.token.as_ref().and_then(|t| {
        let mut env_errs = Vec::new();
        let t = expand_env(t, "admin.token", env, &mut env_errs);
        errs.0.extend(env_errs.iter().cloned());
        if !env_errs.is_empty() {
            return None;
        }
        if t.len() < MIN_ADMIN_TOKEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errs.push(
                "admin.token",
                format!("must be at least {MIN_ADMIN_TOKEN} characters without spaces"),
            );
            return None;
        }
        Some(crate::runtime::AdminToken::new(&t))
    });
    Some(crate::runtime::AdminSettings {
        listen: listen?,
        token,
    })
}

fn compile_audit(
    a: &raw::Audit,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<(crate::telemetry::sink::Target, OnFull, usize)> {
    let on_full = match a.on_full.as_str() {
        "block" => OnFull::Block,
        "drop" => OnFull::Drop,
        other => {
            errs.push(
                "audit.on_full",
                format!("expected block or drop, got \"{other}\""),
            );
            OnFull::Block
        }
    };
    if a.path.is_empty() {
        errs.push("audit.path", "must be a file path or \"-\" (stdout)");
    } else if a.path != "-" {
        let parent = std::path::Path::new(&a.path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            if !crate::base::hermetic::is_dir(dir) {
                errs.push(
                    "audit.path",
                    format!("directory {} does not exist", dir.display()),
                );
            }
        }
    }
    if a.max_file_bytes < 4096 {
        errs.push("audit.max_file_bytes", "must be at least 4096");
    }
    if !(1..=1 << 20).contains(&a.queue_lines) {
        errs.push("audit.queue_lines", "must be between 1 and 1048576");
    }
    let envs = compile_globs(&a.environments, "audit.environments", errs);
    let current = env("MCP_EDGE_ENV").unwrap_or_else(|| DEFAULT_ENV.to_string());
    if !a.enabled || !crate::telemetry::audit::enabled_in(&envs, &current) {
        return None;
    }
    Some((
        crate::telemetry::audit::Audit::target(&a.path, a.max_file_bytes),
        on_full,
        a.queue_lines,
    ))
}

fn compile_proxy_protocol(
    p: &raw::ProxyProtocol,
    errs: &mut Errors,
) -> Option<crate::addr::proxy_protocol::ProxyProtocol> {
    if !p.enabled {
        return None;
    }
    if p.trusted_cidrs.is_empty() {
        errs.push(
            "proxy_protocol.trusted_cidrs",
            "required when enabled (who may name the client address)",
        );
    }
    let mut trusted = Vec::new();
    for (i, c) in p.trusted_cidrs.iter().enumerate() {
        match c
            .parse::<ipnet::IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(n) => trusted.push(n),
            Err(_) => errs.push(
                format!("proxy_protocol.trusted_cidrs[{i}]"),
                format!("\"{c}\" is not an address or CIDR"),
            ),
        }
    }
    if p.header_timeout_ms == 0 {
        errs.push("proxy_protocol.header_timeout_ms", "must be at least 1");
    }
    Some(crate::addr::proxy_protocol::ProxyProtocol {
        trusted,
        header_timeout: Duration::from_millis(p.header_timeout_ms),
    })
}

fn compile_trust_proxy(
    t: Option<&raw::TrustProxy>,
    errs: &mut Errors,
) -> crate::addr::trusted::TrustProxy {
    use crate::addr::trusted::TrustProxy;
    let mut out = TrustProxy::default();
    let (list, headers) = match t {
        None | Some(raw::TrustProxy::Flag(false)) => return out,
        Some(raw::TrustProxy::Flag(true)) => {
            errs.push(
                "server.trust_proxy",
                "true would let any client forge its address; list the proxies' CIDRs",
            );
            return out;
        }
        Some(raw::TrustProxy::List(l)) => (l.as_slice(), None),
        Some(raw::TrustProxy::Full(f)) => (f.proxies.as_slice(), Some(&f.headers)),
    };
    let path = if headers.is_some() {
        "server.trust_proxy.proxies"
    } else {
        "server.trust_proxy"
    };
    for (i, c) in list.iter().enumerate() {
        let net = c
            .parse::<ipnet::IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match net {
            Ok(n) => out.proxies.push(n),
            Err(_) => errs.push(
                format!("{path}[{i}]"),
                format!("\"{c}\" is not an address or CIDR"),
            ),
        }
    }
    if let Some(h) = headers {
        for (field, value, slot) in [
            ("client_ip", &h.client_ip, &mut out.client_ip),
            ("protocol", &h.protocol, &mut out.protocol),
            ("host", &h.host, &mut out.host),
        ] {
            if let Some(v) = value {
                match http::HeaderName::from_bytes(v.as_bytes()) {
                    Ok(name) => *slot = name,
                    Err(_) => errs.push(
                        format!("server.trust_proxy.headers.{field}"),
                        format!("\"{v}\" is not a header name"),
                    ),
                }
            }
        }
    }
    out
}

fn compile_upstream(
    u: &raw::Upstream,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Upstream> {
    let before = errs.0.len();
    if u.name.is_empty()
        || !u
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        errs.push(format!("{path}.name"), "must be non-empty [A-Za-z0-9._-]");
    }
    match u.kind.as_deref() {
        None | Some("http") => {}
        Some("tunnel") => return compile_tunnel_upstream(u, path, before, errs),
        Some(other) => errs.push(
            format!("{path}.type"),
            format!("expected http or tunnel, got \"{other}\""),
        ),
    }
    let urls: Vec<(String, &str)> = match (&u.url, u.endpoints.is_empty()) {
        (Some(url), true) => vec![(format!("{path}.url"), url.as_str())],
        (None, false) => u
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("{path}.endpoints[{i}]"), e.as_str()))
            .collect(),
        (Some(_), false) => {
            errs.push(path, "give url or endpoints, not both");
            Vec::new()
        }
        (None, true) => {
            errs.push(path, "url or endpoints is required");
            Vec::new()
        }
    };
    let balance = match u.load_balancing.as_deref() {
        None => Some(crate::upstream::Balance::RoundRobin),
        Some(b) => {
            let parsed = crate::upstream::Balance::parse(b);
            if parsed.is_none() {
                errs.push(
                    format!("{path}.load_balancing"),
                    format!("expected round_robin, least_connections or random, got \"{b}\""),
                );
            }
            parsed
        }
    };
    let health_check = match &u.health_check {
        None => Some(crate::health::CheckSettings::default()),
        Some(h) => {
            let mut ok = true;
            if h.interval_ms < 100 {
                errs.push(
                    format!("{path}.health_check.interval_ms"),
                    "must be at least 100",
                );
                ok = false;
            }
            if h.timeout_ms == 0 || h.timeout_ms > h.interval_ms {
                errs.push(
                    format!("{path}.health_check.timeout_ms"),
                    "must be between 1 and interval_ms",
                );
                ok = false;
            }
            if let Some(p) = &h.path {
                if !p.starts_with('/') || p.contains([' ', '\r', '\n']) {
                    errs.push(
                        format!("{path}.health_check.path"),
                        "must be an absolute path",
                    );
                    ok = false;
                }
            }
            ok.then(|| crate::health::CheckSettings {
                interval: ms(h.interval_ms),
                timeout: ms(h.timeout_ms),
                path: h.path.clone(),
            })
        }
    };
    let mut parsed_urls = Vec::new();
    let mut keys = HashSet::new();
    for (at, url) in &urls {
        match crate::upstream::parse_url(url) {
            Ok(p) => match p.path.parse::<http::Uri>() {
                Ok(uri) => {
                    if !keys.insert(format!("{}{}", p.host_header, p.path)) {
                        errs.push(at, format!("duplicate endpoint \"{url}\""));
                    }
                    parsed_urls.push((url.to_string(), p, uri));
                }
                Err(_) => errs.push(at, "invalid path"),
            },
            Err(e) => errs.push(at, e),
        }
    }
    for (key, v) in [
        ("timeout_ms", u.timeout_ms),
        ("connect_timeout_ms", u.connect_timeout_ms),
        ("sse_idle_timeout_ms", u.sse_idle_timeout_ms),
    ] {
        if v == 0 {
            errs.push(format!("{path}.{key}"), "must be at least 1");
        }
    }
    let auth = u.auth.as_ref().and_then(|a| {
        let mut env_errs = Vec::new();
        let value = expand_env(&a.value, &format!("{path}.auth.value"), env, &mut env_errs);
        errs.0.extend(env_errs);
        match UpstreamAuth::new(&a.header, &value) {
            Ok(auth) => Some(auth),
            Err(e) => {
                errs.push(format!("{path}.auth"), e);
                None
            }
        }
    });
    let tls = u.tls.clone().unwrap_or(raw::UpstreamTls {
        verify: true,
        ca_file: None,
        sni: None,
    });
    let ca = tls.ca_file.as_ref().and_then(|ca| {
        let certs = crate::base::hermetic::read(std::path::Path::new(ca))
            .map_err(|e| format!("cannot read \"{ca}\": {e}"))
            .and_then(|pem| {
                pingora::tls::x509::X509::stack_from_pem(&pem)
                    .map_err(|e| format!("\"{ca}\" is not a PEM CA bundle: {e}"))
            })
            .and_then(|c| {
                if c.is_empty() {
                    Err(format!("\"{ca}\" holds no certificate"))
                } else {
                    Ok(c)
                }
            });
        match certs {
            Ok(c) => Some(Arc::new(c.into_boxed_slice())),
            Err(e) => {
                errs.push(format!("{path}.tls.ca_file"), e);
                None
            }
        }
    });
    if errs.0.len() != before {
        return None;
    }
    let endpoints = parsed_urls
        .into_iter()
        .map(|(url, p, uri)| crate::upstream::Endpoint::new(&url, p, tls.sni.clone(), uri))
        .collect();
    Some(
        Upstream::new(
            &u.name,
            endpoints,
            balance?,
            tls.verify,
            tls.ca_file,
            auth,
            ms(u.timeout_ms),
            ms(u.connect_timeout_ms),
            ms(u.sse_idle_timeout_ms),
        )
        .with_health_check(health_check?)
        .with_ca(ca),
    )
}

/// A `type: tunnel` upstream: no address of its own (the tunnel bridge
/// serves it), so the address and TLS keys are refused.
fn compile_tunnel_upstream(
    u: &raw::Upstream,
    path: &str,
    before: usize,
    errs: &mut Errors,
) -> Option<Upstream> {
    for (key, set) in [
        ("url", u.url.is_some()),
        ("endpoints", !u.endpoints.is_empty()),
        ("load_balancing", u.load_balancing.is_some()),
        ("health_check", u.health_check.is_some()),
        ("auth", u.auth.is_some()),
        ("tls", u.tls.is_some()),
    ] {
        if set {
            errs.push(
                format!("{path}.{key}"),
                "not used by type: tunnel (the tunnel registering this name serves it)",
            );
        }
    }
    for (key, v) in [
        ("timeout_ms", u.timeout_ms),
        ("connect_timeout_ms", u.connect_timeout_ms),
        ("sse_idle_timeout_ms", u.sse_idle_timeout_ms),
    ] {
        if v == 0 {
            errs.push(format!("{path}.{key}"), "must be at least 1");
        }
    }
    if errs.0.len() != before {
        return None;
    }
    Some(Upstream::new(
        &u.name,
        vec![crate::upstream::Endpoint::tunnel(&u.name)],
        crate::upstream::Balance::RoundRobin,
        false,
        None,
        None,
        ms(u.timeout_ms),
        ms(u.connect_timeout_ms),
        ms(u.sse_idle_timeout_ms),
    ))
}

fn compile_tunnel(
    t: Option<&raw::Tunnel>,
    upstreams: &[Arc<Upstream>],
    mcp_path: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<crate::runtime::TunnelSettings> {
    let tunnel_names: Vec<&str> = upstreams
        .iter()
        .filter(|u| u.endpoints.iter().any(|e| e.tunnel))
        .map(|u| &*u.name)
        .collect();
    let Some(t) = t.filter(|t| t.enabled) else {
        if let Some(name) = tunnel_names.first() {
            errs.push(
                "tunnel.enabled",
                format!("upstream \"{name}\" is type: tunnel, so tunnel.enabled must be true"),
            );
        }
        return None;
    };
    if !t.path.starts_with('/') || t.path.contains(['?', '#', ' ']) {
        errs.push("tunnel.path", "must be an absolute path without query");
    }
    if Some(t.path.as_str()) == mcp_path {
        errs.push("tunnel.path", "must differ from server.path");
    }
    if t.keepalive_ms < 1000 {
        errs.push("tunnel.keepalive_ms", "must be at least 1000");
    }
    if t.tokens.is_empty() {
        errs.push(
            "tunnel.tokens",
            "at least one token is needed to accept tunnels",
        );
    }
    let mut tokens = Vec::new();
    let mut digests = HashSet::new();
    let mut registrable = HashSet::new();
    for (i, tok) in t.tokens.iter().enumerate() {
        let at = format!("tunnel.tokens[{i}]");
        let digest = match (&tok.token, &tok.token_hash) {
            (Some(plain), None) => {
                let mut env_errs = Vec::new();
                let plain = expand_env(plain, &format!("{at}.token"), env, &mut env_errs);
                let ok = env_errs.is_empty();
                errs.0.extend(env_errs);
                if ok && plain.len() < 16 {
                    errs.push(format!("{at}.token"), "must be at least 16 characters");
                    None
                } else {
                    ok.then(|| crate::auth::apikey::digest(plain.as_bytes()))
                }
            }
            (None, Some(h)) => match crate::auth::apikey::parse_hash(h) {
                Ok(d) => Some(d),
                Err(e) => {
                    errs.push(
                        format!("{at}.token_hash"),
                        e.replace("key_hash", "token_hash"),
                    );
                    None
                }
            },
            _ => {
                errs.push(&at, "give exactly one of token or token_hash");
                None
            }
        };
        if let Some(d) = digest {
            if !digests.insert(d) {
                errs.push(&at, "the same token appears twice");
            }
        }
        if tok.upstreams.is_empty() {
            errs.push(format!("{at}.upstreams"), "name at least one upstream");
        }
        for (j, name) in tok.upstreams.iter().enumerate() {
            if !tunnel_names.contains(&name.as_str()) {
                errs.push(
                    format!("{at}.upstreams[{j}]"),
                    format!("\"{name}\" is not an upstream of type: tunnel"),
                );
            }
            registrable.insert(name.clone());
        }
        tokens.push(crate::runtime::TunnelToken {
            id: tok.id.clone(),
            digest: digest.unwrap_or([0; 32]),
            upstreams: tok.upstreams.clone(),
        });
    }
    for name in &tunnel_names {
        if !registrable.contains(*name) {
            errs.push(
                "tunnel.tokens",
                format!("no token may register the tunnel upstream \"{name}\""),
            );
        }
    }
    Some(crate::runtime::TunnelSettings {
        path: t.path.clone(),
        tokens,
        keepalive: ms(t.keepalive_ms),
    })
}

fn compile_sessions(
    s: &raw::Sessions,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Arc<crate::session::SessionKeys>> {
    let mut secrets = Vec::new();
    let mut ok = true;
    for (i, k) in s.keys.iter().enumerate() {
        let mut env_errs = Vec::new();
        let v = expand_env(k, &format!("sessions.keys[{i}]"), env, &mut env_errs);
        for e in env_errs {
            errs.0.push(e);
            ok = false;
        }
        secrets.push(v);
    }
    if s.max_age_secs == 0 {
        errs.push("sessions.max_age_secs", "must be at least 1");
        ok = false;
    }
    match crate::session::SessionKeys::new(&secrets, Duration::from_secs(s.max_age_secs)) {
        Ok(k) if ok => Some(Arc::new(k)),
        Ok(_) => None,
        Err(problems) => {
            for (i, msg) in problems {
                errs.push(format!("sessions.keys[{i}]"), msg);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
server:
  listen: 127.0.0.1:7332
upstreams:
  - name: a
    url: http://127.0.0.1:9000/mcp
routing:
  - match: {method: "*"}
    upstream: a
"#;

    fn errors(text: &str) -> Vec<String> {
        match compile(text, &|n| (n == "SET").then(|| "v".to_string())) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    #[test]
    fn tunnel_upstreams_and_tokens() {
        let base =
            "server: {listen: 127.0.0.1:7332}\nrouting: [{match: {method: \"*\"}, upstream: a}]\n";
        let ok = format!(
            "{base}upstreams: [{{name: a, url: \"http://127.0.0.1:9000/mcp\"}}, {{name: laptop, type: tunnel}}]\n\
             tunnel: {{enabled: true, tokens: [{{id: t1, token: \"0123456789abcdef\", upstreams: [laptop]}}]}}\n"
        );
        let rt = compile(&ok, &|_| None).map_err(|e| e.0).expect("valid");
        let t = rt.tunnel.as_ref().expect("tunnel settings");
        assert_eq!(t.path, "/reverse-proxy/ws");
        assert_eq!(
            t.token("0123456789abcdef").map(|t| t.id.as_str()),
            Some("t1")
        );
        assert!(t.token("0123456789abcdeX").is_none());
        let laptop = rt
            .upstreams
            .iter()
            .find(|u| &*u.name == "laptop")
            .expect("laptop");
        assert!(laptop.endpoints[0].tunnel);
        assert_eq!(laptop.endpoints[0].path, "/tunnel/laptop");

        let e = errors(&format!(
            "{base}upstreams: [{{name: a, url: \"http://127.0.0.1:9000/mcp\"}}, {{name: laptop, type: tunnel, url: \"http://x/\"}}, {{name: b, type: ftp}}]\n"
        ));
        for want in ["upstreams[1].url:", "upstreams[2].type:"] {
            assert!(e.iter().any(|x| x.starts_with(want)), "{want} in {e:?}");
        }
        let e = errors(&format!(
            "{base}upstreams: [{{name: a, url: \"http://127.0.0.1:9000/mcp\"}}, {{name: laptop, type: tunnel}}, {{name: orphan, type: tunnel}}]\n\
             tunnel: {{enabled: true, path: mcp, tokens: [{{id: t1, token: short, token_hash: \"sha256:00\", upstreams: [a, laptop]}}, {{id: t2, token_hash: \"sha256:zz\", upstreams: []}}]}}\n"
        ));
        for want in [
            "tunnel.path:",
            "tunnel.tokens[0]: give exactly one",
            "tunnel.tokens[0].upstreams[0]:",
            "tunnel.tokens[1].token_hash:",
            "tunnel.tokens[1].upstreams:",
            "tunnel.tokens: no token may register the tunnel upstream \"orphan\"",
        ] {
            assert!(e.iter().any(|x| x.starts_with(want)), "{want} in {e:?}");
        }
        let e = errors(&format!(
            "{base}upstreams: [{{name: a, url: \"http://127.0.0.1:9000/mcp\"}}, {{name: laptop, type: tunnel}}]\n"
        ));
        assert!(e.iter().any(|x| x.starts_with("tunnel.enabled:")), "{e:?}");
    }

    fn one_error(text: &str, want: &str) {
        let e = errors(text);
        assert!(
            e.iter().any(|l| l.contains(want)),
            "wanted {want:?} in {e:#?}"
        );
    }

    #[test]
    fn minimal_config_compiles() {
        assert!(errors(GOOD).is_empty(), "{:?}", errors(GOOD));
        let rt = match compile(GOOD, &|_| None) {
            Ok(rt) => rt,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(rt.server.path, "/mcp");
        assert_eq!(rt.server.limits.max_body_bytes, 1 << 20);
        assert!(rt.server.threads >= 1);
        assert!(!rt.auth.anonymous);
    }

    #[test]
    fn session_keys_are_checked_with_their_paths() {
        let long = "k".repeat(40);
        let text = format!(
            "{GOOD}sessions:\n  keys: [short, \"${{MISSING}}\", {long}, {long}]\n  max_age_secs: 0\n"
        );
        let e = errors(&text);
        for want in [
            "sessions.keys[0]: must be at least 32 characters",
            "sessions.keys[1]: environment variable MISSING is not set or empty",
            "sessions.keys[3]: duplicate key",
            "sessions.max_age_secs: must be at least 1",
        ] {
            assert!(
                e.iter().any(|l| l.contains(want)),
                "wanted {want:?} in {e:#?}"
            );
        }
        let ok = format!("{GOOD}sessions: {{keys: [{long}]}}\n");
        let rt = match compile(&ok, &|_| None) {
            Ok(rt) => rt,
            Err(e) => panic!("{e}"),
        };
        assert!(rt.sessions.is_some());
    }

    #[test]
    fn unknown_upstream_in_route() {
        let t = GOOD.replace("upstream: a", "upstream: mcp-kb");
        one_error(&t, "routing[0].upstream: unknown upstream \"mcp-kb\"");
    }

    #[test]
    fn unknown_keys_are_reported_with_path() {
        one_error(
            &GOOD.replace("listen:", "lisen:"),
            "server.lisen: unknown field `lisen`",
        );
        one_error(&format!("{GOOD}\nbogus: 1\n"), "bogus: unknown section");
        one_error(
            &GOOD.replace("    url:", "    colour: red\n    url:"),
            "upstreams[0].colour: unknown field `colour`",
        );
        one_error(
            &GOOD.replace("{method: \"*\"}", "{methd: \"*\"}"),
            "routing[0].match.methd: unknown field `methd`",
        );
    }

    #[test]
    fn wrong_types_are_reported_with_path() {
        one_error(
            &GOOD.replace(
                "listen: 127.0.0.1:7332",
                "listen: 127.0.0.1:7332\n  limits: {max_body_bytes: lots}",
            ),
            "server.limits.max_body_bytes",
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let t = r#"
server:
  listen: nowhere
  path: mcp
upstreams:
  - name: a
    url: ftp://x/mcp
  - name: a
    url: http://127.0.0.1:1/mcp
    timeout_ms: 0
routing:
  - match: {method: "*"}
    upstream: b
logging: {level: loud, format: xml}
"#;
        let e = errors(t);
        for want in [
            "server.listen[0]",
            "server.path",
            "upstreams[0].url",
            "upstreams[1].name: duplicate upstream",
            "upstreams[1].timeout_ms",
            "routing[0].upstream: unknown upstream \"b\"",
            "logging.level",
            "logging.format",
        ] {
            assert!(
                e.iter().any(|l| l.contains(want)),
                "wanted {want:?} in {e:#?}"
            );
        }
    }

    #[test]
    fn env_placeholders() {
        let with_auth = |v: &str| {
            GOOD.replace(
                "    url: http://127.0.0.1:9000/mcp",
                &format!("    url: http://127.0.0.1:9000/mcp\n    auth: {{header: Authorization, value: \"{v}\"}}"),
            )
        };
        assert!(errors(&with_auth("Bearer ${SET}")).is_empty());
        one_error(
            &with_auth("Bearer ${MISSING_VAR}"),
            "upstreams[0].auth.value: environment variable MISSING_VAR is not set",
        );
        one_error(&with_auth("Bearer ${bad-name}"), "invalid placeholder");
        one_error(&with_auth("Bearer ${SET"), "unterminated");
        let mut e = Vec::new();
        assert_eq!(
            expand_env("a${SET}b${SET}", "p", &|_| Some("x".into()), &mut e),
            "axbx"
        );
        assert!(e.is_empty());
    }

    #[test]
    fn missing_sections() {
        let e = errors("logging: {level: info}\n");
        for want in ["server: missing", "upstreams: missing", "routing: missing"] {
            assert!(
                e.iter().any(|l| l.contains(want)),
                "wanted {want:?} in {e:#?}"
            );
        }
        one_error("", "configuration is empty");
        one_error("- a\n- b\n", "expected a mapping");
        one_error("server: [", "(yaml)");
    }

    #[test]
    fn limits_are_checked() {
        let t = GOOD.replace(
            "listen: 127.0.0.1:7332",
            "listen: 127.0.0.1:7332\n  limits: {max_json_depth: 1000, max_body_bytes: 0}",
        );
        one_error(&t, "server.limits.max_json_depth");
        one_error(&t, "server.limits.max_body_bytes");
    }

    #[test]
    fn bad_origin_and_forward_header() {
        let t = GOOD.replace(
            "listen: 127.0.0.1:7332",
            "listen: 127.0.0.1:7332\n  allowed_origins: [app.example.com]",
        );
        one_error(&t, "server.allowed_origins[0]");
        let t = format!("{GOOD}upstream_headers: {{forward: [accept, \"bad header\"]}}\n");
        one_error(&t, "upstream_headers.forward[1]");
    }

    #[test]
    fn audit_follows_mcp_edge_env() {
        let t = format!("{GOOD}audit: {{path: \"-\", environments: [\"prod*\"]}}\n");
        let with_env = |v: Option<&str>| {
            let v = v.map(String::from);
            compile(&t, &move |n| {
                if n == "MCP_EDGE_ENV" {
                    v.clone()
                } else {
                    None
                }
            })
            .map(|rt| rt.audit_settings.is_some())
            .unwrap_or_default()
        };
        assert!(with_env(None), "unset = production");
        assert!(with_env(Some("prod-eu")));
        assert!(!with_env(Some("dev")));
        one_error(
            &format!("{GOOD}audit: {{on_full: maybe}}\n"),
            "audit.on_full",
        );
        one_error(
            &format!("{GOOD}audit: {{path: /no/such/dir/a.jsonl}}\n"),
            "audit.path",
        );
        one_error(
            &format!("{GOOD}audit: {{queue_lines: 0}}\n"),
            "audit.queue_lines",
        );
    }

    #[test]
    fn auth_and_policy_errors() {
        let t = format!(
            "{GOOD}policy: {{default: allow, rules: [{{subject: {{tenant: t}}, allow: {{tools: [\"\"]}}}}]}}\n"
        )
        .replace(
            "upstreams:",
            "auth:\n  api_keys:\n    - {id: a, key: short, tenant: t}\n    - {id: a, key_hash: \"sha256:zz\", tenant: t}\n    - {id: b, tenant: t}\n  jwt: {issuer: i, audiences: [a], algorithms: [HS256], jwks_url: ftp://x}\nupstreams:",
        );
        for want in [
            "policy.default",
            "policy.rules[0].allow.tools[0]: empty pattern",
            "auth.api_keys[0].key: keys must be at least 8 characters",
            "auth.api_keys[1].id: duplicate key id",
            "auth.api_keys[1].key_hash",
            "auth.api_keys[2]: key or key_hash is required",
            "auth.jwt.algorithms[0]: HS256: shared-secret algorithms are not accepted",
            "auth.jwt.jwks_url",
        ] {
            one_error(&t, want);
        }
    }

    #[test]
    fn bad_upstream_auth_header() {
        let t = GOOD.replace(
            "    url: http://127.0.0.1:9000/mcp",
            "    url: http://127.0.0.1:9000/mcp\n    auth: {header: \"X Bad\", value: v}",
        );
        one_error(&t, "upstreams[0].auth");
    }
}
