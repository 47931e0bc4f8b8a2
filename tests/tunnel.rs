//! The reverse tunnel end to end: the real gateway binary, `mcp-edge tunnel`
//! in front of real stdio MCP servers (server-everything, the Python SDK's
//! `MCPServer`), the real TypeScript and Python SDK clients through the
//! gateway; refusals, a crashing local process, a dropped and a silently
//! frozen tunnel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "tunnel-token-0123456789";
const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

const ADMIN_TOKEN: &str = "admin-token-0123456789";

fn config(extra_rule: Option<Yaml>) -> Config {
    config_with_admin(extra_rule, &Port::reserve())
}

/// Two tunnel upstreams, `laptop` (where every call goes) and `other`, each
/// with its registration token; the allow-all policy and `extra_rule`; the
/// admin listener on `admin`; audited, sealed sessions.
fn config_with_admin(extra_rule: Option<Yaml>, admin: &Port) -> Config {
    let cfg = Config::base("http://127.0.0.1:1/not-a-tunnel")
        .admin(admin, Some(ADMIN_TOKEN))
        .remove("server.path")
        .set("server.threads", 2)
        .set("server.grace_period_secs", 1)
        .set(
            "upstreams",
            yaml("[{name: laptop, type: tunnel}, {name: other, type: tunnel}]"),
        )
        .set("routing[0].upstream", "laptop")
        .insert(
            "tunnel",
            json!({
                "enabled": true,
                "keepalive_ms": 1000,
                "tokens": [
                    {"id": "laptop-token", "token": TOKEN, "upstreams": ["laptop"]},
                    {"id": "other-token", "token": "other-token-0123456789", "upstreams": ["other"]},
                ],
            }),
        )
        .audit()
        .sessions(&["tunnel-test-session-key-0123456789abcdef"]);
    match extra_rule {
        Some(rule) => cfg.push("policy.rules", rule),
        None => cfg,
    }
}

/// A running `mcp-edge tunnel`.
struct Client {
    child: Child,
    log: PathBuf,
}

