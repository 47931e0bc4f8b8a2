//! Virtual servers (docs/federation.md): what `request_filter` does with
//! an admitted request to a virtual server's path. The gateway answers
//! `initialize` (every member initialized concurrently, one sealed token
//! carrying every member's session), `ping`, the lists (fanned out,
//! merged, filtered by policy) and `logging/setLevel`; notifications and
//! DELETE reach every member; a call naming one member's tool, prompt or
//! resource is forwarded to it through the proxy path (`Forward`), with
//! the member's own name, session id and protocol version; a client's
//! answer to a member's request goes back to that member.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use http::Method;
use pingora::prelude::*;
use pingora_proxy::Session;
use tokio::time::Instant;

mod stateless;

pub use stateless::forget as forget_held;

use super::member::{self, Failure, Reply};
use super::RequestCtx;
use crate::error::GatewayError;
use crate::federation::json::{self, Members};
use crate::federation::merge::{self, ListKind, MemberInit, MemberPage};
use crate::federation::{self, Named, PrefixMode};
use crate::jsonrpc::Kind;
use crate::runtime::{Member, VirtualServer};
use crate::session::{Composite, MemberSession};

/// What a federated request became.
pub enum Done {
    /// Proxy it to the member on `ctx` (upstream, endpoint, body, session).
    Forward,
    /// The gateway's answer: status, JSON body (empty: none), and the
    /// session token to hand out.
    Answer(u16, Bytes, Option<String>),
}

/// A call forwarded to one member, for the proxy path and the logs.
#[derive(Debug, Clone)]
pub struct MemberCall {
    /// The member's index in the session (namespaced ids use it).
    pub index: usize,
    /// Its upstream.
    pub upstream: Arc<str>,
    /// The member's own name of the item (tools, prompts).
    pub own: Option<String>,
    /// The protocol version the member chose.
    pub version: String,
}

/// Serves an admitted request to a virtual server.
pub async fn serve(session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
    if ctx.era == crate::mcp::Era::Stateless && ctx.method() == Some("subscriptions/listen") {
        return match stateless::listen(session, ctx).await {
            Ok(()) => Ok(true),
            Err(e) => super::response::respond(session, ctx, e).await,
        };
    }
    if session.req_header().method == Method::GET {
        return match listen(session, ctx).await {
            Ok(()) => Ok(true),
            Err(e) => super::response::respond(session, ctx, e).await,
        };
    }
    match route(session, ctx).await {
        Ok(Done::Forward) => Ok(false),
        Ok(Done::Answer(status, body, token)) => {
            write(session, ctx, status, body, token).await?;
            Ok(true)
        }
        Err(e) => super::response::respond(session, ctx, e).await,
    }
}

async fn write(
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    body: Bytes,
    token: Option<String>,
) -> Result<()> {
    let mut resp = super::response::json_header(status, body.len(), ctx)?;
    if body.is_empty() {
        resp.remove_header("content-type");
    }
    if let Some(t) = token.or_else(|| {
        ctx.session_token
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }) {
        resp.insert_header("mcp-session-id", t)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

type Res<T> = std::result::Result<T, GatewayError>;

async fn route(session: &Session, ctx: &mut RequestCtx) -> Res<Done> {
    let Some(vs) = ctx.virtual_server.clone() else {
        return Err(GatewayError::Internal);
    };
    let method = session.req_header().method.clone();
    if method == Method::DELETE {
        return delete(&vs, ctx).await;
    }
    let (Some(body), Some(env)) = (ctx.body.clone(), ctx.envelope.clone()) else {
        return Err(GatewayError::Internal);
    };
    let name = env.method(&body).map(str::to_string);
    if env.kind == Kind::Request && name.as_deref() == Some("initialize") {
        return initialize(&vs, ctx, &body).await;
    }
    if ctx.era == crate::mcp::Era::Stateless {
        if env.kind == Kind::Request && name.as_deref() == Some("server/discover") {
            return stateless::discover(&vs, ctx).await;
        }
        if env.kind == Kind::Response {
            // 2026-07-28 has no server-to-client requests to answer
            return Err(GatewayError::InvalidParams("unknown request id"));
        }
        let (c, _) = stateless::targets(&vs, ctx).await?;
        return match dispatch(&vs, ctx, &c, &body, &env, name.clone()).await {
            Err(GatewayError::SessionNotFound(_)) => {
                // a held member session is gone: hold new ones, once
                stateless::forget_all(&vs, ctx);
                let (c, _) = stateless::targets(&vs, ctx).await?;
                dispatch(&vs, ctx, &c, &body, &env, name).await
            }
            other => other,
        };
    }
    let Some(composite) = ctx.composite.clone() else {
        return Err(GatewayError::SessionRequired);
    };
    dispatch(&vs, ctx, &composite, &body, &env, name).await
}

/// A request over the members of a session (the client's, or the one a
/// stateless request builds).
async fn dispatch(
    vs: &Arc<VirtualServer>,
    ctx: &mut RequestCtx,
    composite: &Composite,
    body: &Bytes,
    env: &crate::jsonrpc::Envelope,
    name: Option<String>,
) -> Res<Done> {
    let (vs, composite) = (vs.as_ref(), composite);
    match env.kind {
        Kind::Response => answer_member(vs, ctx, composite, body).await,
        Kind::Notification => {
            broadcast(vs, ctx, composite, body).await?;
            Ok(Done::Answer(202, Bytes::new(), None))
        }
        Kind::Request => {
            let name = name.unwrap_or_default();
            if name == "ping" {
                return Ok(result(ctx, "{}"));
            }
            if let Some(kind) = ListKind::of_method(&name) {
                return list(vs, ctx, composite, body, kind).await;
            }
            match name.as_str() {
                "tools/call" => forward_named(vs, ctx, composite, body, Named::Tool).await,
                "prompts/get" => forward_named(vs, ctx, composite, body, Named::Prompt).await,
                "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                    let uri = env.uri(body).unwrap_or_default().to_string();
                    forward_uri(vs, ctx, composite, body.clone(), &uri).await
                }
                "completion/complete" => complete(vs, ctx, composite, body).await,
                "tasks/get" | "tasks/result" | "tasks/cancel" => {
                    task(vs, ctx, composite, body).await
                }
                "logging/setLevel" => {
                    broadcast(vs, ctx, composite, body).await?;
                    Ok(result(ctx, "{}"))
                }
                _ => Err(GatewayError::NoRoute),
            }
        }
    }
}

/// A JSON-RPC result for the request on `ctx`.
fn result(ctx: &RequestCtx, result: &str) -> Done {
    let id = ctx.id_ref().map_or("null".to_string(), id_json);
    let body = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}");
    Done::Answer(200, Bytes::from(body), None)
}

