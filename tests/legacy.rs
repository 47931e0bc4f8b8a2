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
