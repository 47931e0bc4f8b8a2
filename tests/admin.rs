//! The admin listener through the real gateway binary: health without a
//! token, `/metrics` only with `admin.token`, every metric family counting
//! what really happened (allowed, denied, unauthenticated, rate-limited,
//! SSE streams, sessions, reloads), and the token following a reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::{Duration, Instant};

const TOKEN: &str = "admin-token-0123456789";
const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
const DENIED: &[u8] =
    br#"{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"secret"}}"#;

/// API key auth; `resources/read` goes to the `sse` upstream; some methods
/// and prompts refused; the admin listener on `admin` with `token`; a rate
/// limit on the `limited` tool; sealed sessions.
fn config(up: &str, sse: &str, admin: &Port, token: &str) -> Config {
    Config::base(up)
        .api_keys(&[api_key("k1", "client-key-123", "t", Some("c"))])
        .set(
            "policy.rules[0].allow",
            yaml(r#"{methods: ["initialize", "tools/*", "prompts/get", "resources/read"], tools: ["*"], prompts: ["public"], resources: ["file:///*"]}"#),
        )
        .push("upstreams", json!({"name": "sse", "url": sse, "timeout_ms": 2000}))
        .insert(
            "routing[0]",
            yaml("{match: {method: resources/read}, upstream: sse}"),
        )
        .admin(admin, Some(token))
        .insert("rate_limit", yaml("{default_rpm: 600, by_tool: {limited: 1}}"))
        .sessions(&["admin-test-session-key-0123456789abcdef"])
}

fn scrape(port: u16, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    get(port, "/metrics", &headers).expect("admin listener answers")
}

/// The value of the first sample whose line starts with `series`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn metrics(port: u16) -> String {
    let r = scrape(port, Some(TOKEN));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    String::from_utf8(r.body).expect("utf-8")
}

#[test]
fn metrics_count_what_happened_and_need_the_token() {
    let up = Upstream::start(Mode::Echo);
    let sse = Upstream::start(Mode::Sse {
        n: 6,
        gap: Duration::from_millis(250),
    });
    let admin_port = Port::reserve();
    let admin = admin_port.get();
    let g = Gateway::start(&config(&up.url(), &sse.url(), &admin_port, TOKEN));
    let key = [("X-API-Key", "client-key-123")];

    // health is open, metrics are not
    assert_eq!(get(admin, "/healthz", &[]).unwrap().status, 200);
    let ready = get(admin, "/health", &[]).unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["upstreams"]["up"]["endpoints"], 1);
    assert_eq!(scrape(admin, None).status, 401);
    assert_eq!(scrape(admin, Some("wrong-token-0123456789")).status, 401);
    assert_eq!(get(admin, "/nope", &[]).unwrap().status, 404);
    // the public listener does not serve metrics
    assert_ne!(get(g.port, "/metrics", &[]).unwrap().status, 200);

    let init = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#,
        &key,
    );
    let token = init.header("mcp-session-id").expect("sealed").to_string();
    for _ in 0..3 {
        let r = post_json(
            g.port,
            CALL,
            &[("X-API-Key", "client-key-123"), ("Mcp-Session-Id", &token)],
        );
        assert_eq!(r.status, 200);
    }
    assert_eq!(post_json(g.port, DENIED, &key).status, 403);
    assert_eq!(post_json(g.port, CALL, &[]).status, 401);
    assert_eq!(
        post_json(g.port, CALL, &[("X-API-Key", "wrong-key-999")]).status,
        401
    );
    let forged = post_json(
        g.port,
        CALL,
        &[
            ("X-API-Key", "client-key-123"),
            ("Mcp-Session-Id", "forged"),
        ],
    );
    assert_eq!(forged.status, 404);
    let limited = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"limited"}}"#;
    assert_eq!(post_json(g.port, limited, &key).status, 200);
    assert_eq!(post_json(g.port, limited, &key).status, 429);

    // an SSE stream is counted while it is open
    let port = g.port;
    let stream = std::thread::spawn(move || {
        sse_events(
            port,
            "POST",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("X-API-Key", "client-key-123"),
            ],
            br#"{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"file:///x"}}"#,
        )
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut during = String::new();
    while Instant::now() < deadline {
        during = metrics(admin);
        if value(&during, "mcp_edge_sse_streams_active") == Some(1.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        value(&during, "mcp_edge_sse_streams_active"),
        Some(1.0),
        "{during}"
    );
    let (resp, events) = stream.join().unwrap();
    assert_eq!((resp.status, events.len()), (200, 6));
    // the request is counted when the stream ends; the gauge drops then
    let sse_done = r#"mcp_edge_request_duration_seconds_count{method="resources/read",sse="true",upstream="sse"}"#;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = metrics(admin);
    while value(&text, sse_done).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        text = metrics(admin);
    }

    let want = [
        (
            r#"mcp_edge_requests_total{decision="allow",method="tools/call",route="session",status="200",upstream="up"}"#,
            3.0,
        ),
        (
            r#"mcp_edge_requests_total{decision="allow",method="initialize",route="routing[1]",status="200",upstream="up"}"#,
            1.0,
        ),
        (
            r#"mcp_edge_requests_total{decision="allow",method="resources/read",route="routing[0]",status="200",upstream="sse"}"#,
            1.0,
        ),
        (
            r#"mcp_edge_requests_total{decision="deny",method="prompts/get",route="-",status="403",upstream="-"}"#,
            1.0,
        ),
        (
            r#"mcp_edge_auth_failures_total{reason="unauthenticated"}"#,
            1.0,
        ),
        (
            r#"mcp_edge_auth_failures_total{reason="bad_credentials"}"#,
            1.0,
        ),
        (
            r#"mcp_edge_rate_limit_rejections_total{reason="rate_limited"}"#,
            1.0,
        ),
        (
            r#"mcp_edge_jsonrpc_errors_total{code="-32600",reason="rate_limited"}"#,
            1.0,
        ),
        (
            // initialize, and the first `limited` call (no session yet)
            r#"mcp_edge_sessions_total{event="sealed",reason="new_session"}"#,
            2.0,
        ),
        (
            r#"mcp_edge_sessions_total{event="opened",reason="valid"}"#,
            3.0,
        ),
        (
            r#"mcp_edge_sessions_total{event="rejected",reason="session_malformed"}"#,
            1.0,
        ),
        (
            r#"mcp_edge_upstream_up{endpoint="http://127.0.0.1:PORT/upstream-mcp",upstream="up"}"#,
            1.0,
        ),
        ("mcp_edge_sse_streams_active", 0.0),
        ("mcp_edge_config_last_reload_successful", 1.0),
        (
            r#"mcp_edge_request_duration_seconds_count{method="resources/read",sse="true",upstream="sse"}"#,
            1.0,
        ),
        ("mcp_edge_audit_dropped_total", 0.0),
    ];
    for (series, v) in want {
        let series = series.replace("PORT", &up.port.to_string());
        assert_eq!(value(&text, &series), Some(v), "{series} in\n{text}");
    }
    drop(g);
}

