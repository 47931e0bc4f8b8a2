//! `type: sse` upstreams: the gateway as a client of a 2024-11-05 HTTP+SSE
//! server, one legacy connection per client session, behind the relay's
//! frames (`tunnel::local` serves it as Streamable HTTP through the bridge).
//!
//! Per session: GET the upstream `url` (retried with backoff while it
//! fails to open, within the upstream's `timeout_ms`), wait for its
//! `endpoint` event, which must name a path on the same origin (anything
//! else is refused and logged: a legacy server must not steer the gateway's
//! requests elsewhere), then POST every client message there in order;
//! every `message` event of the stream goes back to the relay, which
//! routes it by JSON-RPC id to the waiting request or the GET stream. A
//! lost stream ends the session: its waiting requests get a JSON-RPC
//! error, later calls 404 and the client initializes again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::member::{self, Call};
use crate::tunnel::local::{Driver, Spec};
use crate::tunnel::protocol::{ClosedReason, Frame, MAX_FRAME_BYTES};
use crate::upstream::{Endpoint, Upstream};

/// Client messages queued per session while its connection opens or POSTs.
const QUEUE: usize = 256;
/// Opening attempts of a session's stream.
const ATTEMPTS: u32 = 4;

struct Conn {
    messages: mpsc::Sender<Bytes>,
    stop: Option<oneshot::Sender<()>>,
    last_used: Instant,
}

/// The legacy connections of one `type: sse` upstream.
pub struct LegacyClients {
    name: String,
    up: Arc<Upstream>,
    sessions: HashMap<String, Conn>,
    to_gw: mpsc::Sender<Frame>,
}

/// The driver of a `type: sse` upstream (installed into `tunnel::local`).
pub fn driver(name: &str, up: Arc<Upstream>, to_gw: mpsc::Sender<Frame>) -> Box<dyn Driver> {
    Box::new(LegacyClients {
        name: name.to_owned(),
        up,
        sessions: HashMap::new(),
        to_gw,
    })
}

#[async_trait]
impl Driver for LegacyClients {
    async fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::Open { session } => self.open(session).await,
            Frame::Message { session, message } => match self.sessions.get_mut(&session) {
                Some(c) => {
                    c.last_used = Instant::now();
                    let m = Bytes::from(message.get().to_owned());
                    if c.messages.try_send(m).is_err() {
                        log::warn!(
                            "sse upstream {}: session {session}: the legacy server does not keep up; ending the session",
                            self.name
                        );
                        self.end(&session);
                    }
                }
                None => {
                    let _ = self
                        .to_gw
                        .send(Frame::Closed {
                            session,
                            reason: ClosedReason::Exited,
                        })
                        .await;
                }
            },
            Frame::Close { session } => self.end(&session),
            Frame::Closed { .. } => {}
        }
    }

    fn forget(&mut self, session: &str) {
        self.sessions.remove(session);
    }

    fn reap_idle(&mut self) {
        let idle = self.up.legacy_limits.1;
        let stale: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, c)| c.stop.is_some() && c.last_used.elapsed() > idle)
            .map(|(k, _)| k.clone())
            .collect();
        for s in stale {
            log::info!(
                "sse upstream {}: session {s} idle for {} s; closing its legacy connection",
                self.name,
                idle.as_secs()
            );
            self.end(&s);
        }
    }

    fn reconfigure(&mut self, spec: &Spec) {
        if let Spec::Sse(up) = spec {
            self.up = up.clone();
        }
    }

    async fn stop_all(&mut self) {
        let all: Vec<String> = self.sessions.keys().cloned().collect();
        for s in all {
            self.end(&s);
        }
        self.sessions.clear();
    }

    fn len(&self) -> usize {
        self.sessions.len()
    }
}

impl LegacyClients {
    fn end(&mut self, session: &str) {
        if let Some(stop) = self.sessions.get_mut(session).and_then(|c| c.stop.take()) {
            let _ = stop.send(());
        }
    }

    async fn open(&mut self, session: String) {
        let max = self.up.legacy_limits.0;
        if self.sessions.len() >= max {
            log::warn!(
                "sse upstream {}: at its limit of {max} legacy connections; session refused",
                self.name
            );
            let _ = self
                .to_gw
                .send(Frame::Closed {
                    session,
                    reason: ClosedReason::Refused,
                })
                .await;
            return;
        }
        let (messages, queued) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(serve_session(
            self.name.clone(),
            self.up.clone(),
            session.clone(),
            queued,
            stopped,
            self.to_gw.clone(),
        ));
        self.sessions.insert(
            session,
            Conn {
                messages,
                stop: Some(stop),
                last_used: Instant::now(),
            },
        );
    }
}

