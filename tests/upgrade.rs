//! Zero-downtime binary upgrade (issue 7): the installed operator path
//! (`mcp-edge run -d`, then `mcp-edge upgrade`, what `systemctl reload`
//! runs) under load, with SSE streams open across each hand-over; and the
//! failures that must leave the old process serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const EVENTS: usize = 16;
const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
const STREAM: &[u8] =
    br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"stream","arguments":{}}}"#;

/// Daemonized gateways started from one config; every pid they ever had is
/// killed at the end.
struct Daemons {
    dir: tempfile::TempDir,
    port: u16,
    _reservation: Port,
    pids: Vec<i32>,
}

impl Daemons {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("gw.yaml")
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.dir.path().join("gw.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gw.log")).unwrap_or_default()
    }

    fn start(echo: &str, sse: &str, grace: u64) -> Daemons {
        let dir = tempfile::tempdir().expect("tempdir");
        let reservation = Port::reserve();
        let port = reservation.get();
        // `tools/call` of `stream` goes to the SSE upstream, the rest to echo
        Config::base(echo)
            .set("server.threads", 2)
            .set("server.grace_period_secs", grace)
            .audit()
            .set(
                "upstreams",
                json!([
                    {"name": "echo", "url": echo, "timeout_ms": 5000},
                    {"name": "sse", "url": sse, "timeout_ms": 5000, "sse_idle_timeout_ms": 5000},
                ]),
            )
            .set(
                "routing",
                yaml(r#"[{match: {method: tools/call, tool: stream}, upstream: sse}, {match: {method: "*"}, upstream: echo}]"#),
            )
            .set("policy.rules[0].allow", yaml(r#"{methods: ["*"], tools: ["*"]}"#))
            .with_port(port)
            .with_dir(dir.path())
            .write(&dir.path().join("gw.yaml"));
        let mut g = Daemons {
            dir,
            port,
            _reservation: reservation,
            pids: Vec::new(),
        };
        // O_APPEND like the upgrade command's own output: a writer at its own
        // offset would overwrite what `mcp-edge upgrade` printed in between
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(g.dir.path().join("gw.log"))
            .unwrap();
        let st = Command::new(bin())
            .args(["run", "-d", "-c"])
            .arg(g.conf())
            .stdout(Stdio::null())
            .stderr(log)
            .status()
            .unwrap();
        assert!(st.success(), "{}", g.log());
        g.wait_healthy();
        g.pids.push(g.pid());
        g
    }

    fn wait_healthy(&self) {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if get(self.port, "/healthz", &[]).is_ok_and(|r| r.status == 200) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway not healthy:\n{}", self.log());
    }

    /// `mcp-edge upgrade -c <conf>`: (success, what it printed). Its output
    /// goes to the log file, not a pipe: the new daemon inherits it.
    fn upgrade(&mut self, conf: &Path) -> (bool, String) {
        let path = self.dir.path().join("gw.log");
        let from = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as usize;
        let open = || {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
        };
        let st = Command::new(bin())
            .args(["upgrade", "-c"])
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(open())
            .stderr(open())
            .status()
            .unwrap();
        let pid = self.pid();
        if !self.pids.contains(&pid) {
            self.pids.push(pid);
        }
        let log = std::fs::read(&path).unwrap_or_default();
        let out = String::from_utf8_lossy(log.get(from..).unwrap_or_default()).into_owned();
        // only what the upgrade command itself said (not the daemons' json logs)
        let said: Vec<&str> = out.lines().filter(|l| !l.starts_with('{')).collect();
        (st.success(), said.join("\n"))
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for p in &self.pids {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// One request on `conn` (reconnecting first if needed); the status, or
/// `None` when the request failed.
fn call(port: u16, conn: &mut Option<BufReader<TcpStream>>, close: bool) -> Option<u16> {
    if conn.is_none() {
        let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        *conn = Some(BufReader::new(s));
    }
    let r = conn.as_mut()?;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n{}\r\n",
        CALL.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    let sent = r
        .get_mut()
        .write_all(head.as_bytes())
        .and_then(|_| r.get_mut().write_all(CALL));
    let resp = sent.ok().and_then(|_| read_response(r).ok());
    let reusable = resp.as_ref().is_some_and(|x| {
        !close
            && !x
                .header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    });
    if !reusable {
        *conn = None;
    }
    resp.map(|x| x.status)
}

#[test]
fn five_upgrades_under_load_lose_nothing() {
    let echo = Upstream::start(Mode::Echo);
    let sse = Upstream::start(Mode::Sse {
        n: EVENTS,
        gap: Duration::from_millis(500),
    });
    let mut g = Daemons::start(&echo.url(), &sse.url(), 15);
    let port = g.port;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    // two keep-alive clients and two that close every connection
    for close in [false, false, true, true] {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        load.push(thread::spawn(move || {
            let mut conn = None;
            let mut fails = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let reused = conn.is_some();
                match call(port, &mut conn, close) {
                    Some(200) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        fails.push(format!("{other:?} (reused connection: {reused})"));
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
            fails
        }));
    }
    let mut streams = Vec::new();
    let mut outputs = Vec::new();
    for round in 0..5 {
        // 10 streams of 8 s each open on the process about to be replaced
        for _ in 0..10 {
            streams.push(thread::spawn(move || {
                sse_events(
                    port,
                    "POST",
                    &[
                        ("Content-Type", "application/json"),
                        ("Accept", "application/json, text/event-stream"),
                    ],
                    STREAM,
                )
            }));
        }
        thread::sleep(Duration::from_millis(800));
        let before = g.pid();
        let (upgraded, out) = g.upgrade(&g.conf());
        assert!(upgraded, "upgrade {round}: {out}\n{}", g.log());
        assert_ne!(g.pid(), before, "{out}");
        outputs.push(out);
        thread::sleep(Duration::from_secs(if round < 4 { 8 } else { 2 }));
    }
    stop.store(true, Ordering::SeqCst);
    let fails: Vec<String> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let mut events_total = 0;
    for s in streams {
        let (resp, events) = s.join().unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(
            events.len(),
            EVENTS,
            "an SSE stream was cut during an upgrade: {events:?}"
        );
        events_total += events.len();
    }
    assert_eq!(events_total, 50 * EVENTS);
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(ok > 500, "only {ok} requests went through");
    assert_eq!(failed, 0, "failed requests: {fails:?}");
    assert_eq!(g.pids.len(), 6, "{:?} {outputs:?}", g.pids);
    // the replaced processes drain and exit; the last one serves
    assert!(alive(g.pid()));
    let end = Instant::now() + Duration::from_secs(30);
    while g.pids[..5].iter().any(|p| alive(*p)) && Instant::now() < end {
        thread::sleep(Duration::from_millis(200));
    }
    assert!(!g.pids[..5].iter().any(|p| alive(*p)), "{:?}", g.pids);
    // one audit line per request, whichever process served it
    let audit = g.dir.path().join("audit.jsonl");
    let expected = ok + 50;
    let end = Instant::now() + Duration::from_secs(10);
    let mut lines = 0;
    while Instant::now() < end {
        lines = std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"http_method\":\"POST\""))
            .count();
        if lines == expected {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(lines, expected, "audit lines vs requests");
}

#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let echo = Upstream::start(Mode::Echo);
    let mut g = Daemons::start(&echo.url(), &echo.url(), 2);
    let first = g.pid();
    let works = |g: &Daemons| post_json(g.port, CALL, &[]).status == 200;
    assert!(works(&g));

    // an invalid configuration: refused before anything starts
    let bad = g.dir.path().join("bad.yaml");
    let running = Config::load(&g.conf());
    running.clone().set("server.threads", "many").write(&bad);
    let (upgraded, out) = g.upgrade(&bad);
    assert!(!upgraded && out.contains("server.threads"), "{out}");
    assert!(out.contains("keeps serving"), "{out}");
    assert_eq!(g.pid(), first);
    assert!(works(&g));

    // valid, but the new process dies at start (audit file it cannot open)
    let crash = g.dir.path().join("crash.yaml");
    let d = g.dir.path().display().to_string();
    running
        .set("audit.path", format!("{d}/no-such-dir/audit.jsonl"))
        .write(&crash);
    let (upgraded, out) = g.upgrade(&crash);
    assert!(!upgraded, "{out}");
    assert!(out.contains("keeps serving"), "{out}");
    assert_eq!(g.pid(), first);
    thread::sleep(Duration::from_secs(1));
    assert!(alive(first) && works(&g));

    // a bare SIGQUIT with no new process waiting: refused, still serving
    let _ = Command::new("kill")
        .args(["-QUIT", &first.to_string()])
        .status();
    thread::sleep(Duration::from_secs(12));
    assert!(alive(first), "{}", g.log());
    assert!(works(&g));
    assert!(g.log().contains("upgrade refused"), "{}", g.log());

    // and a good upgrade still works afterwards
    let (upgraded, out) = g.upgrade(&g.conf());
    assert!(upgraded, "{out}");
    assert_ne!(g.pid(), first);
    assert!(works(&g));
}
