//! `mcp-edge tunnel --config FILE`: several local stdio servers, each to one
//! or more gateways, in one YAML (or JSON) file. Top-level keys are the
//! defaults every server inherits; `servers[]` entries override them.
//! Unknown keys are errors, reported with their path like the gateway's
//! configuration.
//!
//! ```yaml
//! gateway: wss://mcp.example.com      # default for servers without gateways
//! token: ${MCP_EDGE_TUNNEL_TOKEN}     # or the environment variable itself
//! reconnect_delay: 1000
//! max_retries: 0
//! keepalive: 20000
//! servers:
//!   - name: laptop-git
//!     local_stdio: "npx -y @modelcontextprotocol/server-git --repository ."
//!     gateways: [wss://a.example.com, wss://b.example.com]
//!     max_sessions: 8
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::client::Options;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    reconnect_delay: Option<u64>,
    #[serde(default)]
    max_delay: Option<u64>,
    #[serde(default)]
    max_retries: Option<u32>,
    #[serde(default)]
    keepalive: Option<u64>,
    #[serde(default)]
    max_sessions: Option<usize>,
    #[serde(default)]
    idle_timeout: Option<u64>,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    log_level: Option<String>,
    servers: Vec<Server>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    name: String,
    local_stdio: String,
    #[serde(default)]
    gateways: Vec<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    max_sessions: Option<usize>,
    #[serde(default)]
    idle_timeout: Option<u64>,
}

/// The defaults a file falls back to (command-line flags and environment).
#[derive(Debug, Clone)]
pub struct Defaults {
    /// `--gateway` / `MCP_EDGE_TUNNEL_GATEWAY`.
    pub gateway: Option<String>,
    /// `--token` / `MCP_EDGE_TUNNEL_TOKEN`.
    pub token: Option<String>,
    /// Timing and limits from the flags.
    pub base: Options,
}

/// One client per (server, gateway), and the log level the file asks for.
pub fn parse(
    text: &str,
    defaults: &Defaults,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<Options>, Option<String>), Vec<String>> {
    let de = serde_yaml::Deserializer::from_str(text);
    let f: File = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        vec![format!(
            "{}: {}",
            if path == "." { "(root)".into() } else { path },
            e.into_inner()
        )]
    })?;
    let mut errs = Vec::new();
    let expand = |v: &str, at: &str, errs: &mut Vec<String>| {
        let mut problems = Vec::new();
        let v = crate::config::compile::expand_env(v, at, env, &mut problems);
        errs.extend(problems.iter().map(ToString::to_string));
        v
    };
    let top_token = f.token.as_deref().map(|t| expand(t, "token", &mut errs));
    if f.servers.is_empty() {
        errs.push("servers: at least one server is needed".into());
    }
    let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
    let mut out = Vec::new();
    for (i, s) in f.servers.iter().enumerate() {
        let at = format!("servers[{i}]");
        if s.name.is_empty() {
            errs.push(format!("{at}.name: must not be empty"));
        }
        if s.local_stdio.trim().is_empty() {
            errs.push(format!("{at}.local_stdio: must not be empty"));
        }
        let token = s
            .token
            .as_deref()
            .map(|t| expand(t, &format!("{at}.token"), &mut errs))
            .or_else(|| top_token.clone())
            .or_else(|| defaults.token.clone());
        let Some(token) = token else {
            errs.push(format!(
                "{at}.token: no token (set it here, at the top level, or in MCP_EDGE_TUNNEL_TOKEN)"
            ));
            continue;
        };
        let gateways: Vec<String> = if s.gateways.is_empty() {
            f.gateway
                .clone()
                .or_else(|| defaults.gateway.clone())
                .into_iter()
                .collect()
        } else {
            s.gateways.clone()
        };
        if gateways.is_empty() {
            errs.push(format!(
                "{at}.gateways: no gateway (set gateways here, gateway at the top level, or MCP_EDGE_TUNNEL_GATEWAY)"
            ));
        }
        for (j, g) in gateways.iter().enumerate() {
            if let Err(e) = super::client::endpoint_url(g) {
                errs.push(format!("{at}.gateways[{j}]: {e}"));
            }
            let b = &defaults.base;
            out.push(Options {
                command: s.local_stdio.clone(),
                gateway: g.clone(),
                token: token.clone(),
                name: s.name.clone(),
                reconnect_delay: ms(f.reconnect_delay, b.reconnect_delay),
                max_delay: ms(f.max_delay, b.max_delay),
                max_retries: f.max_retries.unwrap_or(b.max_retries),
                keepalive: ms(f.keepalive, b.keepalive),
                max_sessions: s
                    .max_sessions
                    .or(f.max_sessions)
                    .unwrap_or(b.max_sessions)
                    .max(1),
                idle_timeout: ms(s.idle_timeout.or(f.idle_timeout), b.idle_timeout),
                ca_file: f.ca_file.clone().or_else(|| b.ca_file.clone()),
            });
        }
    }
    if errs.is_empty() {
        Ok((out, f.log_level))
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            gateway: Some("ws://127.0.0.1:1".into()),
            token: None,
            base: Options {
                command: String::new(),
                gateway: String::new(),
                token: String::new(),
                name: String::new(),
                reconnect_delay: Duration::from_millis(1000),
                max_delay: Duration::from_secs(60),
                max_retries: 0,
                keepalive: Duration::from_secs(20),
                max_sessions: 16,
                idle_timeout: Duration::from_secs(1800),
                ca_file: None,
            },
        }
    }

    #[test]
    fn servers_inherit_and_fan_out_to_their_gateways() {
        let text = r#"
token: "${TOK}"
keepalive: 5000
servers:
  - {name: a, local_stdio: "cat", gateways: ["wss://g1", "wss://g2"], max_sessions: 2}
  - {name: b, local_stdio: "cat", token: own-token}
"#;
        let env = |k: &str| (k == "TOK").then(|| "from-env".to_string());
        let (v, _) = parse(text, &defaults(), &env).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[0].gateway.as_str(), v[1].gateway.as_str()),
            ("wss://g1", "wss://g2")
        );
        assert_eq!((v[0].token.as_str(), v[0].max_sessions), ("from-env", 2));
        assert_eq!(v[0].keepalive, Duration::from_millis(5000));
        // the command-line gateway is the default
        assert_eq!(
            (v[2].gateway.as_str(), v[2].token.as_str()),
            ("ws://127.0.0.1:1", "own-token")
        );
        // JSON is YAML too
        let json = r#"{"token": "t", "servers": [{"name": "j", "local_stdio": "cat"}]}"#;
        assert_eq!(parse(json, &defaults(), &|_| None).unwrap().0.len(), 1);
    }

    #[test]
    fn problems_are_listed_with_their_paths() {
        let e = parse(
            "servers: [{name: a, local_stdio: cat, bogus: 1}]",
            &defaults(),
            &|_| None,
        )
        .unwrap_err();
        assert!(e[0].starts_with("servers[0]"), "{e:?}");
        let mut d = defaults();
        d.gateway = None;
        let e = parse(
            "servers: [{name: '', local_stdio: ' ', gateways: ['ftp://x']}, {name: b, local_stdio: cat, token: t}]",
            &d,
            &|_| None,
        )
        .unwrap_err();
        for want in [
            "servers[0].name",
            "servers[0].local_stdio",
            "servers[0].token",
            "servers[1].gateways",
        ] {
            assert!(e.iter().any(|x| x.starts_with(want)), "{want} in {e:?}");
        }
        assert!(parse("servers: []", &defaults(), &|_| None).is_err());
    }
}
