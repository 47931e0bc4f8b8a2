//! Identity, deny-by-default policy and the audit trail, through the real
//! gateway binary: API key forms, 401 with RFC 9728 metadata, refusals that
//! never reach the upstream, one audit line per request, no secret in any log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::sync::atomic::Ordering;

/// Canary secrets: they must never appear in any log or audit output.
const KEY: &str = "canary-key-7f3a9c1d";
const HASHED_KEY: &str = "canary-hashed-key-55e0b2";
const WRONG: &str = "canary-wrong-key-0b9e44";
const URI_SECRET: &str = "canary-uri-token-9d2c11";

/// Team `team` may use `echo` and `math.*` (not `math.secret`) and public
/// files; the ops bot may only list tools.
const RULES: &str = r#"
- subject: {tenant: team}
  allow:
    methods: [initialize, "notifications/*", "tools/*", "resources/*"]
    tools: [echo, "math.*"]
    resources: ["file:///public/*"]
  deny:
    tools: [math.secret]
- subject: {tenant: ops, client: "bot*"}
  allow: {methods: [tools/list]}
"#;

/// Two API keys (one given as its hash) and protected-resource metadata;
/// [`RULES`]; audited; debug logs; the upstream without timeouts or its
/// own credential.
fn config(up: &Upstream) -> Config {
    let hash = mcp_edge::auth::apikey::hash_form(HASHED_KEY.as_bytes());
    Config::base(&up.url())
        .remove("server.grace_period_secs")
        .api_keys([
            api_key("dev-key", KEY, "team", Some("dev")),
            yaml(&format!(
                r#"{{id: prod-key, key_hash: "{hash}", tenant: ops, client: bot}}"#
            )),
        ])
        .insert(
            "auth.resource_metadata",
            yaml("{resource: https://mcp.example.com/mcp, authorization_servers: [https://auth.example.com/]}"),
        )
        .set("policy.rules", yaml(RULES))
        .audit()
        .set("upstreams", json!([{"name": "up", "url": up.url()}]))
        .set("logging.level", "debug")
}

fn call(tool: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#).into_bytes()
}

#[test]
fn api_key_forms_and_401s() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up));
    let bearer = format!("Bearer {KEY}");
    let apikey = format!("Api-Key {KEY}");
    for h in [
        ("Authorization", bearer.as_str()),
        ("Authorization", apikey.as_str()),
        ("X-API-Key", KEY),
        ("Api-Key", KEY),
    ] {
        let r = post_json(g.port, &call("echo"), &[h]);
        assert_eq!(r.status, 200, "{h:?}: {}", String::from_utf8_lossy(&r.body));
        assert!(
            r.json()["headers"].get(h.0.to_ascii_lowercase()).is_none(),
            "credential forwarded"
        );
    }
    // missing: 401 naming the protected-resource metadata
    let r = post_json(g.port, &call("echo"), &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], -32600);
    let www = r.header("www-authenticate").unwrap();
    assert_eq!(
        www,
        r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
    );
    // wrong key, conflicting keys
    let wrong = format!("Bearer {WRONG}");
    for hs in [
        vec![("Authorization", wrong.as_str())],
        vec![("Authorization", bearer.as_str()), ("X-API-Key", WRONG)],
    ] {
        let r = post_json(g.port, &call("echo"), &hs);
        assert_eq!(r.status, 401);
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#));
    }
    // the hashed key works; its principal only may list tools
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        &[("X-API-Key", HASHED_KEY)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(up.hits.load(Ordering::SeqCst), 5);
}

#[test]
fn protected_resource_metadata_is_served() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up));
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = get(g.port, path, &[]).unwrap();
        assert_eq!(r.status, 200, "{path}");
        let j = r.json();
        assert_eq!(j["resource"], "https://mcp.example.com/mcp");
        assert_eq!(j["authorization_servers"][0], "https://auth.example.com/");
    }
}

