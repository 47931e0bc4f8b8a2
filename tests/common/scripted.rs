//! A scripted upstream for attack tests: it records every request it
//! receives (method, path, headers, body) and answers each one with what a
//! closure returns: any status, headers, and body chunks written as they
//! are (so a test can send SSE with CR line ends, a content coding, a
//! `Content-Type` in odd case, a lying 400).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The JSON-RPC method of the body, if any.
    pub fn rpc_method(&self) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()?
            .get("method")?
            .as_str()
            .map(str::to_string)
    }
    /// The JSON-RPC id of the body (null when none).
    pub fn rpc_id(&self) -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("id").cloned())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// What the upstream answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Written one by one; chunked framing unless `length` is set.
    pub chunks: Vec<Vec<u8>>,
    /// Send `Content-Length` (the sum of the chunks) instead of chunked.
    pub length: bool,
}

impl Reply {
    /// `status` with a JSON body and `Content-Length`.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            chunks: vec![body.as_bytes().to_vec()],
            length: true,
        }
    }
    /// 200 `text/event-stream`, chunked, the given raw bytes.
    pub fn sse(raw: &[u8]) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            chunks: vec![raw.to_vec()],
            length: false,
        }
    }
    /// 202 without a body.
    pub fn accepted() -> Reply {
        Reply {
            status: 202,
            headers: vec![],
            chunks: vec![],
            length: true,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Script = dyn Fn(&Req) -> Reply + Send + Sync;

/// A running scripted upstream.
pub struct Scripted {
    pub port: u16,
    received: Arc<Mutex<Vec<Req>>>,
}

impl Scripted {
    pub fn start(script: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind scripted upstream");
        let port = l.local_addr().expect("addr").port();
        let received: Arc<Mutex<Vec<Req>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let rec = received.clone();
        thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (rec, script) = (rec.clone(), script.clone());
                thread::spawn(move || serve(conn, &rec, &*script));
            }
        });
        Scripted { port, received }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/upstream-mcp", self.port)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Req> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.received.lock().map_or(0, |r| r.len())
    }
}

fn serve(conn: TcpStream, rec: &Mutex<Vec<Req>>, script: &Script) {
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    conn.set_nodelay(true).ok();
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let Some((method, path, headers)) = super::client::parse_head(&line, &mut r) else {
            return;
        };
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                if r.read_line(&mut size).unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut c = vec![0; n + 2];
                if r.read_exact(&mut c).is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&c[..n]);
            }
        } else {
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            body = vec![0; len];
            if r.read_exact(&mut body).is_err() {
                return;
            }
        }
        let req = Req {
            method,
            path,
            headers,
            body,
        };
        let reply = script(&req);
        if let Ok(mut list) = rec.lock() {
            list.push(req);
        }
        let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if reply.length {
            let n: usize = reply.chunks.iter().map(Vec::len).sum();
            head.push_str(&format!("Content-Length: {n}\r\n\r\n"));
        } else {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        }
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        for c in &reply.chunks {
            let ok = if reply.length {
                w.write_all(c)
            } else {
                w.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                    .and_then(|_| w.write_all(c))
                    .and_then(|_| w.write_all(b"\r\n"))
            };
            if ok.is_err() {
                return;
            }
        }
        if !reply.length && w.write_all(b"0\r\n\r\n").is_err() {
            return;
        }
    }
}
