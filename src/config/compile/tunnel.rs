//! The `tunnel` section: the WebSocket path tunnel clients connect to,
//! keepalive, and the tokens that may register `type: tunnel` upstreams
//! (every such upstream must be registrable by some token).

use std::collections::HashSet;
use std::sync::Arc;

use super::env::expand_env;
use super::errors::Errors;
use super::ms;
use crate::config::raw;
use crate::runtime::{TunnelSettings, TunnelToken};
use crate::upstream::Upstream;

pub(super) fn compile_tunnel(
    t: Option<&raw::Tunnel>,
    upstreams: &[Arc<Upstream>],
    mcp_path: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<TunnelSettings> {
    let tunnel_names: Vec<&str> = upstreams
        .iter()
        .filter(|u| {
            u.endpoints
                .iter()
                .any(|e| e.bridge == Some(crate::upstream::Bridge::Tunnel))
        })
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
    let mut digests = HashSet::new();
    let mut registrable = HashSet::new();
    let mut tokens = Vec::new();
    for (i, tok) in t.tokens.iter().enumerate() {
        let at = format!("tunnel.tokens[{i}]");
        let digest = token_digest(tok, &at, env, errs);
        if let Some(d) = digest {
            if !digests.insert(d) {
                errs.push(&at, "the same token appears twice");
            }
        }
        check_token_upstreams(tok, &at, &tunnel_names, errs);
        registrable.extend(tok.upstreams.iter().cloned());
        tokens.push(TunnelToken {
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
    Some(TunnelSettings {
        path: t.path.clone(),
        tokens,
        keepalive: ms(t.keepalive_ms),
    })
}

/// The digest of one token, from its plain value (at least 16 characters,
/// possibly from `${VAR}`) or its hash.
fn token_digest(
    tok: &raw::TunnelToken,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<[u8; 32]> {
    match (&tok.token, &tok.token_hash) {
        (Some(plain), None) => {
            let mut env_errs = Vec::new();
            let plain = expand_env(plain, &format!("{at}.token"), env, &mut env_errs);
            let ok = env_errs.is_empty();
            errs.extend(env_errs);
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
            errs.push(at, "give exactly one of token or token_hash");
            None
        }
    }
}

/// A token names at least one upstream, each of type: tunnel.
fn check_token_upstreams(
    tok: &raw::TunnelToken,
    at: &str,
    tunnel_names: &[&str],
    errs: &mut Errors,
) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::super::compile;
    use super::super::test_support::errors;

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
        assert_eq!(
            laptop.endpoints[0].bridge,
            Some(crate::upstream::Bridge::Tunnel)
        );
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
}
