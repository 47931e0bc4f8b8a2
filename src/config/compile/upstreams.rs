//! The `upstreams` section: each entry read on its own, names unique, and
//! compiled into an [`Upstream`]: endpoints, load balancing, health
//! checks, timeouts, the credential header sent upstream, and TLS trust.
//! A `type: tunnel` upstream has no address of its own; `type: stdio` is
//! compiled by `stdio`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_yaml::Value;

use super::document::section;
use super::env::expand_env;
use super::errors::Errors;
use super::ms;
use crate::config::raw;
use crate::upstream::{Balance, Endpoint, ParsedUrl, Upstream, UpstreamAuth};

/// A PEM CA bundle an upstream's certificate is verified against.
type CaBundle = Arc<Box<[openssl::x509::X509]>>;

/// Every valid upstream, and every name given (valid or not).
pub(super) fn compile_upstreams(
    value: Option<&Value>,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> (Vec<Arc<Upstream>>, HashSet<String>) {
    let mut upstreams: Vec<Arc<Upstream>> = Vec::new();
    let mut names = HashSet::new();
    match value {
        Some(Value::Sequence(list)) => {
            for (i, item) in list.iter().enumerate() {
                let path = format!("upstreams[{i}]");
                let Some(u) = section::<raw::Upstream>(item, &path, errs) else {
                    continue;
                };
                if !names.insert(u.name.clone()) {
                    errs.push(
                        format!("{path}.name"),
                        format!("duplicate upstream \"{}\"", u.name),
                    );
                }
                if let Some(up) = compile_upstream(&u, &path, env, errs) {
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
    (upstreams, names)
}

fn compile_upstream(
    u: &raw::Upstream,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Upstream> {
    let before = errs.len();
    if u.name.is_empty()
        || !u
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        errs.push(format!("{path}.name"), "must be non-empty [A-Za-z0-9._-]");
    }
    let sse = u.kind.as_deref() == Some("sse");
    match u.kind.as_deref() {
        None | Some("http") | Some("tunnel") | Some("sse") => {
            for (key, set) in super::stdio::stdio_keys(u) {
                if set && !(sse && key == "idle_timeout_secs") {
                    errs.push(format!("{path}.{key}"), "only type: stdio takes this key");
                }
            }
        }
        Some(_) => {}
    }
    if u.max_sessions.is_some() && !sse {
        errs.push(
            format!("{path}.max_sessions"),
            "only type: sse takes this key",
        );
    }
    if sse {
        for (key, set) in [
            ("endpoints", !u.endpoints.is_empty()),
            ("load_balancing", u.load_balancing.is_some()),
            ("health_check", u.health_check.is_some()),
        ] {
            if set {
                errs.push(
                    format!("{path}.{key}"),
                    "not used by type: sse (one legacy server at `url`)",
                );
            }
        }
        if u.url.is_none() {
            errs.push(
                format!("{path}.url"),
                "required for type: sse (the legacy server's stream, e.g. http://host:8000/sse)",
            );
        }
        if !(1..=65_536).contains(&u.max_sessions.unwrap_or(256)) {
            errs.push(format!("{path}.max_sessions"), "must be 1..=65536");
        }
        if !(1..=7 * 86_400).contains(&u.idle_timeout_secs.unwrap_or(600)) {
            errs.push(
                format!("{path}.idle_timeout_secs"),
                "must be 1..=604800 (a week)",
            );
        }
    }
    match u.kind.as_deref() {
        None | Some("http") | Some("sse") => {}
        Some("tunnel") => return compile_tunnel_upstream(u, path, before, errs),
        Some("stdio") => return super::stdio::compile_stdio_upstream(u, path, before, env, errs),
        Some(other) => errs.push(
            format!("{path}.type"),
            format!("expected http, tunnel, stdio or sse, got \"{other}\""),
        ),
    }
    let urls = endpoint_urls(u, path, errs);
    let balance = compile_balance(u, path, errs);
    let health_check = compile_health_check(u, path, errs);
    let parsed_urls = parse_endpoints(&urls, errs);
    check_timeouts(u, path, errs);
    let auth = compile_upstream_auth(u, path, env, errs);
    let tls = u.tls.clone().unwrap_or(raw::UpstreamTls {
        verify: true,
        ca_file: None,
        sni: None,
    });
    let ca = tls.ca_file.as_ref().and_then(|ca| load_ca(ca, path, errs));
    if errs.len() != before {
        return None;
    }
    let endpoints = parsed_urls
        .into_iter()
        .map(|(url, p, uri)| Endpoint::new(&url, p, tls.sni.clone(), uri))
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
    .map(|up| match sse {
        true => up.into_legacy_sse(
            u.max_sessions.unwrap_or(256),
            std::time::Duration::from_secs(u.idle_timeout_secs.unwrap_or(600)),
        ),
        false => up,
    })
}

/// `url` or `endpoints[]`, each with the path its problems are reported at.
fn endpoint_urls<'a>(
    u: &'a raw::Upstream,
    path: &str,
    errs: &mut Errors,
) -> Vec<(String, &'a str)> {
    match (&u.url, u.endpoints.is_empty()) {
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
    }
}

fn compile_balance(u: &raw::Upstream, path: &str, errs: &mut Errors) -> Option<Balance> {
    match u.load_balancing.as_deref() {
        None => Some(Balance::RoundRobin),
        Some(b) => {
            let parsed = Balance::parse(b);
            if parsed.is_none() {
                errs.push(
                    format!("{path}.load_balancing"),
                    format!("expected round_robin, least_connections or random, got \"{b}\""),
                );
            }
            parsed
        }
    }
}

fn compile_health_check(
    u: &raw::Upstream,
    path: &str,
    errs: &mut Errors,
) -> Option<crate::health::CheckSettings> {
    let Some(h) = &u.health_check else {
        return Some(crate::health::CheckSettings::default());
    };
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

/// Each endpoint URL parsed, none twice.
fn parse_endpoints(
    urls: &[(String, &str)],
    errs: &mut Errors,
) -> Vec<(String, ParsedUrl, http::Uri)> {
    let mut parsed_urls = Vec::new();
    let mut keys = HashSet::new();
    for (at, url) in urls {
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
    parsed_urls
}

/// The three timeouts, each at least 1 ms (tunnel upstreams too).
fn check_timeouts(u: &raw::Upstream, path: &str, errs: &mut Errors) {
    for (key, v) in [
        ("timeout_ms", u.timeout_ms),
        ("connect_timeout_ms", u.connect_timeout_ms),
        ("sse_idle_timeout_ms", u.sse_idle_timeout_ms),
    ] {
        if v == 0 {
            errs.push(format!("{path}.{key}"), "must be at least 1");
        }
    }
}

/// `auth`: the header sent upstream, its value possibly from `${VAR}`.
fn compile_upstream_auth(
    u: &raw::Upstream,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<UpstreamAuth> {
    let a = u.auth.as_ref()?;
    let mut env_errs = Vec::new();
    let value = expand_env(&a.value, &format!("{path}.auth.value"), env, &mut env_errs);
    errs.extend(env_errs);
    match UpstreamAuth::new(&a.header, &value) {
        Ok(auth) => Some(auth),
        Err(e) => {
            errs.push(format!("{path}.auth"), e);
            None
        }
    }
}

/// `tls.ca_file`: a readable PEM bundle with at least one certificate.
fn load_ca(ca: &str, path: &str, errs: &mut Errors) -> Option<CaBundle> {
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
    check_timeouts(u, path, errs);
    if errs.len() != before {
        return None;
    }
    Some(Upstream::new(
        &u.name,
        vec![Endpoint::tunnel(&u.name)],
        Balance::RoundRobin,
        false,
        None,
        None,
        ms(u.timeout_ms),
        ms(u.connect_timeout_ms),
        ms(u.sse_idle_timeout_ms),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{one_error, GOOD};

    #[test]
    fn bad_upstream_auth_header() {
        let t = GOOD.replace(
            "    url: http://127.0.0.1:9000/mcp",
            "    url: http://127.0.0.1:9000/mcp\n    auth: {header: \"X Bad\", value: v}",
        );
        one_error(&t, "upstreams[0].auth");
    }
}
