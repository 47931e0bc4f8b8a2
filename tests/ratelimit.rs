//! Per-identity rate limits through the real gateway (in-memory store):
//! exact counts under concurrency, 429 answers with Retry-After and
//! RateLimit-* headers, per-method and per-tool overrides, many identities,
//! health endpoints never limited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn call(tool: &str, id: u32) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}"}}}}"#)
        .into_bytes()
}

/// `keys` API keys and anonymous access; one request a minute, 20 tools/call,
/// 2 calls of the `expensive` tool.
fn config(up: &Upstream, keys: usize) -> Config {
    let keys: Vec<_> = (0..keys)
        .map(|i| {
            let (id, key, client) = (
                format!("k{i}"),
                format!("key-number-{i:05}"),
                format!("c{i}"),
            );
            api_key(&id, &key, "t", Some(&client))
        })
        .collect();
    Config::base(&up.url())
        .api_keys(keys)
        .insert("auth.anonymous", true)
        .insert(
            "rate_limit",
            yaml("{default_rpm: 1, by_method: {tools/call: 20}, by_tool: {expensive: 2}}"),
        )
}

#[test]
fn concurrent_clients_on_one_key_get_exactly_n() {
    let up = Upstream::start(Mode::Echo);
    let g = Arc::new(Gateway::start(&config(&up, 1)));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let g = g.clone();
            std::thread::spawn(move || {
                (0..2)
                    .map(|j| {
                        post_json(
                            g.port,
                            &call("cheap", i * 2 + j),
                            &[("X-API-Key", "key-number-00000")],
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let responses: Vec<Response> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let ok = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 20, "exactly the per-minute limit passes");
    assert_eq!(up.hits.load(Ordering::SeqCst), 20);
    for r in &responses {
        assert_eq!(r.header("ratelimit-limit"), Some("20"));
        assert!(r.header("ratelimit-remaining").is_some() && r.header("ratelimit-reset").is_some());
        if r.status == 429 {
            let j = r.json();
            assert_eq!(j["error"]["code"], -32600);
            assert!(j["id"].is_number(), "the id is echoed: {j}");
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=3).contains(&retry), "retry-after {retry}");
            assert_eq!(r.header("ratelimit-remaining"), Some("0"));
        }
    }
}

#[test]
fn tool_and_method_overrides_and_health_never_limited() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up, 1));
    let key = [("X-API-Key", "key-number-00000")];
    let statuses: Vec<u16> = (0..3)
        .map(|i| post_json(g.port, &call("expensive", i), &key).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    // other tools still have their tools/call budget
    assert_eq!(post_json(g.port, &call("cheap", 9), &key).status, 200);
    // default_rpm 1 for other methods
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(post_json(g.port, list, &key).status, 200);
    assert_eq!(post_json(g.port, list, &key).status, 429);
    // anonymous callers are limited per IP, health checks never
    assert_eq!(post_json(g.port, list, &[]).status, 200);
    assert_eq!(post_json(g.port, list, &[]).status, 429);
    for _ in 0..5 {
        assert_eq!(get(g.port, "/healthz", &[]).unwrap().status, 200);
        assert_eq!(get(g.port, "/health", &[]).unwrap().status, 200);
    }
    let audit_like = g.wait_access_lines(8);
    assert!(audit_like
        .iter()
        .any(|l| l["error"] == "rate_limited" && l["status"] == 429));
}

#[test]
fn many_identities_get_no_false_429() {
    let up = Upstream::start(Mode::Echo);
    let n = 300;
    let g = Gateway::start(&config(&up, n));
    for i in 0..n {
        let key = format!("key-number-{i:05}");
        let r = post_json(
            g.port,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            &[("X-API-Key", &key)],
        );
        assert_eq!(r.status, 200, "identity {i}");
    }
}
