//! The request path through the real gateway binary against a fault-injection
//! upstream: forwarding, header hygiene, every gateway-made error, both eras.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::Duration;

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;

fn gw(up: &Upstream) -> Gateway {
    Gateway::start(
        &Config::base(&up.url()).insert("server.allowed_origins", ["https://app.example.com"]),
    )
}

#[test]
fn forwards_exact_bytes_and_only_allowed_headers() {
    let up = Upstream::start(Mode::Echo);
    let cfg = Config::base(&up.url()).api_keys([api_key("k1", "client-key-123", "t", None)]);
    let g = Gateway::start(&cfg);
    let token = post_json(g.port, CALL, &[("X-API-Key", "client-key-123")])
        .header("mcp-session-id")
        .expect("sealed session id")
        .to_string();
    let r = post_json(
        g.port,
        CALL,
        &[
            // the client's credential in every accepted form: none may reach the upstream
            ("Authorization", "Bearer client-key-123"),
            ("X-API-Key", "client-key-123"),
            ("Api-Key", "client-key-123"),
            ("Cookie", "session=abc"),
            ("Proxy-Authorization", "Basic x"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Custom", "nope"),
            ("Mcp-Session-Id", &token),
            ("MCP-Protocol-Version", "2025-06-18"),
            ("Last-Event-ID", "ev-9"),
            ("X-Request-ID", "req-abc.1"),
        ],
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["len"], CALL.len());
    use sha2::{Digest, Sha256};
    let want: String = Sha256::digest(CALL)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(j["sha256"], want);
    assert_eq!(j["path"], "/upstream-mcp");
    let h = &j["headers"];
    for never in [
        "authorization",
        "x-api-key",
        "api-key",
        "cookie",
        "proxy-authorization",
        "x-custom",
    ] {
        assert!(h.get(never).is_none(), "{never} leaked upstream: {h}");
    }
    // the sealed token is opened: the upstream gets its own session id back
    assert_eq!(h["mcp-session-id"], "upstream-session-1");
    assert_eq!(h["mcp-protocol-version"], "2025-06-18");
    assert_eq!(h["last-event-id"], "ev-9");
    assert_eq!(h["x-upstream-key"], "upstream-secret");
    assert_eq!(h["x-request-id"], "req-abc.1");
    // the client's X-Forwarded-For (6.6.6.6) is replaced by the gateway's own
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["host"], format!("127.0.0.1:{}", up.port));
    assert_eq!(r.header("x-request-id"), Some("req-abc.1"));
    // the upstream's session id never reaches the client: a sealed token does
    let back = r.header("mcp-session-id").unwrap_or_default();
    assert!(back.starts_with('1') && back.len() > 40, "{back}");
    assert!(!back.contains("upstream"), "{back}");

    let lines = g.wait_access_lines(2);
    let l = lines.last().expect("access line");
    assert_eq!(l["status"], 200);
    assert_eq!(l["mcp_method"], "tools/call");
    assert_eq!(l["target"], "echo");
    assert_eq!(l["upstream"], "up");
    assert_eq!(l["request_id"], "req-abc.1");
}

#[test]
fn request_id_is_generated_when_missing_or_insane() {
    let up = Upstream::start(Mode::Echo);
    let g = gw(&up);
    for given in [None, Some("bad id with spaces")] {
        let mut h = vec![];
        if let Some(v) = given {
            h.push(("X-Request-ID", v));
        }
        let r = post_json(g.port, CALL, &h);
        let id = r.header("x-request-id").expect("x-request-id").to_string();
        assert_eq!(id.len(), 32, "{id}");
        assert_eq!(r.json()["headers"]["x-request-id"], id.as_str());
    }
}

fn assert_jsonrpc_error(r: &Response, status: u16, code: i64, id: serde_json::Value) {
    assert_eq!(
        r.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&r.body)
    );
    let j = r.json();
    assert_eq!(j["jsonrpc"], "2.0");
    assert_eq!(j["error"]["code"], code, "{j}");
    assert!(j["error"]["message"].is_string());
    assert_eq!(j["id"], id, "{j}");
    assert!(r.header("x-request-id").is_some());
}

#[test]
fn bad_input_gets_a_jsonrpc_error_and_is_never_forwarded() {
    let up = Upstream::start(Mode::Echo);
    let g = gw(&up);
    let null = serde_json::Value::Null;
    let cases: Vec<(&[u8], u16, i64, serde_json::Value)> = vec![
        (b"{not json", 400, -32700, null.clone()),
        (b"", 400, -32700, null.clone()),
        (
            br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            400,
            -32600,
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            400,
            -32600,
            null.clone(),
        ),
        (
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            400,
            -32600,
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}"#,
            400,
            -32600,
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            400,
            -32600,
            null.clone(),
        ),
        (
            br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"arguments":{}}}"#,
            400,
            -32602,
            serde_json::json!(9),
        ),
        (
            br#"{"jsonrpc":"2.0","id":"r","method":"resources/read","params":{}}"#,
            400,
            -32602,
            serde_json::json!("r"),
        ),
    ];
    for (body, status, code, id) in cases {
        let r = post_json(g.port, body, &[]);
        assert_jsonrpc_error(&r, status, code, id);
    }
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_jsonrpc_error(
        &post_json(g.port, deep.as_bytes(), &[]),
        400,
        -32600,
        null.clone(),
    );
    assert_eq!(
        up.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "bad input reached the upstream"
    );
    let lines = g.wait_access_lines(10);
    assert!(lines.len() >= 10, "one access line per request: {lines:?}");
    assert!(lines
        .iter()
        .all(|l| l["status"] == 400 && l["error"].is_string()));
}

