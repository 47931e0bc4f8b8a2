//! Abuse (issue 9, part 2): request smuggling regressions, log injection,
//! the audit writer on a full disk, HTTP/2 rapid reset. (Slowloris, slow
//! bodies and the connection cap are in tests/limits.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
/// What a smuggled request carries: a method the policy refuses (403), so
/// every 200 the client gets is a request that went upstream.
const SMUGGLED: &str = r#"{"jsonrpc":"2.0","id":2,"method":"smuggled/call","params":{}}"#;

/// Everything allowed but `smuggled/*` methods and `admin.*` tools.
fn config(up: &str) -> Config {
    Config::base(up).insert(
        "policy.rules[0].deny",
        yaml(r#"{methods: ["smuggled/*"], tools: ["admin.*"]}"#),
    )
}

/// Sends `bytes` on one connection and reads every response until the
/// gateway closes it or goes quiet: the statuses, in order.
fn exchange(port: u16, bytes: &[u8]) -> Vec<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s.write_all(bytes).unwrap();
    let mut r = BufReader::new(s);
    let mut statuses = Vec::new();
    while let Ok(resp) = read_response(&mut r) {
        statuses.push(resp.status);
        if resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            break;
        }
    }
    statuses
}

/// The first response to `bytes` sent on a fresh connection.
fn exchange_response(port: u16, bytes: &[u8]) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s.write_all(bytes).unwrap();
    read_response(&mut BufReader::new(s)).unwrap()
}

fn post(body: &str, extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn chunked(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

#[test]
fn smuggling_attempts_reach_the_upstream_as_exactly_the_requests_the_client_was_answered_for() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up.url()));
    let head = "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";
    let smuggled = post(SMUGGLED, "");
    let cases: Vec<(&str, String)> = vec![
        (
            "CL+TE",
            format!(
                "{head}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{}{smuggled}",
                CALL.len(),
                chunked(CALL)
            ),
        ),
        (
            "TE+CL, CL covering the smuggled request",
            format!(
                "{head}Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n{}{smuggled}",
                chunked(CALL).len() + smuggled.len(),
                chunked(CALL)
            ),
        ),
        (
            "duplicated TE",
            format!(
                "{head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{}{smuggled}",
                chunked(CALL)
            ),
        ),
        (
            "obfuscated TE",
            format!(
                "{head}Transfer-Encoding: xchunked\r\nContent-Length: {}\r\n\r\n{CALL}{smuggled}",
                CALL.len()
            ),
        ),
        (
            "two Content-Lengths",
            format!(
                "{head}Content-Length: {}\r\nContent-Length: {}\r\n\r\n{CALL}{smuggled}",
                CALL.len(),
                CALL.len() + smuggled.len()
            ),
        ),
        (
            "obs-fold",
            format!(
                "{head}X-Folded: a\r\n Transfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n{CALL}{smuggled}",
                CALL.len()
            ),
        ),
        (
            "bare LF",
            format!(
                "POST /mcp HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: {}\n\n{CALL}{smuggled}",
                CALL.len()
            ),
        ),
        (
            "HTTP/1.0 with a body",
            format!(
                "POST /mcp HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{CALL}{smuggled}",
                CALL.len()
            ),
        ),
        (
            "pipelined after an Upgrade",
            format!(
                "GET /mcp HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n{smuggled}"
            ),
        ),
    ];
    let mut report = Vec::new();
    for (name, bytes) in &cases {
        let before = up.hits.load(Ordering::SeqCst);
        let statuses = exchange(g.port, bytes.as_bytes());
        std::thread::sleep(Duration::from_millis(100));
        let hits = up.hits.load(Ordering::SeqCst) - before;
        let answered_ok = statuses.iter().filter(|s| **s == 200).count();
        report.push(format!(
            "{name}: statuses {statuses:?}, upstream saw {hits}"
        ));
        // the upstream sees one request per request the client was answered
        // 200 for, never more, and never the smuggled (refused) call
        assert_eq!(
            hits, answered_ok,
            "{name}: {statuses:?}, upstream saw {hits}"
        );
        assert!(hits <= 1, "{name}: the upstream saw {hits} requests");
        // a malformed header gets the gateway's own JSON-RPC 400, audited
        if statuses == [400] {
            let r = exchange_response(g.port, bytes.as_bytes());
            assert_eq!(r.json()["error"]["code"], -32600, "{name}");
        }
    }
    eprintln!("{}", report.join("\n"));
    // the gateway still serves
    assert_eq!(post_json(g.port, CALL.as_bytes(), &[]).status, 200);
}

