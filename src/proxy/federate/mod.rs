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

mod forward;
mod lists;
mod session;
mod stateless;
mod stream;

use forward::*;
use lists::*;
use session::*;
use stream::*;

pub use forward::member_answer;
pub use session::end_members;
pub use stateless::forget as forget_held;
pub use stream::{open_listener, Listener};

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
            Err(e) => super::reply::respond(session, ctx, e).await,
        };
    }
    if session.req_header().method == Method::GET {
        return match listen(session, ctx).await {
            Ok(()) => Ok(true),
            Err(e) => super::reply::respond(session, ctx, e).await,
        };
    }
    match route(session, ctx).await {
        Ok(Done::Forward) => Ok(false),
        Ok(Done::Answer(status, body, token)) => {
            write(session, ctx, status, body, token).await?;
            Ok(true)
        }
        Err(e) => super::reply::respond(session, ctx, e).await,
    }
}

async fn write(
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    body: Bytes,
    token: Option<String>,
) -> Result<()> {
    if super::sse_streams::divert_answer(ctx, status, &body, token.as_deref()) {
        // a legacy client's POST: the answer went to its stream
        let mut resp = super::reply::json_header(202, 0, ctx)?;
        resp.remove_header("content-type");
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(Bytes::new()), true)
            .await?;
        return Ok(());
    }
    let mut resp = super::reply::json_header(status, body.len(), ctx)?;
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
                .is_some_and(|b| crate::answer::about_the_session(b)))
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
