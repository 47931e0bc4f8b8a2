//! The bridge: a private Streamable HTTP server on a Unix socket that
//! serves every `type: tunnel` upstream (`/tunnel/<name>`) from the tunnel
//! registered under that name, and every `type: stdio` upstream
//! (`/stdio/<name>`) from the processes the gateway runs itself
//! (`super::local`). The proxy reaches it like any upstream, so every hook
//! (auth, policy, rate limits, sealed sessions, list filtering, audit)
//! applies to them unchanged.
//!
//! Per request: POST `initialize` without a session starts one (a local
//! process on the client) and answers with `Mcp-Session-Id`; other POSTs go
//! to their session and are answered with JSON, or SSE when related
//! messages come first ([`super::relay`]); notifications and client
//! responses get 202; GET opens the session's stream (with a comment every
//! 15 s so idle timeouts do not cut it); DELETE ends the session. An unknown
//! session is 404 (clients re-initialize). A 2026-07-28 (stateless) request
//! to a bridged upstream is served from a session the bridge holds for
//! its principal (named by the proxy in [`PRINCIPAL_HEADER`]; initialized on
//! first use, again when its process is gone; `server/discover` answered
//! from its `initialize` result; results upgraded for that revision). A
//! process that ended before
//! answering or a tunnel that is not connected is 502 with a JSON-RPC error,
//! a session refused for the process limit 503.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::sync::mpsc;

use super::relay::{Ended, Item, Link, Reply};
use crate::jsonrpc::error_body;

/// Whose call a 2026-07-28 request to a stdio or sse upstream is (set by
/// the proxy, hex of the principal digest; never a client's header).
pub const PRINCIPAL_HEADER: &str = "x-mcp-edge-principal";
/// Sessions held for 2026-07-28 clients at most (per gateway process).
const MAX_HELD: usize = 4096;
/// The initialize the bridge sends for a 2026-07-28 client's held session.
const HELD_INIT: &[u8] = br#"{"jsonrpc":"2.0","id":"mcp-edge-held","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp-edge","version":"1"}}}"#;
const HELD_INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Largest request body the bridge reads (the proxy already enforced
/// `limits.max_body_bytes`; this only bounds a confused peer).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// SSE comment interval on idle GET streams.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The bridge service's app.
#[derive(Debug, Default)]
pub struct Bridge;

/// A whole response the bridge makes itself.
struct Plain {
    status: u16,
    body: Bytes,
    session: Option<String>,
}

fn error(status: u16, code: i32, message: &str) -> Plain {
    Plain {
        status,
        body: error_body(None, code, message),
        session: None,
    }
}

/// An error answering the request whose id is `id` (JSON text, from
/// [`crate::jsonrpc::peek`]): the client can match it to its call.
fn error_for(id: Option<&str>, status: u16, code: i32, message: &str) -> Plain {
    let id: serde_json::Value = id
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    Plain {
        status,
        body: Bytes::from(body.to_string()),
        session: None,
    }
}

/// Which kind of server a bridge path serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Tunnel,
    Stdio,
    Sse,
}

/// The status and message for a session that ended under a request.
fn ended(e: Ended, served: Served) -> (u16, &'static str) {
    use super::protocol::ClosedReason;
    let stdio = served == Served::Stdio;
    if served == Served::Sse {
        return match e {
            Ended::Process(ClosedReason::Crashed) => {
                (502, "the legacy SSE stream of the upstream ended")
            }
            Ended::Process(ClosedReason::Refused) => (
                503,
                "the sse upstream is at its max_sessions; try again later",
            ),
            Ended::Process(ClosedReason::SpawnFailed) => (
                502,
                "the gateway could not open the upstream's legacy SSE stream",
            ),
            Ended::SessionClosed => (502, "the session was closed"),
            _ => (502, "the legacy SSE connection closed"),
        };
    }
    match e {
        Ended::Process(ClosedReason::Crashed) if stdio => {
            (502, "the stdio MCP server process crashed")
        }
        Ended::Process(ClosedReason::Crashed) => (502, "the tunneled MCP server process crashed"),
        Ended::Process(ClosedReason::Refused) if stdio => (
            503,
            "the stdio upstream is at its max_processes; try again later",
        ),
        Ended::Process(ClosedReason::Refused) => (503, "the tunnel client is at its max_sessions"),
        Ended::Process(ClosedReason::SpawnFailed) if stdio => (
            502,
            "the gateway could not start the stdio MCP server process",
        ),
        Ended::Process(ClosedReason::SpawnFailed) => (
            502,
            "the tunnel client could not start the MCP server process",
        ),
        Ended::Process(_) if stdio => (502, "the stdio MCP server process exited"),
        Ended::Process(_) => (502, "the tunneled MCP server process exited"),
        Ended::TunnelDown if stdio => (502, "the stdio upstream stopped"),
        Ended::TunnelDown => (502, "the tunnel disconnected"),
        Ended::SessionClosed => (502, "the session was closed"),
    }
}