fn id_json(id: crate::jsonrpc::IdRef<'_>) -> String {
    match id {
        crate::jsonrpc::IdRef::Int(n) => n.to_string(),
        crate::jsonrpc::IdRef::Uint(n) => n.to_string(),
        crate::jsonrpc::IdRef::Str(s) => json::string(s),
    }
}

/// The request fields every member request carries.
fn call_for<'a>(
    ctx: &'a RequestCtx,
    ms: Option<&'a MemberSession>,
    fwd: &'a Option<(String, String)>,
) -> member::Call<'a> {
    member::Call {
        session: ms.map(|m| m.session.as_str()),
        version: ms.map(|m| m.version.as_str()),
        request_id: &ctx.request_id,
        forwarded: fwd.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        claims: ctx.principal.as_ref().map_or(&[][..], |p| &p.forward[..]),
        method: None,
    }
}

fn forwarded(ctx: &RequestCtx) -> Option<(String, String)> {
    ctx.client.as_ref().map(|c| {
        (
            c.ip.to_string(),
            c.proto.clone().unwrap_or_else(|| "http".into()),
        )
    })
}

fn max_bytes(ctx: &RequestCtx) -> usize {
    ctx.runtime
        .as_ref()
        .map_or(8 << 20, |rt| rt.server.limits.max_response_bytes)
}

/// Whether the principal could use anything of member `m` (a member it
/// may use nothing of is not asked). Only `prefix_mode: always` names
/// tools and prompts by prefix; otherwise every member may be.
fn may_use(vs: &VirtualServer, ctx: &RequestCtx, m: &Member) -> bool {
    let (Some(rt), Some(p)) = (&ctx.runtime, &ctx.principal) else {
        return false;
    };
    if vs.naming.mode != PrefixMode::Always {
        return true;
    }
    let prefix = format!("{}{}", m.prefix, vs.naming.separator);
    use crate::call::Item;
    rt.policy.may_allow_prefix(p, Item::Tool, &prefix)
        || rt.policy.may_allow_prefix(p, Item::Prompt, &prefix)
        || rt.policy.may_allow_prefix(p, Item::Resource, "")
}

/// The session's members still configured: (index in the session, the
/// member, its session).
fn joined<'a>(
    vs: &'a VirtualServer,
    c: &'a Composite,
) -> Vec<(usize, &'a Member, &'a MemberSession)> {
    c.members
        .iter()
        .enumerate()
        .filter_map(|(i, ms)| vs.member(&ms.upstream).map(|(_, m)| (i, m, ms)))
        .collect()
}

/// Logs and counts a member left out of an answer (and notes it for the
/// audit line).
fn left_out(vs: &VirtualServer, ctx: &RequestCtx, m: &Member, what: &str, why: &str) {
    if let Ok(mut v) = ctx.left_out.lock() {
        if !v.iter().any(|x| **x == *m.upstream.name) {
            v.push(m.upstream.name.to_string());
        }
    }
    log::warn!(
        "virtual server {}: member {} left out of {what}: {why}",
        vs.path,
        m.upstream.name
    );
    crate::telemetry::metrics::record_member_left_out(&vs.path, &m.upstream.name, why);
}