/// One client session's legacy connection, until it ends; then `closed`.
async fn serve_session(
    name: String,
    up: Arc<Upstream>,
    session: String,
    queued: mpsc::Receiver<Bytes>,
    stopped: oneshot::Receiver<()>,
    to_gw: mpsc::Sender<Frame>,
) {
    let reason = match connect(&name, &up).await {
        Err(reason) => reason,
        Ok((stream, post_to)) => {
            relay(
                &name, &up, &session, stream, post_to, queued, stopped, &to_gw,
            )
            .await
        }
    };
    let _ = to_gw.send(Frame::Closed { session, reason }).await;
}

/// Opens the legacy stream (with backoff) and reads its `endpoint` event.
async fn connect(name: &str, up: &Arc<Upstream>) -> Result<(Events, Arc<Endpoint>), ClosedReason> {
    let Some(legacy) = up.legacy.clone() else {
        return Err(ClosedReason::SpawnFailed);
    };
    let deadline = tokio::time::Instant::now() + up.timeout;
    let call = Call {
        request_id: "legacy-sse",
        ..Call::default()
    };
    let mut attempt = 0u32;
    let stream = loop {
        let why = match member::open_stream(up, &legacy, &call, deadline).await {
            Ok(Some(s)) => break s,
            Ok(None) => "it did not answer with an event stream".to_string(),
            Err(e) => e.to_string(),
        };
        attempt += 1;
        let wait = Duration::from_millis(100u64 << attempt.min(6));
        if attempt >= ATTEMPTS || tokio::time::Instant::now() + wait >= deadline {
            log::warn!(
                "sse upstream {name}: cannot open {} ({attempt} attempts): {why}",
                legacy.url
            );
            return Err(ClosedReason::SpawnFailed);
        }
        tokio::time::sleep(wait).await;
    };
    let mut events = Events::new(stream);
    let first = tokio::time::timeout_at(deadline, events.next()).await;
    let Ok(Some(ev)) = first else {
        log::warn!(
            "sse upstream {name}: {} sent no endpoint event within timeout_ms",
            legacy.url
        );
        return Err(ClosedReason::SpawnFailed);
    };
    if ev.kind != "endpoint" {
        log::warn!(
            "sse upstream {name}: the first event of {} is \"{}\", not endpoint",
            legacy.url,
            ev.kind
        );
        return Err(ClosedReason::SpawnFailed);
    }
    let target = String::from_utf8_lossy(&ev.data).trim().to_string();
    match post_endpoint(&legacy, &target) {
        Some(e) => Ok((events, Arc::new(e))),
        None => {
            log::warn!(
                "sse upstream {name}: refused the endpoint \"{}\" announced by {}: not a path on the same origin",
                target.escape_debug(),
                legacy.url
            );
            Err(ClosedReason::SpawnFailed)
        }
    }
}

/// Where the `endpoint` event sends the POSTs: a path (absolute, or
/// relative to the stream's path) or a URL of the stream's own origin;
/// anything else (another host, port or scheme, `//host`, odd characters)
/// is `None`.
pub fn post_endpoint(legacy: &Endpoint, target: &str) -> Option<Endpoint> {
    if target.is_empty() || target.len() > 2048 || target.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return None;
    }
    let scheme = if legacy.tls { "https://" } else { "http://" };
    let path = if let Some(rest) = target.strip_prefix(scheme) {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !authority.eq_ignore_ascii_case(&legacy.host_header) {
            return None;
        }
        if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        }
    } else if target.contains("://") || target.starts_with("//") || target.starts_with('\\') {
        return None;
    } else if target.starts_with('/') {
        target.to_string()
    } else {
        // relative to the stream's path
        let base = legacy.path.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        format!("{}{target}", if dir.is_empty() { "/" } else { dir })
    };
    legacy.with_path(&path)
}

