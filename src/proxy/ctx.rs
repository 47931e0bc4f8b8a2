//! `RequestCtx`: the one per-request state object. Each field says which hook
//! sets it; later hooks only read decisions made earlier (decide once).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::auth::Principal;
use crate::error::GatewayError;
use crate::jsonrpc::Envelope;
use crate::mcp::Era;
use crate::runtime::Runtime;
use crate::upstream::Upstream;

/// Per-request state.
pub struct RequestCtx {
    /// `new_ctx`: when the request started.
    pub started: Instant,
    /// `early_request_filter`: the config snapshot this request uses throughout.
    pub runtime: Option<Arc<Runtime>>,
    /// `early_request_filter`: kept from a sane client `X-Request-ID`, else generated.
    pub request_id: String,
    /// `request_filter`: the client as the edge sees it (trusted proxies resolved).
    pub client: Option<crate::addr::trusted::Client>,
    /// `request_filter`: who the request acts as (set before the body is read).
    pub principal: Option<Principal>,
    /// `request_filter`: protocol era from `MCP-Protocol-Version`.
    pub era: Era,
    /// `request_filter`: the exact body bytes that were inspected; replayed
    /// upstream unchanged by `request_body_filter`.
    pub body: Option<Bytes>,
    /// `request_filter`: the whole body was read (a refusal after this keeps
    /// the connection; one before it lingers to read the rest, then closes).
    pub body_read: bool,
    /// `request_filter`: seconds a refused client should wait (the refusal
    /// budget's `Retry-After`).
    pub retry_after: Option<u64>,
    /// `request_filter`: the inspected JSON-RPC envelope of `body`.
    pub envelope: Option<Envelope>,
    /// `request_filter`: the upstream chosen by routing.
    pub upstream: Option<Arc<Upstream>>,
    /// `request_filter`: which routing decision chose `upstream`.
    pub route: crate::routing::Taken,
    /// `request_filter`: the pool member this request goes to (the session's,
    /// or picked by the upstream's balancing); holds its in-flight slot.
    pub endpoint: Option<crate::upstream::Picked>,
    /// `fail_to_connect`: connect failures moved to another endpoint so far.
    pub connect_retries: u8,
    /// `request_filter`: the opened session token (its upstream overrides routing).
    pub session: Option<crate::session::Owner>,
    /// `request_filter`: the client's token text, handed back when the
    /// upstream repeats the same session id (no re-seal).
    pub session_token: Option<http::HeaderValue>,
    /// `request_filter`: a GET listen stream (uses the SSE idle timeout).
    pub listen_stream: bool,
    /// Any hook: the answer the gateway gave itself, for the access log.
    pub error: Option<GatewayError>,
    /// `request_filter`: the rate-limit decision, reported in `RateLimit-*` headers.
    pub rate: Option<crate::ratelimit::Decision>,
    /// `response_filter`: the response is an SSE stream.
    pub sse: bool,
    /// `response_filter`: holds an `mcp_edge_sse_streams_active` unit while
    /// the stream is relayed.
    pub sse_gauge: Option<crate::telemetry::metrics::SseStream>,
    /// `response_filter`: what the upstream's body may say (JSON checked
    /// whole, SSE event by event); `response_body_filter` feeds it.
    pub guard: Option<crate::answer::Guard>,
    /// `response_filter`: an upstream 400 to a session call, collected (at
    /// most 64 KiB) to tell a refused session from any other 400.
    pub probe_400: Option<bytes::BytesMut>,
    /// `response_filter`: the answer that replaces an upstream body the
    /// gateway cannot inspect (written once, the rest is discarded).
    pub replacement: Option<Bytes>,
    /// `response_filter` / `response_body_filter`: the response header is
    /// held until the body decides it (`ProxyHttp::response_held`).
    pub hold: bool,
    /// `request_filter`: a request to the legacy HTTP+SSE endpoint (`sse_front`).
    pub front: Option<super::sse_streams::Front>,
    /// `response_filter`: a legacy POST's answer goes to its stream.
    pub divert: Option<super::sse_streams::Divert>,
    /// `request_filter`: the virtual server the path names (federation).
    pub virtual_server: Option<Arc<crate::runtime::VirtualServer>>,
    /// `request_filter`: the opened token of a virtual server's session.
    pub composite: Option<crate::session::Composite>,
    /// `request_filter`: a federated call forwarded to one member.
    pub member: Option<super::federate::MemberCall>,
    /// `request_filter`: virtual server members left out of the answer
    /// (for the audit line).
    pub left_out: std::sync::Mutex<Vec<String>>,
    /// `request_filter`: what a federated call forwards instead of `body`
    /// (the member's own name in place of the exposed one).
    pub forward_body: Option<Bytes>,
    /// `response_body_filter`: the header the held body decided: a status
    /// and the exact length of what was written instead.
    pub release: Option<(u16, usize)>,
    /// `request_filter`: a `tools/call` under a `tool_limits` rule (its
    /// deadline, answer bound and concurrency permit).
    pub tool: Option<super::limits::ToolCall>,
    /// `response_filter`: what a POST's SSE answer may still carry.
    pub budget: Option<super::limits::Budget>,
    /// `response_filter`: the upstream's response header arrived.
    pub answer_started: bool,
    /// `response_cut_short` / `response_body_filter`: a limit ends the
    /// answer; the next body chunk is its error.
    pub cut: Option<GatewayError>,
    /// `response_body_filter`: the gateway ended the answer before the
    /// upstream did (`ProxyHttp::response_body_ended`).
    pub ended: bool,
    /// `request_filter`: a renamed tool's call (`tool_overrides`): the
    /// name the client called (the body now names the tool).
    pub called_as: Option<String>,
    /// `response_body_filter` and list fan-out: tool definitions seen
    /// changed since they were pinned (`tool_integrity`), for the audit line.
    pub tool_changes: super::integrity::Changes,
}

