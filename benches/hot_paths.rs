//! Criterion benchmarks of the per-request hot paths that have no I/O:
//! JSON-RPC envelope inspection, route matching, header checks, error bodies.
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
    };
    let globs = |v: &[&str]| v.iter().map(|g| Glob::new(g)).collect::<Vec<_>>();
    let policy = Policy {
        rules: vec![
            PolicyRule {
                tenant: Glob::new("team"),
                client: Glob::new("*"),
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
    c.bench_function("auth/api_key_1000_keys+policy", |b| {
        b.iter(|| {
            let p = auth.authenticate(black_box(&headers), "127.0.0.1:1");
            match p {
                Ok(p) => policy.check(&p, black_box(&call)).is_ok(),
                Err(_) => false,
            }
        })
    });
}

criterion_group!(
    benches,
    bench_inspect,
    bench_route,
    bench_headers,
    bench_auth_policy
);
criterion_main!(benches);