async fn write_plain(http: &mut ServerSession, p: Plain) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(p.status, Some(4))?;
    if !p.body.is_empty() {
        resp.insert_header("content-type", "application/json")?;
    }
    resp.insert_header("content-length", p.body.len().to_string())?;
    if let Some(s) = p.session {
        resp.insert_header("mcp-session-id", s)?;
    }
    http.write_response_header(Box::new(resp)).await?;
    http.write_response_body(p.body, true).await?;
    Ok(())
}

fn sse_event(data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 16);
    b.extend_from_slice(b"event: message\ndata: ");
    b.extend_from_slice(data);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

async fn start_stream(http: &mut ServerSession, session: Option<String>) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(200, Some(4))?;
    resp.insert_header("content-type", "text/event-stream")?;
    resp.insert_header("cache-control", "no-cache")?;
    resp.insert_header("transfer-encoding", "chunked")?;
    if let Some(s) = session {
        resp.insert_header("mcp-session-id", s)?;
    }
    http.write_response_header(Box::new(resp)).await
}

/// Relays `rest` as SSE events until the response (or the end).
async fn pump(
    http: &mut ServerSession,
    mut rest: mpsc::Receiver<Item>,
    heartbeat: bool,
) -> pingora::Result<()> {
    loop {
        let next = if heartbeat {
            match tokio::time::timeout(HEARTBEAT, rest.recv()).await {
                Ok(n) => n,
                Err(_) => {
                    http.write_response_body(Bytes::from_static(b": keepalive\n\n"), false)
                        .await?;
                    continue;
                }
            }
        } else {
            rest.recv().await
        };
        match next {
            Some(Item::Message(m)) => http.write_response_body(sse_event(&m), false).await?,
            Some(Item::Final(m)) => {
                http.write_response_body(sse_event(&m), true).await?;
                return Ok(());
            }
            // the process or the tunnel went away mid-stream: end it
            Some(Item::Ended(_)) | None => {
                http.write_response_body(Bytes::new(), true).await?;
                return Ok(());
            }
        }
    }
}

async fn read_body(http: &mut ServerSession) -> Option<Bytes> {
    let mut body = BytesMut::new();
    loop {
        match http.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return None;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Some(body.freeze()),
            Err(_) => return None,
        }
    }
}

fn is_initialize(body: &[u8]) -> bool {
    crate::jsonrpc::peek(body).is_some_and(|p| p.method.as_deref() == Some("initialize"))
}

