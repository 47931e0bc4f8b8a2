//! The `server` section: listen addresses, the MCP path, allowed origins
//! and hosts, request limits, and which proxies may name the client
//! (`server.trust_proxy`).

use super::errors::Errors;
use super::ms;
use crate::config::raw;
use crate::runtime::{Limits, ServerSettings};

/// Deepest `max_json_depth` accepted (serde_json's own recursion guard is 128).
pub const MAX_JSON_DEPTH_LIMIT: u32 = 100;

pub(super) fn compile_server(s: raw::Server, errs: &mut Errors) -> Option<ServerSettings> {
    let listen = match s.listen {
        raw::OneOrMany::One(a) => vec![a],
        raw::OneOrMany::Many(v) => v,
    };
    check_addresses(&listen, &s.path, &s.allowed_origins, errs);
    check_limits(&s.limits, errs);
    let trust_proxy = compile_trust_proxy(s.trust_proxy.as_ref(), errs);
    let threads = if s.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        s.threads
    };
    Some(ServerSettings {
        listen,
        limits: limits(&s.limits),
        path: s.path,
        threads,
        allowed_origins: s.allowed_origins,
        allowed_hosts: s
            .allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        trust_proxy,
        grace_period_secs: s.grace_period_secs,
        pid_file: s.pid_file,
        upgrade_sock: s.upgrade_sock,
    })
}

/// `server.listen`, `server.path` and `server.allowed_origins`.
fn check_addresses(listen: &[String], path: &str, origins: &[String], errs: &mut Errors) {
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
    if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
        errs.push(
            "server.path",
            format!("\"{path}\" must be an absolute path"),
        );
    }
    for (i, o) in origins.iter().enumerate() {
        if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
            errs.push(
                format!("server.allowed_origins[{i}]"),
                format!("\"{o}\" must be a scheme://host[:port] origin or \"*\""),
            );
        }
    }
}

/// `server.limits`: each bound in its accepted range.
fn check_limits(l: &raw::Limits, errs: &mut Errors) {
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
}

fn limits(l: &raw::Limits) -> Limits {
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Limits {
        max_body_bytes: size(l.max_body_bytes),
        max_header_bytes: size(l.max_header_bytes),
        max_headers: size(l.max_headers),
        max_uri_bytes: size(l.max_uri_bytes),
        header_timeout: ms(l.header_timeout_ms),
        body_timeout: ms(l.body_timeout_ms),
        max_json_depth: l.max_json_depth,
        max_connections: size(l.max_connections),
        max_response_bytes: size(l.max_response_bytes),
        linger: ms(l.linger_ms),
        linger_bytes: l.linger_bytes,
    }
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{one_error, GOOD};

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
}
