//! `tool_limits` and `server.limits.max_response_bytes` end to end (issue
//! 21, docs/tool-safety.md): the real gateway in front of the Python SDK
//! server (`slow_count`, `big_text`, `echo`), in its SSE and JSON answer
//! modes, and in front of in-test upstreams that never end an SSE call or
//! send a result without end. Asserted: what the client got (an error for
//! the call's id, never a truncated result, a stream that ends cleanly),
//! what the upstream got (`notifications/cancelled`, its connection
//! closed), the audit line, and that nothing else is affected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

fn limited(url: &str, rules: &str) -> Config {
    Config::base(url)
        .insert("tool_limits", yaml(rules))
        .sessions(&["tool-limits-session-key-0123456789abcdef"])
        .audit()
}

/// A session on the gateway; its token.
fn session(port: u16) -> String {
    let r = post_json(port, INIT.as_bytes(), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.header("mcp-session-id").expect("a session").to_string();
    let n = post_json(
        port,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[("Mcp-Session-Id", &token)],
    );
    assert_eq!(n.status, 202);
    token
}

fn call_body(id: &str, tool: &str, args: Value) -> Vec<u8> {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
           "params":{"name":tool,"arguments":args,"_meta":{"progressToken":id}}})
    .to_string()
    .into_bytes()
}

/// An answer read to its end: status, content type, the JSON-RPC messages
/// (the body, or every SSE event's data), whether a chunked body ended with
/// its last chunk (not cut), and when it ended.
struct Answer {
    status: u16,
    sse: bool,
    messages: Vec<Value>,
    clean_end: bool,
    took: Duration,
}

impl Answer {
    /// The message answering `id` (a result or an error).
    fn reply(&self, id: &str) -> &Value {
        self.messages
            .iter()
            .find(|m| m["id"] == id && m.get("method").is_none())
            .unwrap_or_else(|| panic!("no answer to {id} in {:?}", self.messages))
    }
}

fn call(port: u16, token: &str, body: &[u8]) -> Answer {
    call_with(port, &[("Mcp-Session-Id", token)], body)
}

fn call_as(port: u16, token: &str, key: &str, body: &[u8]) -> Answer {
    call_with(port, &[("Mcp-Session-Id", token), ("X-API-Key", key)], body)
}