#[test]
fn transport_level_refusals() {
    let up = Upstream::start(Mode::Echo);
    let g = gw(&up);
    let null = serde_json::Value::Null;
    // wrong path
    let r = request(
        g.port,
        "POST",
        "/other",
        &[("Content-Type", "application/json")],
        CALL,
    )
    .expect("req");
    assert_jsonrpc_error(&r, 404, -32600, null.clone());
    // wrong method
    let r = request(
        g.port,
        "PUT",
        "/mcp",
        &[("Content-Type", "application/json")],
        CALL,
    )
    .expect("req");
    assert_jsonrpc_error(&r, 405, -32600, null.clone());
    assert!(r.header("allow").is_some_and(|a| a.contains("POST")));
    // foreign Origin; listed Origin passes
    let r = post_json(g.port, CALL, &[("Origin", "https://evil.example")]);
    assert_jsonrpc_error(&r, 403, -32600, null.clone());
    assert_eq!(
        post_json(g.port, CALL, &[("Origin", "https://app.example.com")]).status,
        200
    );
    // not JSON, compressed
    let r = request(
        g.port,
        "POST",
        "/mcp",
        &[("Content-Type", "text/plain")],
        CALL,
    )
    .expect("req");
    assert_jsonrpc_error(&r, 415, -32600, null.clone());
    let r = post_json(g.port, CALL, &[("Content-Encoding", "gzip")]);
    assert_jsonrpc_error(&r, 415, -32600, null.clone());
    // bad protocol version
    let r = post_json(g.port, CALL, &[("MCP-Protocol-Version", "latest")]);
    assert_jsonrpc_error(&r, 400, -32022, null.clone());
    // too many headers
    let many: Vec<(String, String)> = (0..120).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = post_json(g.port, CALL, &many);
    assert_jsonrpc_error(&r, 431, -32600, null.clone());
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn body_over_the_limit_is_413_before_forwarding() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&Config::base(&up.url()).insert("server.limits.max_body_bytes", 4096));
    let big = tools_call_of_size(4097);
    let r = post_json(g.port, &big, &[]);
    assert_jsonrpc_error(&r, 413, -32600, serde_json::Value::Null);
    // chunked upload without Content-Length is counted while reading
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = raw(g.port, &req).expect("chunked");
    assert_eq!(r.status, 413);
    assert_eq!(
        post_json(g.port, &tools_call_of_size(4096), &[]).status,
        200
    );
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn chunked_request_body_is_forwarded_with_exact_length() {
    let up = Upstream::start(Mode::Echo);
    let g = gw(&up);
    let (a, b) = CALL.split_at(30);
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        a.len()
    )
    .into_bytes();
    req.extend_from_slice(a);
    req.extend_from_slice(format!("\r\n{:x}\r\n", b.len()).as_bytes());
    req.extend_from_slice(b);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = raw(g.port, &req).expect("chunked");
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["len"], CALL.len());
    assert_eq!(j["headers"]["content-length"], CALL.len().to_string());
    assert!(j["headers"].get("transfer-encoding").is_none());
}

