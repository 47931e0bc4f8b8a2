//! A minimal blocking HTTP/1.1 client for talking to the gateway: raw bytes
//! in, one parsed response out (Content-Length, chunked or close-delimited),
//! JSON POSTs to /mcp, SSE responses timed event by event, and request
//! bodies of an exact size.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

/// A JSON-RPC tools/call body padded to exactly `size` bytes.
pub fn tools_call_of_size(size: usize) -> Vec<u8> {
    let base = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big_echo","arguments":{"text":""}}}"#;
    assert!(size >= base.len());
    let pad = "x".repeat(size - base.len());
    let body = base.replace(r#""text":"""#, &format!(r#""text":"{pad}""#));
    assert_eq!(body.len(), size);
    body.into_bytes()
}

/// Header name (lowercased) and value pairs, in order.
pub type Headers = Vec<(String, String)>;

/// A request head as the test upstreams read it: method and path from the
/// request line already read, then the headers (names lowercased) up to
/// the blank line; `None` when the connection ends first.
pub fn parse_head(request_line: &str, r: &mut impl BufRead) -> Option<(String, String, Headers)> {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            return Some((method, path, headers));
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// Reads a GET SSE stream on `path` for at most `for_`; the head and the
/// events (blank-line terminated) that arrived.
pub fn sse_events_on(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    for_: Duration,
) -> (Response, Vec<String>) {
    sse_stream_on(port, "GET", path, headers, b"", for_)
}

/// Like [`sse_events_on`] for any method and body (a POST whose answer
/// is a stream: `subscriptions/listen`).
pub fn sse_stream_on(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    for_: Duration,
) -> (Response, Vec<String>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let deadline = Instant::now() + for_;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // de-chunk loosely: drop the chunk-size lines
    let mut events = Vec::new();
    let mut pending = String::new();
    for line in body.split("\r\n") {
        if !line.is_empty() && line.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        pending.push_str(line);
    }
    while let Some(i) = pending.find("\n\n") {
        events.push(pending[..i].to_string());
        pending.drain(..i + 2);
    }
    (
        Response {
            status,
            headers,
            body: Vec::new(),
        },
        events,
    )
}
