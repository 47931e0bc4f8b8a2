//! The client-facing legacy HTTP+SSE endpoint (`legacy_sse`, protocol
//! 2024-11-05) for clients that speak nothing newer. Off by default.
//!
//! - It answers at `<path>` for `server.path` and at `<vs.path><path>` for
//!   each virtual server (`/tools` + `/sse` = `/tools/sse`); a stream speaks
//!   to the MCP endpoint it was opened for, and its POSTs are taken at that
//!   front's `/message` only (another front's is 404).
//! - `GET <front>` is admitted like any request (address, Origin, refusal
//!   budget, authentication), then answered with an event stream whose
//!   first event, `endpoint`, names `<front>/message?session=<ref>`: `ref`
//!   is 128 random bits naming this stream in this process, bound to the
//!   principal that opened it.
//! - `POST <front>/message?session=<ref>` is admitted exactly as a POST to
//!   the MCP endpoint (the whole pipeline: body inspection, policy, rate
//!   limits, routing or federation, sealed sessions, audit), with the
//!   stream's sealed `Mcp-Session-Id` put on it (a client-sent one is
//!   dropped). A `ref` that is unknown, or opened by another principal, is
//!   404. A 2xx answer is not sent to the POST: its messages (the JSON
//!   body, or each event of an SSE answer: progress, server requests, the
//!   response) go to the stream as `message` events, and the POST gets 202.
//!   Refusals and upstream errors answer the POST itself with their status
//!   and JSON-RPC error, except a refused tool call (200 "Unknown tool"),
//!   which goes to the stream like any answer.
//! - Once the session is up (the first 2xx answer to a POST that carried
//!   it, `notifications/initialized`), the server's messages outside
//!   requests go to the stream too: the session's Streamable HTTP GET
//!   stream upstream, or for a virtual server every member's, merged
//!   (`federate::open_listener`; ids namespaced, items the principal may
//!   not see filtered as on the GET stream).
//!
//! Streams live in the process that opened them: a load balancer in front
//! of several replicas must send a client's POSTs to the replica holding
//! its stream. When the client closes its stream, the gateway DELETEs the
//! stream's MCP session upstream (every member's, for a virtual server).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Method;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora_proxy::Session;

use super::sse_streams::{message_event, streams, Front, Registered, Stream};
use super::RequestCtx;
use crate::error::GatewayError;

/// SSE comment interval on an idle stream (also how soon a closed one is
/// noticed: the next write fails).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Before admission: whether the request is for the legacy endpoint; if
/// so, its path becomes the MCP endpoint's (so the same admission
/// applies) and a POST gets its stream's session id.
pub fn prepare(session: &mut Session, ctx: &mut RequestCtx) -> Option<Result<(), GatewayError>> {
    let rt = ctx.runtime.clone()?;
    rt.legacy_sse.as_ref()?;
    let req = session.req_header();
    let path = req.uri.path();
    let fronts = &rt.legacy_fronts;
    let (front, target) = if let Some((at, target)) = fronts.iter().find(|(at, _)| at == path) {
        if req.method != Method::GET {
            return Some(Err(GatewayError::MethodNotAllowed("GET")));
        }
        (
            Front::Open {
                at: at.clone(),
                target: target.clone(),
            },
            target.clone(),
        )
    } else if let Some((_, target)) = fronts
        .iter()
        .find(|(at, _)| path.strip_prefix(at.as_str()) == Some("/message"))
    {
        let target = target.clone();
        if req.method != Method::POST {
            return Some(Err(GatewayError::MethodNotAllowed("POST")));
        }
        let reference = req
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("session="))
            .unwrap_or_default();
        // a stream answers at the paths it was opened for only
        match streams()
            .get(reference)
            .filter(|s| s.target == target)
            .cloned()
        {
            Some(s) => (Front::Post(s), target),
            None => return Some(Err(GatewayError::SessionNotFound("legacy_stream_unknown"))),
        }
    } else {
        return None;
    };
    let token = match &front {
        Front::Post(s) => s
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        Front::Open { .. } => None,
    };
    let req = session.req_header_mut();
    // the admission sees a request to the MCP endpoint
    let Ok(uri) = http::Uri::try_from(target.as_str()) else {
        return Some(Err(GatewayError::Internal));
    };
    req.set_uri(uri);
    req.remove_header("mcp-session-id");
    // the gateway is this stream's Streamable HTTP client: a legacy client
    // takes anything on its stream, whatever its POST's Accept said
    if req
        .insert_header("accept", "application/json, text/event-stream")
        .is_err()
    {
        return Some(Err(GatewayError::Internal));
    }
    if let Some(t) = token {
        if req.insert_header("mcp-session-id", t).is_err() {
            return Some(Err(GatewayError::Internal));
        }
    }
    ctx.front = Some(front);
    Some(Ok(()))
}

