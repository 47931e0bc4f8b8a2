//! Upstream responses: headers on the way back (`response_filter`), the
//! body's fate (`response_body_filter`, the held header's release), and the
//! mapping of proxy failures to 502/504 (`fail_to_proxy`). The gateway's own
//! answers are `reply`.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::ErrorSource;
use pingora_proxy::{FailToProxy, Session};

use super::reply::{json_header, rate_headers};
use super::RequestCtx;
use crate::answer::{self, about_the_session, Guard, Media, Verdict};
use crate::error::GatewayError;
use crate::jsonrpc;

/// Largest upstream 400 read to tell a refused session from another 400.
const PROBE_400_BYTES: usize = 64 * 1024;

/// `response_filter`: echo the request id, seal the session, and decide how
/// the body is relayed: JSON held and checked whole, SSE checked event by
/// event, anything the gateway cannot inspect (a content coding, an unknown
/// content type on a 2xx) replaced by a JSON-RPC error.
pub fn filter(resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
    let media = answer::media(resp.headers.get("content-type").map(|v| v.as_bytes()));
    ctx.sse = media == Media::Sse;
    ctx.answer_started = true;
    if ctx.sse && ctx.sse_gauge.is_none() {
        ctx.sse_gauge = Some(crate::telemetry::metrics::SseStream::start());
    }
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    rate_headers(resp, ctx)?;
    seal_session(resp, ctx)?;
    let status = resp.status.as_u16();
    let session_call = ctx.session.is_some() && !ctx.sse && ctx.error.is_none();
    if session_call && status == 404 {
        // the spec's answer for a session the server no longer knows is 404,
        // the one status that makes a client re-initialize
        ctx.error = Some(GatewayError::SessionNotFound("session_refused_upstream"));
        // a member session held for a stateless client is gone: the next
        // call holds a new one
        super::federate::forget_held(ctx);
    }
    let bodyless = matches!(status, 204 | 304 | 100..=199)
        || resp
            .headers
            .get("content-length")
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"0");
    if bodyless {
        return Ok(());
    }
    let (max, too_large) = match ctx.runtime.clone() {
        Some(rt) => super::limits::answer_bound(&rt, ctx),
        None => (8 << 20, answer::TOO_LARGE),
    };
    let coded = resp
        .headers
        .get("content-encoding")
        .is_some_and(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"));
    if coded && media != Media::Other {
        // the gateway asks for identity (accept-encoding never passes):
        // what it cannot read, it does not relay
        return replace(resp, ctx, "upstream answer has a content coding");
    }
    if session_call && status == 400 {
        // is it about the session (404 for the client) or about the call?
        ctx.probe_400 = Some(bytes::BytesMut::new());
        ctx.hold = true;
    }
    let tools = super::integrity::view_for(ctx);
    let shown = |g: Guard| match &tools {
        Some(t) => g.with_tools(t.clone()),
        None => g,
    };
    match media {
        Media::Json => {
            ctx.guard = Some(shown(Guard::json_bounded(max, too_large)));
            ctx.hold = true;
        }
        Media::Sse => {
            // events are rewritten canonically: their length changes
            resp.remove_header("content-length");
            resp.insert_header("transfer-encoding", "chunked")?;
            ctx.guard = Some(shown(Guard::sse(max)));
            if ctx.body.is_some() {
                // a POST's answer: all its events together are bounded
                if let Some(rt) = ctx.runtime.clone() {
                    super::limits::start_budget(&rt, ctx);
                }
            }
        }
        // a POST answer the client will parse: without a content type it is
        // read as JSON; of another type it is not relayed (GET and DELETE
        // answers of other types are no MCP messages)
        Media::Absent if ctx.body.is_some() => {
            ctx.guard = Some(shown(Guard::json_bounded(max, too_large)));
            ctx.hold = true;
        }
        Media::Other if ctx.body.is_some() && (200..300).contains(&status) && status != 202 => {
            return replace(
                resp,
                ctx,
                "upstream answered a content type the gateway cannot inspect",
            );
        }
        // error pages of other types pass as they are
        Media::Other | Media::Absent => {}
    }
    Ok(())
}

/// Replaces the upstream answer with a 502 JSON-RPC error echoing the id.
fn replace(resp: &mut ResponseHeader, ctx: &mut RequestCtx, msg: &'static str) -> Result<()> {
    let err = GatewayError::UpstreamAnswerRefused(msg);
    let body = jsonrpc::error_body(ctx.id_ref(), err.jsonrpc_code(), msg);
    resp.set_status(err.status())?;
    resp.remove_header("content-encoding");
    resp.remove_header("transfer-encoding");
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", body.len())?;
    ctx.sse = false;
    ctx.sse_gauge = None;
    ctx.guard = None;
    ctx.probe_400 = None;
    ctx.hold = false;
    ctx.replacement = Some(body);
    ctx.error = Some(err);
    Ok(())
}

/// `ProxyHttp::response_release`: the header of a held answer gets what its
/// body decided (status, exact length).
pub fn release(resp: &mut ResponseHeader, ctx: &mut RequestCtx) {
    let Some((status, len)) = ctx.release.take() else {
        return;
    };
    if status != 0 && status != resp.status.as_u16() {
        let _ = resp.set_status(status);
        let _ = resp.insert_header("content-type", "application/json");
    }
    if len == 0 {
        resp.remove_header("content-type");
    }
    resp.remove_header("transfer-encoding");
    let _ = resp.insert_header("content-length", len);
}