/// Serves one request of the bridge.
async fn serve(http: &mut ServerSession) -> pingora::Result<()> {
    let req = http.req_header();
    let method = req.method.clone();
    let path = req.uri.path();
    let (served, link) = if let Some(name) = path.strip_prefix("/stdio/") {
        (Served::Stdio, super::local::link(name))
    } else if let Some(name) = path.strip_prefix("/sse/") {
        (Served::Sse, super::local::link(name))
    } else {
        let name = path.strip_prefix("/tunnel/").unwrap_or_default();
        (Served::Tunnel, super::registry().get(name))
    };
    let session = req
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let principal = req
        .headers
        .get(PRINCIPAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let stateless = crate::mcp::era(
        req.headers
            .get("mcp-protocol-version")
            .map(|v| v.as_bytes()),
    ) == Ok(crate::mcp::Era::Stateless);
    let Some(link) = link else {
        let why = match served {
            Served::Tunnel => "no tunnel is connected for this upstream",
            Served::Stdio => "no such stdio upstream",
            Served::Sse => "no such sse upstream",
        };
        return write_plain(http, error(502, -32603, why)).await;
    };
    match method.as_str() {
        "POST" => {
            let Some(body) = read_body(http).await else {
                return write_plain(http, error(400, -32600, "unreadable request body")).await;
            };
            match (session, principal) {
                (None, Some(p)) if stateless => stateless_post(http, &link, served, &p, body).await,
                (session, _) => post(http, &link, served, session, body).await,
            }
        }
        "GET" => {
            let Some(rx) = session.as_deref().and_then(|s| link.listen(s)) else {
                return write_plain(http, error(404, -32600, "session not found")).await;
            };
            start_stream(http, None).await?;
            pump(http, rx, true).await
        }
        "DELETE" => {
            let found = match session.as_deref() {
                Some(s) => link.close_session(s).await,
                None => false,
            };
            if found {
                write_plain(
                    http,
                    Plain {
                        status: 200,
                        body: Bytes::new(),
                        session: None,
                    },
                )
                .await
            } else {
                write_plain(http, error(404, -32600, "session not found")).await
            }
        }
        _ => write_plain(http, error(405, -32600, "method not allowed")).await,
    }
}

/// A session held for a 2026-07-28 client: its id and the server's
/// `initialize` result.
#[derive(Clone)]
struct Held {
    session: String,
    init: serde_json::Value,
}

/// Held sessions by (upstream, principal).
fn held() -> std::sync::MutexGuard<'static, std::collections::HashMap<(String, String), Held>> {
    static HELD: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<(String, String), Held>>,
    > = std::sync::OnceLock::new();
    HELD.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The response a reply ends with (a stream read to its end).
async fn final_of(reply: Reply) -> Option<Bytes> {
    match reply {
        Reply::Json(b) => Some(b),
        Reply::Stream { mut rest, .. } => loop {
            match rest.recv().await {
                Some(Item::Final(b)) => break Some(b),
                Some(Item::Message(_)) => {}
                _ => break None,
            }
        },
        _ => None,
    }
}

/// The principal's held session on `link`, initialized now if it has none
/// (or its process is gone). `Err`: the status and message to answer.
async fn hold(
    link: &Arc<Link>,
    served: Served,
    principal: &str,
) -> Result<Held, (u16, &'static str)> {
    let key = (link.name.clone(), principal.to_owned());
    let known = held().get(&key).cloned();
    if let Some(h) = known {
        if link.has_session(&h.session) {
            return Ok(h);
        }
    }
    let Some(session) = link.open_session().await else {
        return Err(ended(Ended::TunnelDown, served));
    };
    let answered = match link.call(&session, HELD_INIT).await {
        Reply::Ended(e) => {
            link.close_session(&session).await;
            return Err(ended(e, served));
        }
        r => final_of(r).await,
    };
    let init = answered
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m.get("result").cloned());
    let Some(init) = init else {
        link.close_session(&session).await;
        return Err((502, "the upstream did not answer initialize"));
    };
    let _ = link.call(&session, HELD_INITIALIZED).await;
    let h = Held { session, init };
    let full = {
        let mut all = held();
        if all.len() >= MAX_HELD {
            // forget those whose process is gone
            all.retain(|(name, _), v| *name != link.name || link.has_session(&v.session));
        }
        let full = all.len() >= MAX_HELD;
        if !full {
            all.insert(key, h.clone());
        }
        full
    };
    if full {
        link.close_session(&h.session).await;
        return Err((503, "too many sessions held for 2026-07-28 clients"));
    }
    Ok(h)
}

