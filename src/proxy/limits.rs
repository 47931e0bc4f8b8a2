//! The tool-call safety envelope on the proxy path (docs/tool-safety.md):
//! a `tools/call` under a `tool_limits` rule takes its `max_concurrent`
//! permit at admission (held by the context: every ending releases it),
//! gets a deadline that bounds every upstream read (`timeout_ms`), and an
//! answer bound (`max_response_bytes`, else the server's) counted over the
//! JSON body or over all SSE events of a POST's answer. A limit that ends
//! an answer that already started ends it with a JSON-RPC error for the
//! call's id (an SSE error event, or the held JSON body replaced), never a
//! truncated result, closes the upstream connection and cancels the call
//! upstream (`notifications/cancelled`).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::RequestCtx;
use crate::error::GatewayError;
use crate::runtime::Runtime;

/// The message of a tool's answer past its rule's bound.
pub const TOOL_TOO_LARGE: &str = "tool result larger than tool_limits max_response_bytes";
/// The message of a POST's SSE answer past the server's bound.
const SSE_TOO_LARGE: &str =
    "upstream answer (its SSE events) larger than server.limits.max_response_bytes";

/// Timers fire late by a little: a read that failed this close to the
/// deadline failed because of it.
const DEADLINE_SLACK: Duration = Duration::from_millis(20);

/// A `tools/call` under a `tool_limits` rule.
#[derive(Debug)]
pub struct ToolCall {
    /// When it must have ended (`timeout_ms` after admission).
    pub deadline: Option<Instant>,
    /// Its answer's bound.
    pub max_bytes: Option<usize>,
    /// Its place among the principal's running calls of the rule.
    _permit: Option<crate::tools::Permit>,
}

/// What a POST's SSE answer may still carry.
#[derive(Debug)]
pub struct Budget {
    left: usize,
    message: &'static str,
}

/// After authorization and the rate limit: a `tools/call` under a rule
/// takes a permit (429 when the principal is at `max_concurrent`).
pub fn admit(rt: &Runtime, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    if rt.tool_limits.is_empty() || ctx.method() != Some("tools/call") {
        return Ok(());
    }
    let Some(name) = ctx.target() else {
        return Ok(());
    };
    let Some(rule) = rt.tool_limits.for_tool(name) else {
        return Ok(());
    };
    let Some(p) = ctx.principal.as_ref() else {
        return Err(GatewayError::Internal);
    };
    let permit = rule.acquire(p.digest()).map_err(|_| {
        crate::telemetry::metrics::record_tool_limit("max_concurrent");
        GatewayError::ToolBusy
    })?;
    ctx.tool = Some(ToolCall {
        deadline: rule.timeout.map(|t| Instant::now() + t),
        max_bytes: rule.max_response_bytes,
        _permit: permit,
    });
    Ok(())
}

/// `upstream_response_deadline`.
pub fn deadline(ctx: &RequestCtx) -> Option<Instant> {
    ctx.tool.as_ref().and_then(|t| t.deadline)
}

/// Whether the call's deadline has passed.
pub fn timed_out(ctx: &RequestCtx) -> bool {
    deadline(ctx).is_some_and(|d| Instant::now() + DEADLINE_SLACK >= d)
}

/// The bound of this answer and its message: the tool's, else the
/// server's.
pub fn answer_bound(rt: &Runtime, ctx: &RequestCtx) -> (usize, &'static str) {
    match ctx.tool.as_ref().and_then(|t| t.max_bytes) {
        Some(b) => (b, TOOL_TOO_LARGE),
        None => (
            rt.server.limits.max_response_bytes,
            crate::answer::TOO_LARGE,
        ),
    }
}

/// `response_filter` of a POST's SSE answer: its events are counted
/// against the bound.
pub fn start_budget(rt: &Runtime, ctx: &mut RequestCtx) {
    let (left, message) = answer_bound(rt, ctx);
    let message = if message == crate::answer::TOO_LARGE {
        SSE_TOO_LARGE
    } else {
        message
    };
    ctx.budget = Some(Budget { left, message });
}

/// `response_cut_short`: the upstream failed at the call's deadline with
/// the answer started: the gateway ends it (the next body filter call
/// writes the error).
pub fn cut_short(ctx: &mut RequestCtx) -> bool {
    if !ctx.answer_started || ctx.ended || !timed_out(ctx) {
        return false;
    }
    ctx.cut = Some(GatewayError::ToolTimeout);
    crate::telemetry::metrics::record_tool_limit("timeout");
    cancel_upstream(ctx, "tool_limits timeout_ms");
    true
}

/// `fail_to_proxy`: a timeout at the call's deadline is the tool's.
pub fn failed(err: GatewayError, ctx: &RequestCtx) -> GatewayError {
    if err == GatewayError::UpstreamTimeout && timed_out(ctx) {
        crate::telemetry::metrics::record_tool_limit("timeout");
        cancel_upstream(ctx, "tool_limits timeout_ms");
        return GatewayError::ToolTimeout;
    }
    err
}

/// Counts `n` more bytes of a POST's SSE answer as the upstream sent them
/// (events, comments and all): past the bound, the answer ends with an
/// error event for the call (`Some`: the last chunk) and nothing of this
/// chunk is relayed.
pub fn spend(ctx: &mut RequestCtx, n: usize) -> Option<Bytes> {
    let b = ctx.budget.as_mut()?;
    if n <= b.left {
        b.left -= n;
        return None;
    }
    let err = GatewayError::AnswerTooLarge(b.message);
    ctx.budget = None;
    crate::telemetry::metrics::record_tool_limit("max_response_bytes");
    cancel_upstream(ctx, "max_response_bytes");
    ctx.cut = Some(err);
    final_chunk(ctx)
}

/// The last chunk of an answer the gateway ends (`ctx.cut`): the error for
/// the call's id, as an SSE event or as the whole (held) JSON body; marks
/// the answer ended.
pub fn final_chunk(ctx: &mut RequestCtx) -> Option<Bytes> {
    let err = ctx.cut.take()?;
    let body = crate::jsonrpc::error_body(ctx.id_ref(), err.jsonrpc_code(), err.reason());
    let out = if ctx.sse {
        let mut b = BytesMut::with_capacity(body.len() + 24);
        b.extend_from_slice(b"event: message\ndata: ");
        b.extend_from_slice(&body);
        b.extend_from_slice(b"\n\n");
        b.freeze()
    } else {
        // the JSON header is still held: it gets this body's status and length
        ctx.release = Some((err.status(), body.len()));
        ctx.hold = false;
        body
    };
    ctx.guard = None;
    ctx.error = Some(err);
    ctx.ended = true;
    Some(out)
}

/// A JSON answer refused for its size: the rest of it is not read.
pub fn too_large_json(ctx: &mut RequestCtx, message: &'static str) {
    crate::telemetry::metrics::record_tool_limit("max_response_bytes");
    cancel_upstream(ctx, "max_response_bytes");
    ctx.error = Some(GatewayError::AnswerTooLarge(message));
    ctx.ended = true;
}

/// Tells the upstream to stop working on the call (`notifications/cancelled`
/// with its session), in the background; only for calls with an id.
fn cancel_upstream(ctx: &RequestCtx, reason: &'static str) {
    if let Some(id) = ctx.id_ref() {
        let body = crate::jsonrpc::cancelled_body(id, reason);
        super::member::post_beside(ctx, "notifications/cancelled", body, 64 * 1024, |_| {});
    }
}
