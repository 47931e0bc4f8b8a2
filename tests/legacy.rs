//! `type: sse` upstreams end to end: the real gateway binary in front of
//! server-everything in its legacy HTTP+SSE mode, used by the real
//! TypeScript and Python SDK clients (Streamable HTTP) in full scenarios;
//! a legacy server that steers the gateway to another origin, one whose
//! stream drops, and the legacy connection per session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn config(url: &str, extra: &str) -> Config {
    Config::base("http://127.0.0.1:1/unused")
        .set(
            "upstreams",
            yaml(&format!(
                "[{{name: legacy, type: sse, url: \"{url}\", timeout_ms: 3000{extra}}}]"
            )),
        )
        .set("routing[0].upstream", "legacy")
        .set("server.grace_period_secs", 1)
        .audit()
        .sessions(&["legacy-test-session-key-0123456789abcdef"])
}

/// tests/peers/lying_sse.py in `mode`, and the file it logs requests to.
struct Liar {
    child: Child,
    port: Port,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Liar {
    fn start(mode: &str) -> Liar {
        let port = Port::reserve();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.log");
        let child = Command::new("python3")
            .arg(peers_dir().join("lying_sse.py"))
            .args(["--port", &port.to_string(), "--mode", mode, "--log"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port.get())).is_err() {
            assert!(Instant::now() < deadline, "lying_sse.py did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Liar {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sse", self.port)
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sdk_clients_run_their_scenarios_through_a_legacy_sse_server() {
    assert!(
        have("node") && have("python3"),
        ".ci/run installs node and python3"
    );
    let up = Peer::everything_sse();
    let g = Gateway::start(&config(&format!("http://127.0.0.1:{}/sse", up.port), ""));
    let steps = run_client(Command::new("node").args([
        "ts_client.mjs",
        &g.url(),
        "--server",
        "everything",
    ]));
    let progress = steps.iter().find(|s| s["step"] == "progress").unwrap();
    assert_eq!(progress["progress"], serde_json::json!([1, 2, 3, 4]));
    run_client(Command::new("python3").args([
        "py_client.py",
        &g.url(),
        "--server",
        "everything",
        "--mode",
        "legacy",
    ]));
    // a 2026-07-28 client: one legacy connection held for its principal
    run_client(Command::new("python3").args([
        "py_client.py",
        &g.url(),
        "--server",
        "everything",
        "--mode",
        "2026-07-28",
    ]));
    let lines = AuditLog::of(&g).settle_ms(100).lines();
    assert!(lines
        .iter()
        .any(|l| l["upstream"] == "legacy" && l["method"] == "tools/call"));
    // the access lines name the bridged endpoint
    assert!(g
        .access_lines()
        .iter()
        .any(|l| l["endpoint"] == "sse://legacy" && l["status"] == 200));
}

#[test]
fn an_endpoint_on_another_origin_is_refused() {
    let liar = Liar::start("other-origin");
    let g = Gateway::start(&config(&liar.url(), ""));
    let r = post_json(g.port, INIT, &[]);
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["id"], 1);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("legacy SSE"));
    let log = g.log_text();
    assert!(log.contains("not a path on the same origin"), "{log}");
    // nothing was POSTed anywhere: the liar saw only the stream opening
    let seen = liar.requests();
    assert!(seen.contains("GET /sse"), "{seen}");
    assert!(!seen.contains("POST"), "{seen}");
}

#[test]
fn a_lost_legacy_stream_ends_the_session_with_404() {
    let liar = Liar::start("drop-after-init");
    let g = Gateway::start(&config(&liar.url(), ", max_sessions: 1"));
    let r = post_json(g.port, INIT, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let s = r.header("mcp-session-id").unwrap().to_string();
    // one legacy connection per session, max_sessions: 1
    let second = post_json(g.port, INIT, &[]);
    assert_eq!(
        second.status,
        503,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    // the next request makes the liar end its stream
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["id"], 2);
    let again = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(again.status, 404);
    // its place is free again: a new session opens a new legacy connection
    let fresh = post_json(g.port, INIT, &[]);
    assert_eq!(
        fresh.status,
        200,
        "{}",
        String::from_utf8_lossy(&fresh.body)
    );
    assert_eq!(
        liar.requests().matches("GET /sse").count(),
        2,
        "{}",
        liar.requests()
    );
}

/// server-everything over stdio behind `legacy_sse` (the main endpoint's
/// routing), `get-env` denied, API keys for two principals.
fn front_config() -> Config {
    let js = format!(
        "{}/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
        peers_dir().display()
    );
    Config::base("http://127.0.0.1:1/unused")
        .set(
            "upstreams",
            yaml(&format!(
                "[{{name: everything, type: stdio, command: [node, \"{js}\", stdio]}}]"
            )),
        )
        .set("routing[0].upstream", "everything")
        .insert("legacy_sse", yaml("{enabled: true, path: /sse}"))
        .api_keys(vec![
            api_key("alice", "alice-key-0123456789", "acme", Some("alice")),
            api_key("mallory", "mallory-key-0123456789", "acme", Some("mallory")),
        ])
        .push(
            "policy.rules",
            yaml(r#"{subject: {tenant: "*"}, deny: {tools: ["get-env"]}}"#),
        )
        .audit()
        .sessions(&["legacy-front-session-key-0123456789abcdef"])
}

/// Opens `GET /sse` with `key`; the stream and the POST path its endpoint
/// event names.
fn open_stream(g: &Gateway, key: &str) -> (std::io::BufReader<std::net::TcpStream>, String) {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nX-API-Key: {key}\r\n\r\n"
    )
    .unwrap();
    let mut r = std::io::BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.contains(" 200 "), "{line}");
    let mut endpoint = String::new();
    while endpoint.is_empty() {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(rest) = line.trim_end().strip_prefix("data: ") {
            endpoint = rest.to_string();
        }
    }
    (r, endpoint)
}

/// Reads the stream until a `data:` line containing `needle`.
fn read_until(r: &mut std::io::BufReader<std::net::TcpStream>, needle: &str) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "stream ended before {needle}"
        );
        if line.starts_with("data: ") && line.contains(needle) {
            return line;
        }
    }
}

