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
    open_stream_at(g, "/sse", key)
}

/// Opens `GET <path>` with `key`; the stream and its endpoint's POST path.
fn open_stream_at(
    g: &Gateway,
    path: &str,
    key: &str,
) -> (std::io::BufReader<std::net::TcpStream>, String) {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nX-API-Key: {key}\r\n\r\n"
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
    // a virtual server's legacy endpoint (`<vs.path><path>`) may not be
    // another endpoint's path: /a/sse is the other virtual server's
    cfg = front_config()
        .insert(
            "virtual_servers",
            yaml("[{path: /a, name: a, members: [{upstream: everything, prefix: a}]}, {path: /a/sse, name: b, members: [{upstream: everything, prefix: b}]}]"),
        )
        .with_port(1)
        .with_dir(dir.path());
    let (ok, _, err) = validate(&cfg);
    assert!(!ok);
    assert!(
        err.contains("legacy_sse.path") && err.contains("\"/a/sse\" is a virtual server's path"),
        "{err}"
    );
}

/// A scripted virtual-server member: session `sess-sc`, tool `ping-me`;
/// its GET stream carries one logging notification (a server message
/// outside any request).
fn scripted_member() -> scripted::Scripted {
    scripted::Scripted::start(|req| {
        let id = req.rpc_id();
        let ok = |result: serde_json::Value| {
            scripted::Reply::json(
                200,
                &serde_json::json!({"jsonrpc":"2.0","id":id,"result":result}).to_string(),
            )
            .header("Mcp-Session-Id", "sess-sc")
        };
        match (req.method.as_str(), req.rpc_method().as_deref()) {
            ("DELETE", _) => scripted::Reply::json(200, "{}"),
            ("GET", _) => scripted::Reply::sse(
                b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"outside-any-request\"}}\n\n",
            ),
            (_, Some("initialize")) => ok(serde_json::json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}, "logging": {}},
                "serverInfo": {"name": "sc", "version": "1"}
            })),
            (_, Some("tools/list")) => ok(serde_json::json!({
                "tools": [{"name": "ping-me", "inputSchema": {"type": "object"}}]
            })),
            (_, Some("tools/call")) => ok(serde_json::json!({
                "content": [{"type": "text", "text": "sc was called"}]
            })),
            (_, _) if id.is_null() => scripted::Reply::accepted(),
            _ => ok(serde_json::json!({})),
        }
    })
}

/// `legacy_sse` in front of virtual servers: `<vs.path><legacy path>`.
fn vs_front_config(ev: &Peer, sc_url: &str) -> Config {
    Config::base(&ev.url())
        .set("upstreams[0].name", "ev")
        .set("routing[0].upstream", "ev")
        .push(
            "upstreams",
            yaml(&format!("{{name: sc, url: '{sc_url}', timeout_ms: 5000}}")),
        )
        .insert(
            "virtual_servers",
            yaml(
                "[{path: /tools, name: acme-tools, member_timeout_ms: 5000, members: [{upstream: ev, prefix: ev}, {upstream: sc, prefix: sc}]},
                  {path: /plain, name: plain-everything, prefix_mode: never, members: [{upstream: ev, prefix: ev}]}]",
            ),
        )
        .insert("legacy_sse", yaml("{enabled: true, path: /sse}"))
        .api_keys(vec![api_key(
            "alice",
            "alice-key-0123456789",
            "acme",
            Some("alice"),
        )])
        .audit()
        .sessions(&["legacy-vs-session-key-0123456789abcdef"])
}

