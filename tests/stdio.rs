//! `type: stdio` upstreams end to end: the real gateway binary runs real
//! stdio MCP servers itself (server-everything, the Python SDK's
//! `MCPServer`) and the real TypeScript and Python SDK clients use them
//! through it; the process's environment, a crash, an idle reap,
//! `max_processes`, misbehaving output, shutdown and no orphans after
//! `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const PING: &[u8] = br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#;

/// The Python interpreter the tests' `python3` runs (the SDK is installed
/// for it; a stdio process's minimal PATH may find another one).
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn everything_js() -> String {
    format!(
        "{}/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
        peers_dir().display()
    )
}

/// One stdio upstream `local` running `command`, every call routed to it;
/// audited, sealed sessions, a short grace period.
fn config(command: &[&str], extra: &str) -> Config {
    let cmd = serde_json::to_string(command).unwrap();
    Config::base("http://127.0.0.1:1/unused")
        .set(
            "upstreams",
            yaml(&format!(
                "[{{name: local, type: stdio, command: {cmd}, timeout_ms: 5000{extra}}}]"
            )),
        )
        .set("routing[0].upstream", "local")
        .set("server.grace_period_secs", 1)
        .audit()
        .sessions(&["stdio-test-session-key-0123456789abcdef"])
}

fn initialize(g: &Gateway) -> String {
    let r = post_json(g.port, INIT, &[]);
    assert_eq!(
        r.status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&r.body),
        g.log_text()
    );
    let token = r.header("mcp-session-id").expect("session").to_string();
    assert_eq!(
        post_json(g.port, INITIALIZED, &[("Mcp-Session-Id", &token)]).status,
        202
    );
    token
}

/// Open sessions of the gateway's one in-process upstream (admin API).
fn local_sessions(admin: u16) -> u64 {
    get(
        admin,
        "/upstreams/local",
        &[("Authorization", "Bearer stdio-admin-token-0123456789")],
    )
    .unwrap()
    .json()["upstreams"][0]["mcp_sessions"]
        .as_u64()
        .unwrap()
}