#[test]
fn hostile_names_and_ids_still_give_one_valid_json_audit_line_each() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(
        &config(&up.url())
            .audit()
            .insert("server.limits.max_body_bytes", 3145728),
    );
    let big = "n".repeat(1 << 20);
    let names = [
        "evil\r\n{\"decision\":\"allow\"}".to_string(),
        "\u{1b}[31mred\u{1b}[0m\u{7}".to_string(),
        "nul\u{0}byte".to_string(),
        "\u{202e}reversed".to_string(),
        big.clone(),
        format!("admin.{big}"),
    ];
    let mut bodies: Vec<Vec<u8>> = names
        .iter()
        .map(|n| {
            serde_json::to_vec(&serde_json::json!({
                "jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": n, "arguments": {}}
            }))
            .unwrap()
        })
        .collect();
    // invalid UTF-8 inside a string, a method with CR/LF escapes, a 1 MiB method
    bodies.push(b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\xfe\xc3\"}}".to_vec());
    bodies.push(br#"{"jsonrpc":"2.0","id":9,"method":"tools/list\r\n\u001b[2J"}"#.to_vec());
    bodies.push(format!(r#"{{"jsonrpc":"2.0","id":10,"method":"{big}"}}"#).into_bytes());
    let ids = ["id-\u{1b}[31m", "a\u{7f}b", &"r".repeat(10_000), "ok-id"];
    let path = g.dir.path().join("audit.jsonl");
    let log = AuditLog::at(&path);
    let count = || {
        log.raw()
            .iter()
            .filter(|l| !l.contains("\"/healthz\""))
            .count()
    };
    let mut sent = 0;
    // each request, whatever it carries, adds exactly one line
    let mut one_line_more = |what: &str| {
        sent += 1;
        let deadline = Instant::now() + Duration::from_secs(3);
        while count() < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(count(), sent, "{what}: not exactly one audit line");
    };
    for b in &bodies {
        let r = post_json(g.port, b, &[]);
        assert!(r.status >= 200, "{}", r.status);
        one_line_more(&String::from_utf8_lossy(&b[..b.len().min(80)]));
    }
    for id in ids {
        // header values: the raw client sends the bytes as they are
        let req = post(
            CALL,
            &format!("X-Request-ID: {id}\r\nConnection: close\r\n"),
        );
        let statuses = exchange(g.port, req.as_bytes());
        assert_eq!(statuses.len(), 1, "{statuses:?}");
        one_line_more(&id[..id.len().min(20)]);
    }
    // a header with invalid UTF-8 and a path with encoded CR/LF
    let raw_req = post(CALL, "X-Request-ID: @@\r\nConnection: close\r\n")
        .into_bytes()
        .split(|&b| b == b'@')
        .collect::<Vec<_>>()
        .join(&[0xffu8][..]);
    assert_eq!(exchange(g.port, &raw_req), [200]);
    one_line_more("invalid UTF-8 header");
    assert_eq!(
        exchange(
            g.port,
            b"GET /mcp%0d%0a%1b[31m?token=secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        [404]
    );
    one_line_more("encoded CR/LF in the path");
    let lines: Vec<String> = log
        .raw()
        .into_iter()
        .filter(|l| !l.contains("\"/healthz\""))
        .collect();
    let text = std::fs::read(&path).unwrap();
    assert!(
        !text
            .iter()
            .any(|&b| b == 0x1b || b == b'\r' || b == 0 || b == 0x07),
        "control characters reached the audit file raw"
    );
    assert!(
        std::str::from_utf8(&text).is_ok(),
        "audit file is not UTF-8"
    );
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(l.len() < 8192, "an audit line of {} bytes", l.len());
        assert!(v["decision"].is_string());
    }
    // what was injected stayed inside its string
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["target"], names[0].as_str());
}

/// A small tmpfs at `dir` (root only): what a full disk looks like.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a tmpfs failed: this test needs root (CI runs as root)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` but for `leave` bytes.
fn fill(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![b'f'; 4096];
    while f.write_all(&chunk).is_ok() {}
    drop(f);
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len.saturating_sub(leave))
        .unwrap();
    filler
}

/// A gateway auditing to a 4 MiB tmpfs (room for every line its queue can
/// hold once space returns) with `audit.on_full` and `audit.queue_lines`
/// set: the upstream, the mount (unmounted on drop), the mount point, the
/// audit file, the gateway.
struct FullDisk {
    _up: Upstream,
    _outer: tempfile::TempDir,
    _fs: Tmpfs,
    mnt: std::path::PathBuf,
    path: std::path::PathBuf,
    g: Gateway,
}

fn on_a_small_disk(on_full: &str, queue_lines: u64) -> FullDisk {
    let up = Upstream::start(Mode::Echo);
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("audit");
    let fs = Tmpfs::mount(&mnt, "4m");
    let path = mnt.join("audit.jsonl");
    let g = Gateway::start(&config(&up.url()).insert(
        "audit",
        json!({"path": path.display().to_string(), "on_full": on_full, "queue_lines": queue_lines}),
    ));
    FullDisk {
        _up: up,
        _outer: outer,
        _fs: fs,
        mnt,
        path,
        g,
    }
}