/// An upstream `Mcp-Session-Id` never reaches the client: it is replaced by
/// a token sealing (upstream, endpoint, id, principal, time).
fn seal_session(resp: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
    if ctx.virtual_server.is_some() {
        // a virtual server's session: the client keeps its one token (a
        // stateless client gets none, whatever a member sent)
        match ctx.composite.as_ref().and(ctx.session_token.as_ref()) {
            Some(t) => resp.insert_header("mcp-session-id", t.clone())?,
            None => {
                resp.remove_header("mcp-session-id");
            }
        }
        return Ok(());
    }
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
            crate::telemetry::metrics::record_session("sealed", "new_session");
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
        issued: crate::base::clock::now_secs(),
    })
}

/// `response_body_filter`: an upstream 400 to a session call is read first;
/// then the guard relays what the principal may see; a replaced answer is
/// written once.
pub fn body_filter(body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) {
    if let Some(r) = ctx.replacement.as_ref() {
        *body = (!r.is_empty()).then(|| r.clone());
        ctx.replacement = Some(Bytes::new());
        return;
    }
    if ctx.ended {
        *body = None;
        return;
    }
    if ctx.cut.is_some() {
        // a limit ends the answer here (`response_cut_short`)
        *body = super::limits::final_chunk(ctx);
        return;
    }
    let mut chunk = body.take().unwrap_or_default();
    if let Some(mut seen) = ctx.probe_400.take() {
        seen.extend_from_slice(&chunk);
        if !end && seen.len() < PROBE_400_BYTES {
            ctx.probe_400 = Some(seen);
            return;
        }
        if about_the_session(&seen) {
            super::federate::forget_held(ctx);
            let err = GatewayError::SessionNotFound("session_refused_upstream");
            let out = jsonrpc::error_body(ctx.id_ref(), err.jsonrpc_code(), err.reason());
            ctx.release = Some((404, out.len()));
            ctx.error = Some(err);
            ctx.guard = None;
            ctx.hold = false;
            *body = Some(out);
            return;
        }
        // any other 400 reaches the client as it is (through the guard, which
        // keeps a JSON body held to its end)
        chunk = seen.freeze();
        ctx.hold = matches!(ctx.guard, Some(Guard::Json { .. }));
    }
    if let Some(last) = super::limits::spend(ctx, chunk.len()) {
        // past the bound: the call's error ends the answer
        *body = Some(last);
        return;
    }
    let Some(mut guard) = ctx.guard.take() else {
        ctx.hold = false;
        *body = (!chunk.is_empty()).then_some(chunk);
        return;
    };
    let out = match (&ctx.runtime, &ctx.principal) {
        (Some(rt), Some(principal)) => {
            let allowed = |item, name: &str| rt.policy.item_allowed(principal, item, name);
            guard.push(&chunk, end, &allowed, ctx.id_ref())
        }
        _ => guard.push(&chunk, end, &|_, _| false, ctx.id_ref()),
    };
    let out = match &ctx.member {
        Some(m) if !out.is_empty() => super::federate::member_answer(ctx, m, &guard, out),
        _ => out,
    };
    super::integrity::on_relayed(ctx, &out);
    if let Some(verdict) = guard.verdict() {
        if ctx.hold {
            let status = match verdict {
                Verdict::Refused(m) => {
                    let err = GatewayError::UpstreamAnswerRefused(m);
                    let s = err.status();
                    ctx.error = Some(err);
                    s
                }
                Verdict::TooLarge(m) => {
                    super::limits::too_large_json(ctx, m);
                    GatewayError::AnswerTooLarge(m).status()
                }
                _ => 0,
            };
            ctx.release = Some((status, out.len()));
            ctx.hold = false;
        }
    }
    *body = (!out.is_empty()).then_some(out);
    ctx.guard = Some(guard);
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
    let err = super::limits::failed(err, ctx);
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
    fn a_400_is_about_the_session_only_when_it_says_so() {
        assert!(about_the_session(
            br#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#
        ));
        assert!(about_the_session(
            b"Bad Request: Mcp-Session-Id header is required"
        ));
        assert!(!about_the_session(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params: a must be a number"}}"#
        ));
    }

    #[test]
    fn a_session_400_is_held_and_becomes_404() {
        let mut ctx = with_session();
        let mut resp = ResponseHeader::build(400, None).unwrap();
        resp.insert_header("content-type", "application/json")
            .unwrap();
        filter(&mut resp, &mut ctx).unwrap();
        assert!(ctx.hold);
        let mut b = Some(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"No valid session ID"}}"#,
        ));
        body_filter(&mut b, true, &mut ctx);
        assert_eq!(ctx.release.map(|r| r.0), Some(404));
        assert!(!ctx.hold);
        release(&mut resp, &mut ctx);
        assert_eq!(resp.status.as_u16(), 404);
    }

    #[test]
    fn another_400_passes_with_its_length() {
        let mut ctx = with_session();
        let mut resp = ResponseHeader::build(400, None).unwrap();
        resp.insert_header("content-type", "application/json")
            .unwrap();
        filter(&mut resp, &mut ctx).unwrap();
        let text: &[u8] =
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad params"}}"#;
        let mut b = Some(Bytes::from_static(&text[..10]));
        body_filter(&mut b, false, &mut ctx);
        assert!(b.is_none() && ctx.hold);
        let mut b = Some(Bytes::from_static(&text[10..]));
        body_filter(&mut b, true, &mut ctx);
        assert_eq!(b.as_deref(), Some(text));
        release(&mut resp, &mut ctx);
        assert_eq!(resp.status.as_u16(), 400);
        assert_eq!(
            resp.headers.get("content-length").map(|v| v.as_bytes()),
            Some(text.len().to_string().as_bytes())
        );
    }
}