#[test]
fn policy_refusals_never_reach_the_upstream() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up));
    let k = ("X-API-Key", KEY);
    // allowed
    assert_eq!(post_json(g.port, &call("math.add"), &[k]).status, 200);
    // a refused tool answers like an unknown tool: HTTP 200, -32602, no hint
    for tool in ["admin.drop", "math.secret"] {
        let r = post_json(g.port, &call(tool), &[k]);
        assert_eq!(r.status, 200);
        let j = r.json();
        assert_eq!(j["id"], 11);
        assert_eq!(j["error"]["code"], -32602);
        assert_eq!(j["error"]["message"], format!("Unknown tool: {tool}"));
    }
    // other refusals are 403 with a JSON-RPC error
    for body in [
        &br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///etc/passwd"}}"#[..],
        &br#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}}"#[..],
        &br#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#[..],
        &br#"{"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"debug"}}"#[..],
    ] {
        let r = post_json(g.port, body, &[k]);
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(body));
        assert_eq!(r.json()["error"]["code"], -32600);
    }
    // notifications are checked too: an allowed one passes
    assert_eq!(
        post_json(
            g.port,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &[k]
        )
        .status,
        200
    );
    // a notification the principal is not allowed is refused as well
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[("X-API-Key", HASHED_KEY)],
    );
    assert_eq!(r.status, 403);
    // the ops bot may list tools but not call them
    let r = post_json(g.port, &call("echo"), &[("X-API-Key", HASHED_KEY)]);
    assert_eq!(r.json()["error"]["code"], -32602);
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);
}

#[test]
fn one_audit_line_per_request_and_no_secret_anywhere() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up));
    let bearer = format!("Bearer {KEY}");
    let wrong = format!("Bearer {WRONG}");
    let mut n = 0;
    let mut send = |body: &[u8], hs: &[(&str, &str)]| {
        n += 1;
        post_json(g.port, body, hs).status
    };
    assert_eq!(send(&call("echo"), &[("Authorization", &bearer)]), 200);
    assert_eq!(send(&call("admin"), &[("Authorization", &bearer)]), 200);
    assert_eq!(send(&call("echo"), &[("Authorization", &wrong)]), 401);
    assert_eq!(send(&call("echo"), &[]), 401);
    assert_eq!(send(b"{broken", &[("X-API-Key", KEY)]), 400);
    assert_eq!(send(&call("echo"), &[("X-API-Key", HASHED_KEY)]), 200);
    // a secret in a resource URI's query is masked in the logs
    let read = format!(
        r#"{{"jsonrpc":"2.0","id":8,"method":"resources/read","params":{{"uri":"file:///public/r?token={URI_SECRET}&page=2"}}}}"#
    );
    assert_eq!(send(read.as_bytes(), &[("X-API-Key", KEY)]), 200);
    let lines = AuditLog::of(&g)
        .settle_ms(150)
        .strict()
        .skip_health()
        .lines();
    assert_eq!(lines.len(), n, "{lines:#?}");
    let by_status: Vec<(u64, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["status"].as_u64().unwrap(),
                l["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_status,
        vec![
            (200, "allow"),
            (200, "deny"),
            (401, "deny"),
            (401, "deny"),
            (400, "deny"),
            (200, "deny"),
            (200, "allow")
        ]
    );
    assert_eq!(lines[0]["principal"]["key_id"], "dev-key");
    assert_eq!(lines[0]["target"], "echo");
    assert_eq!(lines[1]["reason"], "policy_unknown_tool");
    assert_eq!(lines[1]["jsonrpc_code"], -32602);
    assert!(lines[2]["principal"].is_null());
    assert_eq!(lines[2]["reason"], "bad_credentials");
    assert_eq!(lines[4]["jsonrpc_code"], -32700);
    assert_eq!(lines[5]["principal"]["key_id"], "prod-key");
    // canaries: not in the audit file, not in the gateway's own output (debug level)
    let all = format!(
        "{}\n{}",
        std::fs::read_to_string(g.dir.path().join("audit.jsonl")).unwrap(),
        g.log_text()
    );
    assert_eq!(
        lines[6]["target"],
        "file:///public/r?token=[redacted]&page=2"
    );
    for secret in [KEY, HASHED_KEY, WRONG, "upstream-secret", URI_SECRET] {
        assert!(!all.contains(secret), "secret {secret} found in logs");
    }
}

#[test]
fn audit_lines_are_flushed_when_the_gateway_stops() {
    let slow = Upstream::start(Mode::Slow(std::time::Duration::from_millis(700)));
    let mut g = Gateway::start(&Config::base(&slow.url()).audit());
    let port = g.port;
    let t = std::thread::spawn(move || post_json(port, &call("echo"), &[]).status);
    std::thread::sleep(std::time::Duration::from_millis(200));
    g.signal("TERM");
    assert_eq!(t.join().unwrap(), 200, "in-flight request cut by SIGTERM");
    // the process exits after the grace period; its last line must be on disk
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while g.child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        g.child.try_wait().unwrap().is_some(),
        "gateway did not exit after SIGTERM"
    );
    let log = AuditLog::of(&g).strict();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .into_iter()
        .filter(|a| a["path"] == "/mcp")
        .collect();
    assert_eq!(lines.len(), 1, "{:?}", log.raw());
    assert_eq!(lines[0]["status"], 200);
}