/// Serves a registered stream until the client goes away: the answers
/// its POSTs divert to it, and once its session is up, the server's
/// messages outside requests (the session's GET stream upstream).
pub async fn open(
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut reg: Registered,
) -> Result<bool> {
    let Some(Front::Open { at, .. }) = &ctx.front else {
        return Err(Error::new(ErrorType::InternalError));
    };
    let endpoint = format!(
        "event: endpoint\ndata: {at}/message?session={}\n\n",
        reg.stream.id
    );
    let mut resp = ResponseHeader::build(200, Some(4))?;
    resp.insert_header("content-type", "text/event-stream")?;
    resp.insert_header("cache-control", "no-cache")?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from(endpoint)), false)
        .await?;
    ctx.sse = true;
    let _gauge = crate::telemetry::metrics::SseStream::start();
    let (rt, principal) = (ctx.runtime.clone(), ctx.principal.clone());
    let allowed = |item, name: &str| match (&rt, &principal) {
        (Some(rt), Some(p)) => rt.policy.item_allowed(p, item, name),
        _ => false,
    };
    let mut listener: Option<super::federate::Listener> = None;
    let mut listened = false;
    let ended = loop {
        let wrote = tokio::select! {
            m = reg.rx.recv() => match m {
                Some(m) => session.write_response_body(Some(message_event(&m)), false).await,
                None => break Ok(()),
            },
            () = reg.stream.ready.notified(), if !listened => {
                listened = true;
                if let Some(t) = token_of(&reg.stream) {
                    listener = super::federate::open_listener(ctx, &t).await;
                }
                continue;
            },
            ms = next_messages(&mut listener, &allowed) => match ms {
                Some(ms) => {
                    let mut out = BytesMut::new();
                    for m in ms {
                        out.extend_from_slice(&message_event(&m));
                    }
                    session.write_response_body(Some(out.freeze()), false).await
                }
                None => {
                    // the session's stream ended upstream: answers still come
                    listener = None;
                    continue;
                }
            },
            () = tokio::time::sleep(HEARTBEAT) => {
                session
                    .write_response_body(Some(Bytes::from_static(b": keepalive\n\n")), false)
                    .await
            }
        };
        if let Err(e) = wrote {
            // the client went away
            break Err(e);
        }
    };
    drop(listener);
    // no POST finds the stream any more, then its session ends upstream
    streams().remove(&reg.stream.id);
    end_session(ctx, &reg.stream).await;
    ended?;
    let _ = session.write_response_body(None, true).await;
    Ok(true)
}

async fn next_messages(
    l: &mut Option<super::federate::Listener>,
    allowed: &(dyn Fn(crate::call::Item, &str) -> bool + Sync),
) -> Option<Vec<Vec<u8>>> {
    match l {
        Some(l) => l.next(allowed).await,
        None => std::future::pending().await,
    }
}

fn token_of(stream: &Stream) -> Option<String> {
    stream
        .token
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .and_then(|t| t.to_str().ok())
        .map(str::to_string)
}

/// The client closed its stream: its MCP session ends upstream too (a
/// DELETE with the session's own id, as a Streamable HTTP client would
/// send; a stdio process stops at once instead of at its idle timeout).
async fn end_session(ctx: &RequestCtx, stream: &Stream) {
    let (Some(rt), Some(text)) = (ctx.runtime.as_ref(), token_of(stream)) else {
        return;
    };
    let now = crate::base::clock::now_secs();
    if let Some(vs) = ctx.virtual_server.as_ref() {
        if let Ok(c) = rt.session_keys().open_composite(&text, &stream.owner, now) {
            super::federate::end_members(vs, ctx, &c).await;
        }
        return;
    }
    let Ok(owner) = rt.session_keys().open(&text, &stream.owner, now) else {
        return;
    };
    let Some(up) = rt.upstreams.iter().find(|u| *u.name == *owner.upstream) else {
        return;
    };
    let Ok(ep) = up.endpoint(&owner.endpoint) else {
        return;
    };
    let call = super::member::Call {
        session: Some(&owner.session),
        request_id: &ctx.request_id,
        ..super::member::Call::default()
    };
    let deadline = tokio::time::Instant::now() + up.timeout;
    if let Err(e) = super::member::delete(up, &ep.0, &call, deadline).await {
        log::debug!(
            "legacy_sse stream {}: DELETE of its session: {e}",
            stream.id
        );
    }
}
