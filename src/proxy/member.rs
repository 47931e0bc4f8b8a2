//! The gateway as an MCP client of a virtual server's members: one POST
//! (or DELETE) to a member endpoint over Pingora's HTTP/1 connector, with
//! the member's own session id, protocol version and credential, bounded
//! by a deadline. The answer to the request is read from a JSON body or
//! the request's SSE stream (every message read by the same rules as a
//! proxied answer: `answer::SseGuard`); messages before it are dropped.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use tokio::time::Instant;

use crate::answer::{self, Media};
use crate::upstream::{Endpoint, Upstream};

/// The connection pool of member requests (idle connections are kept
/// per endpoint, like the proxy's).
fn connector() -> &'static Connector {
    static C: OnceLock<Connector> = OnceLock::new();
    C.get_or_init(|| Connector::new(None))
}

/// Builds the member connection pool ahead of the first request (it loads
/// the system CA store: done at startup, not inside a member deadline on a
/// worker thread).
pub fn warm() {
    let _ = connector();
}

/// What one member request carries besides its body.
#[derive(Debug, Clone, Default)]
pub struct Call<'a> {
    /// The member's own `Mcp-Session-Id` (`None` or empty: none).
    pub session: Option<&'a str>,
    /// The member's protocol version (`MCP-Protocol-Version`).
    pub version: Option<&'a str>,
    /// The gateway's request id.
    pub request_id: &'a str,
    /// The client address and scheme (`X-Forwarded-*`).
    pub forwarded: Option<(&'a str, &'a str)>,
    /// Headers from the principal (`forward_claims`).
    pub claims: &'a [(http::HeaderName, http::HeaderValue)],
    /// `Mcp-Method` (2026-07-28 members).
    pub method: Option<&'a str>,
}

/// A member's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The member's `Mcp-Session-Id`, if it sent one.
    pub session: Option<String>,
    /// The JSON-RPC message answering the request (JSON body, or the
    /// first SSE message that is a response); `None` for 202 or none.
    pub message: Option<Bytes>,
}

/// Why a member request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Past the deadline.
    Timeout,
    /// Connect, write or read failed; or an answer the gateway does not read.
    Broken(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => f.write_str("member_timeout"),
            Failure::Broken(m) => write!(f, "{m}"),
        }
    }
}

/// POSTs `body` to a member endpoint; the reply by `deadline`.
pub async fn post(
    up: &Upstream,
    ep: &Endpoint,
    call: &Call<'_>,
    body: Bytes,
    deadline: Instant,
    max: usize,
) -> Result<Reply, Failure> {
    match tokio::time::timeout_at(deadline, exchange(up, ep, call, "POST", Some(body), max)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout),
    }
}

/// POSTs `body` (JSON-RPC `method`) in the background to the upstream
/// endpoint this request was forwarded to, with its session's own id (and
/// a federated member's version), bounded by the upstream's `timeout_ms`;
/// `then` gets the reply. Nothing when the request has no upstream yet.
pub fn post_beside(
    ctx: &super::RequestCtx,
    method: &'static str,
    body: Bytes,
    max: usize,
    then: impl FnOnce(Reply) + Send + 'static,
) {
    let (Some(up), Some(ep)) = (ctx.upstream.clone(), ctx.endpoint.as_ref()) else {
        return;
    };
    let endpoint = ep.0.clone();
    let session = ctx.session.as_ref().map(|s| s.session.clone());
    // a federated call's member chose its version; a routed call's
    // upstream takes a request without one
    let version = ctx.member.as_ref().map(|m| m.version.clone());
    let request_id = ctx.request_id.clone();
    tokio::spawn(async move {
        let call = Call {
            session: session.as_deref(),
            version: version.as_deref(),
            request_id: &request_id,
            method: Some(method),
            ..Call::default()
        };
        let deadline = Instant::now() + up.timeout;
        match post(&up, &endpoint, &call, body, deadline, max).await {
            Ok(r) => then(r),
            Err(e) => log::debug!("{request_id}: {method} to {}: {e}", up.name),
        }
    });
}

/// DELETEs a member's session; its status by `deadline`.
pub async fn delete(
    up: &Upstream,
    ep: &Endpoint,
    call: &Call<'_>,
    deadline: Instant,
) -> Result<u16, Failure> {
    match tokio::time::timeout_at(deadline, exchange(up, ep, call, "DELETE", None, 64 * 1024)).await
    {
        Ok(r) => r.map(|r| r.status),
        Err(_) => Err(Failure::Timeout),
    }
}

