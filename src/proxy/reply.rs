//! The answers the gateway writes itself: the one `respond` for every
//! refusal (JSON-RPC error object, the right status and headers, the
//! refusal budget, the lingering read of an unread body), JSON answers of
//! its own, and the answer to a request header Pingora cannot parse.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora_proxy::Session;

use super::RequestCtx;
use crate::error::GatewayError;
use crate::jsonrpc;

/// Writes a gateway-made JSON-RPC error and ends the request (`Ok(true)` for
/// `request_filter`). A refusal that probing produces counts against the
/// client address's refusal budget. When the body was not read, the rest
/// of it is read and discarded for a bounded time and size ([`linger`])
/// before the connection closes, so the client gets to read the answer.
pub async fn respond(
    session: &mut Session,
    ctx: &mut RequestCtx,
    err: GatewayError,
) -> Result<bool> {
    let body = match &err {
        // the same words an MCP server uses for a tool it does not have
        GatewayError::UnknownTool | GatewayError::ToolChanged => jsonrpc::error_body(
            ctx.id_ref(),
            err.jsonrpc_code(),
            &format!(
                "Unknown tool: {}",
                ctx.called_as
                    .as_deref()
                    .or(ctx.target())
                    .unwrap_or_default()
            ),
        ),
        GatewayError::UnsupportedProtocolVersion => crate::mcp::unsupported_version_body(
            session
                .req_header()
                .headers
                .get("mcp-protocol-version")
                .map_or(&b""[..], |v| v.as_bytes()),
        ),
        _ => jsonrpc::error_body(ctx.id_ref(), err.jsonrpc_code(), err.reason()),
    };
    let status = err.status();
    if super::sse_streams::divert_refusal(ctx, status, &body) {
        // a legacy client reads this answer on its stream
        ctx.error = Some(err);
        let mut resp = ResponseHeader::build(202, Some(2))?;
        resp.insert_header("content-length", "0")?;
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        session.write_response_header(Box::new(resp), true).await?;
        return Ok(true);
    }
    let mut resp = json_header(status, body.len(), ctx)?;
    match &err {
        GatewayError::MethodNotAllowed(allow) => resp.insert_header("allow", *allow)?,
        GatewayError::Unauthenticated | GatewayError::BadCredentials => {
            resp.insert_header("www-authenticate", www_authenticate(ctx, &err))?
        }
        GatewayError::RateLimited => {
            let retry = ctx.rate.map_or(1, |d| d.retry_after_secs);
            resp.insert_header("retry-after", retry)?
        }
        GatewayError::ToolBusy => resp.insert_header("retry-after", 1)?,
        GatewayError::RefusalsLimited => {
            resp.insert_header("retry-after", ctx.retry_after.unwrap_or(1))?
        }
        _ => {}
    }
    rate_headers(&mut resp, ctx)?;
    if err.counts_as_probe() {
        if let (Some(c), Some(rt)) = (&ctx.client, &ctx.runtime) {
            crate::ratelimit::refusals::shared().count(c.ip, rt.refusals_rpm);
        }
    }
    let slow = err == GatewayError::BodyIncomplete;
    ctx.error = Some(err);
    // a body that was too slow to read (408) is not waited for again
    let linger_after = !ctx.body_read && super::request_has_body(session) && !slow;
    if linger_after {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    if linger_after {
        linger(session, ctx).await;
    }
    Ok(true)
}

/// Reads and discards what is left of the request body after an early
/// answer, for at most `limits.linger_ms` and `limits.linger_bytes` (nginx's
/// lingering close): closing a socket with unread data makes the kernel
/// send a reset, and the client (Node's fetch, Python's http.client) then
/// reports a broken pipe instead of the JSON-RPC error it was sent. A
/// client that sent `Expect: 100-continue` was never invited to send the
/// body and is not waited for; HTTP/2 ends the stream on its own.
async fn linger(session: &mut Session, ctx: &RequestCtx) {
    let Some(rt) = ctx.runtime.as_ref() else {
        return;
    };
    let req = session.req_header();
    let expects = req
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects || session.as_downstream().is_http2() {
        return;
    }
    let limits = &rt.server.limits;
    let deadline = tokio::time::Instant::now() + limits.linger;
    session
        .as_downstream_mut()
        .set_read_timeout(Some(limits.linger));
    let mut read = 0u64;
    while read < limits.linger_bytes {
        match tokio::time::timeout_at(deadline, session.read_request_body()).await {
            Ok(Ok(Some(chunk))) => read += chunk.len() as u64,
            _ => break,
        }
    }
}

/// `RateLimit-Limit`/`-Remaining`/`-Reset` on every rate-limited response.
pub(super) fn rate_headers(resp: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
    if let Some(d) = ctx.rate {
        resp.insert_header("ratelimit-limit", d.limit)?;
        resp.insert_header("ratelimit-remaining", d.remaining)?;
        resp.insert_header("ratelimit-reset", d.reset_secs)?;
    }
    Ok(())
}

/// `WWW-Authenticate` for a 401 (RFC 6750, with the RFC 9728 metadata URL).
fn www_authenticate(ctx: &RequestCtx, err: &GatewayError) -> String {
    let mut v = String::from("Bearer");
    let mut sep = " ";
    if let Some(meta) = ctx
        .runtime
        .as_ref()
        .and_then(|rt| rt.resource_metadata.as_ref())
    {
        v.push_str(&format!("{sep}resource_metadata=\"{}\"", meta.url));
        sep = ", ";
    }
    if *err == GatewayError::BadCredentials {
        v.push_str(&format!("{sep}error=\"invalid_token\""));
    }
    v
}

/// Writes a JSON answer (health endpoints).
pub async fn respond_json(
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    body: Bytes,
    keepalive: bool,
) -> Result<()> {
    let resp = json_header(status, body.len(), ctx)?;
    if !keepalive {
        session.set_keepalive(None);
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// The answer to a request header that could not be parsed: 400 with a
/// JSON-RPC error (no id: nothing of the request is trusted).
pub fn malformed_request_header() -> Option<(ResponseHeader, Bytes)> {
    let body = jsonrpc::error_body(None, -32600, "malformed HTTP request");
    let mut resp = ResponseHeader::build(400, Some(4)).ok()?;
    resp.insert_header("content-type", "application/json")
        .ok()?;
    resp.insert_header("content-length", body.len()).ok()?;
    resp.insert_header("cache-control", "no-store").ok()?;
    resp.insert_header("connection", "close").ok()?;
    Some((resp, body))
}

pub(super) fn json_header(status: u16, len: usize, ctx: &RequestCtx) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", len)?;
    resp.insert_header("cache-control", "no-store")?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    Ok(resp)
}
