//! Criterion benchmarks of the per-request hot paths that have no I/O:
//! JSON-RPC envelope inspection, the items a call names, URI normalization,
//! upstream answer checks (JSON and SSE), route matching, header checks,
//! error bodies.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mcp_edge::jsonrpc::{error_body, inspect, IdRef};
use mcp_edge::mcp::{check_headers, Era};
use mcp_edge::routing::{Call, Glob, Routes, Rule};
use mcp_edge::upstream::Upstream;

/// A realistic ~300-byte tools/call.
const CALL_300: &[u8] = br#"{"jsonrpc":"2.0","id":1723,"method":"tools/call","params":{"name":"search.documents","arguments":{"query":"quarterly revenue by region","limit":20,"filters":{"year":2026,"tags":["finance","emea","apac"],"include_archived":false}},"_meta":{"progressToken":"tok-5d1b"}}}"#;

fn bench_inspect(c: &mut Criterion) {
    let mut g = c.benchmark_group("inspect");
    g.throughput(Throughput::Bytes(CALL_300.len() as u64));
    g.bench_function("tools_call_300B", |b| {
        b.iter(|| inspect(black_box(CALL_300), 64))
    });
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","arguments":{{"blob":"{}"}}}}}}"#,
        "a".repeat(64 * 1024)
    );
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("tools_call_64KiB", |b| {
        b.iter(|| inspect(black_box(big.as_bytes()), 64))
    });
    g.finish();
}