#[test]
fn a_virtual_server_is_served_over_legacy_sse() {
    let ev = Peer::everything();
    let sc = scripted_member();
    let g = Gateway::start(&vs_front_config(&ev, &sc.url()));
    let key = "alice-key-0123456789";
    let (mut stream, endpoint) = open_stream_at(&g, "/tools/sse", key);
    assert!(
        endpoint.starts_with("/tools/sse/message?session="),
        "{endpoint}"
    );
    // a stream answers only at the paths it was opened for
    let (_, query) = endpoint.split_once('?').unwrap();
    for other in ["/sse/message", "/plain/sse/message"] {
        let r = post_to(&g, &format!("{other}?{query}"), key, INIT, &[]);
        assert_eq!(r.status, 404, "{other}");
    }
    let r = post_to(&g, &endpoint, key, INIT, &[]);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let line = read_until(&mut stream, "protocolVersion");
    assert!(line.contains("acme-tools"), "{line}");
    let r = post_to(
        &g,
        &endpoint,
        key,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[],
    );
    assert_eq!(r.status, 202);
    // once the session is up, the members' GET streams are merged into it
    let line = read_until(&mut stream, "outside-any-request");
    assert!(line.contains("notifications/message"), "{line}");
    let r = post_to(
        &g,
        &endpoint,
        key,
        br#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#,
        &[],
    );
    assert_eq!(r.status, 202);
    let line = read_until(&mut stream, "\"l\"");
    assert!(
        line.contains("ev__echo") && line.contains("sc__ping-me"),
        "{line}"
    );
    for (id, name, want) in [
        ("c1", "ev__echo", "Echo: via-vs"),
        ("c2", "sc__ping-me", "sc was called"),
    ] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/call","params":{{"name":"{name}","arguments":{{"message":"via-vs"}}}}}}"#
        );
        let r = post_to(&g, &endpoint, key, body.as_bytes(), &[]);
        assert_eq!(r.status, 202);
        let line = read_until(&mut stream, &format!("\"{id}\""));
        assert!(line.contains(want), "{line}");
    }
    // the member saw its own name and its own session
    let calls: Vec<_> = sc
        .received()
        .into_iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .collect();
    assert_eq!(calls.len(), 1);
    assert!(String::from_utf8_lossy(&calls[0].body).contains("\"ping-me\""));
    assert_eq!(calls[0].header("mcp-session-id"), Some("sess-sc"));
    assert!(sc
        .received()
        .iter()
        .any(|r| r.method == "GET" && r.header("mcp-session-id") == Some("sess-sc")));
    // a real member's server messages outside requests: server-everything's
    // simulated logging goes to its GET stream
    let r = post_to(
        &g,
        &endpoint,
        key,
        br#"{"jsonrpc":"2.0","id":"t","method":"tools/call","params":{"name":"ev__toggle-simulated-logging","arguments":{}}}"#,
        &[],
    );
    assert_eq!(r.status, 202);
    let line = read_until(&mut stream, "-level message");
    assert!(line.contains("notifications/message"), "{line}");
    // closing the stream ends every member's session upstream
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(12);
    let deleted = || {
        sc.received()
            .iter()
            .any(|r| r.method == "DELETE" && r.header("mcp-session-id") == Some("sess-sc"))
    };
    while !deleted() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(deleted(), "the member's session outlived the stream");
    let lines = AuditLog::of(&g).settle_ms(100).lines();
    assert!(lines.iter().any(|l| l["method"] == "tools/call"
        && l["target"] == "sc__ping-me"
        && l["decision"] == "allow"));
}

#[test]
fn the_sdk_sse_clients_work_through_a_virtual_server() {
    let ev = Peer::everything();
    let sc = scripted_member();
    let g = Gateway::start(&vs_front_config(&ev, &sc.url()));
    let url = format!("http://127.0.0.1:{}/plain/sse", g.port);
    let steps = run_client(
        Command::new("node")
            .args(["ts_sse_client.mjs", &url, "--server", "everything"])
            .env("MCP_HEADERS", r#"{"X-API-Key": "alice-key-0123456789"}"#),
    );
    let connect = steps.iter().find(|s| s["step"] == "connect").unwrap();
    assert_eq!(connect["server"]["name"], "plain-everything");
    run_client(
        Command::new("python3")
            .args(["py_sse_client.py", &url])
            .env("MCP_HEADERS", r#"{"X-API-Key": "alice-key-0123456789"}"#),
    );
    // the scripted member is not in this virtual server
    assert_eq!(sc.count(), 0);
}
