//! The Pingora `ProxyHttp` implementation. Hooks stay thin: each delegates to a
//! function in `request` (admission, body, routing), `peer` (upstream choice and
//! header rewrite), `response` (response headers, errors) or `finish` (access
//! log), which call the Pingora-free domain modules.

mod ctx;
mod federate;
pub(crate) mod finish;
mod integrity;
pub mod legacy;
mod limits;
mod member;
mod names;
mod peer;
mod reply;
mod request;
mod response;
mod sse_front;
mod sse_streams;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::upstreams::peer::HttpPeer;
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

pub use ctx::RequestCtx;

use crate::runtime::SharedRuntime;

/// The gateway: holds the live configuration snapshot.
pub struct Gateway {
    runtime: SharedRuntime,
}

/// Each read of an upstream's `text/event-stream` body. Pingora's pipe from
/// upstream to downstream holds up to six reads (four queued tasks, the one
/// being written, the one just read), so a stalled reader's stream holds at
/// most ~48 KiB in the gateway instead of 6 x 64 KiB. SSE events are mostly far
/// smaller than a read, so the size costs no extra syscalls for them.
const EVENT_STREAM_READ_SIZE: usize = 8 * 1024;

impl Gateway {
    /// A gateway serving the given live snapshot.
    pub fn new(runtime: SharedRuntime) -> Self {
        Gateway { runtime }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    fn upstream_stream_read_timeout(&self, ctx: &RequestCtx) -> Option<std::time::Duration> {
        // a POST answered with SSE is a stream: `timeout_ms` bounds only the
        // wait for its header, then `sse_idle_timeout_ms` each silence
        ctx.upstream.as_ref().map(|u| u.sse_idle_timeout)
    }

    fn upstream_response_deadline(&self, ctx: &RequestCtx) -> Option<std::time::Instant> {
        limits::deadline(ctx)
    }

    fn response_cut_short(&self, _e: &Error, ctx: &mut RequestCtx) -> bool {
        limits::cut_short(ctx)
    }

    fn response_body_ended(&self, ctx: &RequestCtx) -> bool {
        ctx.ended
    }

    fn upstream_stream_read_size(&self, _ctx: &RequestCtx) -> Option<usize> {
        Some(EVENT_STREAM_READ_SIZE)
    }

    fn request_header_timeout(&self) -> Option<std::time::Duration> {
        Some(self.runtime.load().server.limits.header_timeout)
    }

    /// A kept-alive connection idle at shutdown is served one more request
    /// (with `Connection: close`) during the grace period instead of being
    /// closed under a client that may already be sending it.
    fn shutdown_drain_timeout(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(
            self.runtime.load().server.grace_period_secs,
        ))
    }

    fn request_header_timed_out(&self, session: &pingora::protocols::http::ServerSession) {
        let peer = session.client_addr().and_then(|a| a.as_inet()).copied();
        crate::telemetry::refused::connection_refused(
            self.runtime.load().audit(),
            peer,
            "header_timeout",
        );
    }

    fn request_header_invalid(
        &self,
        session: &pingora::protocols::http::ServerSession,
        _error: &pingora::Error,
    ) -> Option<(ResponseHeader, Bytes)> {
        let peer = session.client_addr().and_then(|a| a.as_inet()).copied();
        crate::telemetry::refused::malformed_request_header(self.runtime.load().audit(), peer);
        reply::malformed_request_header()
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        request::early(&self.runtime, session, ctx);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if let Some(Err(refusal)) = sse_front::prepare(session, ctx) {
            return reply::respond(session, ctx, refusal).await;
        }
        match request::admit(session, ctx).await {
            Ok(request::Admitted::Proxy) => Ok(false),
            Ok(request::Admitted::LegacyStream) => match sse_streams::register(ctx) {
                Ok(stream) => sse_front::open(session, ctx, stream).await,
                Err(refusal) => reply::respond(session, ctx, refusal).await,
            },
            Ok(request::Admitted::Federate) => federate::serve(session, ctx).await,
            Ok(request::Admitted::Answer(status, body)) => {
                request::answer(session, ctx, status, body).await
            }
            Err(refusal) => reply::respond(session, ctx, refusal).await,
        }
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // request_filter consumed the body; replay exactly the inspected bytes
        // (needs the vendored pingora-proxy patch above 64 KiB).
        if end_of_stream {
            if let Some(kept) = ctx.forward_body.as_ref().or(ctx.body.as_ref()) {
                *body = Some(kept.clone());
            }
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        peer::select(ctx)
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        peer::rewrite_request(upstream_request, ctx)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        response::filter(upstream_response, ctx)?;
        sse_streams::divert_header(upstream_response, ctx)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        response::body_filter(body, end_of_stream, ctx);
        sse_streams::divert_body(body, end_of_stream, ctx);
        Ok(None)
    }

    fn response_held(&self, ctx: &RequestCtx) -> bool {
        ctx.hold
    }

    fn response_release(&self, header: &mut ResponseHeader, ctx: &mut RequestCtx) {
        response::release(header, ctx)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // nothing reached the upstream: safe to try another pool member
        e.set_retry(peer::retry_elsewhere(ctx));
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        response::fail(session, e, ctx).await
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        // every failure is in the access log line already
        true
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        finish::access_log(session, e, ctx);
    }
}

/// Whether the request announces a body (`Content-Length` above 0, or any
/// `Transfer-Encoding`).
pub(crate) fn request_has_body(session: &Session) -> bool {
    let h = &session.req_header().headers;
    h.contains_key(http::header::TRANSFER_ENCODING)
        || h.get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes().trim_ascii() != b"0")
}

/// Builds the Pingora proxy application for a live snapshot (and the
/// virtual servers' member connection pool, which loads the CA store).
pub fn gateway(runtime: SharedRuntime) -> Arc<Gateway> {
    member::warm();
    Arc::new(Gateway::new(runtime))
}