/// What issue 17 added per request: the call's items (URI normalized),
/// and the check of every upstream answer (a tools/call result passes, a
/// tools/list answer is filtered), and an SSE event parsed and re-written.
fn bench_enforcement(c: &mut Criterion) {
    use mcp_edge::answer::{check_message, SseGuard};
    use mcp_edge::call::Call as ItemCall;
    let env = match inspect(CALL_300, 64) {
        Ok(e) => e,
        Err(_) => return,
    };
    c.bench_function("call/items_tools_call", |b| {
        b.iter(|| ItemCall::of(black_box(&env), CALL_300).is_ok())
    });
    c.bench_function("uri/normalize_plain", |b| {
        b.iter(|| mcp_edge::uri::normalize(black_box("file:///public/reports/2026/q3.csv")).is_ok())
    });
    c.bench_function("uri/normalize_rewritten", |b| {
        b.iter(|| {
            mcp_edge::uri::normalize(black_box("FILE://localhost/%70ublic/reports/q3.csv")).is_ok()
        })
    });
    let result = br#"{"jsonrpc":"2.0","id":1723,"result":{"content":[{"type":"text","text":"12 documents matched: q3-emea.pdf, q3-apac.pdf, revenue-by-region.xlsx and 9 more"}],"isError":false}}"#;
    let allow = |_: mcp_edge::call::Item, n: &str| !n.starts_with("admin");
    c.bench_function("answer/tools_call_result_pass", |b| {
        b.iter(|| check_message(black_box(result), &allow))
    });
    let list: String = format!(
        r#"{{"jsonrpc":"2.0","id":2,"result":{{"tools":[{}]}}}}"#,
        (0..20)
            .map(|i| format!(r#"{{"name":"{}{i}","description":"a tool","inputSchema":{{"type":"object","properties":{{"q":{{"type":"string"}}}}}}}}"#, if i % 4 == 0 { "admin." } else { "tool." }))
            .collect::<Vec<_>>()
            .join(",")
    );
    c.bench_function("answer/tools_list_20_filtered", |b| {
        b.iter(|| check_message(black_box(list.as_bytes()), &allow))
    });
    let event = format!(
        "id: 1\nevent: message\ndata: {}\n\n",
        std::str::from_utf8(result).unwrap_or("")
    );
    c.bench_function("answer/sse_event_pass", |b| {
        b.iter(|| {
            let mut g = SseGuard::new(8 << 20);
            g.push(black_box(event.as_bytes()), false, &allow)
        })
    });
}

fn routes() -> Routes {
    let up = |n: &str| Arc::new(Upstream::for_tests(n));
    let mut rules: Vec<Rule> = (0..8)
        .map(|i| Rule {
            method: Some(Glob::new("tools/call")),
            tool: Some(Glob::new(&format!("team{i}.*"))),
            resource: None,
            prompt: None,
            upstream: up(&format!("u{i}")),
        })
        .collect();
    rules.push(Rule {
        method: Some(Glob::new("*")),
        tool: None,
        resource: None,
        prompt: None,
        upstream: up("default"),
    });
    Routes::new(rules)
}

fn bench_route(c: &mut Criterion) {
    let r = routes();
    c.bench_function("route/9_rules_last_match", |b| {
        b.iter(|| {
            r.route(black_box(&Call::from_parts(
                Some("tools/call"),
                Some("search.documents"),
                None,
            )))
        })
    });
    c.bench_function("route/9_rules_first_match", |b| {
        b.iter(|| {
            r.route(black_box(&Call::from_parts(
                Some("tools/call"),
                Some("team0.add"),
                None,
            )))
        })
    });
}

fn bench_headers(c: &mut Criterion) {
    c.bench_function("mcp/check_headers_stateless", |b| {
        b.iter(|| {
            check_headers(
                Era::Stateless,
                black_box(Some(&b"tools/call"[..])),
                black_box(Some(&b"search.documents"[..])),
                Some("tools/call"),
                Some("search.documents"),
                None,
            )
        })
    });
    c.bench_function("jsonrpc/error_body", |b| {
        b.iter(|| error_body(black_box(Some(IdRef::Int(1723))), -32600, "invalid request"))
    });
}

fn bench_auth_policy(c: &mut Criterion) {
    use mcp_edge::auth::{apikey, ApiKeys, Authenticator};
    use mcp_edge::policy::{Globs, Policy, Rule as PolicyRule};
    let mut keys = ApiKeys::default();
    for i in 0..1000 {
        let k = format!("key-number-{i:04}-abcdefgh");
        keys.insert(
            &format!("id{i}"),
            apikey::digest(k.as_bytes()),
            "team",
            &format!("c{i}"),
        )
        .unwrap_or_default();
    }
    let auth = Authenticator {
        anonymous: false,
        keys,
        jwt: None,
        client_cert: None,
    };
    let globs = |v: &[&str]| v.iter().map(|g| Glob::new(g)).collect::<Vec<_>>();
    let policy = Policy {
        rules: vec![
            PolicyRule {
                tenant: Glob::new("team"),
                client: Glob::new("*"),
                claims: vec![],
                allow: Globs {
                    methods: globs(&[
                        "initialize",
                        "notifications/*",
                        "tools/*",
                        "resources/*",
                        "prompts/*",
                    ]),
                    tools: globs(&["search.*", "math.*"]),
                    resources: globs(&["file:///public/*"]),
                    prompts: globs(&["*"]),
                },
                deny: Globs {
                    tools: globs(&["admin.*"]),
                    ..Globs::default()
                },
            },
            PolicyRule {
                tenant: Glob::new("ops"),
                client: Glob::new("bot-*"),
                claims: vec![],
                allow: Globs {
                    methods: globs(&["tools/list"]),
                    ..Globs::default()
                },
                deny: Globs::default(),
            },
        ],
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-api-key",
        http::HeaderValue::from_static("key-number-0777-abcdefgh"),
    );
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "accept",
        http::HeaderValue::from_static("application/json, text/event-stream"),
    );
    let call = Call::from_parts(Some("tools/call"), Some("search.documents"), None);
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    c.bench_function("auth/api_key_1000_keys+policy", |b| {
        b.iter(|| {
            // API-key authentication never awaits: poll it once on a no-op runtime
            let p = rt.block_on(auth.authenticate(black_box(&headers), "127.0.0.1:1", None));
            match p {
                Ok(p) => policy.check(&p, black_box(&call)).is_ok(),
                Err(_) => false,
            }
        })
    });
}

/// A cached JWT: a token already verified costs a hash lookup, not a
/// signature check (the first verification of an ES256 token is ~50-100 µs).
fn bench_jwt(c: &mut Criterion) {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use mcp_edge::auth::jwt::{JwksSource, JwtSettings, JwtVerifier};
    let skip = |why: &str| eprintln!("jwt benches skipped: {why}");
    let Ok(dir) = tempfile::tempdir() else {
        return skip("no tempdir");
    };
    let pem_path = dir.path().join("k.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&pem_path)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return skip("openssl genpkey failed");
    }
    let Some(enc) = std::fs::read(&pem_path)
        .ok()
        .and_then(|p| EncodingKey::from_ec_pem(&p).ok())
    else {
        return skip("cannot read the key");
    };
    let Ok(mut jwk) = Jwk::from_encoding_key(&enc, Algorithm::ES256) else {
        return skip("no JWK");
    };
    jwk.common.key_id = Some("k".into());
    let jwks_path = dir.path().join("jwks.json");
    let set = serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap_or_default();
    if std::fs::write(&jwks_path, set).is_err() {
        return skip("cannot write the JWKS");
    }
    let settings = JwtSettings {
        issuer: "https://iss/".into(),
        audiences: vec!["aud".into()],
        algorithms: vec![Algorithm::ES256],
        leeway_secs: 0,
        tenant_claim: "tenant".into(),
        client_claim: "sub".into(),
        forward_claims: vec![],
        source: JwksSource::File(jwks_path.display().to_string()),
        refresh: std::time::Duration::from_secs(300),
        unknown_kid_refetch: std::time::Duration::from_secs(30),
    };
    let v = match JwtVerifier::new(settings) {
        Ok(v) => v,
        Err(e) => return skip(&e),
    };
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or(0);
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k".into());
    let sign = |n: u64| {
        let claims = serde_json::json!({"iss": "https://iss/", "aud": "aud", "sub": "u", "tenant": "t", "exp": exp, "n": n});
        encode(&h, &claims, &enc).unwrap_or_default()
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return skip("no runtime");
    };
    let token = sign(u64::MAX);
    c.bench_function("auth/jwt_cached", |b| {
        b.iter(|| rt.block_on(v.verify(black_box(token.as_bytes()))).is_ok())
    });
}

fn bench_ratelimit(c: &mut Criterion) {
    use mcp_edge::ratelimit::{local::LocalStore, Limits, Rate};
    let store = LocalStore::default();
    let limits = Limits {
        default_rpm: 600,
        by_method: [("tools/call".to_string(), 1_000_000)].into(),
        by_tool: Default::default(),
        prefix: "mcp-edge".into(),
        redis: None,
    };
    c.bench_function("ratelimit/local_check", |b| {
        b.iter(|| {
            store.check(
                black_box("mcp-edge:rate:team:c1:tools/call"),
                Rate {
                    per_minute: 1_000_000,
                },
            )
        })
    });
    c.bench_function("ratelimit/bucket_key+local_check", |b| {
        b.iter(|| {
            let (k, r) = limits
                .bucket("team", black_box("c1"), Some("tools/call"), Some("search"))
                .unwrap_or_default();
            store.check(&k, r)
        })
    });
}

fn bench_proxy_protocol(c: &mut Criterion) {
    use mcp_edge::addr::proxy_protocol::parse;
    let v1 = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n";
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb]);
    c.bench_function("proxy_protocol/v1_tcp4", |b| {
        b.iter(|| parse(black_box(v1)))
    });
    c.bench_function("proxy_protocol/v2_tcp4", |b| {
        b.iter(|| parse(black_box(&v2)))
    });
}

