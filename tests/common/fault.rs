//! The fault-injection upstream: a tiny threaded HTTP/1.1 server on a
//! reserved loopback port that echoes what it received, streams SSE, stalls,
//! resets, floods, and can be stopped and brought back on its port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::ports::Port;

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
    stopped: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    reservation: Port,
}

impl Upstream {
    pub fn start(mode: Mode) -> Upstream {
        // a reserved port is checked bindable, but something that ignores
        // reservations (a stray process of an earlier test binary) may take
        // it before the bind: then another reservation is tried
        for _ in 0..20 {
            let reservation = Port::reserve();
            if let Ok(l) = TcpListener::bind(("127.0.0.1", reservation.get())) {
                return Self::serve(mode, reservation, l);
            }
        }
        Self::start_on(mode, Port::reserve())
    }

    /// Starts on a reserved port: a stopped replica comes back on its port
    /// ([`Upstream::reservation`]).
    pub fn start_on(mode: Mode, reservation: Port) -> Upstream {
        let port = reservation.get();
        // a replica brought back on its port may find it briefly taken
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let l = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(_) if std::time::Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!(
                    "bind upstream on {port}: {e}; sockets on that port: {}",
                    super::procfs::sockets_on(port)
                ),
            }
        };
        Self::serve(mode, reservation, l)
    }

    fn serve(mode: Mode, reservation: Port, l: TcpListener) -> Upstream {
        let port = reservation.get();
        l.set_nonblocking(true).expect("nonblocking");
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
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
            reservation,
        }
    }

    /// The port's reservation, to start a replacement on it after [`Upstream::stop`].
    pub fn reservation(&self) -> Port {
        self.reservation.clone()
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
    stopped: Arc<AtomicBool>,
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
        let Some((method, path, headers)) = super::client::parse_head(&line, &mut r) else {
            return;
        };
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
