//! Responses: headers on the way back (`response_filter`), answers the gateway
//! writes itself (JSON-RPC error objects with the right HTTP status), and the
//! mapping of proxy failures to 502/504 (`fail_to_proxy`).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::ErrorSource;
use pingora_proxy::{FailToProxy, Session};

use super::RequestCtx;
use crate::error::GatewayError;
use crate::jsonrpc;
use crate::listfilter::{ListFilter, ListKind};

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
        GatewayError::UnknownTool => jsonrpc::error_body(
            ctx.id_ref(),
            err.jsonrpc_code(),
            &format!("Unknown tool: {}", ctx.target().unwrap_or_default()),
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
    ctx.error = Some(err);
    let linger_after = !ctx.body_read && super::request_has_body(session);
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
fn rate_headers(resp: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
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

fn json_header(status: u16, len: usize, ctx: &RequestCtx) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", len)?;
    resp.insert_header("cache-control", "no-store")?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    Ok(resp)
}

/// `response_filter`: echo the request id, note SSE, start list filtering.
pub fn filter(resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
    let ctype = resp
        .headers
        .get("content-type")
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    ctx.sse = ctype.starts_with(b"text/event-stream");
    if ctx.sse && ctx.sse_gauge.is_none() {
        ctx.sse_gauge = Some(crate::metrics::SseStream::start());
    }
    let json = ctype.starts_with(b"application/json");
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    rate_headers(resp, ctx)?;
    seal_session(resp, ctx)?;
    if upstream_refused_session(resp.status.as_u16(), ctx) {
        // the spec's answer for a session the server no longer knows is 404,
        // the one status that makes a client re-initialize
        resp.set_status(404)?;
        ctx.error = Some(GatewayError::SessionNotFound("session_refused_upstream"));
    }
    if resp.status == 200 && (ctx.sse || json) {
        if let Some(kind) = ctx.method().and_then(ListKind::of) {
            // the body changes length: send it chunked
            resp.remove_header("content-length");
            resp.insert_header("transfer-encoding", "chunked")?;
            ctx.list_filter = Some(ListFilter::new(kind, ctx.sse));
        }
    }
    Ok(())
}

/// Whether an upstream answer means "I do not know this session".
///
/// The rule (docs/sessions.md): the request carried a gateway session token
/// that opened, so the upstream received its own session id back; the
/// gateway already checked the JSON-RPC body, the protocol version and the
/// headers, so a 400 (some servers, server-everything among them, answer
/// `400 Bad Request: No valid session ID provided`) or a 404 to such a
/// request is the upstream refusing the session id. An event stream is an
/// answer, never a refusal.
fn upstream_refused_session(status: u16, ctx: &RequestCtx) -> bool {
    matches!(status, 400 | 404) && ctx.session.is_some() && !ctx.sse && ctx.error.is_none()
}

/// An upstream `Mcp-Session-Id` never reaches the client: it is replaced by
/// a token sealing (upstream, endpoint, id, principal, time).
fn seal_session(resp: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
    let Some(id) = resp.headers.get("mcp-session-id") else {
        return Ok(());
    };
    // the same session repeated: the client's token still says it all
    if let (Some(owner), Some(token)) = (&ctx.session, &ctx.session_token) {
        if owner.session.as_bytes() == id.as_bytes() {
            resp.insert_header("mcp-session-id", token.clone())?;
            return Ok(());
        }
    }
    let sealed = id.to_str().ok().and_then(|id| seal_for(id, ctx));
    match sealed {
        Some(token) => {
            crate::metrics::record_session("sealed", "new_session");
            resp.insert_header("mcp-session-id", token)?
        }
        None => {
            // too long or not text: the client must not see the upstream's id
            log::warn!("upstream session id could not be sealed; dropped");
            resp.remove_header("mcp-session-id");
        }
    }
    Ok(())
}

/// A token sealing upstream id `id` for this request's upstream, endpoint
/// and principal.
fn seal_for(id: &str, ctx: &RequestCtx) -> Option<String> {
    let (up, ep, p, rt) = (
        ctx.upstream.as_ref()?,
        ctx.endpoint.as_ref()?,
        ctx.principal.as_ref()?,
        ctx.runtime.as_ref()?,
    );
    rt.session_keys().seal(&crate::session::Owner {
        upstream: up.name.to_string(),
        endpoint: ep.0.key.clone(),
        session: id.to_string(),
        principal: p.digest(),
        issued: crate::session::now_secs(),
    })
}

/// `response_body_filter`: list results keep only what the principal may use.
pub fn body_filter(body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) {
    let Some(mut filter) = ctx.list_filter.take() else {
        return;
    };
    let (Some(rt), Some(principal)) = (&ctx.runtime, &ctx.principal) else {
        return;
    };
    let allowed = |item, name: &str| rt.policy.item_allowed(principal, item, name);
    let chunk = body.take().unwrap_or_default();
    let out = filter.push(&chunk, end, &allowed);
    *body = (!out.is_empty()).then_some(out);
    ctx.list_filter = Some(filter);
}

/// Maps a proxy failure to the gateway's answer.
pub fn classify(e: &Error) -> Option<GatewayError> {
    use pingora::ErrorType::*;
    match e.etype() {
        ConnectTimedout => Some(GatewayError::UpstreamTimeout),
        ReadTimedout | WriteTimedout if e.esource() == &ErrorSource::Upstream => {
            Some(GatewayError::UpstreamTimeout)
        }
        _ => match e.esource() {
            ErrorSource::Upstream => Some(GatewayError::UpstreamUnavailable),
            // the client went away: nobody to answer
            ErrorSource::Downstream => None,
            ErrorSource::Internal | ErrorSource::Unset => Some(GatewayError::Internal),
        },
    }
}

/// `fail_to_proxy`: a JSON-RPC error with 502/504 unless a response already started.
pub async fn fail(session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
    let Some(err) = classify(e) else {
        return FailToProxy {
            error_code: 0,
            can_reuse_downstream: false,
        };
    };
    let code = err.status();
    if ctx.error.is_none() {
        ctx.error = Some(err.clone());
    }
    if session.response_written().is_none() {
        let body = jsonrpc::error_body(ctx.id_ref(), err.jsonrpc_code(), err.reason());
        if let Ok(resp) = json_header(code, body.len(), ctx) {
            session.set_keepalive(None);
            let written = session.write_response_header(Box::new(resp), false).await;
            if written.is_ok() {
                let _ = session.write_response_body(Some(body), true).await;
            }
        }
    }
    FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_session() -> RequestCtx {
        let mut ctx = RequestCtx::new();
        ctx.session = Some(crate::session::Owner {
            upstream: "u".into(),
            endpoint: "127.0.0.1:1/mcp".into(),
            session: "s".into(),
            principal: [0; 16],
            issued: 0,
        });
        ctx
    }

    #[test]
    fn only_a_plain_400_or_404_to_a_session_call_is_a_refused_session() {
        let ctx = with_session();
        assert!(upstream_refused_session(400, &ctx));
        assert!(upstream_refused_session(404, &ctx));
        for status in [200, 202, 401, 403, 405, 500, 502] {
            assert!(!upstream_refused_session(status, &ctx), "{status}");
        }
        // no session: the upstream's 400 is about something else
        assert!(!upstream_refused_session(400, &RequestCtx::new()));
        let mut sse = with_session();
        sse.sse = true;
        assert!(!upstream_refused_session(400, &sse));
    }
}
