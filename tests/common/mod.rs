//! Shared integration-test harness: starts the real `mcp-edge` binary on a free
//! loopback port, a tiny fault-injection upstream, and a minimal blocking
//! HTTP/1.1 client that can also time SSE events as they arrive.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod scripted;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Path of the built gateway binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mcp-edge")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running gateway process.
pub struct Gateway {
    pub port: u16,
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Gateway {
    /// Starts the gateway with `yaml`, where `{PORT}` is replaced by its port.
    pub fn start(yaml: &str) -> Gateway {
        Self::start_with_env(yaml, &[])
    }

    /// Like `start`, with extra environment variables.
    pub fn start_with_env(yaml: &str, env: &[(&str, &str)]) -> Gateway {
        Self::start_full(yaml, env, b"")
    }

    /// Like `start`; the readiness probe sends `probe_prefix` first (a PROXY
    /// protocol header when the gateway expects one).
    pub fn start_with_probe_prefix(yaml: &str, probe_prefix: &[u8]) -> Gateway {
        Self::start_full(yaml, &[], probe_prefix)
    }

    fn start_full(yaml: &str, env: &[(&str, &str)], probe_prefix: &[u8]) -> Gateway {
        let mut probe = probe_prefix.to_vec();
        probe.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        Self::start_probed(yaml, env, &|port| {
            raw(port, &probe).is_ok_and(|r| r.status == 200)
        })
    }

    /// Starts the gateway and waits until `ready(port)` says it serves (a
    /// TLS listener needs a TLS probe); `{DIR}` files can be written by
    /// `prepare` before the start.
    pub fn start_probed(yaml: &str, env: &[(&str, &str)], ready: &dyn Fn(u16) -> bool) -> Gateway {
        Self::start_prepared(yaml, env, &|_| {}, ready)
    }

    /// Like `start_probed`, running `prepare(dir)` before the gateway starts.
    pub fn start_prepared(
        yaml: &str,
        env: &[(&str, &str)],
        prepare: &dyn Fn(&Path),
        ready: &dyn Fn(u16) -> bool,
    ) -> Gateway {
        let port = free_port();
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("gw.yaml");
        let yaml = yaml
            .replace("{PORT}", &port.to_string())
            .replace("{DIR}", &dir.path().display().to_string());
        prepare(dir.path());
        std::fs::write(&conf, yaml).expect("write config");
        let log = dir.path().join("gw.log");
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin());
        cmd.args(["run", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(logf)
            .env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn mcp-edge");
        let gw = Gateway {
            port,
            child,
            dir,
            log,
        };
        gw.wait_ready(ready);
        gw
    }

    fn wait_ready(&self, ready: &dyn Fn(u16) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ready(self.port) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not become ready; log:\n{}", self.log_text());
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The admin listener's port, read from the configuration it runs with.
    pub fn admin_port(&self) -> u16 {
        let conf = std::fs::read_to_string(self.dir.path().join("gw.yaml")).unwrap_or_default();
        let at = conf.find("admin:").expect("no admin section");
        let rest = &conf[at..];
        let host = rest.find("127.0.0.1:").expect("admin listen") + "127.0.0.1:".len();
        rest[host..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("admin port")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Access-log lines (JSON) for the MCP endpoint written so far (the
    /// readiness probes of `start` are left out).
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "access" && v["path"] != "/healthz")
            .collect()
    }

    /// Waits until at least `n` access lines exist (logging runs after the response).
    pub fn wait_access_lines(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.access_lines();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mcp-edge validate` on `yaml` (written to a temporary file):
/// (success, stdout, stderr).
pub fn validate_yaml(yaml: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("validate.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let out = Command::new(bin())
        .args(["validate", "-c"])
        .arg(&path)
        .output()
        .expect("run mcp-edge validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `server:` section test configs share: the test's port and directory
/// (`{PORT}`, `{DIR}`, filled by `Gateway::start`), one worker, a short grace.
pub const SERVER_SECTION: &str = r#"server:
  listen: 127.0.0.1:{PORT}
  path: /mcp
  threads: 1
  grace_period_secs: 2
  pid_file: "{DIR}/gw.pid"
  upgrade_sock: "{DIR}/gw.sock""#;

/// A policy that allows every call to every tenant.
pub const ALLOW_ALL_POLICY: &str = r#"policy:
  rules:
    - subject: {tenant: "*"}
      allow: {methods: ["*"], tools: ["*"], resources: ["*"], prompts: ["*"]}"#;

/// A config for one upstream at `upstream_url` with anonymous access.
pub fn simple_config(upstream_url: &str, extra_server: &str) -> String {
    format!(
        r#"
{SERVER_SECTION}
{extra_server}
auth: {{anonymous: true}}
upstreams:
  - name: up
    url: {upstream_url}
    timeout_ms: 2000
    connect_timeout_ms: 1000
    auth: {{header: X-Upstream-Key, value: upstream-secret}}
routing:
  - match: {{method: "*"}}
    upstream: up
{ALLOW_ALL_POLICY}
logging: {{level: info, format: json}}
"#
    )
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends raw bytes and reads one response (Content-Length, chunked or close-delimited).
pub fn raw(port: u16, request: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut r = BufReader::new(s);
    read_response(&mut r)
}

fn read_head<R: BufRead>(r: &mut R) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

/// Reads one response from a buffered stream.
pub fn read_response<R: BufRead>(r: &mut R) -> std::io::Result<Response> {
    let (status, headers) = read_head(r)?;
    let resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let mut body = Vec::new();
    if let Some(len) = resp.header("content-length") {
        let n: usize = len.parse().map_err(std::io::Error::other)?;
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if status != 204 && status != 304 && status != 202 {
        r.read_to_end(&mut body)?;
    }
    Ok(Response { body, ..resp })
}

/// A GET with extra headers.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    request(port, "GET", path, headers, b"")
}

/// Any request; adds Host, Content-Length and Connection: close.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(port, &bytes)
}

/// A JSON POST to /mcp.
pub fn post_json(port: u16, body: &[u8], headers: &[(&str, &str)]) -> Response {
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    h.extend_from_slice(headers);
    request(port, "POST", "/mcp", &h, body).expect("POST /mcp")
}

/// Reads an SSE response and records when each event (blank-line terminated) arrived.
pub fn sse_events(
    port: u16,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Response, Vec<(Duration, String)>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let mut req =
        format!("{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let start = Instant::now();
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r).expect("head");
    let resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut events = Vec::new();
    let mut pending = String::new();
    loop {
        let data = if chunked {
            let mut size = String::new();
            if r.read_line(&mut size).unwrap_or(0) == 0 {
                break;
            }
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            let mut chunk = vec![0; n + 2];
            if r.read_exact(&mut chunk).is_err() || n == 0 {
                break;
            }
            chunk.truncate(n);
            chunk
        } else {
            let mut buf = vec![0; 4096];
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.truncate(n);
                    buf
                }
            }
        };
        pending.push_str(&String::from_utf8_lossy(&data));
        while let Some(i) = pending.find("\n\n") {
            let ev = pending[..i].to_string();
            pending.drain(..i + 2);
            events.push((start.elapsed(), ev));
        }
    }
    (resp, events)
}

/// What the fault-injection upstream does with each request.
#[derive(Clone)]
pub enum Mode {
    /// Answers 200 JSON: body length, sha256, headers and path it received.
    Echo,
    /// Answers an SSE stream of `n` events `gap` apart (with `id:` and `retry:` lines).
    Sse { n: usize, gap: Duration },
    /// Waits `delay` before answering like Echo.
    Slow(Duration),
    /// Closes the connection without answering.
    Reset,
    /// Answers 202 with no body (notifications/responses).
    Accepted,
    /// Starts an SSE stream, sends `events` events, then resets the
    /// connection mid-stream (no terminating chunk).
    SseThenReset { events: usize },
    /// An SSE stream of `total` bytes in `chunk`-byte events written as fast
    /// as the gateway takes them; `written` counts the bytes accepted by the
    /// socket (blocking writes: backpressure shows as a stalled count).
    Flood {
        chunk: usize,
        total: usize,
        written: Arc<AtomicUsize>,
    },
}

/// Request headers (lowercase names) of every request the upstream received.
pub type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A tiny threaded HTTP/1.1 upstream for fault injection.
pub struct Upstream {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    pub seen: Seen,
    stopped: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Upstream {
    pub fn start(mode: Mode) -> Upstream {
        Self::start_on(mode, 0)
    }

    /// Starts on a given port (0 = any): a stopped replica comes back on its port.
    pub fn start_on(mode: Mode, port: u16) -> Upstream {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind upstream");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (h, sn, st, op) = (hits.clone(), seen.clone(), stopped.clone(), open.clone());
        thread::spawn(move || {
            // the listener closes when stopped (connections are then refused)
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).ok();
                        // head and body go out in two writes: without this,
                        // Nagle + delayed ACK add 40 ms to every answer
                        conn.set_nodelay(true).ok();
                        // (a resetting stream must hold the only descriptor,
                        // or closing it sends no RST)
                        let resets = matches!(mode, Mode::SseThenReset { .. });
                        if let (false, Ok(c), Ok(mut list)) = (resets, conn.try_clone(), op.lock())
                        {
                            list.push(c);
                        }
                        let (mode, h, sn, st) = (mode.clone(), h.clone(), sn.clone(), st.clone());
                        thread::spawn(move || serve_conn(conn, mode, h, sn, st));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Upstream {
            port,
            hits,
            seen,
            stopped,
            open,
        }
    }

    /// Kills the replica: the port closes and open connections end.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // like a dying process: every open connection is closed
        if let Ok(list) = self.open.lock() {
            for c in list.iter() {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        thread::sleep(Duration::from_millis(50));
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/upstream-mcp", self.port)
    }
}

fn serve_conn(
    conn: TcpStream,
    mode: Mode,
    hits: Arc<AtomicUsize>,
    seen: Seen,
    stopped: Arc<std::sync::atomic::AtomicBool>,
) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || stopped.load(Ordering::SeqCst) {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        hits.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut s) = seen.lock() {
            s.push(headers.clone());
        }
        let echo = || {
            use sha2::{Digest, Sha256};
            let sha: String = Sha256::digest(&body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            serde_json::json!({
                "method": method, "path": path, "len": body.len(), "sha256": sha,
                "headers": headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
            })
            .to_string()
        };
        let ok = match &mode {
            Mode::Echo => write_json(&mut w, 200, &echo()),
            Mode::Slow(d) => {
                thread::sleep(*d);
                write_json(&mut w, 200, &echo())
            }
            Mode::Reset => {
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
            Mode::Accepted => w
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .is_ok(),
            Mode::SseThenReset { events } => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                let _ = w.write_all(head.as_bytes());
                for i in 0..*events {
                    let ev = format!("id: ev-{i}\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progress\":{i}}}}}\n\n");
                    let _ = w.write_all(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes());
                    thread::sleep(Duration::from_millis(50));
                }
                // SO_LINGER 0: the close below (the last descriptor) is an RST
                let _ = socket2::SockRef::from(&w).set_linger(Some(Duration::ZERO));
                return;
            }
            Mode::Flood {
                chunk,
                total,
                written,
            } => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                // each event one JSON-RPC notification of `chunk` bytes
                let pad = "x".repeat(chunk.saturating_sub(78));
                let data = format!(
                    "data: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"data\":\"{pad}\"}}}}\n\n"
                );
                let framed = format!("{:x}\r\n{data}\r\n", data.len());
                let mut sent = 0;
                while sent < *total {
                    if w.write_all(framed.as_bytes()).is_err() {
                        return;
                    }
                    sent += data.len();
                    written.fetch_add(data.len(), Ordering::SeqCst);
                }
                w.write_all(b"0\r\n\r\n").is_ok()
            }
            Mode::Sse { n, gap } => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for i in 0..*n {
                    if i > 0 {
                        thread::sleep(*gap);
                    }
                    let ev = format!(
                        "id: ev-{i}\nretry: 1500\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progress\":{i}}}}}\n\n"
                    );
                    let chunk = format!("{:x}\r\n{ev}\r\n", ev.len());
                    if w.write_all(chunk.as_bytes())
                        .and_then(|_| w.flush())
                        .is_err()
                    {
                        return;
                    }
                }
                w.write_all(b"0\r\n\r\n").is_ok()
            }
        };
        if !ok {
            return;
        }
    }
}

fn write_json(w: &mut TcpStream, status: u16, body: &str) -> bool {
    let head = format!(
        "HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nMcp-Session-Id: upstream-session-1\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes())
        .and_then(|_| w.write_all(body.as_bytes()))
        .is_ok()
}

/// A JSON-RPC tools/call body padded to exactly `size` bytes.
pub fn tools_call_of_size(size: usize) -> Vec<u8> {
    let base = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big_echo","arguments":{"text":""}}}"#;
    assert!(size >= base.len());
    let pad = "x".repeat(size - base.len());
    let body = base.replace(r#""text":"""#, &format!(r#""text":"{pad}""#));
    assert_eq!(body.len(), size);
    body.into_bytes()
}

/// Open file descriptors of a process.
pub fn pid_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A numeric field of /proc/<pid>/status (`VmRSS:` in KiB, `Threads:`, ...).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// Whether a command exists on PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Path to the test peers (node/python scripts).
pub fn peers_dir() -> PathBuf {
    root().join("tests/peers")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A real MCP peer process (server-everything or the Python SDK server).
pub struct Peer {
    pub port: u16,
    child: std::process::Child,
}

impl Peer {
    /// `@modelcontextprotocol/server-everything` (streamableHttp) on a free loopback port.
    pub fn everything() -> Peer {
        Self::everything_on(free_port())
    }

    /// server-everything on `port` (a restarted upstream that forgot its sessions).
    pub fn everything_on(port: u16) -> Peer {
        let dir = peers_dir();
        assert!(
            dir.join("node_modules/@modelcontextprotocol/server-everything")
                .exists(),
            "npm test peers missing: run `make peers` (scripts/deps.sh)"
        );
        let child = Command::new(dir.join("everything.sh"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server-everything");
        Self::ready(Peer { port, child })
    }

    /// The Python SDK `MCPServer` (tests/peers/py_server.py) on a free loopback port.
    pub fn python() -> Peer {
        let port = free_port();
        let child = Command::new("python3")
            .arg(peers_dir().join("py_server.py"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start py_server.py");
        Self::ready(Peer { port, child })
    }

    fn ready(p: Peer) -> Peer {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", p.port)).is_ok() {
                return p;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("MCP peer did not listen on {}", p.port);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client script and returns its JSON step lines; panics with its
/// output if it fails.
pub fn run_client(cmd: &mut Command) -> Vec<serde_json::Value> {
    let out = cmd
        .current_dir(peers_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let all_ok = steps.iter().all(|s| s["ok"] == true);
    let done = steps.last().is_some_and(|s| s["step"] == "done");
    assert!(
        out.status.success() && all_ok && done,
        "client failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    steps
}