impl Client {
    fn start(g: &Gateway, command: &str, token: &str, name: &str) -> Client {
        static CLIENTS: AtomicUsize = AtomicUsize::new(0);
        let n = CLIENTS.fetch_add(1, Ordering::Relaxed);
        let log = g.dir.path().join(format!("tunnel-{n}.log"));
        let child = Command::new(bin())
            .args(["tunnel", "--local-stdio", command, "--name", name])
            .args(["--gateway", &format!("http://127.0.0.1:{}", g.port)])
            .args([
                "--reconnect-delay",
                "200",
                "--max-delay",
                "1000",
                "--keepalive",
                "1000",
            ])
            .env("MCP_EDGE_TUNNEL_TOKEN", token)
            .current_dir(peers_dir())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start mcp-edge tunnel");
        Client { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn everything_stdio() -> String {
    format!(
        "node {}/node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio",
        peers_dir().display()
    )
}

/// Waits until the admin /health says the tunnel upstream is up (or down).
fn wait_up(g: &Gateway, name: &str, up: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let admin = g.admin_port();
        if get(admin, "/health", &[]).is_ok_and(|r| r.json()["upstreams"][name]["up"] == up) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{name} never had up = {up}; gateway:\n{}", g.log_text());
}

fn initialize(g: &Gateway) -> String {
    let r = post_json(g.port, INIT, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.header("mcp-session-id").expect("session").to_string();
    assert_eq!(
        post_json(g.port, INITIALIZED, &[("Mcp-Session-Id", &token)]).status,
        202
    );
    token
}

#[test]
fn sdk_clients_reach_stdio_servers_through_a_tunnel() {
    assert!(
        have("node") && have("python3"),
        ".ci/run installs node and python3"
    );
    let g = Gateway::start(&config(Some(yaml(
        r#"{subject: {tenant: "*"}, deny: {tools: ["get-env"]}}"#,
    ))));
    let _c = Client::start(&g, &everything_stdio(), TOKEN, "laptop");
    wait_up(&g, "laptop", 1);
    // the TypeScript SDK: initialize, tools (streamed progress), resources,
    // prompts, GET stream, DELETE
    let steps = run_client(Command::new("node").args([
        "ts_client.mjs",
        &g.url(),
        "--server",
        "everything",
    ]));
    let progress = steps.iter().find(|s| s["step"] == "progress").unwrap();
    assert_eq!(progress["progress"], serde_json::json!([1, 2, 3, 4]));
    // the Python SDK against the same tunnel
    run_client(Command::new("python3").args([
        "py_client.py",
        &g.url(),
        "--server",
        "everything",
        "--mode",
        "legacy",
    ]));
    // policy applies as to any upstream: a denied tool is unknown
    let s = initialize(&g);
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get-env","arguments":{}}}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.json()["error"]["code"], -32602);
    let lines = AuditLog::of(&g).settle_ms(100).lines();
    assert!(lines.iter().any(|l| l["upstream"] == "laptop"
        && l["method"] == "tools/call"
        && l["decision"] == "allow"));
    assert!(lines
        .iter()
        .any(|l| l["target"] == "get-env" && l["decision"] == "deny"));
}

#[test]
fn two_sessions_are_two_processes_and_python_mcpserver_works_over_stdio() {
    let g = Gateway::start(&config(None));
    let cmd = format!("python3 {}/py_server.py --stdio", peers_dir().display());
    let _c = Client::start(&g, &cmd, TOKEN, "laptop");
    wait_up(&g, "laptop", 1);
    let (a, b) = (initialize(&g), initialize(&g));
    assert_ne!(a, b);
    let call = |s: &str, text: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        );
        let r = post_json(g.port, body.as_bytes(), &[("Mcp-Session-Id", s)]);
        assert_eq!(r.status, 200);
        String::from_utf8_lossy(&r.body).into_owned()
    };
    assert!(call(&a, "from-a").contains("from-a"));
    assert!(call(&b, "from-b").contains("from-b"));
    // one local process per session
    let procs = Command::new("pgrep")
        .args(["-f", "py_server.py --stdio"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&procs.stdout).lines().count() >= 2);
    // DELETE ends one session; the other lives on
    let del = request(g.port, "DELETE", "/mcp", &[("Mcp-Session-Id", &a)], b"").unwrap();
    assert_eq!(del.status, 200);
    assert_eq!(
        post_json(
            g.port,
            br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            &[("Mcp-Session-Id", &a)]
        )
        .status,
        404
    );
    assert!(call(&b, "still-b").contains("still-b"));
}

#[test]
fn wrong_tokens_and_names_are_refused_and_audited() {
    let g = Gateway::start(&config(None));
    let mut c = Client::start(&g, "cat", "not-the-token-0123456789", "laptop");
    let st = c.child.wait().unwrap();
    assert!(!st.success());
    assert!(
        c.log_text().contains("refused the registration (401)"),
        "{}",
        c.log_text()
    );
    // a valid token may only register its own names
    let mut c = Client::start(&g, "cat", TOKEN, "other");
    assert!(!c.child.wait().unwrap().success());
    assert!(c.log_text().contains("(403)"), "{}", c.log_text());
    let reasons = AuditLog::of(&g).settle_ms(100).reasons();
    assert!(
        reasons.contains(&"tunnel_unauthorized".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"tunnel_name_not_allowed".to_string()),
        "{reasons:?}"
    );
    // a second registration of a connected name is refused (409) and retried
    let _first = Client::start(&g, "cat", TOKEN, "laptop");
    wait_up(&g, "laptop", 1);
    let second = Client::start(&g, "cat", TOKEN, "laptop");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !second.log_text().contains("HTTP 409") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        second.log_text().contains("HTTP 409"),
        "{}",
        second.log_text()
    );
}

#[test]
fn a_crashed_process_answers_502_and_the_next_session_starts_fresh() {
    let g = Gateway::start(&config(None));
    let script = g.dir.path().join("crashy.py");
    std::fs::write(
        &script,
        r#"import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("method") == "initialize":
        print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "crashy", "version": "1"}}}), flush=True)
    elif m.get("method") == "tools/call":
        sys.exit(3)
    elif "id" in m and "method" in m:
        print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {}}), flush=True)
"#,
    )
    .unwrap();
    let _c = Client::start(
        &g,
        &format!("python3 {}", script.display()),
        TOKEN,
        "laptop",
    );
    wait_up(&g, "laptop", 1);
    let s = initialize(&g);
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"boom"}}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], -32603);
    assert!(String::from_utf8_lossy(&r.body).contains("crashed"));
    // the session is gone with its process: 404, the client re-initializes
    let again = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":8,"method":"ping"}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(again.status, 404);
    let fresh = initialize(&g);
    let ping = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#,
        &[("Mcp-Session-Id", &fresh)],
    );
    assert_eq!(ping.status, 200);
}