/// One request to a member at its session's endpoint.
async fn ask(
    ctx: &RequestCtx,
    m: &Member,
    ms: Option<&MemberSession>,
    body: Bytes,
    deadline: Instant,
) -> std::result::Result<Reply, Failure> {
    let picked = match ms {
        Some(ms) if !ms.endpoint.is_empty() => m
            .upstream
            .endpoint(&ms.endpoint)
            .map_err(|e| Failure::Broken(e.to_string()))?,
        Some(_) => m
            .upstream
            .pick()
            .ok_or_else(|| Failure::Broken("no endpoint up".into()))?,
        None => m
            .upstream
            .pick()
            .ok_or_else(|| Failure::Broken("no endpoint up".into()))?,
    };

    let fwd = forwarded(ctx);
    let call = call_for(ctx, ms, &fwd);
    member::post(
        &m.upstream,
        &picked.0,
        &call,
        body,
        deadline,
        max_bytes(ctx),
    )
    .await
}

/// Whether a member's answer says its session is gone: 404, or a 400
/// that speaks of the session (SDK servers answer an unknown session so).
fn session_gone(reply: &Reply) -> bool {
    reply.status == 404
        || (reply.status == 400
            && reply
                .message
                .as_ref()
                .is_some_and(|b| b.windows(7).any(|w| w.eq_ignore_ascii_case(b"session"))))
}

/// The `result` of a member's reply, or why it has none.
fn result_of(reply: &Reply) -> std::result::Result<String, String> {
    if session_gone(reply) {
        return Err("session_gone".into());
    }
    if !(200..300).contains(&reply.status) {
        return Err(format!("HTTP {}", reply.status));
    }
    let text = reply
        .message
        .as_ref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or("no answer")?;
    let m = Members::of(text).ok_or("answer is not a JSON-RPC object")?;
    if let Some(r) = m.get("result") {
        return Ok(r.get().to_string());
    }
    Err("answered with an error".into())
}

async fn initialize(vs: &Arc<VirtualServer>, ctx: &mut RequestCtx, body: &Bytes) -> Res<Done> {
    if ctx.era == crate::mcp::Era::Stateless {
        return Err(GatewayError::NoRoute);
    }
    let requested = Members::of(std::str::from_utf8(body).unwrap_or("{}"))
        .and_then(|m| m.get("params").map(|p| p.get().to_string()))
        .and_then(|p| Members::of(&p).and_then(|m| m.str("protocolVersion")))
        .unwrap_or_else(|| "2025-03-26".into());
    let deadline = Instant::now() + vs.member_timeout;
    let asked: Vec<(usize, &Member)> = vs
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| may_use(vs, ctx, m))
        .collect();
    let ctx_ref: &RequestCtx = ctx;
    let replies = join_all(
        asked
            .iter()
            .map(|(_, m)| ask(ctx_ref, m, None, body.clone(), deadline)),
    )
    .await;
    let mut inits = Vec::new();
    let mut sessions = Vec::new();
    for ((i, m), reply) in asked.iter().zip(replies) {
        let r = match reply {
            Ok(r) => r,
            Err(f) => {
                left_out(vs, ctx, m, "initialize", &f.to_string());
                continue;
            }
        };
        let parsed = result_of(&r)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
        let value = match parsed {
            Ok(v) if v.is_object() => v,
            Ok(_) => {
                left_out(vs, ctx, m, "initialize", "result is not an object");
                continue;
            }
            Err(why) => {
                left_out(vs, ctx, m, "initialize", &why);
                continue;
            }
        };
        let init = MemberInit {
            member: *i,
            prefix: m.prefix.clone(),
            result: value,
        };
        let endpoint = m
            .upstream
            .endpoints
            .iter()
            .find(|e| e.health.is_up())
            .map(|e| e.key.clone());
        sessions.push(MemberSession {
            upstream: m.upstream.name.to_string(),
            endpoint: endpoint.unwrap_or_default(),
            session: r.session.clone().unwrap_or_default(),
            version: init.version().unwrap_or(&requested).to_string(),
        });
        inits.push(init);
    }
    if inits.is_empty() && !asked.is_empty() {
        // every member the principal may use failed: nothing to serve
        return Err(GatewayError::UpstreamUnavailable);
    }
    let merged = merge::merge_initialize(&vs.name, &requested, &inits);
    let (Some(rt), Some(p)) = (&ctx.runtime, &ctx.principal) else {
        return Err(GatewayError::Internal);
    };
    let composite = Composite {
        server: vs.path.clone(),
        members: sessions,
        principal: p.digest(),
        issued: crate::base::clock::now_secs(),
    };
    let token = rt
        .session_keys()
        .seal_composite(&composite)
        .ok_or(GatewayError::Internal)?;
    crate::telemetry::metrics::record_session("sealed", "new_session");
    let Done::Answer(s, b, _) = result(ctx, &merged.to_string()) else {
        return Err(GatewayError::Internal);
    };
    ctx.composite = Some(composite);
    Ok(Done::Answer(s, b, Some(token)))
}