/// The JSON-RPC response of a POST answered with JSON or SSE (the last
/// event: a server may send notifications first).
fn message_of(r: &Response) -> serde_json::Value {
    let text = String::from_utf8_lossy(&r.body);
    if let Ok(v) = serde_json::from_str(&text) {
        return v;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .rfind(|m| m.get("result").is_some() || m.get("error").is_some())
        .unwrap_or_else(|| panic!("no response in {text}"))
}

/// Processes whose command line contains `marker`.
fn processes(marker: &str) -> usize {
    let out = Command::new("pgrep").args(["-f", marker]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn wait_processes(marker: &str, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let now = processes(marker);
        if now == n || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Python stdio server script in the gateway's directory (its path is
/// the marker that finds its processes).
fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

/// A tiny stdio MCP server: answers initialize and ping; `extra` handles
/// other methods (Python statements with `m` the message).
fn tiny_server(extra: &str) -> String {
    format!(
        r#"import json, sys
def reply(m, result):
    print(json.dumps({{"jsonrpc": "2.0", "id": m["id"], "result": result}}), flush=True)
for line in sys.stdin:
    m = json.loads(line)
    method = m.get("method")
    if method == "initialize":
        reply(m, {{"protocolVersion": "2025-11-25", "capabilities": {{"tools": {{}}}}, "serverInfo": {{"name": "tiny", "version": "1"}}}})
        continue
    if method == "ping":
        reply(m, {{}})
        continue
{extra}
"#
    )
}

#[test]
fn sdk_clients_run_their_scenarios_through_stdio_servers_the_gateway_runs() {
    assert!(
        have("node") && have("python3"),
        ".ci/run installs node and python3"
    );
    let js = everything_js();
    let admin = Port::reserve();
    let g = Gateway::start(
        &config(&["node", &js, "stdio"], "")
            .push(
                "policy.rules",
                yaml(r#"{subject: {tenant: "*"}, deny: {tools: ["get-tiny-image"]}}"#),
            )
            .admin(&admin, Some("stdio-admin-token-0123456789")),
    );
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
    // the Python SDK against the same upstream
    run_client(Command::new("python3").args([
        "py_client.py",
        &g.url(),
        "--server",
        "everything",
        "--mode",
        "legacy",
    ]));
    // every client DELETEd its session: no process is left (other tests
    // run the same server: the gateway's own count says)
    let deadline = Instant::now() + Duration::from_secs(5);
    while local_sessions(admin.get()) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(local_sessions(admin.get()), 0);
    // policy and list filtering apply as to any upstream
    let s = initialize(&g);
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#,
        &[("Mcp-Session-Id", &s)],
    );
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert!(body.contains("\"echo\"") && !body.contains("get-tiny-image"));
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get-tiny-image","arguments":{}}}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(message_of(&r)["error"]["code"], -32602);
    let lines = AuditLog::of(&g).settle_ms(100).lines();
    assert!(lines
        .iter()
        .any(|l| l["upstream"] == "local" && l["method"] == "tools/call"));
    // stderr is logged under the upstream's name
    assert!(
        g.log_text().contains("stdio upstream local ["),
        "{}",
        g.log_text()
    );

    // the Python SDK's MCPServer over stdio, with the Python client
    let py = format!("{}/py_server.py", peers_dir().display());
    let g = Gateway::start(&config(&[&python(), &py, "--stdio"], ""));
    run_client(Command::new("python3").args([
        "py_client.py",
        &g.url(),
        "--server",
        "py",
        "--mode",
        "legacy",
    ]));
    run_client(Command::new("node").args(["ts_client.mjs", &g.url(), "--server", "py"]));
}

#[test]
fn the_process_sees_only_a_minimal_environment_and_its_own_env() {
    let js = everything_js();
    let cfg = config(
        &["node", &js, "stdio"],
        ", env: {GREETING: hello, FROM_GATEWAY: \"${STDIO_TEST_PASSED}\"}",
    );
    let g = Gateway::start_with_env(
        &cfg,
        &[
            ("STDIO_TEST_SECRET", "must-not-leak"),
            ("STDIO_TEST_PASSED", "named-on-purpose"),
        ],
    );
    let s = initialize(&g);
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-env","arguments":{}}}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 200);
    let text = message_of(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let env: serde_json::Value = serde_json::from_str(&text).expect("get-env answers JSON");
    let mut names: Vec<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["FROM_GATEWAY", "GREETING", "HOME", "LANG", "PATH"],
        "{env}"
    );
    assert_eq!(env["FROM_GATEWAY"], "named-on-purpose");
    assert!(!text.contains("must-not-leak"));
    assert!(!text.contains("MCP_EDGE_SESSION_KEY"));
}

#[test]
fn a_crash_answers_the_waiting_call_and_the_session_then_404() {
    let dir = tempfile::tempdir().unwrap();
    let crashy = script(
        dir.path(),
        "crashy.py",
        &tiny_server("    if method == \"tools/call\":\n        sys.exit(3)"),
    );
    let g = Gateway::start(&config(&[&python(), &crashy], ""));
    let s = initialize(&g);
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"boom"}}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], -32603);
    assert_eq!(r.json()["id"], 7);
    assert!(String::from_utf8_lossy(&r.body).contains("crashed"));
    assert_eq!(
        post_json(g.port, PING, &[("Mcp-Session-Id", &s)]).status,
        404
    );
    // the next initialize starts a fresh process
    let fresh = initialize(&g);
    assert_eq!(
        post_json(g.port, PING, &[("Mcp-Session-Id", &fresh)]).status,
        200
    );
}