fn call_with(port: u16, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = String::from("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let start = Instant::now();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let (mut chunked, mut length, mut sse) = (false, None, false);
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if l == "transfer-encoding: chunked" {
            chunked = true;
        }
        if let Some(v) = l.strip_prefix("content-length: ") {
            length = v.parse::<usize>().ok();
        }
        if l.starts_with("content-type: text/event-stream") {
            sse = true;
        }
    }
    let mut body = Vec::new();
    let mut clean_end = false;
    if chunked {
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let Ok(n) = usize::from_str_radix(line.trim(), 16) else {
                break;
            };
            if n == 0 {
                clean_end = true;
                break;
            }
            let mut chunk = vec![0; n + 2];
            if r.read_exact(&mut chunk).is_err() {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        clean_end = r.read_exact(&mut body).is_ok();
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let messages = if sse {
        text.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    } else {
        serde_json::from_str(&text).into_iter().collect()
    };
    Answer {
        status,
        sse,
        messages,
        clean_end,
        took: start.elapsed(),
    }
}

fn text_of(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_call_past_its_timeout_gets_an_error_and_is_cancelled_upstream() {
    let py = Peer::python();
    let g = Gateway::start(&limited(
        &py.url(),
        r#"[{tools: ["slow_*"], timeout_ms: 900}]"#,
    ));
    let token = session(g.port);
    // counts every 250 ms to 20: still running at 900 ms
    let a = call(
        g.port,
        &token,
        &call_body("slow-1", "slow_count", json!({"n": 20, "interval_ms": 250})),
    );
    assert_eq!(a.status, 200);
    assert!(a.sse, "the SDK answers a call with SSE");
    let progress = a
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert!((1..20).contains(&progress), "{:?}", a.messages);
    let err = a.reply("slow-1");
    assert_eq!(err["error"]["code"], -32603, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{err}"
    );
    assert!(a.clean_end, "the stream ends with its last chunk");
    assert!(
        a.took < Duration::from_millis(2500),
        "answered at the deadline, not later: {:?}",
        a.took
    );
    // the upstream was told to stop: the SDK cancelled the tool's task
    let deadline = Instant::now() + Duration::from_secs(5);
    let cancelled = loop {
        let c = call(
            g.port,
            &token,
            &call_body("c", "cancelled_calls", json!({})),
        );
        let list = text_of(c.reply("c"));
        if list.contains("slow-1") || Instant::now() > deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(cancelled.contains("slow-1"), "{cancelled}");
    // a call within its time is not touched; other tools have no deadline
    let a = call(
        g.port,
        &token,
        &call_body("slow-2", "slow_count", json!({"n": 2, "interval_ms": 100})),
    );
    assert_eq!(text_of(a.reply("slow-2")), "counted to 2");
    let lines = AuditLog::of(&g).settle_ms(100).lines();
    assert!(
        lines.iter().any(|l| l["target"] == "slow_count"
            && l["decision"] == "error"
            && l["reason"] == "tool_timeout"),
        "{lines:#?}"
    );
}

#[test]
fn a_json_answer_past_its_timeout_is_a_504_with_the_calls_id() {
    let py = Peer::python_with(&["--json"]);
    let g = Gateway::start(&limited(
        &py.url(),
        r#"[{tools: ["slow_count"], timeout_ms: 700}]"#,
    ));
    let token = session(g.port);
    let a = call(
        g.port,
        &token,
        &call_body("j1", "slow_count", json!({"n": 10, "interval_ms": 300})),
    );
    assert_eq!(a.status, 504);
    assert!(!a.sse);
    let err = a.reply("j1");
    assert_eq!(err["error"]["code"], -32603);
    assert!(a.took < Duration::from_millis(2500), "{:?}", a.took);
}

#[test]
fn max_concurrent_bounds_running_calls_per_principal_and_every_ending_releases() {
    let py = Peer::python();
    let g = Gateway::start(
        &limited(
            &py.url(),
            r#"[{tools: ["slow_count"], max_concurrent: 1, timeout_ms: 3000}]"#,
        )
        .api_keys(vec![
            api_key("alice", "alice-key-0123456789", "acme", Some("alice")),
            api_key("bob", "bob-key-0123456789", "acme", Some("bob")),
        ]),
    );
    let alice = session_as(g.port, "alice-key-0123456789");
    let bob = session_as(g.port, "bob-key-0123456789");
    let port = g.port;
    // alice's first call runs 1.2 s
    let first = {
        let t = alice.clone();
        std::thread::spawn(move || {
            call_as(
                port,
                &t,
                "alice-key-0123456789",
                &call_body("a1", "slow_count", json!({"n": 4, "interval_ms": 300})),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    // her second is refused while it runs; an unlimited tool is not
    let second = call_as(
        port,
        &alice,
        "alice-key-0123456789",
        &call_body("a2", "slow_count", json!({"n": 1, "interval_ms": 10})),
    );
    assert_eq!(second.status, 429);
    let err = second.reply("a2");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_concurrent"));
    let echo = call_as(
        port,
        &alice,
        "alice-key-0123456789",
        &call_body("e", "echo", json!({"text": "free"})),
    );
    assert_eq!(text_of(echo.reply("e")), "free");
    // bob has his own count
    let b = call_as(
        port,
        &bob,
        "bob-key-0123456789",
        &call_body("b1", "slow_count", json!({"n": 1, "interval_ms": 10})),
    );
    assert_eq!(text_of(b.reply("b1")), "counted to 1");
    // a result releases the permit
    assert_eq!(text_of(first.join().unwrap().reply("a1")), "counted to 4");
    let again = call_as(
        port,
        &alice,
        "alice-key-0123456789",
        &call_body("a3", "slow_count", json!({"n": 1, "interval_ms": 10})),
    );
    assert_eq!(text_of(again.reply("a3")), "counted to 1");
    // a timeout releases it
    let late = call_as(
        port,
        &alice,
        "alice-key-0123456789",
        &call_body("a4", "slow_count", json!({"n": 60, "interval_ms": 100})),
    );
    assert_eq!(late.reply("a4")["error"]["code"], -32603);
    let after = call_as(
        port,
        &alice,
        "alice-key-0123456789",
        &call_body("a5", "slow_count", json!({"n": 1, "interval_ms": 10})),
    );
    assert_eq!(text_of(after.reply("a5")), "counted to 1");
    // a client that goes away releases it
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = call_body("a6", "slow_count", json!({"n": 60, "interval_ms": 100}));
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nX-API-Key: alice-key-0123456789\r\nMcp-Session-Id: {alice}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut first_bytes = [0u8; 64];
    s.read_exact(&mut first_bytes).unwrap();
    drop(s);
    // sooner than the call's 3 s timeout: the client's going released it
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let r = call_as(
            port,
            &alice,
            "alice-key-0123456789",
            &call_body("a7", "slow_count", json!({"n": 1, "interval_ms": 10})),
        );
        if r.status == 200 {
            assert_eq!(text_of(r.reply("a7")), "counted to 1");
            break;
        }
        assert_eq!(r.status, 429);
        assert!(
            Instant::now() < deadline,
            "the gone client's permit was kept"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = AuditLog::of(&g).settle_ms(100).lines();
    assert!(lines.iter().any(|l| l["target"] == "slow_count"
        && l["decision"] == "deny"
        && l["reason"] == "tool_max_concurrent"));
}

fn session_as(port: u16, key: &str) -> String {
    let r = post_json(port, INIT.as_bytes(), &[("X-API-Key", key)]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.header("mcp-session-id").unwrap().to_string();
    let n = post_json(
        port,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[("Mcp-Session-Id", &token), ("X-API-Key", key)],
    );
    assert_eq!(n.status, 202);
    token
}

#[test]
fn an_answer_past_its_size_bound_is_an_error_never_a_truncated_result() {
    for (flags, sse) in [(&[][..], true), (&["--json"][..], false)] {
        let py = Peer::python_with(flags);
        let g = Gateway::start(
            &limited(
                &py.url(),
                r#"[{tools: ["big_text"], max_response_bytes: 4096}]"#,
            )
            .insert("server.limits", yaml("{max_response_bytes: 65536}")),
        );
        let token = session(g.port);
        // within the tool's bound
        let a = call(
            g.port,
            &token,
            &call_body("s", "big_text", json!({"n": 1000})),
        );
        assert_eq!(text_of(a.reply("s")).len(), 1000);
        // past it: the error for this id, no part of the text
        let a = call(
            g.port,
            &token,
            &call_body("b", "big_text", json!({"n": 20000})),
        );
        assert_eq!(a.sse, sse);
        let err = a.reply("b");
        assert_eq!(err["error"]["code"], -32603, "{err}");
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool_limits max_response_bytes"));
        assert!(a.messages.iter().all(|m| m.get("result").is_none()));
        assert!(a.clean_end);
        if !sse {
            assert_eq!(a.status, 502);
        }
        // other tools are bounded by the server's limit
        let a = call(
            g.port,
            &token,
            &call_body("e", "echo", json!({"text": "y".repeat(30000)})),
        );
        assert_eq!(text_of(a.reply("e")).len(), 30000);
        let a = call(
            g.port,
            &token,
            &call_body("e2", "echo", json!({"text": "y".repeat(70000)})),
        );
        let err = a.reply("e2");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("server.limits.max_response_bytes"),
            "{err}"
        );
        // and the session goes on
        let a = call(
            g.port,
            &token,
            &call_body("s2", "big_text", json!({"n": 10})),
        );
        assert_eq!(text_of(a.reply("s2")), "x".repeat(10));
        let lines = AuditLog::of(&g).settle_ms(100).lines();
        assert!(lines
            .iter()
            .any(|l| l["target"] == "big_text" && l["reason"] == "response_too_large"));
    }
}

/// An in-test upstream: `initialize` is answered; a `tools/call` gets an
/// answer that never ends: an SSE stream of comments (`sse`) or a JSON body
/// of 1 GiB announced and written until the socket fails. Counts the bytes
/// its socket took and whether the gateway closed the connection.
struct Endless {
    port: u16,
    written: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
    _stop: Arc<AtomicBool>,
}

impl Endless {
    fn start(sse: bool) -> Endless {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let written = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, c, st) = (written.clone(), closed.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (w, c, st) = (w.clone(), c.clone(), st.clone());
                std::thread::spawn(move || serve_endless(conn, sse, &w, &c, &st));
            }
        });
        Endless {
            port,
            written,
            closed,
            _stop: stop,
        }
    }
}

fn serve_endless(
    conn: TcpStream,
    sse: bool,
    written: &AtomicUsize,
    closed: &AtomicBool,
    stop: &AtomicBool,
) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let l = h.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length: ") {
                length = v.parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        let req: Value = serde_json::from_slice(&body).unwrap_or_default();
        if req["method"] == "initialize" {
            let b = json!({"jsonrpc":"2.0","id":req["id"],"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"endless","version":"1"}}}).to_string();
            write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: endless-1\r\nContent-Length: {}\r\n\r\n{b}", b.len()).unwrap();
            continue;
        }
        if req["method"] != "tools/call" {
            write!(w, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").unwrap();
            continue;
        }
        let start = Instant::now();
        let head = if sse {
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".to_string()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"",
                1u64 << 30,
                req["id"]
            )
        };
        if w.write_all(head.as_bytes()).is_err() {
            closed.store(true, Ordering::SeqCst);
            return;
        }
        let piece = if sse {
            b": still working\n\n".to_vec()
        } else {
            vec![b'x'; 64 * 1024]
        };
        // bounded: at most 30 s or 256 MiB
        while start.elapsed() < Duration::from_secs(30)
            && written.load(Ordering::SeqCst) < 256 << 20
            && !stop.load(Ordering::SeqCst)
        {
            if w.write_all(&piece).and_then(|()| w.flush()).is_err() {
                closed.store(true, Ordering::SeqCst);
                return;
            }
            written.fetch_add(piece.len(), Ordering::SeqCst);
            if sse {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        return;
    }
}

#[test]
fn an_upstream_that_never_ends_is_cut_at_the_bounds_and_its_connection_closed() {
    // an SSE call that never ends: the timeout ends it
    let up = Endless::start(true);
    let g = Gateway::start(&limited(
        &format!("http://127.0.0.1:{}/mcp", up.port),
        r#"[{tools: ["*"], timeout_ms: 800}]"#,
    ));
    let token = session(g.port);
    let a = call(g.port, &token, &call_body("n1", "forever", json!({})));
    assert_eq!(a.reply("n1")["error"]["code"], -32603);
    assert!(a.clean_end);
    assert!(a.took < Duration::from_millis(2500), "{:?}", a.took);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !up.closed.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        up.closed.load(Ordering::SeqCst),
        "the upstream connection stayed open"
    );
    drop(g);
    // a result without end: refused at the bound, the rest is not read
    let up = Endless::start(false);
    let g = Gateway::start(&limited(
        &format!("http://127.0.0.1:{}/mcp", up.port),
        r#"[{tools: ["*"], max_response_bytes: 1048576}]"#,
    ));
    let token = session(g.port);
    let a = call(g.port, &token, &call_body("n2", "huge", json!({})));
    assert_eq!(a.status, 502);
    assert!(a.reply("n2")["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_response_bytes"));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !up.closed.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        up.closed.load(Ordering::SeqCst),
        "the upstream connection stayed open"
    );
    // what the upstream's socket took is bounded by the cap plus the
    // socket buffers, not the 1 GiB it announced
    assert!(
        up.written.load(Ordering::SeqCst) < 64 << 20,
        "{} bytes",
        up.written.load(Ordering::SeqCst)
    );
    // the gateway serves on
    let r = get(g.port, "/healthz", &[]).unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn validate_reports_tool_limits_problems_with_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::base("http://127.0.0.1:1/mcp")
        .insert(
            "tool_limits",
            yaml(r#"[{tools: ["a"], timeout_ms: 0}, {tools: ["b"]}, {tools: [], max_concurrent: 0}]"#),
        )
        .with_port(1)
        .with_dir(dir.path());
    let (ok, _, err) = validate(&cfg);
    assert!(!ok);
    for want in [
        "tool_limits[0].timeout_ms",
        "tool_limits[1]: sets no bound",
        "tool_limits[2].tools",
        "tool_limits[2].max_concurrent",
    ] {
        assert!(err.contains(want), "{want} not in {err}");
    }
}