#[test]
fn a_full_disk_with_on_full_drop_keeps_serving_drops_whole_lines_and_holds_memory() {
    let FullDisk { mnt, path, g, .. } = &on_a_small_disk("drop", 1000);
    for _ in 0..20 {
        assert_eq!(post_json(g.port, CALL.as_bytes(), &[]).status, 200);
    }
    std::thread::sleep(Duration::from_millis(200));
    let filler = fill(mnt, 3000);
    let rss_before = rss_kib(g.child.id());
    let t = Instant::now();
    for _ in 0..3000 {
        assert_eq!(post_json(g.port, CALL.as_bytes(), &[]).status, 200);
    }
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let growth = rss_kib(g.child.id()).saturating_sub(rss_before);
    eprintln!("3000 requests on a full disk (on_full: drop): {took:?}, RSS +{growth} KiB");
    assert!(growth < 16 * 1024, "RSS grew {growth} KiB");
    assert!(g.log_text().contains("write failed"), "{}", g.log_text());
    // space comes back: a line cut by the full disk is finished first, so
    // the file holds whole lines only, and new lines are written again
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..10 {
        assert_eq!(post_json(g.port, CALL.as_bytes(), &[]).status, 200);
    }
    // the writer retries a failing target at most a second apart
    let deadline = Instant::now() + Duration::from_secs(5);
    while !g.log_text().contains("writing again") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(g.log_text().contains("writing again"), "{}", g.log_text());
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(path).unwrap();
    let n = text.lines().count();
    for (i, l) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| {
            panic!(
                "{e}: line {i} of {n} {l:?}, ends with newline: {}; log:\n{}",
                text.ends_with('\n'),
                g.log_text()
                    .lines()
                    .filter(|l| l.contains("log sink"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    }
    assert!(n < 3000, "the disk was full, yet {n} lines were written");
    assert!(n > 20, "nothing was written once space came back");
}

#[test]
fn a_full_disk_with_on_full_block_holds_requests_until_space_returns_and_loses_no_line() {
    let FullDisk { mnt, path, g, .. } = &on_a_small_disk("block", 50);
    let port = g.port;
    assert_eq!(post_json(port, CALL.as_bytes(), &[]).status, 200);
    std::thread::sleep(Duration::from_millis(200));
    let filler = fill(mnt, 2000);
    // requests go on until the queue of 50 lines is taken, then wait
    let (tx, rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        for i in 0..200 {
            let s = post_json(port, CALL.as_bytes(), &[]).status;
            tx.send((i, s)).unwrap();
        }
    });
    let mut done = 0;
    while let Ok((_, status)) = rx.recv_timeout(Duration::from_secs(2)) {
        assert_eq!(status, 200);
        done += 1;
    }
    assert!(done < 200, "requests never waited for the audit writer");
    let rss = rss_kib(g.child.id());
    // space comes back: the waiting requests finish and every line is written
    std::fs::remove_file(&filler).unwrap();
    while let Ok((_, status)) = rx.recv_timeout(Duration::from_secs(10)) {
        assert_eq!(status, 200);
        done += 1;
    }
    client.join().unwrap();
    assert_eq!(done, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = AuditLog::at(path);
    let count = || {
        log.raw()
            .iter()
            .filter(|l| !l.contains("\"/healthz\""))
            .count()
    };
    while count() < 201 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = log.raw();
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
    }
    assert_eq!(count(), 201, "block mode lost lines");
    eprintln!("on_full: block on a full disk: {done} requests, RSS while held {rss} KiB");
    assert!(g.log_text().contains("writing again"), "{}", g.log_text());
}

#[test]
fn http2_rapid_reset_closes_the_connection_and_the_gateway_keeps_serving() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up.url()));
    let port = g.port;
    let rss_before = rss_kib(g.child.id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sent, closed) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
        let conn = tokio::spawn(conn);
        let mut sent = 0u32;
        let deadline = Instant::now() + Duration::from_secs(10);
        while sent < 20_000 && Instant::now() < deadline {
            let req = http::Request::post(format!("http://127.0.0.1:{port}/mcp"))
                .header("content-type", "application/json")
                .body(())
                .unwrap();
            let ready = match client.clone().ready().await {
                Ok(c) => c,
                Err(_) => break,
            };
            client = ready;
            match client.send_request(req, false) {
                Ok((_resp, mut stream)) => {
                    stream.send_reset(h2::Reason::CANCEL);
                    sent += 1;
                }
                Err(_) => break,
            }
            if sent % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // the gateway answers the flood with GOAWAY: the connection ends
        let closed = tokio::time::timeout(Duration::from_secs(5), conn)
            .await
            .is_ok();
        (sent, closed)
    });
    let growth = rss_kib(g.child.id()).saturating_sub(rss_before);
    eprintln!("h2 rapid reset: {sent} streams opened and reset before the connection ended ({closed}); RSS +{growth} KiB");
    assert!(closed, "the connection survived {sent} reset streams");
    assert!(sent < 20_000, "no limit on reset streams");
    assert!(growth < 32 * 1024, "RSS grew {growth} KiB");
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        0,
        "reset streams reached the upstream"
    );
    assert_eq!(post_json(port, CALL.as_bytes(), &[]).status, 200);
}