#[test]
fn the_admin_api_lists_and_disconnects_tunnels_and_clients_come_back() {
    let admin_port = Port::reserve();
    let admin = admin_port.get();
    let g = Gateway::start(&config_with_admin(None, &admin_port));
    let cmd = format!("python3 {}/py_server.py --stdio", peers_dir().display());
    let c = Client::start(&g, &cmd, TOKEN, "laptop");
    wait_up(&g, "laptop", 1);
    let s = initialize(&g);
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(
        get(admin, "/reverse-proxy/sessions", &[]).unwrap().status,
        401
    );
    let list = get(admin, "/reverse-proxy/sessions", &auth).unwrap().json();
    let t = &list["tunnels"][0];
    assert_eq!(t["name"], "laptop");
    assert_eq!(t["mcp_sessions"], 1);
    assert!(
        t["bytes_in"].as_u64().unwrap() > 0
            && t["remote"].as_str().unwrap().starts_with("127.0.0.1:")
    );
    let metrics = String::from_utf8(get(admin, "/metrics", &auth).unwrap().body).unwrap();
    assert!(
        metrics.contains(r#"mcp_edge_tunnel_sessions{name="laptop"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mcp_edge_upstream_up{endpoint="tunnel://laptop",upstream="laptop"} 1"#)
    );
    // DELETE drops the WebSocket: the session answers 404, the client
    // reconnects within its backoff and new sessions work
    let id = t["id"].as_str().unwrap().to_string();
    let del = request(
        admin,
        "DELETE",
        &format!("/reverse-proxy/sessions/{id}"),
        &auth,
        b"",
    )
    .unwrap();
    assert_eq!(del.status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.log_text().contains("reconnecting") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        c.log_text().contains("disconnected by the gateway admin")
            || c.log_text().contains("reconnecting"),
        "{}",
        c.log_text()
    );
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 404);
    wait_up(&g, "laptop", 1);
    let again = get(admin, "/reverse-proxy/sessions", &auth).unwrap().json();
    assert_ne!(again["tunnels"][0]["id"].as_str().unwrap(), id);
    let s2 = initialize(&g);
    assert_eq!(
        post_json(
            g.port,
            br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            &[("Mcp-Session-Id", &s2)]
        )
        .status,
        200
    );
    assert_eq!(
        request(admin, "DELETE", "/reverse-proxy/sessions/nope", &auth, b"")
            .unwrap()
            .status,
        404
    );
}

#[test]
fn a_dropped_tunnel_answers_404_and_reconnects_and_keepalive_spots_a_frozen_link() {
    let g = Gateway::start(&config(None));
    let cmd = format!("python3 {}/py_server.py --stdio", peers_dir().display());
    let c = Client::start(&g, &cmd, TOKEN, "laptop");
    wait_up(&g, "laptop", 1);
    let s = initialize(&g);
    // kill the client: the WebSocket drops, the upstream is down, the
    // session answers 404
    drop(c);
    wait_up(&g, "laptop", 0);
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 404);
    // a new client registers; new sessions work
    let c = Client::start(&g, &cmd, TOKEN, "laptop");
    wait_up(&g, "laptop", 1);
    let s2 = initialize(&g);
    assert_eq!(
        post_json(
            g.port,
            br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#,
            &[("Mcp-Session-Id", &s2)]
        )
        .status,
        200
    );
    // freeze the client: the link stays open but silent; two keepalive
    // intervals (2 s) later the gateway drops it
    c.signal("STOP");
    let frozen = Instant::now();
    wait_up(&g, "laptop", 0);
    assert!(
        frozen.elapsed() < Duration::from_secs(8),
        "{:?}",
        frozen.elapsed()
    );
    // thawed, the client notices and re-registers within its backoff
    c.signal("CONT");
    wait_up(&g, "laptop", 1);
    let s3 = initialize(&g);
    assert!(!s3.is_empty());
    assert!(c.log_text().contains("reconnecting"), "{}", c.log_text());
}

#[test]
fn one_client_serves_several_servers_from_a_config_file() {
    let g = Gateway::start(&config(None));
    let file = g.dir.path().join("tunnel.yaml");
    std::fs::write(
        &file,
        format!(
            "gateway: http://127.0.0.1:{}\nreconnect_delay: 200\nkeepalive: 1000\nservers:\n  - {{name: laptop, local_stdio: \"{}\", token: \"{TOKEN}\"}}\n  - {{name: other, local_stdio: \"python3 {}/py_server.py --stdio\", token: \"${{OTHER_TOKEN}}\"}}\n",
            g.port,
            everything_stdio(),
            peers_dir().display()
        ),
    )
    .unwrap();
    let log = g.dir.path().join("multi.log");
    let mut child = Command::new(bin())
        .args(["tunnel", "--config"])
        .arg(&file)
        .env("OTHER_TOKEN", "other-token-0123456789")
        .env_remove("MCP_EDGE_TUNNEL_TOKEN")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_up(&g, "laptop", 1);
    wait_up(&g, "other", 1);
    let s = initialize(&g);
    assert!(!s.is_empty());
    let _ = child.kill();
    let _ = child.wait();
    // without a file, missing options are named (exit 2)
    let out = Command::new(bin())
        .args(["tunnel", "--name", "x"])
        .env_remove("MCP_EDGE_TUNNEL_TOKEN")
        .env_remove("MCP_EDGE_TUNNEL_GATEWAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--local-stdio") && err.contains("--token"),
        "{err}"
    );
    // a bad file lists its problems with their paths
    std::fs::write(&file, "servers: [{name: a, local_stdio: cat, bogus: 1}]\n").unwrap();
    let out = Command::new(bin())
        .args(["tunnel", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("servers[0]"));
}