/// A member's GET stream, open: its SSE body is read with
/// [`Stream::next`] (each read bounded by the upstream's
/// `sse_idle_timeout_ms`).
pub struct Stream {
    session: pingora::protocols::http::client::HttpSession,
}

impl Stream {
    /// The next chunk; `None` when the stream ended or failed.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.session.read_response_body().await.ok().flatten()
    }
}

/// Opens a member's GET stream. `Ok(None)` when the member has none
/// (405, or an answer that is not `text/event-stream`); `Err` with the
/// status for 404 (its session is gone).
pub async fn open_stream(
    up: &Upstream,
    ep: &Endpoint,
    call: &Call<'_>,
    deadline: Instant,
) -> Result<Option<Stream>, Failure> {
    open(up, ep, call, None, deadline).await
}

/// POSTs `body` (a `subscriptions/listen`) and keeps its answer stream
/// open; like [`open_stream`].
pub async fn open_post_stream(
    up: &Upstream,
    ep: &Endpoint,
    call: &Call<'_>,
    body: Bytes,
    deadline: Instant,
) -> Result<Option<Stream>, Failure> {
    open(up, ep, call, Some(body), deadline).await
}

async fn open(
    up: &Upstream,
    ep: &Endpoint,
    call: &Call<'_>,
    body: Option<Bytes>,
    deadline: Instant,
) -> Result<Option<Stream>, Failure> {
    let opened = tokio::time::timeout_at(deadline, async {
        let peer = super::peer::member_stream_peer(up, ep).map_err(broken)?;
        let (mut s, _) = connector()
            .get_http_session(&*peer)
            .await
            .map_err(|e| Failure::Broken(format!("connect: {e}")))?;
        let method = if body.is_some() { "POST" } else { "GET" };
        let mut req = RequestHeader::build(method, ep.path.as_bytes(), None).map_err(broken)?;
        headers(&mut req, up, ep, call, body.as_ref())?;
        if body.is_none() {
            req.insert_header("accept", "text/event-stream")
                .map_err(broken)?;
        }
        s.write_request_header(Box::new(req))
            .await
            .map_err(broken)?;
        if let Some(b) = body {
            s.write_request_body(b, true).await.map_err(broken)?;
        }
        s.finish_request_body().await.map_err(broken)?;
        s.read_response_header().await.map_err(broken)?;
        Ok::<_, Failure>(s)
    })
    .await
    .map_err(|_| Failure::Timeout)??;
    let (status, media) = match opened.response_header() {
        Some(r) => (
            r.status.as_u16(),
            answer::media(r.headers.get("content-type").map(|v| v.as_bytes())),
        ),
        None => return Err(broken("no response header")),
    };
    let mut opened = opened;
    if status == 400 {
        // a 400 that speaks of the session means it is gone (SDK servers)
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = opened.read_response_body().await {
            body.extend_from_slice(&chunk);
            if body.len() > 4096 {
                break;
            }
        }
        if answer::about_the_session(&body) {
            return Err(Failure::Broken("session_gone".into()));
        }
    }
    if status == 404 {
        return Err(Failure::Broken("session_gone".into()));
    }
    if status != 200 || media != Media::Sse {
        return Ok(None);
    }
    Ok(Some(Stream { session: opened }))
}

/// The request headers every member request carries.
fn headers(
    req: &mut RequestHeader,
    up: &Upstream,
    ep: &Endpoint,
    call: &Call<'_>,
    body: Option<&Bytes>,
) -> Result<(), Failure> {
    let h =
        |req: &mut RequestHeader, k: &'static str, v: &str| req.insert_header(k, v).map_err(broken);
    h(req, "host", &ep.host_header)?;
    h(req, "accept", "application/json, text/event-stream")?;
    h(req, "accept-encoding", "identity")?;
    h(req, "x-request-id", call.request_id)?;
    if let Some(b) = body {
        h(req, "content-type", "application/json")?;
        req.insert_header("content-length", b.len())
            .map_err(broken)?;
    }
    if let Some(sid) = call.session.filter(|s| !s.is_empty()) {
        h(req, "mcp-session-id", sid)?;
    }
    if let Some(v) = call.version.filter(|v| !v.is_empty()) {
        h(req, "mcp-protocol-version", v)?;
    }
    if let Some(m) = call.method {
        h(req, "mcp-method", m)?;
    }
    if let Some((ip, proto)) = call.forwarded {
        h(req, "x-forwarded-for", ip)?;
        h(req, "x-forwarded-proto", proto)?;
    }
    for (k, v) in call.claims {
        req.insert_header(k.clone(), v.clone()).map_err(broken)?;
    }
    if let Some(a) = &up.auth {
        req.insert_header(a.header.clone(), a.value.clone())
            .map_err(broken)?;
    }
    Ok(())
}