#[test]
fn max_processes_bounds_sessions_and_idle_ones_are_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = script(dir.path(), "tiny-max.py", &tiny_server(""));
    let admin = Port::reserve();
    let g = Gateway::start(
        &config(
            &[&python(), &tiny],
            ", max_processes: 2, idle_timeout_secs: 2",
        )
        .admin(&admin, Some("stdio-admin-token-0123456789")),
    );
    let a = initialize(&g);
    let b = initialize(&g);
    assert_eq!(processes(&tiny), 2);
    // the admin API lists the upstream and its sessions
    let list = get(
        admin.get(),
        "/upstreams/local",
        &[("Authorization", "Bearer stdio-admin-token-0123456789")],
    )
    .unwrap();
    assert_eq!(list.status, 200);
    let mine = list.json()["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "local")
        .cloned()
        .unwrap();
    assert_eq!(mine["type"], "stdio");
    assert_eq!(mine["mcp_sessions"], 2);
    assert_eq!(
        get(admin.get(), "/upstreams/local", &[]).unwrap().status,
        401
    );
    // beyond max_processes: 503 with a JSON-RPC error, nothing started
    let r = post_json(g.port, INIT, &[]);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["id"], 1);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_processes"));
    assert_eq!(processes(&tiny), 2);
    // DELETE stops a process and frees its place
    let del = request(g.port, "DELETE", "/mcp", &[("Mcp-Session-Id", &a)], b"").unwrap();
    assert_eq!(del.status, 200);
    assert_eq!(wait_processes(&tiny, 1, Duration::from_secs(5)), 1);
    let c = initialize(&g);
    // b stays busy, c goes silent: only c is reaped
    let deadline = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < deadline {
        assert_eq!(
            post_json(g.port, PING, &[("Mcp-Session-Id", &b)]).status,
            200
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        post_json(g.port, PING, &[("Mcp-Session-Id", &c)]).status,
        404
    );
    assert_eq!(
        post_json(g.port, PING, &[("Mcp-Session-Id", &b)]).status,
        200
    );
    assert_eq!(wait_processes(&tiny, 1, Duration::from_secs(5)), 1);
    assert!(g.log_text().contains("idle for 2 s"), "{}", g.log_text());
}

#[test]
fn no_process_outlives_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    // ignores SIGTERM: only SIGKILL ends it
    let stubborn = script(
        dir.path(),
        "stubborn.py",
        &format!(
            "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n{}",
            tiny_server("")
        ),
    );
    // kill -9 of the gateway: the kernel kills the processes
    let mut g = Gateway::start(&config(&[&python(), &stubborn], ""));
    initialize(&g);
    initialize(&g);
    assert_eq!(processes(&stubborn), 2);
    g.child.kill().unwrap();
    g.child.wait().unwrap();
    assert_eq!(
        wait_processes(&stubborn, 0, Duration::from_secs(5)),
        0,
        "orphans after kill -9"
    );
    // SIGTERM: a graceful stop ends them too (SIGTERM, then SIGKILL after the grace)
    let mut g = Gateway::start(&config(&[&python(), &stubborn], ""));
    initialize(&g);
    assert_eq!(processes(&stubborn), 1);
    g.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    while g.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(wait_processes(&stubborn, 0, Duration::from_secs(5)), 0);
    // DELETE of a stubborn process: SIGKILL after the grace
    let g = Gateway::start(&config(&[&python(), &stubborn], ""));
    let s = initialize(&g);
    let del = request(g.port, "DELETE", "/mcp", &[("Mcp-Session-Id", &s)], b"").unwrap();
    assert_eq!(del.status, 200);
    assert_eq!(wait_processes(&stubborn, 0, Duration::from_secs(6)), 0);
}

#[test]
fn bad_output_is_dropped_and_a_silent_process_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = script(
        dir.path(),
        "noisy.py",
        &tiny_server(
            r#"    if method == "tools/call" and m["params"]["name"] == "noisy":
        print("this is not JSON", flush=True)
        print("x" * (5 * 1024 * 1024), flush=True)
        print("{broken", flush=True)
        reply(m, {"content": [{"type": "text", "text": "after the noise"}]})
    elif method == "tools/call":
        pass  # never answers
"#,
        ),
    );
    let g = Gateway::start(&config(&[&python(), &noisy], "").set("upstreams[0].timeout_ms", 700));
    let s = initialize(&g);
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"noisy"}}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("after the noise"));
    let log = g.log_text();
    assert!(log.contains("not JSON"), "{log}");
    assert!(log.contains("bytes (over"), "{log}");
    // a process that never answers: the upstream timeout, a JSON-RPC error
    let r = post_json(
        g.port,
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"silent"}}"#,
        &[("Mcp-Session-Id", &s)],
    );
    assert_eq!(r.status, 504, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["id"], 3);
    // the session goes on
    assert_eq!(
        post_json(g.port, PING, &[("Mcp-Session-Id", &s)]).status,
        200
    );
}