fn post_to(g: &Gateway, path: &str, key: &str, body: &[u8], extra: &[(&str, &str)]) -> Response {
    let mut h = vec![("Content-Type", "application/json"), ("X-API-Key", key)];
    h.extend_from_slice(extra);
    request(g.port, "POST", path, &h, body).unwrap()
}

#[test]
fn the_sdk_sse_clients_work_through_legacy_sse() {
    let g = Gateway::start(&front_config());
    let steps = run_client(
        Command::new("node")
            .args([
                "ts_sse_client.mjs",
                &format!("http://127.0.0.1:{}/sse", g.port),
                "--server",
                "everything",
                "--denied",
                "get-env",
            ])
            .env("MCP_HEADERS", r#"{"X-API-Key": "alice-key-0123456789"}"#),
    );
    let progress = steps.iter().find(|s| s["step"] == "progress").unwrap();
    assert_eq!(progress["progress"], serde_json::json!([1, 2, 3, 4]));
    // the Python SDK's HTTP+SSE client too
    run_client(
        Command::new("python3")
            .args([
                "py_sse_client.py",
                &format!("http://127.0.0.1:{}/sse", g.port),
            ])
            .env("MCP_HEADERS", r#"{"X-API-Key": "alice-key-0123456789"}"#),
    );
    // audited like any call: the principal, the tool, the decision
    let lines = AuditLog::of(&g).settle_ms(100).lines();
    assert!(lines
        .iter()
        .any(|l| l["target"] == "get-env" && l["decision"] == "deny"));
    assert!(lines.iter().any(|l| l["method"] == "tools/call"
        && l["decision"] == "allow"
        && l["upstream"] == "everything"));
}

#[test]
fn legacy_streams_refuse_strangers_and_forgeries() {
    let admin = Port::reserve();
    let g = Gateway::start(&front_config().admin(&admin, Some("legacy-admin-token-0123456789")));
    // no credentials: 401 for the stream and for a POST
    let r = get(g.port, "/sse", &[]).unwrap();
    assert_eq!(r.status, 401);
    let (mut stream, endpoint) = open_stream(&g, "alice-key-0123456789");
    assert!(endpoint.starts_with("/sse/message?session="), "{endpoint}");
    let r = request(
        g.port,
        "POST",
        &endpoint,
        &[("Content-Type", "application/json")],
        INIT,
    )
    .unwrap();
    assert_eq!(r.status, 401);
    // another principal cannot use alice's stream
    let r = post_to(&g, &endpoint, "mallory-key-0123456789", INIT, &[]);
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    // an unknown or forged reference is 404 with a JSON-RPC error
    for forged in [
        "/sse/message?session=00000000000000000000000000000000",
        "/sse/message",
        "/sse/message?session=",
    ] {
        let r = post_to(&g, forged, "alice-key-0123456789", INIT, &[]);
        assert_eq!(r.status, 404, "{forged}");
        assert!(r.json()["error"]["code"].is_i64());
    }
    // alice's own POSTs answer on her stream; a client-sent Mcp-Session-Id
    // is dropped, never used
    let r = post_to(
        &g,
        &endpoint,
        "alice-key-0123456789",
        INIT,
        &[("Mcp-Session-Id", "forged-session-token")],
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body.is_empty());
    read_until(&mut stream, "protocolVersion");
    let r = post_to(
        &g,
        &endpoint,
        "alice-key-0123456789",
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[],
    );
    assert_eq!(r.status, 202);
    let r = post_to(
        &g,
        &endpoint,
        "alice-key-0123456789",
        br#"{"jsonrpc":"2.0","id":"t1","method":"tools/call","params":{"name":"echo","arguments":{"message":"legacy"}}}"#,
        &[("Mcp-Session-Id", "another-forged-token")],
    );
    assert_eq!(r.status, 202);
    let line = read_until(&mut stream, "\"t1\"");
    assert!(line.contains("Echo: legacy"), "{line}");
    // malformed JSON: the POST itself gets the 400 JSON-RPC error
    let r = post_to(&g, &endpoint, "alice-key-0123456789", b"{not json", &[]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    // closing the stream ends the session upstream: its stdio process stops
    let sessions = || {
        let r = get(
            admin.get(),
            "/upstreams/local",
            &[("Authorization", "Bearer legacy-admin-token-0123456789")],
        )
        .unwrap();
        r.json()["upstreams"][0]["mcp_sessions"].as_u64().unwrap()
    };
    assert_eq!(sessions(), 1);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(12);
    while sessions() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(sessions(), 0, "the session outlived its stream");
    let r = post_to(
        &g,
        &endpoint,
        "alice-key-0123456789",
        br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
        &[],
    );
    assert_eq!(r.status, 404, "a closed stream's reference is gone");
    // the legacy paths take only their methods
    let r = request(
        g.port,
        "DELETE",
        "/sse",
        &[("X-API-Key", "alice-key-0123456789")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 405);
}

#[test]
fn legacy_sse_is_off_by_default_and_its_path_is_checked() {
    let mut cfg = front_config().remove("legacy_sse");
    let g = Gateway::start(&cfg);
    let r = get(g.port, "/sse", &[("X-API-Key", "alice-key-0123456789")]).unwrap();
    assert_eq!(r.status, 404);
    drop(g);
    let dir = tempfile::tempdir().unwrap();
    cfg = front_config()
        .set("legacy_sse", yaml("{enabled: true, path: /mcp}"))
        .with_port(1)
        .with_dir(dir.path());
    let (ok, _, err) = validate(&cfg);
    assert!(!ok);
    assert!(err.contains("legacy_sse.path"), "{err}");
}