#[test]
fn reloads_are_counted_and_the_token_follows_the_config() {
    let up = Upstream::start(Mode::Echo);
    let admin_port = Port::reserve();
    let admin = admin_port.get();
    let g = Gateway::start(&config(&up.url(), &up.url(), &admin_port, TOKEN));
    let conf = g.dir.path().join("gw.yaml");
    let good = Config::load(&conf);
    let reloads = |want: &str, n: f64| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = scrape(
                admin,
                Some(if want == "ok" {
                    "new-admin-token-0123456789"
                } else {
                    TOKEN
                }),
            );
            let text = String::from_utf8_lossy(&r.body).into_owned();
            let series = format!("mcp_edge_config_reloads_total{{result=\"{want}\"}}");
            if value(&text, &series) == Some(n) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // an invalid file: refused, counted, the old config (and token) serve
    good.clone().set("server.threads", "many").write(&conf);
    g.signal("HUP");
    let text = reloads("failed", 1.0);
    assert_eq!(
        value(&text, r#"mcp_edge_config_reloads_total{result="failed"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "mcp_edge_config_last_reload_successful"),
        Some(0.0)
    );
    assert!(value(&text, "mcp_edge_config_last_reload_timestamp_seconds").unwrap() > 0.0);
    assert_eq!(
        post_json(g.port, CALL, &[("X-API-Key", "client-key-123")]).status,
        200
    );

    // a valid one with a new token: the old token stops working
    good.clone()
        .set("admin.token", "new-admin-token-0123456789")
        .write(&conf);
    g.signal("HUP");
    let text = reloads("ok", 1.0);
    assert_eq!(
        value(&text, r#"mcp_edge_config_reloads_total{result="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "mcp_edge_config_last_reload_successful"),
        Some(1.0)
    );
    assert_eq!(scrape(admin, Some(TOKEN)).status, 401);
}

#[test]
fn without_a_token_metrics_are_forbidden_and_validate_says_so() {
    let up = Upstream::start(Mode::Echo);
    let admin_port = Port::reserve();
    let admin = admin_port.get();
    let cfg = Config::base(&up.url()).admin(&admin_port, None);
    let port = Port::reserve();
    let (ok, out, err) = validate(&cfg.clone().with_port(port.get()).with_dir("/tmp"));
    assert!(ok && out.contains("/metrics answers 403"), "{out}{err}");
    let _g = Gateway::start(&cfg);
    assert_eq!(scrape(admin, Some(TOKEN)).status, 403);
    assert_eq!(get(admin, "/health", &[]).unwrap().status, 200);
}