fn bench_session(c: &mut Criterion) {
    use mcp_edge::session::{principal_digest, Owner, SessionKeys};
    let Ok(keys) = SessionKeys::new(
        &[
            "new-key-0123456789-0123456789-0123456789".to_string(),
            "old-key-0123456789-0123456789-0123456789".to_string(),
        ],
        std::time::Duration::from_secs(86_400),
    ) else {
        return;
    };
    let owner = Owner {
        upstream: "mcp-math".into(),
        endpoint: "10.0.0.12:9000".into(),
        session: "3f2c6f1e-8a0b-4c55-9d8e-0d6c1b7a9e21".into(),
        principal: principal_digest("acme", "ci-bot"),
        issued: 1_800_000_000,
    };
    let Some(token) = keys.seal(&owner) else {
        return;
    };
    c.bench_function("session/seal", |b| b.iter(|| keys.seal(black_box(&owner))));
    c.bench_function("session/open", |b| {
        b.iter(|| keys.open(black_box(&token), &owner.principal, 1_800_000_100))
    });
    c.bench_function("session/principal_digest+open", |b| {
        b.iter(|| {
            let p = principal_digest(black_box("acme"), black_box("ci-bot"));
            keys.open(black_box(&token), &p, 1_800_000_100)
        })
    });
}

fn bench_metrics(c: &mut Criterion) {
    use mcp_edge::telemetry::metrics::{record_request, Finished};
    c.bench_function("metrics/record_request", |b| {
        b.iter(|| {
            record_request(black_box(&Finished {
                route: "routing[0]",
                upstream: "mcp-main",
                method: Some("tools/call"),
                status: 200,
                error: None,
                sse: false,
                seconds: 0.0004,
            }))
        })
    });
}

/// What a `tools/call` under a `tool_limits` rule adds at admission: the
/// first-match lookup over a few rules and the `max_concurrent` permit
/// taken and released (issue 21: at most 2 us).
fn bench_tool_limits(c: &mut Criterion) {
    let text = r#"
server: {listen: 127.0.0.1:1}
upstreams: [{name: a, url: "http://127.0.0.1:9/mcp"}]
routing: [{match: {method: "*"}, upstream: a}]
tool_limits:
  - {tools: ["git__log*", "git__blame"], timeout_ms: 10000, max_concurrent: 4}
  - {tools: ["admin.*"], max_response_bytes: 4096}
  - {tools: ["search.*"], timeout_ms: 30000, max_concurrent: 100000, max_response_bytes: 1048576}
  - {tools: ["*"], timeout_ms: 60000}
"#;
    let Ok(rt) = mcp_edge::config::load_str(text, &|_| None) else {
        eprintln!("tool_limits bench: the config does not compile");
        return;
    };
    let principal = [7u8; 16];
    c.bench_function("tool_limits/lookup_acquire_release", |b| {
        b.iter(|| {
            if let Some(rule) = rt.tool_limits.for_tool(black_box("search.documents")) {
                let permit = rule.acquire(black_box(principal));
                black_box(permit.is_ok());
            }
        })
    });
    let none = mcp_edge::tools::ToolLimits::default();
    c.bench_function("tool_limits/no_rule", |b| {
        b.iter(|| black_box(none.for_tool(black_box("search.documents")).is_some()))
    });
}

criterion_group!(
    benches,
    bench_tool_limits,
    bench_metrics,
    bench_session,
    bench_proxy_protocol,
    bench_ratelimit,
    bench_inspect,
    bench_enforcement,
    bench_route,
    bench_headers,
    bench_auth_policy,
    bench_jwt
);
criterion_main!(benches);
