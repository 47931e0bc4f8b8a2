//! Upstream pools (issue 6, part): several `endpoints` per upstream, new
//! sessions and stateless calls balanced over them, and every call of a
//! session on the endpoint that owns it (the sealed token names it). Two
//! recording upstream replicas on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use common::*;

const KEY: &str = "pool-session-key-0123456789abcdefghij";
const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;

fn pool_config(a: &Upstream, b: &Upstream, balance: &str) -> Config {
    Config::base("http://127.0.0.1:1/unused")
        .endpoints(&[a.url(), b.url()])
        .insert("upstreams[0].load_balancing", balance)
        .sessions(&[KEY])
        .admin(&Port::reserve(), None)
}

/// Which replica answered (the echo upstream reports the Host it was sent).
fn replica(r: &Response) -> String {
    match r.json()["headers"]["host"].as_str() {
        Some(h) => h.to_string(),
        None => panic!(
            "not an upstream answer: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
    }
}

#[test]
fn sessions_spread_over_the_pool_and_stay_on_their_endpoint() {
    let (a, b) = (Upstream::start(Mode::Echo), Upstream::start(Mode::Echo));
    let g = Gateway::start(&pool_config(&a, &b, "round_robin"));
    // 10 sessions: round robin puts 5 on each replica
    let mut sessions = Vec::new();
    let mut per_replica: HashMap<String, usize> = HashMap::new();
    for _ in 0..10 {
        let r = post_json(g.port, INIT, &[]);
        assert_eq!(r.status, 200);
        let token = r.header("mcp-session-id").unwrap().to_string();
        let home = replica(&r);
        *per_replica.entry(home.clone()).or_default() += 1;
        sessions.push((token, home));
    }
    assert_eq!(per_replica.len(), 2, "{per_replica:?}");
    assert!(per_replica.values().all(|n| *n == 5), "{per_replica:?}");
    // every later call of a session lands on its replica, with the upstream's id
    for round in 0..3 {
        for (token, home) in &sessions {
            let r = post_json(g.port, CALL, &[("Mcp-Session-Id", token)]);
            assert_eq!(r.status, 200);
            assert_eq!(&replica(&r), home, "round {round}");
            assert_eq!(r.json()["headers"]["mcp-session-id"], "upstream-session-1");
        }
    }
    // a GET stream and a DELETE of a session go there too
    let (token, home) = &sessions[3];
    let r = request(g.port, "DELETE", "/mcp", &[("Mcp-Session-Id", token)], b"").unwrap();
    assert_eq!(&replica(&r), home);
    // calls without a session are balanced
    let mut seen = HashMap::<String, usize>::new();
    for _ in 0..10 {
        *seen
            .entry(replica(&post_json(g.port, CALL, &[])))
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    let total = a.hits.load(std::sync::atomic::Ordering::SeqCst)
        + b.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(total, 10 + 30 + 1 + 10);
}

#[test]
fn a_restarted_gateway_routes_sessions_to_the_same_endpoints() {
    let (a, b) = (Upstream::start(Mode::Echo), Upstream::start(Mode::Echo));
    let cfg = pool_config(&a, &b, "least_connections");
    let g = Gateway::start(&cfg);
    let sessions: Vec<(String, String)> = (0..6)
        .map(|_| {
            let r = post_json(g.port, INIT, &[]);
            (r.header("mcp-session-id").unwrap().to_string(), replica(&r))
        })
        .collect();
    drop(g);
    // new process, same keys; the pool listed the other way round
    let swapped = cfg
        .clone()
        .set("upstreams[0].endpoints", [b.url(), a.url()]);
    let g2 = Gateway::start(&swapped);
    for (token, home) in &sessions {
        let r = post_json(g2.port, CALL, &[("Mcp-Session-Id", token)]);
        assert_eq!(&replica(&r), home);
    }
    // an endpoint removed from the pool ends its sessions with 404
    let only_b = cfg.clone().set("upstreams[0].endpoints", [b.url()]);
    let g3 = Gateway::start(&only_b);
    let a_host = format!("127.0.0.1:{}", a.port);
    for (token, home) in &sessions {
        let r = post_json(g3.port, CALL, &[("Mcp-Session-Id", token)]);
        if *home == a_host {
            assert_eq!(r.status, 404);
        } else {
            assert_eq!(r.status, 200);
        }
    }
}

#[test]
fn pool_config_errors_name_their_paths() {
    let base = Config::base("http://127.0.0.1:9/x").with_port(1);
    for (cfg, want) in [
        (
            base.clone().remove("upstreams[0].url"),
            "upstreams[0]: url or endpoints is required",
        ),
        (
            base.clone()
                .insert("upstreams[0].endpoints", ["http://127.0.0.1:8/x"]),
            "upstreams[0]: give url or endpoints, not both",
        ),
        (
            base.clone()
                .endpoints(&[
                    "http://127.0.0.1:8/x".to_string(),
                    "ftp://y/z".to_string(),
                    "http://127.0.0.1:8/x".to_string(),
                ])
                .insert("upstreams[0].load_balancing", "fastest"),
            "upstreams[0].endpoints[1]",
        ),
    ] {
        let (ok, _, err) = validate(&cfg);
        assert!(!ok);
        assert!(err.contains(want), "wanted {want:?} in {err}");
        if want.ends_with("endpoints[1]") {
            assert!(
                err.contains("upstreams[0].endpoints[2]: duplicate endpoint"),
                "{err}"
            );
            assert!(err.contains("upstreams[0].load_balancing"), "{err}");
        }
    }
}

#[test]
fn health_checks_take_a_dead_replica_out_and_bring_it_back() {
    let a = Upstream::start(Mode::Echo);
    let b = Upstream::start(Mode::Echo);
    let cfg = pool_config(&a, &b, "round_robin").insert(
        "upstreams[0].health_check",
        json!({"interval_ms": 200, "timeout_ms": 100}),
    );
    let g = Gateway::start(&cfg);
    let a_host = format!("127.0.0.1:{}", a.port);
    // one session on each replica
    let s1 = post_json(g.port, INIT, &[]);
    let s2 = post_json(g.port, INIT, &[]);
    let (on_a, on_b) = if replica(&s1) == a_host {
        (s1, s2)
    } else {
        (s2, s1)
    };
    let tok_a = on_a.header("mcp-session-id").unwrap().to_string();
    let tok_b = on_b.header("mcp-session-id").unwrap().to_string();

    // kill replica A: within two failed checks it is out
    let a_port = a.reservation();
    a.stop();
    let health = |g: &Gateway| get(g.admin_port(), "/health", &[]).unwrap().json();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while health(&g)["upstreams"]["up"]["up"] != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        health(&g)["upstreams"]["up"],
        serde_json::json!({"up": 1, "endpoints": 2})
    );
    // its session gets 404 (the client re-initializes), B's continues
    let r = post_json(g.port, CALL, &[("Mcp-Session-Id", &tok_a)]);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], -32600);
    assert_eq!(
        replica(&post_json(g.port, CALL, &[("Mcp-Session-Id", &tok_b)])),
        format!("127.0.0.1:{}", b.port)
    );
    // new sessions and stateless calls all go to B, without a failed request
    for _ in 0..6 {
        let r = post_json(g.port, INIT, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(replica(&r), format!("127.0.0.1:{}", b.port));
    }

    // A comes back on its port: one passing check puts it back in the pool
    let a2 = Upstream::start_on(Mode::Echo, a_port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while health(&g)["upstreams"]["up"]["up"] != 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(health(&g)["upstreams"]["up"]["up"], 2);
    let mut seen = HashMap::<String, usize>::new();
    for _ in 0..4 {
        *seen
            .entry(replica(&post_json(g.port, INIT, &[])))
            .or_default() += 1;
    }
    assert_eq!(seen.get(&a_host), Some(&2), "{seen:?}");
    assert!(a2.hits.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    assert!(g.log_text().contains("is down"), "{}", g.log_text());
    assert!(g.log_text().contains("is healthy again"));
}

#[test]
fn a_connect_failure_moves_a_new_call_to_another_replica() {
    // B is a closed port: no health check has noticed yet (long interval)
    let a = Upstream::start(Mode::Echo);
    let b = Upstream::start(Mode::Echo);
    b.stop();
    let cfg = pool_config(&a, &b, "round_robin").insert(
        "upstreams[0].health_check",
        json!({"interval_ms": 60000, "timeout_ms": 100}),
    );
    let g = Gateway::start(&cfg);
    // every call succeeds: a refused connect is retried on A (nothing was sent)
    for _ in 0..6 {
        let r = post_json(g.port, CALL, &[]);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(replica(&r), format!("127.0.0.1:{}", a.port));
    }
    // and B was ejected passively
    assert_eq!(
        get(g.admin_port(), "/health", &[]).unwrap().json()["upstreams"]["up"]["up"],
        1
    );
}