/// Relays one live session until its stream ends or it is stopped.
#[allow(clippy::too_many_arguments)]
async fn relay(
    name: &str,
    up: &Arc<Upstream>,
    session: &str,
    mut events: Events,
    post_to: Arc<Endpoint>,
    mut queued: mpsc::Receiver<Bytes>,
    mut stopped: oneshot::Receiver<()>,
    to_gw: &mpsc::Sender<Frame>,
) -> ClosedReason {
    // POSTs go out in order, beside the stream
    let (up2, name2, target) = (up.clone(), name.to_owned(), post_to.clone());
    let poster = tokio::spawn(async move {
        while let Some(m) = queued.recv().await {
            let call = Call {
                request_id: "legacy-sse",
                ..Call::default()
            };
            let deadline = tokio::time::Instant::now() + up2.timeout;
            match member::post(&up2, &target, &call, m, deadline, 64 * 1024).await {
                Ok(r) if r.status < 300 => {}
                Ok(r) => log::warn!(
                    "sse upstream {name2}: POST {} answered {}",
                    target.url,
                    r.status
                ),
                Err(e) => log::warn!("sse upstream {name2}: POST {}: {e}", target.url),
            }
        }
    });
    let reason = loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(ev) if ev.kind == "message" => match Frame::message(session, &ev.data) {
                    Ok(f) => {
                        if to_gw.send(f).await.is_err() {
                            break ClosedReason::Exited;
                        }
                    }
                    Err(_) => log::warn!(
                        "sse upstream {name}: session {session}: an event that is not JSON; dropped"
                    ),
                },
                Some(_) => {}
                None => {
                    log::warn!("sse upstream {name}: session {session}: the legacy stream ended");
                    break ClosedReason::Crashed;
                }
            },
            _ = &mut stopped => break ClosedReason::Exited,
        }
    };
    poster.abort();
    reason
}

/// One event of a legacy stream.
struct Event {
    kind: String,
    data: Vec<u8>,
}

/// The events of a legacy stream (WHATWG field rules; an event over
/// [`MAX_FRAME_BYTES`] ends the stream).
struct Events {
    stream: member::Stream,
    buf: Vec<u8>,
    kind: String,
    data: Vec<u8>,
    has_data: bool,
}

impl Events {
    fn new(stream: member::Stream) -> Events {
        Events {
            stream,
            buf: Vec::new(),
            kind: String::new(),
            data: Vec::new(),
            has_data: false,
        }
    }

    /// The next complete event; `None` when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(ev) = self.line(&line) {
                    return Some(ev);
                }
            }
            if self.buf.len() + self.data.len() > MAX_FRAME_BYTES {
                return None;
            }
            let chunk = self.stream.next().await?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let kind = std::mem::take(&mut self.kind);
            let data = std::mem::take(&mut self.data);
            let had = std::mem::replace(&mut self.has_data, false);
            return had.then(|| Event {
                kind: if kind.is_empty() {
                    "message".into()
                } else {
                    kind
                },
                data,
            });
        }
        if line.first() == Some(&b':') {
            return None;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.kind = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.has_data = true;
                self.data.extend_from_slice(value);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy() -> Endpoint {
        let url = "http://127.0.0.1:8000/mcp/sse";
        let p = crate::upstream::parse_url(url).unwrap();
        let uri = http::Uri::try_from(p.path.as_str()).unwrap();
        Endpoint::new(url, p, None, uri)
    }

    #[test]
    fn the_endpoint_must_stay_on_the_streams_origin() {
        let l = legacy();
        let path = |t: &str| post_endpoint(&l, t).map(|e| e.path);
        assert_eq!(
            path("/messages?sessionId=abc").as_deref(),
            Some("/messages?sessionId=abc")
        );
        assert_eq!(path("messages?s=1").as_deref(), Some("/mcp/messages?s=1"));
        assert_eq!(
            path("http://127.0.0.1:8000/m?s=1").as_deref(),
            Some("/m?s=1")
        );
        for evil in [
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:8001/m",
            "https://127.0.0.1:8000/m",
            "//evil.example/m",
            "http://127.0.0.1:8000@evil.example/m",
            "ftp://127.0.0.1:8000/m",
            "/m\r\nHost: evil",
            "/m with space",
            "\\\\evil\\m",
            "",
        ] {
            assert_eq!(path(evil), None, "{evil:?}");
        }
        // the POST endpoint keeps the stream's address and Host
        let e = post_endpoint(&l, "/m").unwrap();
        assert_eq!(e.addr, l.addr);
        assert_eq!(e.host_header, l.host_header);
    }
}
