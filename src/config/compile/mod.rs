//! Raw YAML → [`Runtime`]. Each top-level section and each list entry is
//! deserialized on its own so that one mistake does not hide the next: the
//! operator gets every problem, each with its YAML path
//! (`routing[2].upstream: unknown upstream "mcp-kb"`). This module only
//! reads the sections and assembles the runtime; each section's checks
//! live in the module named after it.

mod admin;
mod audit;
mod auth;
mod document;
mod env;
mod errors;
mod headers;
mod jwt;
mod logging;
mod policy;
mod proxy_protocol;
mod rate_limit;
mod resource_metadata;
mod routing;
mod server;
mod sessions;
mod stdio;
#[cfg(test)]
mod test_support;
mod tls;
mod tools;
mod tunnel;
mod upstreams;
mod virtual_servers;

use std::time::Duration;

pub use audit::DEFAULT_ENV;
pub use env::expand_env;
pub use server::MAX_JSON_DEPTH_LIMIT;

use super::{ConfigError, Problem};
use crate::routing::Routes;
use crate::runtime::Runtime;
use errors::Errors;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Compiles configuration text into a runtime snapshot.
pub fn compile(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Runtime, ConfigError> {
    let root = document::parse(text)?;
    let mut errs = Errors::default();
    document::check_section_names(&root, &mut errs);
    let raw = document::Sections::read(&root, &mut errs);
    let (upstreams, names) = upstreams::compile_upstreams(root.get("upstreams"), env, &mut errs);
    // beside a virtual server, server.path may have no routing table
    let federated = matches!(root.get("virtual_servers"), Some(serde_yaml::Value::Sequence(l)) if !l.is_empty());
    let rules = if federated && root.get("routing").is_none() {
        Vec::new()
    } else {
        routing::compile_routing(root.get("routing"), &upstreams, &names, &mut errs)
    };
    let headers = headers::compile_headers(&raw.headers, &mut errs);
    let logging = logging::compile_logging(&raw.logging, &mut errs);
    let server = raw
        .server
        .and_then(|s| server::compile_server(s, &mut errs));
    let mcp_path = server.as_ref().map(|s| s.path.as_str());
    let auth = auth::compile_auth(&raw.auth, env, &mut errs);
    let resource_metadata = raw
        .auth
        .resource_metadata
        .as_ref()
        .and_then(|m| resource_metadata::compile_resource_metadata(m, mcp_path, &mut errs));
    let policy = policy::compile_policy(&raw.policy, &mut errs);
    let audit_settings = raw
        .audit
        .and_then(|a| audit::compile_audit(&a, env, &mut errs));
    let refusals_rpm = rate_limit::refusals_rpm(raw.rate_limit.as_ref());
    let rate_limits = raw
        .rate_limit
        .and_then(|r| rate_limit::compile_rate_limit(&r, env, &mut errs));
    let proxy_protocol = raw
        .proxy_protocol
        .and_then(|p| proxy_protocol::compile_proxy_protocol(&p, &mut errs));
    let sessions = raw
        .sessions
        .and_then(|s| sessions::compile_sessions(&s, env, &mut errs));
    let tls = tls::compile_tls_section(raw.tls, &auth, &mut errs);
    let public = server.as_ref().map_or(&[][..], |s| &s.listen[..]);
    let admin = raw
        .admin
        .and_then(|a| admin::compile_admin(&a, public, env, &mut errs));
    let tunnel = tunnel::compile_tunnel(raw.tunnel.as_ref(), &upstreams, mcp_path, env, &mut errs);
    let metadata = resource_metadata.as_ref().map_or(&[][..], |m| &m.paths[..]);
    let virtual_servers = virtual_servers::compile_virtual_servers(
        root.get("virtual_servers"),
        &upstreams,
        &names,
        &virtual_servers::Taken {
            mcp: mcp_path,
            tunnel: tunnel.as_ref().map(|t| t.path.as_str()),
            metadata,
        },
        &mut errs,
    );
    let legacy_sse = raw.legacy_sse.as_ref().filter(|l| l.enabled).map(|l| {
        virtual_servers::check_legacy_path(
            &l.path,
            &virtual_servers::Taken {
                mcp: mcp_path,
                tunnel: tunnel.as_ref().map(|t| t.path.as_str()),
                metadata,
            },
            &virtual_servers,
            &mut errs,
        );
        l.path.clone()
    });
    let tool_limits = tools::compile_tool_limits(root.get("tool_limits"), &mut errs);
    let tool_integrity = tools::compile_tool_integrity(raw.tool_integrity.as_ref(), &mut errs);
    let tool_overrides = std::sync::Arc::new(tools::compile_tool_overrides(
        root.get("tool_overrides"),
        &mut errs,
    ));
    errs.into_result()?;
    let Some(server) = server else {
        return Err(ConfigError(vec![Problem::new("server", "invalid")]));
    };
    let legacy_fronts = legacy_sse.as_deref().map_or_else(Vec::new, |base| {
        crate::runtime::legacy_fronts(base, &server.path, &virtual_servers)
    });
    Ok(Runtime {
        server,
        routes: Routes::new(rules),
        upstreams,
        headers,
        auth,
        resource_metadata,
        policy,
        audit_settings,
        audit: std::sync::OnceLock::new(),
        rate_limits,
        refusals_rpm,
        proxy_protocol,
        tls,
        sessions,
        redact_keys: logging.redact_keys,
        admin,
        tunnel,
        virtual_servers,
        legacy_sse,
        legacy_fronts,
        tool_limits,
        tool_overrides,
        tool_integrity,
        log_level: logging.level,
        log_format: logging.format,
    })
}

#[cfg(test)]
mod tests {
    use super::test_support::{errors, problems, GOOD};
    use super::*;

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
    fn problems_carry_their_yaml_path() {
        let t = "server: {listen: 127.0.0.1:1, path: mcp}\nupstreams: [{name: a, url: http://127.0.0.1:9/mcp}]\nrouting: [{match: {method: \"*\"}, upstream: b}]\n";
        let p = problems(t);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["routing[0].upstream", "server.path"], "{p:#?}");
        assert_eq!(p[0].message, "unknown upstream \"b\"");
        assert_eq!(
            p[0].to_string(),
            "routing[0].upstream: unknown upstream \"b\""
        );
        let empty = problems("");
        assert_eq!(empty, [Problem::new("(root)", "configuration is empty")]);
        assert_eq!(empty[0].to_string(), "(root): configuration is empty");
    }
}