/// A member's list page: asked now, or kept from before.
enum Page {
    Fresh(Reply),
    Kept(String),
}

/// Drops the kept list pages a member's `…/list_changed` makes stale
/// (member `i` of session `c`).
fn note_changes(vs: &VirtualServer, upstream: &str, text: &str) {
    if !text.contains("list_changed") {
        return;
    }
    if let (Some((idx, _)), Some(method)) = (
        vs.member(upstream),
        Members::of(text).and_then(|m| m.str("method")),
    ) {
        vs.lists.changed(idx, &method);
    }
}

/// The endpoint a member's session was initialized on.
fn member_endpoint(m: &Member, ms: &MemberSession) -> Res<crate::upstream::Picked> {
    m.upstream
        .endpoint(&ms.endpoint)
        .map_err(GatewayError::SessionNotFound)
}

/// Sends the client's message to every member of the session (by the
/// deadline); a member whose session is gone ends the whole session.
async fn broadcast(vs: &VirtualServer, ctx: &RequestCtx, c: &Composite, body: &Bytes) -> Res<()> {
    let deadline = Instant::now() + vs.member_timeout;
    let members = joined(vs, c);
    let replies = join_all(
        members
            .iter()
            .map(|(_, m, ms)| ask(ctx, m, Some(ms), body.clone(), deadline)),
    )
    .await;
    for ((_, m, _), r) in members.iter().zip(replies) {
        match r {
            Ok(r) if session_gone(&r) => {
                return Err(GatewayError::SessionNotFound("member_session_gone"))
            }
            Ok(r) if r.status >= 400 => {
                left_out(vs, ctx, m, "a broadcast", &format!("HTTP {}", r.status))
            }
            Ok(_) => {}
            Err(f) => left_out(vs, ctx, m, "a broadcast", &f.to_string()),
        }
    }
    Ok(())
}

async fn delete(vs: &VirtualServer, ctx: &RequestCtx) -> Res<Done> {
    let Some(c) = ctx.composite.as_ref() else {
        return Err(GatewayError::SessionRequired);
    };
    let deadline = Instant::now() + vs.member_timeout;
    let fwd = forwarded(ctx);
    let members = joined(vs, c);
    let asks = members.iter().map(|(_, m, ms)| {
        let call = call_for(ctx, Some(ms), &fwd);
        async move {
            let ep = member_endpoint(m, ms).map_err(|e| Failure::Broken(e.label().into()))?;
            member::delete(&m.upstream, &ep.0, &call, deadline).await
        }
    });
    for ((_, m, _), r) in members.iter().zip(join_all(asks).await) {
        if let Err(f) = r {
            left_out(vs, ctx, m, "DELETE", &f.to_string());
        }
    }
    Ok(Done::Answer(200, Bytes::new(), None))
}

/// The client's GET stream: every member's GET stream merged into one,
/// event by event (each read by the same rules as a proxied stream, the
/// ids of a member's requests namespaced, event ids dropped: the merged
/// stream cannot be resumed with `Last-Event-ID`). A member without a
/// stream (405) is left out; one whose session is gone ends the whole
/// session (404); the stream ends when every member's has.
async fn listen(session: &mut Session, ctx: &mut RequestCtx) -> Res<()> {
    let (Some(vs), Some(c)) = (ctx.virtual_server.clone(), ctx.composite.clone()) else {
        return Err(GatewayError::SessionRequired);
    };
    let deadline = Instant::now() + vs.member_timeout;
    let fwd = forwarded(ctx);
    let members = joined(&vs, &c);
    let ctx_ref: &RequestCtx = ctx;
    let opens = members.iter().map(|(_, m, ms)| {
        let call = call_for(ctx_ref, Some(ms), &fwd);
        async move {
            let ep = member_endpoint(m, ms).map_err(|e| Failure::Broken(e.label().into()))?;
            member::open_stream(&m.upstream, &ep.0, &call, deadline).await
        }
    });
    let opened = join_all(opens).await;
    let mut streams = Vec::new();
    for ((i, m, _), r) in members.iter().zip(opened) {
        match r {
            Ok(Some(s)) => streams.push((*i, s)),
            Ok(None) => {}
            Err(Failure::Broken(w)) if w == "session_gone" => {
                return Err(GatewayError::SessionNotFound("member_session_gone"))
            }
            Err(f) => left_out(&vs, ctx_ref, m, "the GET stream", &f.to_string()),
        }
    }
    if streams.is_empty() {
        return Err(GatewayError::MethodNotAllowed("POST, DELETE"));
    }
    ctx.sse = true;
    relay(session, ctx, streams, None, &|i, text| {
        if let Some(ms) = c.members.get(i) {
            note_changes(&vs, &ms.upstream, text);
        }
        Some(federation::namespace_message(text, i).unwrap_or_else(|| text.to_string()))
    })
    .await
}