fn broken(e: impl std::fmt::Display) -> Failure {
    Failure::Broken(e.to_string())
}

async fn exchange(
    up: &Upstream,
    ep: &Endpoint,
    call: &Call<'_>,
    method: &str,
    body: Option<Bytes>,
    max: usize,
) -> Result<Reply, Failure> {
    let peer = super::peer::member_peer(up, ep).map_err(broken)?;
    let (mut s, _reused) = connector()
        .get_http_session(&*peer)
        .await
        .map_err(|e| Failure::Broken(format!("connect: {e}")))?;
    let mut req = RequestHeader::build(method, ep.path.as_bytes(), None).map_err(broken)?;
    headers(&mut req, up, ep, call, body.as_ref())?;
    s.write_request_header(Box::new(req))
        .await
        .map_err(broken)?;
    if let Some(b) = body {
        s.write_request_body(b, true).await.map_err(broken)?;
    }
    s.finish_request_body().await.map_err(broken)?;
    s.read_response_header().await.map_err(broken)?;
    let (status, session, media) = {
        let resp = s
            .response_header()
            .ok_or_else(|| broken("no response header"))?;
        let session = resp
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let media = answer::media(resp.headers.get("content-type").map(|v| v.as_bytes()));
        (resp.status.as_u16(), session, media)
    };
    let coded = s
        .response_header()
        .and_then(|r| r.headers.get("content-encoding"))
        .is_some_and(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"));
    if coded {
        return Err(broken("member answer has a content coding"));
    }
    let message = match media {
        Media::Sse => read_sse(&mut s, max).await?,
        _ => {
            let mut buf = Vec::new();
            while let Some(chunk) = s.read_response_body().await.map_err(broken)? {
                if buf.len() + chunk.len() > max {
                    return Err(broken("member answer larger than max_response_bytes"));
                }
                buf.extend_from_slice(&chunk);
            }
            // the body was read to its end: the connection can serve again
            connector()
                .release_http_session(s, &*peer, Some(Duration::from_secs(60)))
                .await;
            (!buf.is_empty()).then(|| Bytes::from(buf))
        }
    };
    Ok(Reply {
        status,
        session,
        message,
    })
}

/// Reads SSE events until one carries a JSON-RPC response; that message.
/// The connection is not reused (the member may keep its stream open).
async fn read_sse(
    s: &mut pingora::protocols::http::client::HttpSession,
    max: usize,
) -> Result<Option<Bytes>, Failure> {
    let mut guard = answer::SseGuard::new(max);
    let mut events = Vec::new();
    loop {
        let chunk = s.read_response_body().await.map_err(broken)?;
        let end = chunk.is_none();
        let out = guard.push(chunk.as_deref().unwrap_or_default(), end, &|_, _| true);
        events.extend_from_slice(&out);
        for data in take_events(&mut events) {
            if is_response(&data) {
                return Ok(Some(Bytes::from(data)));
            }
        }
        if end {
            return Ok(None);
        }
    }
}

/// The data of every complete event in canonical SSE text (`buf` keeps
/// what is left).
pub fn take_events(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
        let event: Vec<u8> = buf.drain(..end + 2).collect();
        let mut data = Vec::new();
        let mut any = false;
        for line in event.split(|b| *b == b'\n') {
            if let Some(d) = line.strip_prefix(b"data: ") {
                if any {
                    data.push(b'\n');
                }
                any = true;
                data.extend_from_slice(d);
            }
        }
        if any {
            out.push(data);
        }
    }
    out
}

/// Whether a message is a JSON-RPC response (has `result` or `error`).
fn is_response(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    crate::federation::json::Members::of(text).is_some_and(|m| {
        m.get("method").is_none() && (m.get("result").is_some() || m.get("error").is_some())
    })
}
