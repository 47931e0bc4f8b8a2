//! The configuration loader's contract on any text (fuzz target
//! `config_load`, and `cargo test` over its committed corpus).

use serde_yaml::Value;

use super::{load_str, ConfigError, Problem};
use crate::base::hermetic::hermetic;
use crate::runtime::Runtime;

/// The contract's environment: every well-formed `${VAR}` is set (to a value
/// long enough for any key or token), except names starting with `UNSET`
/// and the variables the loader reads on its own (`REDIS_URL`,
/// `RATE_LIMIT_KEY_PREFIX`, `MCP_EDGE_ENV`), which are not.
fn contract_env(name: &str) -> Option<String> {
    let unset = name.starts_with("UNSET")
        || ["REDIS_URL", "RATE_LIMIT_KEY_PREFIX", "MCP_EDGE_ENV"].contains(&name);
    (!unset).then(|| format!("fuzz-env-{name}-0123456789abcdef0123456789abcdef"))
}

/// Everything a compiled runtime decides, as text that does not depend on
/// hash-map order: the `routes` table, the server, policy, admin, tunnel,
/// PROXY protocol, metadata, audit, limits and logging settings.
fn fingerprint(rt: &Runtime) -> String {
    let rate = rt.rate_limits.as_ref().map(|r| {
        let mut by_method: Vec<_> = r.by_method.iter().collect();
        let mut by_tool: Vec<_> = r.by_tool.iter().collect();
        by_method.sort();
        by_tool.sort();
        format!(
            "{} {by_method:?} {by_tool:?} {} {}",
            r.default_rpm,
            r.prefix,
            r.redis.is_some()
        )
    });
    format!(
        "{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{rate:?}\n{:?} {:?} {:?}\n\
         anonymous {} jwt {} client_cert {} tls {} sessions {}",
        super::routes::table(rt),
        rt.server,
        rt.policy,
        rt.headers,
        rt.admin,
        rt.tunnel,
        rt.proxy_protocol,
        rt.resource_metadata,
        rt.audit_settings,
        rt.redact_keys,
        rt.log_level,
        rt.log_format,
        rt.auth.anonymous,
        rt.auth.jwt.is_some(),
        rt.auth.client_cert.is_some(),
        rt.tls.is_some(),
        rt.sessions.is_some(),
    )
}

/// A verdict to compare: the fingerprint, or the list of problems.
fn verdict(r: &Result<Runtime, ConfigError>) -> Result<String, Vec<Problem>> {
    match r {
        Ok(rt) => Ok(fingerprint(rt)),
        Err(e) => Err(e.0.clone()),
    }
}

/// The loader's contract on any input, read as UTF-8 YAML text (lossy),
/// compiled as `mcp-edge validate` does but hermetically: no file is read,
/// no name other than an IP literal or `localhost` resolves, `${VAR}`
/// comes from a fixed environment ([`contract_env`]). Panics when broken:
///
/// - compiling never panics;
/// - a refusal lists at least one problem, each `path: message`;
/// - the same text compiled twice gives the same verdict (the same runtime,
///   or the same problems in the same order);
/// - the YAML re-serialised (when it parses, and serde_yaml gives back the
///   same document) gives the same verdict again: nothing depends on how
///   the text was written, only on what it says.
#[doc(hidden)]
pub fn check_contract(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let load = |t: &str| hermetic(|| load_str(t, &contract_env));
    let first = load(&text);
    if let Err(e) = &first {
        assert!(!e.0.is_empty(), "refused without a problem");
        for p in &e.0 {
            assert!(
                !p.path.is_empty() && !p.message.is_empty(),
                "problem without a path: {p:?}"
            );
        }
    }
    let want = verdict(&first);
    drop(first);
    assert_eq!(
        verdict(&load(&text)),
        want,
        "the same text compiled differently"
    );
    let Ok(doc) = serde_yaml::from_str::<Value>(&text) else {
        return;
    };
    let Ok(again) = serde_yaml::to_string(&doc) else {
        return;
    };
    if serde_yaml::from_str::<Value>(&again).ok().as_ref() != Some(&doc) {
        return; // serde_yaml's own round trip, not the loader's
    }
    assert_eq!(
        verdict(&load(&again)),
        want,
        "the re-serialised document compiled differently:\n{again}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_holds_on_the_shipped_configs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in [
            "conf/mcp-edge.yaml",
            "conf/examples/demo.yaml",
            "conf/examples/jwt.yaml",
            "conf/examples/routing-table.yaml",
            "conf/examples/virtual-server.yaml",
            "conf/examples/tunnel.yaml",
        ] {
            let text = std::fs::read(root.join(f)).unwrap_or_default();
            assert!(!text.is_empty(), "{f}");
            check_contract(&text);
        }
        for junk in [
            "",
            "~",
            "[]",
            "server: [",
            "a: *b",
            "server: {listen: x}",
            "\u{0}",
        ] {
            check_contract(junk.as_bytes());
        }
    }

    #[test]
    fn the_demo_config_compiles_hermetically() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text =
            std::fs::read_to_string(root.join("conf/examples/demo.yaml")).unwrap_or_default();
        assert!(hermetic(|| load_str(&text, &contract_env)).is_ok());
        // a host name is not looked up, a file is not read
        let named = text.replace("127.0.0.1:3001", "mcp.example.com:3001");
        let problems = hermetic(|| load_str(&named, &contract_env))
            .err()
            .map(|e| e.0);
        assert!(
            problems.is_some_and(|p| p.iter().any(|l| l.message.contains("cannot resolve"))),
            "host name resolved in a hermetic check"
        );
    }
}