/// Writes an SSE answer that merges member streams: each event read by
/// the same rules as a proxied stream (policy-filtered lists, ambiguous
/// messages replaced), its data passed through `map` (member index,
/// message text → what to send, `None` = drop), event ids dropped;
/// `first` is sent before any member's event, `last` (when every member
/// stream ended) after the last. Ends when every member stream has, or
/// the client went away.
async fn relay(
    session: &mut Session,
    ctx: &RequestCtx,
    streams: Vec<(usize, member::Stream)>,
    edges: Option<(String, String)>,
    map: &(dyn Fn(usize, &str) -> Option<String> + Sync),
) -> Res<()> {
    use futures_util::stream::{self, StreamExt};
    let max = max_bytes(ctx);
    let mut resp =
        pingora::http::ResponseHeader::build(200, Some(4)).map_err(|_| GatewayError::Internal)?;
    for (k, v) in [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-store"),
        ("transfer-encoding", "chunked"),
    ] {
        resp.insert_header(k, v)
            .map_err(|_| GatewayError::Internal)?;
    }
    resp.insert_header("x-request-id", ctx.request_id.as_str())
        .map_err(|_| GatewayError::Internal)?;
    if let Some(t) = ctx.composite.as_ref().and(ctx.session_token.as_ref()) {
        resp.insert_header("mcp-session-id", t.clone())
            .map_err(|_| GatewayError::Internal)?;
    }
    // from here on the answer has started: failures end the stream
    if session
        .write_response_header(Box::new(resp), false)
        .await
        .is_err()
    {
        return Ok(());
    }
    let (first, last) = edges.unzip();
    if let Some(f) = first {
        let event = format!("event: message\ndata: {f}\n\n");
        if session
            .write_response_body(Some(Bytes::from(event)), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    let _gauge = crate::telemetry::metrics::SseStream::start();
    let reads = streams.into_iter().map(|(i, s)| {
        stream::unfold(Some(s), move |st| async move {
            let mut s = st?;
            match s.next().await {
                Some(b) => Some(((i, Some(b)), Some(s))),
                None => Some(((i, None), None)),
            }
        })
        .boxed()
    });
    let mut all = stream::select_all(reads);
    let mut guards: std::collections::HashMap<usize, crate::answer::SseGuard> =
        std::collections::HashMap::new();
    let (rt, principal) = (ctx.runtime.clone(), ctx.principal.clone());
    let allowed = |item, name: &str| match (&rt, &principal) {
        (Some(rt), Some(p)) => rt.policy.item_allowed(p, item, name),
        _ => false,
    };
    while let Some((i, chunk)) = all.next().await {
        let g = guards
            .entry(i)
            .or_insert_with(|| crate::answer::SseGuard::new(max));
        let end = chunk.is_none();
        let out = g.push(chunk.as_deref().unwrap_or_default(), end, &allowed);
        if out.is_empty() {
            continue;
        }
        let out = drop_event_ids(&federation::map_events(&out, &|t| map(i, t)));
        if out.is_empty() {
            continue;
        }
        if session
            .write_response_body(Some(Bytes::from(out)), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    if let Some(l) = last {
        let event = format!("event: message\ndata: {l}\n\n");
        let _ = session
            .write_response_body(Some(Bytes::from(event)), false)
            .await;
    }
    let _ = session.write_response_body(None, true).await;
    Ok(())
}

/// Canonical SSE text without its `id:` lines (members' event ids mean
/// nothing on the merged stream).
fn drop_event_ids(canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len());
    for line in canonical.split_inclusive(|b| *b == b'\n') {
        if !line.starts_with(b"id: ") {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Fans a list out to the session's members (a composite cursor names
/// the members that have more), merges the pages with exposed names,
/// filters them by policy and answers.
async fn list(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    body: &Bytes,
    kind: ListKind,
) -> Res<Done> {
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    let cursor = Members::of(text)
        .and_then(|m| m.get("params").map(|p| p.get().to_string()))
        .and_then(|p| Members::of(&p).and_then(|m| m.str("cursor")));
    let wanted: Option<Vec<(String, String)>> = match &cursor {
        None => None,
        Some(cur) => {
            Some(merge::decode_cursor(cur).ok_or(GatewayError::InvalidParams("Invalid cursor"))?)
        }
    };
    let mut targets = Vec::new();
    for (si, m, ms) in joined(vs, c) {
        if !may_use(vs, ctx, m) {
            continue;
        }
        // names and the catalog go by the member's place in the virtual
        // server; task ids by its place in the session
        let Some((config_index, _)) = vs.member(&m.upstream.name) else {
            continue;
        };
        let i = if kind == ListKind::Tasks {
            si
        } else {
            config_index
        };
        let own_cursor = match &wanted {
            None => None,
            Some(w) => match w.iter().find(|(u, _)| *u == *m.upstream.name) {
                Some((_, cur)) => Some(cur.clone()),
                None => continue,
            },
        };
        let b = match &own_cursor {
            None => body.clone(),
            Some(cur) => Bytes::from(
                json::set_path(text, &["params", "cursor"], &json::string(cur))
                    .ok_or(GatewayError::Internal)?,
            ),
        };
        targets.push((i, m, ms, b, own_cursor));
    }
    let deadline = Instant::now() + vs.member_timeout;
    let principal = ctx.principal.as_ref().map_or([0; 16], |p| p.digest());
    // a page a member said may be kept (ttlMs, cacheScope) is not asked again
    let replies = join_all(targets.iter().map(|(i, m, ms, b, cur)| async move {
        if kind != ListKind::Tasks {
            if let Some(hit) = vs.lists.get(*i, kind, cur.as_deref(), principal) {
                return Ok(Page::Kept(hit));
            }
        }
        ask(ctx, m, Some(ms), b.clone(), deadline)
            .await
            .map(Page::Fresh)
    }))
    .await;
    let mut pages: Vec<(usize, MemberPage)> = Vec::new();
    let mut ttls: Vec<u64> = Vec::new();
    let mut next = Vec::new();
    let mut catalog = vs.catalog.write().unwrap_or_else(|e| e.into_inner());
    for ((i, m, _, _, cur), r) in targets.iter().zip(replies) {
        let first = cur.is_none();
        let text = match r {
            Ok(Page::Kept(t)) => Ok(t),
            Ok(Page::Fresh(r)) => {
                let t = result_of(&r);
                if let (Ok(t), true) = (&t, kind != ListKind::Tasks) {
                    vs.lists.put(*i, kind, cur.as_deref(), principal, t);
                }
                t
            }
            Err(f) => {
                left_out(vs, ctx, m, kind.method(), &f.to_string());
                continue;
            }
        };
        let page = match text {
            Ok(t) => {
                ttls.push(
                    Members::of(&t)
                        .and_then(|m| m.get("ttlMs").and_then(|v| v.get().parse::<u64>().ok()))
                        .unwrap_or(0),
                );
                merge::read_page(kind, &t)
            }
            Err(why) if why == "session_gone" => {
                return Err(GatewayError::SessionNotFound("member_session_gone"))
            }
            Err(why) => {
                left_out(vs, ctx, m, kind.method(), &why);
                continue;
            }
        };
        let Some(page) = page else {
            left_out(vs, ctx, m, kind.method(), "not a list result");
            continue;
        };
        let ids: Vec<String> = page.items.iter().map(|(id, _)| id.clone()).collect();
        match kind.named() {
            Some(named) => catalog.learn_names(&vs.naming, named, *i, ids, first),
            None if kind == ListKind::Resources => catalog.learn_resources(*i, ids, first),
            None if kind == ListKind::Templates => catalog.learn_templates(*i, ids, first),
            None => {}
        }
        if let Some(n) = &page.next {
            next.push((m.upstream.name.to_string(), n.clone()));
        }
        pages.push((*i, page));
    }
    let exposure = kind.named().map(|n| catalog.names(n).clone());
    drop(catalog);
    let (mut merged, dropped) =
        merge::merge_list(kind, &pages, exposure.as_ref(), merge::encode_cursor(&next));
    if ctx.era == crate::mcp::Era::Stateless {
        // 2026-07-28 list results are cacheable: the shortest freshness a
        // member gave (0 when one gave none), and private (the list is
        // filtered for this principal)
        let ttl = ttls.iter().min().copied().unwrap_or(0).to_string();
        for (k, v) in [
            ("resultType", "\"complete\""),
            ("ttlMs", ttl.as_str()),
            ("cacheScope", "\"private\""),
        ] {
            if let Some(m) = Members::of(&merged) {
                merged = m.with(k, v);
            }
        }
    }
    for name in &dropped.clashes {
        log::warn!(
            "virtual server {}: {} {name:?} is listed by several members: refused",
            vs.path,
            kind.key()
        );
    }
    let Done::Answer(status, out, _) = result(ctx, &merged) else {
        return Err(GatewayError::Internal);
    };
    // policy: the principal sees only what it may use (the same check as
    // any proxied list answer)
    let (Some(rt), Some(p)) = (&ctx.runtime, &ctx.principal) else {
        return Err(GatewayError::Internal);
    };
    let allowed = |item, name: &str| rt.policy.item_allowed(p, item, name);
    let out = match crate::answer::check_message(&out, &allowed) {
        crate::answer::Checked::Pass => out,
        crate::answer::Checked::Rewritten(v) => Bytes::from(v),
        crate::answer::Checked::Refused(m) => crate::answer::refused_body(ctx.id_ref(), m),
    };
    Ok(Done::Answer(status, out, None))
}

/// The member and own name of an exposed tool or prompt name: by prefix
/// under `always`, else from the catalog (listing again once on a miss).
async fn resolve_name(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    kind: Named,
    exposed: &str,
) -> Option<federation::Exposed> {
    let list = if kind == Named::Tool {
        ListKind::Tools
    } else {
        ListKind::Prompts
    };
    if let Some(e) = vs.naming.split(exposed) {
        // the prefix names the member; the member must have the name (a
        // member that could not be listed decides for itself)
        let has = |vs: &VirtualServer| {
            let cat = vs.catalog.read().unwrap_or_else(|e| e.into_inner());
            cat.own
                .get(&(kind, e.member))
                .map(|names| names.contains(&e.own))
        };
        if has(vs) == Some(true) {
            return Some(e);
        }
        relist(vs, ctx, c, list).await;
        return match has(vs) {
            Some(false) => None,
            _ => Some(e),
        };
    }
    if vs.naming.mode == PrefixMode::Always {
        return None;
    }
    let known = |vs: &VirtualServer| {
        let cat = vs.catalog.read().unwrap_or_else(|e| e.into_inner());
        cat.names(kind).names.get(exposed).cloned()
    };
    if let Some(e) = known(vs) {
        return Some(e);
    }
    relist(vs, ctx, c, list).await;
    known(vs)
}

/// Lists again (first pages) so the catalog knows what members have.
async fn relist(vs: &VirtualServer, ctx: &RequestCtx, c: &Composite, kind: ListKind) {
    // at most once a second per kind: calls to names nobody has must not
    // turn into a fan-out each (the refusal itself counts against the
    // address's refusal budget)
    {
        let Ok(mut last) = vs.relisted.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        match last.get(&kind) {
            Some(t) if now.duration_since(*t) < RELIST_EVERY => return,
            _ => {
                last.insert(kind, now);
            }
        }
    }
    let body = Bytes::from(format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":\"mcp-edge-relist\",\"method\":\"{}\",\"params\":{{}}}}",
        kind.method()
    ));
    let _ = list(vs, ctx, c, &body, kind).await;
}

/// Shortest time between two listings a miss makes.
const RELIST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The session member at catalog index `i` (config index of the member).
fn session_member<'a>(
    vs: &'a VirtualServer,
    c: &'a Composite,
    config_index: usize,
) -> Option<(usize, &'a Member, &'a MemberSession)> {
    let m = vs.members.get(config_index)?;
    let (i, ms) = c.member(&m.upstream.name)?;
    Some((i, m, ms))
}

async fn forward_named(
    vs: &VirtualServer,
    ctx: &mut RequestCtx,
    c: &Composite,
    body: &Bytes,
    kind: Named,
) -> Res<Done> {
    let unknown = match kind {
        Named::Tool => GatewayError::UnknownTool,
        Named::Prompt => GatewayError::UnknownItem("Unknown prompt"),
    };
    let exposed = ctx.target().unwrap_or_default().to_string();
    let Some(e) = resolve_name(vs, ctx, c, kind, &exposed).await else {
        return Err(unknown);
    };
    let Some((i, m, ms)) = session_member(vs, c, e.member) else {
        return Err(unknown);
    };
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    let rewritten = json::set_path(text, &["params", "name"], &json::string(&e.own))
        .ok_or(GatewayError::Internal)?;
    forward(ctx, i, m, ms, Bytes::from(rewritten), Some(e.own))
}

/// The member serving a resource URI: the catalog (listing resources and
/// templates again once on a miss).
async fn resolve_uri(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    uri: &str,
) -> Option<usize> {
    let known = |vs: &VirtualServer| {
        let cat = vs.catalog.read().unwrap_or_else(|e| e.into_inner());
        cat.resource_member(uri)
    };
    if let Some(m) = known(vs) {
        return Some(m);
    }
    relist(vs, ctx, c, ListKind::Resources).await;
    relist(vs, ctx, c, ListKind::Templates).await;
    known(vs)
}

async fn forward_uri(
    vs: &VirtualServer,
    ctx: &mut RequestCtx,
    c: &Composite,
    body: Bytes,
    uri: &str,
) -> Res<Done> {
    let unknown = GatewayError::UnknownItem("Resource not found");
    let Some(idx) = resolve_uri(vs, ctx, c, uri).await else {
        return Err(unknown);
    };
    let Some((i, m, ms)) = session_member(vs, c, idx) else {
        return Err(unknown);
    };
    forward(ctx, i, m, ms, body, None)
}

async fn complete(
    vs: &VirtualServer,
    ctx: &mut RequestCtx,
    c: &Composite,
    body: &Bytes,
) -> Res<Done> {
    let (kind, name, uri) = {
        let env = ctx.envelope.as_ref().ok_or(GatewayError::Internal)?;
        let r = env
            .reference
            .as_deref()
            .ok_or(GatewayError::InvalidParams("params.ref is required"))?;
        (
            r.kind.text().map(|t| t.as_str(body).to_string()),
            r.name.text().map(|t| t.as_str(body).to_string()),
            r.uri.text().map(|t| t.as_str(body).to_string()),
        )
    };
    match (kind.as_deref(), name, uri) {
        (Some("ref/prompt"), Some(exposed), _) => {
            let e = resolve_name(vs, ctx, c, Named::Prompt, &exposed)
                .await
                .ok_or(GatewayError::UnknownItem("Unknown prompt"))?;
            let (i, m, ms) = session_member(vs, c, e.member)
                .ok_or(GatewayError::UnknownItem("Unknown prompt"))?;
            let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
            let rewritten = json::set_path(text, &["params", "ref", "name"], &json::string(&e.own))
                .ok_or(GatewayError::Internal)?;
            forward(ctx, i, m, ms, Bytes::from(rewritten), Some(e.own))
        }
        (Some("ref/resource"), _, Some(uri)) => forward_uri(vs, ctx, c, body.clone(), &uri).await,
        _ => Err(GatewayError::InvalidParams(
            "params.ref must name a prompt or a resource",
        )),
    }
}

/// `tasks/get`, `tasks/result`, `tasks/cancel`: to the member that owns
/// the task, with its own task id (the answer's task ids namespaced again
/// by [`member_answer`]).
async fn task(vs: &VirtualServer, ctx: &mut RequestCtx, c: &Composite, body: &Bytes) -> Res<Done> {
    let unknown = GatewayError::InvalidParams("Failed to retrieve task: Task not found");
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    let params = Members::of(text)
        .and_then(|m| m.get("params").map(|p| p.get().to_string()))
        .ok_or(GatewayError::InvalidParams("params.taskId is required"))?;
    let id = Members::of(&params)
        .and_then(|p| p.str("taskId"))
        .ok_or(GatewayError::InvalidParams("params.taskId is required"))?;
    let (i, own) = federation::unwrap_task_id(&id).ok_or(unknown.clone())?;
    let ms = c.members.get(i).ok_or(unknown.clone())?;
    let (_, m) = vs.member(&ms.upstream).ok_or(unknown)?;
    let rewritten = json::set_path(text, &["params", "taskId"], &json::string(own))
        .ok_or(GatewayError::Internal)?;
    forward(ctx, i, m, ms, Bytes::from(rewritten), None)
}

/// A client's answer to a member's request: back to that member with
/// the member's own id.
async fn answer_member(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    body: &Bytes,
) -> Res<Done> {
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    let members = Members::of(text).ok_or(GatewayError::Parse)?;
    let id = members
        .str("id")
        .ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let (i, raw) =
        federation::unwrap_id(&id).ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let ms = c
        .members
        .get(i)
        .ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let (_, m) = vs
        .member(&ms.upstream)
        .ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let out = Bytes::from(members.with("id", &raw));
    let deadline = Instant::now() + vs.member_timeout;
    match ask(ctx, m, Some(ms), out, deadline).await {
        Ok(r) if session_gone(&r) => Err(GatewayError::SessionNotFound("member_session_gone")),
        Ok(_) => Ok(Done::Answer(202, Bytes::new(), None)),
        Err(Failure::Timeout) => Err(GatewayError::UpstreamTimeout),
        Err(Failure::Broken(_)) => Err(GatewayError::UpstreamUnavailable),
    }
}

/// What a forwarded call's answer becomes on its way to the client: the
/// ids of a member's requests on its stream namespaced; a session-era
/// member's results upgraded for a 2026-07-28 client.
pub fn member_answer(
    ctx: &RequestCtx,
    m: &MemberCall,
    guard: &crate::answer::Guard,
    out: Bytes,
) -> Bytes {
    let sse = matches!(guard, crate::answer::Guard::Sse(_));
    let upgrade =
        ctx.era == crate::mcp::Era::Stateless && m.version.as_str() < crate::mcp::STATELESS_SINCE;
    let cacheable = ctx.method() == Some("resources/read");
    match (sse, upgrade) {
        (true, false) => Bytes::from(federation::namespace_events(&out, m.index)),
        (false, false) => std::str::from_utf8(&out)
            .ok()
            .and_then(|t| federation::namespace_tasks(t, m.index))
            .map_or(out, Bytes::from),
        (true, true) => Bytes::from(federation::upgrade_events(&out, cacheable)),
        (false, true) => std::str::from_utf8(&out)
            .ok()
            .and_then(|t| federation::upgrade_result(t, cacheable))
            .map_or(out, Bytes::from),
    }
}

/// Sets `ctx` up to proxy `body` to member `m` of the session.
fn forward(
    ctx: &mut RequestCtx,
    index: usize,
    m: &Member,
    ms: &MemberSession,
    body: Bytes,
    own: Option<String>,
) -> Res<Done> {
    let picked = member_endpoint(m, ms)?;
    ctx.upstream = Some(m.upstream.clone());
    ctx.endpoint = Some(picked);
    // a member without a session (2026-07-28, or one that issued none)
    // gets no session id and no session refusal mapping
    ctx.session = (!ms.session.is_empty()).then(|| crate::session::Owner {
        upstream: ms.upstream.clone(),
        endpoint: ms.endpoint.clone(),
        session: ms.session.clone(),
        principal: ctx.principal.as_ref().map_or([0; 16], |p| p.digest()),
        issued: 0,
    });
    ctx.member = Some(MemberCall {
        index,
        upstream: m.upstream.name.clone(),
        own,
        version: ms.version.clone(),
    });
    ctx.forward_body = Some(body);
    Ok(Done::Forward)
}