/// `server/discover` for a 2026-07-28 client, from the held session's
/// `initialize` result.
fn discover_result(init: &serde_json::Value) -> serde_json::Value {
    let mut versions: Vec<serde_json::Value> = crate::mcp::KNOWN_VERSIONS
        .iter()
        .rev()
        .map(|v| (*v).into())
        .collect();
    versions.dedup();
    let mut out = serde_json::json!({
        "resultType": "complete",
        "supportedVersions": versions,
        "capabilities": init.get("capabilities").cloned().unwrap_or_else(|| serde_json::json!({})),
        "_meta": {"io.modelcontextprotocol/serverInfo": init.get("serverInfo").cloned().unwrap_or(serde_json::Value::Null)},
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let (Some(i), Some(o)) = (init.get("instructions"), out.as_object_mut()) {
        o.insert("instructions".into(), i.clone());
    }
    out
}

/// A 2026-07-28 client's POST to a stdio or sse upstream: served from the
/// session held for its principal, the results as that revision reads
/// them (`resultType`; `ttlMs`/`cacheScope` where cacheable).
async fn stateless_post(
    http: &mut ServerSession,
    link: &Arc<Link>,
    served: Served,
    principal: &str,
    body: Bytes,
) -> pingora::Result<()> {
    let peeked = crate::jsonrpc::peek(&body);
    let id = peeked.as_ref().and_then(|p| p.id.clone());
    let method = peeked
        .as_ref()
        .and_then(|p| p.method.clone())
        .unwrap_or_default();
    let h = match hold(link, served, principal).await {
        Ok(h) => h,
        Err((status, why)) => {
            return write_plain(http, error_for(id.as_deref(), status, -32603, why)).await
        }
    };
    if method == "server/discover" {
        let idv: serde_json::Value = id
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(serde_json::Value::Null);
        let answer =
            serde_json::json!({"jsonrpc": "2.0", "id": idv, "result": discover_result(&h.init)});
        return write_plain(
            http,
            Plain {
                status: 200,
                body: Bytes::from(answer.to_string()),
                session: None,
            },
        )
        .await;
    }
    let cacheable = method.ends_with("/list") || method == "resources/read";
    let upgrade = |b: Bytes| -> Bytes {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|t| crate::federation::upgrade_result(t, cacheable))
            .map_or(b, Bytes::from)
    };
    match link.call(&h.session, &body).await {
        Reply::Json(b) => {
            write_plain(
                http,
                Plain {
                    status: 200,
                    body: upgrade(b),
                    session: None,
                },
            )
            .await
        }
        Reply::Stream { first, mut rest } => {
            start_stream(http, None).await?;
            http.write_response_body(sse_event(&first), false).await?;
            loop {
                match rest.recv().await {
                    Some(Item::Message(m)) => {
                        http.write_response_body(sse_event(&m), false).await?
                    }
                    Some(Item::Final(m)) => {
                        http.write_response_body(sse_event(&upgrade(m)), true)
                            .await?;
                        return Ok(());
                    }
                    Some(Item::Ended(_)) | None => {
                        http.write_response_body(Bytes::new(), true).await?;
                        return Ok(());
                    }
                }
            }
        }
        Reply::Accepted => {
            write_plain(
                http,
                Plain {
                    status: 202,
                    body: Bytes::new(),
                    session: None,
                },
            )
            .await
        }
        Reply::SessionGone => {
            held().remove(&(link.name.clone(), principal.to_owned()));
            let (status, why) = ended(
                Ended::Process(super::protocol::ClosedReason::Exited),
                served,
            );
            write_plain(http, error_for(id.as_deref(), status, -32603, why)).await
        }
        Reply::Ended(e) => {
            held().remove(&(link.name.clone(), principal.to_owned()));
            let (status, why) = ended(e, served);
            write_plain(http, error_for(id.as_deref(), status, -32603, why)).await
        }
        Reply::TunnelDown => {
            let (status, why) = ended(Ended::TunnelDown, served);
            write_plain(http, error_for(id.as_deref(), status, -32603, why)).await
        }
    }
}

async fn post(
    http: &mut ServerSession,
    link: &Arc<Link>,
    served: Served,
    session: Option<String>,
    body: Bytes,
) -> pingora::Result<()> {
    let id = crate::jsonrpc::peek(&body).and_then(|p| p.id);
    let id = id.as_deref();
    let (sid, new) = match session {
        Some(s) => (s, false),
        None if is_initialize(&body) => match link.open_session().await {
            Some(s) => (s, true),
            None => {
                let (status, why) = ended(Ended::TunnelDown, served);
                return write_plain(http, error_for(id, status, -32603, why)).await;
            }
        },
        None => {
            return write_plain(
                http,
                error_for(
                    id,
                    400,
                    -32600,
                    "this upstream needs a session: initialize first",
                ),
            )
            .await
        }
    };
    let reply = link.call(&sid, &body).await;
    let give = new.then(|| sid.clone());
    match reply {
        Reply::Json(b) => {
            write_plain(
                http,
                Plain {
                    status: 200,
                    body: b,
                    session: give,
                },
            )
            .await
        }
        Reply::Stream { first, rest } => {
            start_stream(http, give).await?;
            http.write_response_body(sse_event(&first), false).await?;
            pump(http, rest, false).await
        }
        Reply::Accepted => {
            write_plain(
                http,
                Plain {
                    status: 202,
                    body: Bytes::new(),
                    session: None,
                },
            )
            .await
        }
        Reply::SessionGone => {
            write_plain(http, error_for(id, 404, -32600, "session not found")).await
        }
        Reply::Ended(e) => {
            if new {
                link.close_session(&sid).await;
            }
            let (status, why) = ended(e, served);
            write_plain(http, error_for(id, status, -32603, why)).await
        }
        Reply::TunnelDown => {
            let (status, why) = ended(Ended::TunnelDown, served);
            write_plain(http, error_for(id, status, -32603, why)).await
        }
    }
}

#[async_trait]
impl HttpServerApp for Bridge {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match http.read_request().await {
            Ok(true) => {}
            _ => return None,
        }
        // one request per bridge connection: SSE streams end by closing
        http.set_keepalive(None);
        if let Err(e) = serve(&mut http).await {
            log::debug!("tunnel bridge: {e}");
            return None;
        }
        let _ = http.finish().await;
        None
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        None
    }
}