#[test]
fn stateless_era_headers_must_match_the_body() {
    let up = Upstream::start(Mode::Echo);
    let g = gw(&up);
    let v = ("MCP-Protocol-Version", "2026-07-28");
    // matching headers pass
    let r = post_json(
        g.port,
        CALL,
        &[v, ("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["mcp-name"], "echo");
    // mismatches and omissions: 400 / -32020, with the id echoed
    for hs in [
        vec![v, ("Mcp-Method", "tools/list"), ("Mcp-Name", "echo")],
        vec![v, ("Mcp-Method", "tools/call"), ("Mcp-Name", "admin")],
        vec![v, ("Mcp-Method", "tools/call")],
        vec![v, ("Mcp-Name", "echo")],
        vec![
            v,
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?!!?="),
        ],
    ] {
        let r = post_json(g.port, CALL, &hs);
        assert_jsonrpc_error(&r, 400, -32020, serde_json::json!(42));
    }
    // base64 form of a non-ASCII name
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo"}}"#;
    let r = post_json(
        g.port,
        body.as_bytes(),
        &[
            v,
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?aMOpbGxv?="),
        ],
    );
    assert_eq!(r.status, 200);
    // _meta protocol version must match the header
    let meta = br#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    assert_jsonrpc_error(
        &post_json(g.port, meta, &[("Mcp-Method", "tools/list")]),
        400,
        -32020,
        serde_json::json!(3),
    );
    assert_eq!(
        post_json(g.port, meta, &[v, ("Mcp-Method", "tools/list")]).status,
        200
    );
    // GET and DELETE are 405 in the stateless era
    for m in ["GET", "DELETE"] {
        let r = request(g.port, m, "/mcp", &[v], b"").expect("req");
        assert_jsonrpc_error(&r, 405, -32600, serde_json::Value::Null);
    }
    // the session era on the same endpoint keeps GET/DELETE
    let token = session_token(g.port);
    let r = request(g.port, "DELETE", "/mcp", &[("Mcp-Session-Id", &token)], b"").expect("delete");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "DELETE");
    assert_eq!(r.json()["headers"]["mcp-session-id"], "upstream-session-1");
}

#[test]
fn notifications_and_responses_pass_with_202() {
    let up = Upstream::start(Mode::Accepted);
    let g = gw(&up);
    for body in [
        &br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#[..],
        &br#"{"jsonrpc":"2.0","id":"srv-1","result":{"roots":[]}}"#[..],
    ] {
        let r = post_json(g.port, body, &[]);
        assert_eq!(r.status, 202);
        assert!(r.body.is_empty());
        // a session id the gateway did not seal is refused, never forwarded
        let r = post_json(g.port, body, &[("Mcp-Session-Id", "s1")]);
        assert_eq!(r.status, 404);
        assert_eq!(r.json()["error"]["code"], -32600);
    }
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn upstream_refused_is_502_and_timeout_is_504() {
    let dead = Port::reserve();
    let g = Gateway::start(&Config::base(&format!("http://127.0.0.1:{dead}/mcp")));
    let r = post_json(g.port, CALL, &[]);
    assert_jsonrpc_error(&r, 502, -32603, serde_json::json!(42));

    let slow = Upstream::start(Mode::Slow(Duration::from_secs(4)));
    let g = Gateway::start(&Config::base(&slow.url()));
    let r = post_json(g.port, CALL, &[]);
    assert_jsonrpc_error(&r, 504, -32603, serde_json::json!(42));

    let reset = Upstream::start(Mode::Reset);
    let g = Gateway::start(&Config::base(&reset.url()));
    let r = post_json(g.port, CALL, &[]);
    assert_jsonrpc_error(&r, 502, -32603, serde_json::json!(42));
    let lines = g.wait_access_lines(1);
    assert_eq!(
        lines.last().map(|l| l["error"].clone()),
        Some(serde_json::json!("upstream_unavailable"))
    );
}

#[test]
fn health_endpoints_and_anonymous_off() {
    let up = Upstream::start(Mode::Echo);
    let cfg = Config::base(&up.url()).set("auth.anonymous", false);
    let g = Gateway::start(&cfg);
    assert_eq!(
        get(g.port, "/healthz", &[]).expect("healthz").json()["status"],
        "ok"
    );
    assert_eq!(
        get(g.port, "/health", &[]).expect("health").json()["status"],
        "ready"
    );
    let r = post_json(g.port, CALL, &[]);
    assert_jsonrpc_error(&r, 401, -32600, serde_json::Value::Null);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let slow = Upstream::start(Mode::Slow(Duration::from_millis(800)));
    let g = Gateway::start(&Config::base(&slow.url()));
    let port = g.port;
    let t = std::thread::spawn(move || post_json(port, CALL, &[]));
    std::thread::sleep(Duration::from_millis(200));
    g.signal("TERM");
    let r = t.join().expect("join");
    assert_eq!(r.status, 200, "in-flight request was cut by SIGTERM");
}

#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_old_config() {
    let a = Upstream::start(Mode::Echo);
    let b = Upstream::start(Mode::Echo);
    let mut g = Gateway::start(&Config::base(&a.url()));
    let conf = g.dir.path().join("gw.yaml");
    let good = Config::load(&conf);
    // a broken file: the gateway must keep serving with the old config
    std::fs::write(&conf, "server: [").expect("write");
    g.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post_json(g.port, CALL, &[]).status, 200);
    assert!(g.log_text().contains("kept the previous configuration"));
    // a good one pointing elsewhere takes effect
    good.set("upstreams[0].url", b.url()).write(&conf);
    g.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(post_json(g.port, CALL, &[]).status, 200);
    assert_eq!(b.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(
        g.child.try_wait().expect("wait").is_none(),
        "SIGHUP killed the gateway"
    );
}

/// A sealed session token minted by the gateway (the echo upstream answers
/// every call with `Mcp-Session-Id: upstream-session-1`).
fn session_token(port: u16) -> String {
    let r = post_json(
        port,
        br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
        &[],
    );
    r.header("mcp-session-id")
        .expect("sealed session id")
        .to_string()
}