#[test]
fn validate_checks_the_command_with_its_yaml_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = |cmd: &[&str], extra: &str| config(cmd, extra).with_port(1).with_dir(dir.path());
    let (ok, _, err) = validate(&config(&["/nonexistent/mcp-server"], ""));
    assert!(!ok);
    assert!(err.contains("upstreams[0].command[0]"), "{err}");
    let (ok, _, err) = validate(&config(&["no-such-mcp-server-on-path"], ""));
    assert!(!ok);
    assert!(err.contains("upstreams[0].command[0]"), "{err}");
    let (ok, out, err) = validate(&config(&[&python(), "-V"], ""));
    assert!(ok, "{out}{err}");
}

#[test]
fn a_stdio_upstream_is_a_virtual_server_member() {
    let js = everything_js();
    let py = Peer::python();
    let cfg = config(&["node", &js, "stdio"], "")
        .push("upstreams", yaml(&format!("{{name: py, url: \"{}\"}}", py.url())))
        .insert(
            "virtual_servers",
            yaml(
                "[{path: /tools, name: both, members: [{upstream: local, prefix: ev}, {upstream: py, prefix: py}]}]",
            ),
        );
    let g = Gateway::start(&cfg);
    let init = |path: &str| {
        let r = request(
            g.port,
            "POST",
            path,
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ],
            INIT,
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.header("mcp-session-id").unwrap().to_string()
    };
    let s = init("/tools");
    let call = |body: &[u8]| {
        request(
            g.port,
            "POST",
            "/tools",
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("Mcp-Session-Id", &s),
            ],
            body,
        )
        .unwrap()
    };
    let list =
        String::from_utf8_lossy(&call(br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).body)
            .into_owned();
    assert!(
        list.contains("ev__echo") && list.contains("py__add"),
        "{list}"
    );
    let r = call(
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ev__echo","arguments":{"message":"via-stdio"}}}"#,
    );
    assert!(
        String::from_utf8_lossy(&r.body).contains("Echo: via-stdio"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // the Python SDK client's whole federated scenario, in both eras: a
    // 2026-07-28 (stateless) client is served from a member session the
    // gateway holds for it on the stdio server
    let url = format!("http://127.0.0.1:{}/tools", g.port);
    run_client(Command::new("python3").args(["py_fed_client.py", &url, "--name", "both"]));
    let steps = run_client(Command::new("python3").args([
        "py_fed_client.py",
        &url,
        "--name",
        "both",
        "--mode",
        "2026-07-28",
        "--skip",
        "elicitation",
    ]));
    assert!(steps.iter().any(|s| s["step"] == "tools/call"));
}

#[test]
fn stateless_clients_get_one_held_process_per_principal() {
    let js = everything_js();
    let admin = Port::reserve();
    let cfg = config(&["node", &js, "stdio"], "")
        .admin(&admin, Some("stdio-admin-token-0123456789"))
        .api_keys(vec![
            api_key("a", "key-a-0123456789", "acme", Some("a")),
            api_key("b", "key-b-0123456789", "acme", Some("b")),
        ]);
    let g = Gateway::start(&cfg);
    let sessions = || local_sessions(admin.get());
    let run = |key: &str| {
        run_client(
            Command::new("python3")
                .args([
                    "py_client.py",
                    &g.url(),
                    "--server",
                    "everything",
                    "--mode",
                    "2026-07-28",
                ])
                .env("MCP_HEADERS", format!(r#"{{"X-API-Key": "{key}"}}"#)),
        )
    };
    // the Python SDK client's whole 2026-07-28 scenario, twice for one
    // principal: one held process serves both runs
    run("key-a-0123456789");
    run("key-a-0123456789");
    assert_eq!(sessions(), 1);
    // another principal gets its own process
    run("key-b-0123456789");
    assert_eq!(sessions(), 2);
    // server/discover is answered from the held session's initialize
    let r = request(
        g.port,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("X-API-Key", "key-a-0123456789"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "server/discover"),
        ],
        br#"{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{}}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let d = r.json();
    assert_eq!(d["id"], "d");
    assert_eq!(d["result"]["resultType"], "complete");
    assert!(d["result"]["capabilities"]["tools"].is_object(), "{d}");
    assert!(d["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "2026-07-28"));
    // a client cannot claim another principal's held process
    let r = request(
        g.port,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("X-API-Key", "key-b-0123456789"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "ping"),
            ("X-Mcp-Edge-Principal", "00000000000000000000000000000000"),
        ],
        br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sessions(), 2, "a forged principal header opened a process");
}
