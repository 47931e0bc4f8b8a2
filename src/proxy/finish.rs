//! `logging`: one access-log line per request, after the response is done
//! (for SSE streams: when the stream ends).

use pingora::prelude::*;
use pingora_proxy::Session;
use serde::Serialize;

use super::response::classify;
use super::RequestCtx;
use crate::mcp::Era;
use crate::telemetry::audit::{now_rfc3339, Capped, CertWho, Event, Who};

use crate::telemetry::accesslog::ACCESS_TARGET;

/// Characters of a session id kept in access lines: the version, key hint
/// and nonce of a sealed token (unique per session) and then some.
const SESSION_LOG_CHARS: usize = 24;

#[derive(Serialize)]
struct AccessLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: &'a str,
    client: Option<String>,
    http_method: &'a str,
    path: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    era: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    member_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    sse: bool,
    bytes_in: usize,
    bytes_out: usize,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

/// Writes the access-log line and the audit event.
pub fn access_log(session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
    if ctx.error.is_none() {
        if let Some(e) = e {
            ctx.error = classify(e);
        }
    }
    audit_event(session, ctx);
    record_metrics(session, ctx);
    if !log::log_enabled!(target: ACCESS_TARGET, log::Level::Info) {
        return;
    }
    let target = redacted_target(ctx);
    let req = session.req_header();
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .or_else(|| ctx.error.as_ref().map(|e| e.status()))
        .unwrap_or(0);
    let line = AccessLine {
        kind: "access",
        request_id: &ctx.request_id,
        client: client_text(session, ctx),
        http_method: req.method.as_str(),
        path: req.uri.path(),
        status,
        mcp_method: ctx.method(),
        target: target.as_deref(),
        era: match ctx.era {
            Era::Session => "session",
            Era::Stateless => "stateless",
        },
        upstream: ctx.upstream.as_ref().map(|u| &*u.name),
        member_name: ctx.member.as_ref().and_then(|m| m.own.as_deref()),
        endpoint: ctx.endpoint.as_ref().map(|e| e.0.url.as_str()),
        // a prefix is enough to tell sessions apart (it covers the token's
        // random nonce) and keeps lines short; the token is no secret
        session: req
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.get(..SESSION_LOG_CHARS).unwrap_or(s)),
        sse: ctx.sse,
        bytes_in: ctx.body.as_ref().map_or(0, |b| b.len()),
        bytes_out: session.body_bytes_sent(),
        duration_ms: (ctx.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        error: ctx.error.as_ref().map(|e| e.label()),
    };
    match serde_json::to_string(&line) {
        Ok(s) => crate::telemetry::accesslog::write(s),
        Err(err) => log::warn!("access log line not serialisable: {err}"),
    }
}

/// Counts the request in the Prometheus families (`src/metrics.rs`).
fn record_metrics(session: &Session, ctx: &mut RequestCtx) {
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .or_else(|| ctx.error.as_ref().map(|e| e.status()))
        .unwrap_or(0);
    let route = ctx.route.label();
    crate::telemetry::metrics::record_request(&crate::telemetry::metrics::Finished {
        route: &route,
        upstream: ctx.upstream.as_ref().map_or("-", |u| &*u.name),
        method: ctx.method(),
        status,
        error: ctx
            .error
            .as_ref()
            .map(|e| (e.label(), e.jsonrpc_code(), e.is_refusal())),
        sse: ctx.sse,
        seconds: ctx.started.elapsed().as_secs_f64(),
    });
    match &ctx.error {
        Some(crate::error::GatewayError::SessionNotFound(reason)) => {
            crate::telemetry::metrics::record_session("rejected", reason)
        }
        _ if ctx.session.is_some() => crate::telemetry::metrics::record_session("opened", "valid"),
        _ => {}
    }
    // the stream is over: release its gauge unit now rather than at drop
    ctx.sse_gauge = None;
}

/// The tool/resource/prompt for logs, with `redact_keys` query values masked.
fn redacted_target(ctx: &RequestCtx) -> Option<std::borrow::Cow<'_, str>> {
    let t = ctx.target()?;
    Some(match &ctx.runtime {
        Some(rt) => crate::telemetry::audit::redact_query(t, &rt.redact_keys),
        None => std::borrow::Cow::Borrowed(t),
    })
}

/// The client address for logs: as resolved by the edge, else the peer.
fn client_text(session: &Session, ctx: &RequestCtx) -> Option<String> {
    match &ctx.client {
        Some(c) => Some(c.ip.to_string()),
        None => session.client_addr().map(|a| a.to_string()),
    }
}

/// One audit line per request, rejections included.
fn audit_event(session: &Session, ctx: &RequestCtx) {
    let Some(audit) = ctx.runtime.as_ref().and_then(|rt| rt.audit()) else {
        return;
    };
    let status = session
        .response_written()
        .map(|r| r.status.as_u16())
        .or_else(|| ctx.error.as_ref().map(|e| e.status()))
        .unwrap_or(0);
    let target = redacted_target(ctx);
    let (decision, reason, code) = match &ctx.error {
        None => ("allow", None, None),
        Some(e) => (
            if e.is_refusal() { "deny" } else { "error" },
            Some(e.label()),
            Some(e.jsonrpc_code()),
        ),
    };
    let event = Event {
        ts: now_rfc3339(),
        request_id: Capped(&ctx.request_id),
        client_ip: client_text(session, ctx),
        principal: ctx.principal.as_ref().map(|p| Who {
            tenant: Capped(&p.tenant),
            client: Capped(&p.client),
            key_id: p.key_id.as_deref().map(Capped),
            subject: p.subject.as_deref().map(Capped),
            source: p.source.as_str(),
        }),
        client_cert: super::ctx::client_cert(session).map(|c| CertWho {
            cn: c.cn.as_deref().map(Capped),
            serial: Capped(&c.serial),
            sha256: Capped(&c.sha256),
        }),
        http_method: session.req_header().method.as_str(),
        path: Capped(session.req_header().uri.path()),
        method: ctx.method().map(Capped),
        target: target.as_deref().map(Capped),
        called_as: ctx.called_as.as_deref().map(Capped),
        upstream: ctx.upstream.as_ref().map(|u| &*u.name),
        member_name: ctx
            .member
            .as_ref()
            .and_then(|m| m.own.as_deref())
            .map(Capped),
        left_out: ctx.left_out.lock().map(|v| v.clone()).unwrap_or_default(),
        tool_changes: ctx
            .tool_changes
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default(),
        decision,
        reason,
        status,
        jsonrpc_code: code,
        duration_ms: (ctx.started.elapsed().as_secs_f64() * 1e6).round() / 1000.0,
        bytes_in: ctx.body.as_ref().map_or(0, |b| b.len()),
        bytes_out: session.body_bytes_sent(),
    };
    audit.record(&event);
}