impl RequestCtx {
    /// A fresh context at request start.
    pub fn new() -> Self {
        RequestCtx {
            started: Instant::now(),
            runtime: None,
            request_id: String::new(),
            client: None,
            principal: None,
            era: Era::Session,
            body: None,
            body_read: false,
            retry_after: None,
            envelope: None,
            upstream: None,
            route: crate::routing::Taken::None,
            session: None,
            session_token: None,
            endpoint: None,
            connect_retries: 0,
            listen_stream: false,
            error: None,
            sse: false,
            sse_gauge: None,
            rate: None,
            guard: None,
            probe_400: None,
            replacement: None,
            hold: false,
            release: None,
            front: None,
            divert: None,
            virtual_server: None,
            composite: None,
            member: None,
            forward_body: None,
            left_out: std::sync::Mutex::new(Vec::new()),
            tool: None,
            budget: None,
            answer_started: false,
            cut: None,
            ended: false,
            called_as: None,
            tool_changes: Default::default(),
        }
    }

    /// JSON-RPC method of the body, if any.
    pub fn method(&self) -> Option<&str> {
        let body = self.body.as_deref()?;
        self.envelope.as_ref()?.method(body)
    }

    /// The item the call names (tool, prompt, resource URI as sent), for
    /// logs and refusals.
    pub fn target(&self) -> Option<&str> {
        let body = self.body.as_deref()?;
        let env = self.envelope.as_ref()?;
        let subs = match &env.subscriptions {
            Some(crate::jsonrpc::Subscriptions::Uris(list)) => list.first(),
            _ => None,
        };
        env.name(body)
            .or_else(|| env.uri(body))
            .or_else(|| {
                let r = env.reference.as_deref()?;
                r.name.text().or(r.uri.text()).map(|t| t.as_str(body))
            })
            .or_else(|| subs.map(|t| t.as_str(body)))
    }

    /// The request id to echo in a gateway-made error.
    pub fn id_ref(&self) -> Option<crate::jsonrpc::IdRef<'_>> {
        let body = self.body.as_deref()?;
        self.envelope.as_ref()?.id_ref(body)
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

/// The verified client certificate of the connection (mTLS), if any.
pub fn client_cert(session: &pingora_proxy::Session) -> Option<&crate::auth::mtls::ClientCert> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<crate::auth::mtls::ClientCert>()
}
