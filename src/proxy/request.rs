//! `early_request_filter` and `request_filter`: admission in a fixed order
//! (DESIGN.md step 2), each step may end the request with a JSON-RPC error:
//!
//! 1. health paths, header limits, Host, path, client address, Origin, HTTP
//!    method (GET/DELETE without a body), protocol version;
//! 2. the address's refusal budget, authenticate → principal (or 401), open
//!    the session token;
//! 3. read the body whole (bounded by `max_body_bytes`), inspect the envelope;
//! 4. what the call names (`call::Call`: URIs normalized), header/body
//!    consistency (`Mcp-Method`, `Mcp-Name`);
//! 5. authorize (deny by default), rate limit;
//! 6. route to an upstream (a session's calls go to its upstream).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HOST, ORIGIN};
use http::Method;
use pingora::prelude::*;
use pingora_proxy::Session;

use super::reply::respond_json;
use super::RequestCtx;
use crate::auth::AuthError;
use crate::base::ids::new_request_id;
use crate::call::{BadParams, Call};
use crate::error::GatewayError;
use crate::hygiene::sane_request_id;
use crate::jsonrpc::{self, InspectError};
use crate::mcp::{self, Era};
use crate::policy::Deny;
use crate::ratelimit::refusals;
use crate::routing::Taken;
use crate::runtime::{Runtime, SharedRuntime};

/// Liveness path, answered by the gateway itself.
pub const HEALTHZ: &str = "/healthz";
/// Readiness path, answered by the gateway itself.
pub const HEALTH: &str = "/health";

/// Takes the config snapshot and the request id.
pub fn early(shared: &SharedRuntime, session: &mut Session, ctx: &mut RequestCtx) {
    ctx.runtime = Some(shared.load_full());
    let given = session.req_header().headers.get("x-request-id");
    ctx.request_id = match given {
        Some(v) if sane_request_id(v.as_bytes()) => {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        }
        _ => new_request_id(),
    };
}

/// What admission decided for a request it did not refuse.
#[derive(Debug)]
pub enum Admitted {
    /// Proxy it: the route, upstream and endpoint are on the context.
    Proxy,
    /// A virtual server's request (`federate::serve` decides).
    Federate,
    /// The gateway answers it itself (health, resource metadata): status
    /// and JSON body.
    Answer(u16, Bytes),
    /// A legacy HTTP+SSE client opens its stream (`sse_front::open`).
    LegacyStream,
}

/// Admission (`request_filter`): the steps in their documented order. A
/// refusal is the [`GatewayError`] the hook answers with its one `respond`.
pub async fn admit(
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> std::result::Result<Admitted, GatewayError> {
    let Some(rt) = ctx.runtime.clone() else {
        return Err(GatewayError::Internal);
    };
    let path = session.req_header().uri.path();
    if path == HEALTHZ || path == HEALTH {
        return health(session, path == HEALTHZ);
    }
    if let Some(meta) = &rt.resource_metadata {
        if meta.paths.iter().any(|p| p == path) {
            return Ok(Admitted::Answer(200, meta.document.clone()));
        }
    }
    steps(session, ctx, &rt).await?;
    if super::sse_streams::is_open(ctx) {
        return Ok(Admitted::LegacyStream);
    }
    if ctx.virtual_server.is_some() {
        return Ok(Admitted::Federate);
    }
    Ok(Admitted::Proxy)
}

/// Writes an answer the gateway makes itself (keeps the connection).
pub async fn answer(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    body: Bytes,
) -> Result<bool> {
    respond_json(session, ctx, status, body, true).await?;
    Ok(true)
}

/// The admission steps in their fixed order; the first refusal ends them.
async fn steps(
    session: &mut Session,
    ctx: &mut RequestCtx,
    rt: &Arc<Runtime>,
) -> std::result::Result<(), GatewayError> {
    // 1. request shape
    let req = session.req_header();
    check_header_limits(rt, req)?;
    let host = req
        .headers
        .get(HOST)
        .map(|h| h.as_bytes())
        .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes()))
        .unwrap_or(b"");
    if !rt.host_allowed(host) {
        return Err(GatewayError::HostNotAllowed);
    }
    if req.uri.path() != rt.server.path {
        // a virtual server's path, or nothing
        let vs = rt
            .virtual_server(req.uri.path())
            .ok_or(GatewayError::NotFound)?;
        ctx.virtual_server = Some(vs.clone());
    }
    // the client address: the peer, or what trusted proxies say it is (an
    // IPv4 client of a dual-stack listener is ::ffff:a.b.c.d: compared,
    // limited and logged as the IPv4 address it is); refusals from here on
    // count against it
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_canonical())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let mut client = rt.server.trust_proxy.resolve(peer, &req.headers);
    if client.proto.is_none() && session.digest().is_some_and(|d| d.ssl_digest.is_some()) {
        // the scheme the client used to reach this gateway
        client.proto = Some("https".into());
    }
    let client_ip = client.ip;
    ctx.client = Some(client);
    let req = session.req_header();
    if let Some(origin) = req.headers.get(ORIGIN) {
        if !rt.origin_allowed(origin.as_bytes()) {
            return Err(GatewayError::OriginNotAllowed);
        }
    }
    let method = req.method.clone();
    if method != Method::POST && method != Method::GET && method != Method::DELETE {
        return Err(GatewayError::MethodNotAllowed("GET, POST, DELETE"));
    }
    if method != Method::POST && super::request_has_body(session) {
        // a GET stream or a DELETE has nothing to say in a body; one that
        // does is refused rather than forwarded with it
        return Err(GatewayError::BodyNotAllowed);
    }
    ctx.era = mcp::era(
        req.headers
            .get("mcp-protocol-version")
            .map(|v| v.as_bytes()),
    )
    .map_err(|mcp::InvalidVersion| GatewayError::UnsupportedProtocolVersion)?;
    if ctx.era == Era::Stateless && method != Method::POST {
        // 2026-07-28 has no sessions: no GET stream, no DELETE
        return Err(GatewayError::MethodNotAllowed("POST"));
    }

    // 2. who is asking: an address that has used up its refusals is
    // refused before its credentials cost anything, then authenticate
    if let Some(wait) = refusals::shared().blocked(client_ip, rt.refusals_rpm) {
        ctx.retry_after = Some(wait);
        return Err(GatewayError::RefusalsLimited);
    }
    let cert = super::ctx::client_cert(session);
    let ip_text = client_ip.to_string();
    match rt
        .auth
        .authenticate(&session.req_header().headers, &ip_text, cert)
        .await
    {
        Ok(p) => ctx.principal = Some(p),
        Err(AuthError::Missing) => return Err(GatewayError::Unauthenticated),
        Err(AuthError::Invalid) => return Err(GatewayError::BadCredentials),
    }
    // a legacy stream is its opener's only
    super::sse_streams::check_owner(ctx)?;
    // a session id is a routing hint sealed for this principal, never
    // authentication: it opens only after the credentials were accepted
    let pinned = open_session(rt, ctx, &session.req_header().headers)?;
    if super::sse_streams::is_open(ctx) {
        // a legacy client's stream: the gateway serves it
        return Ok(());
    }

    if method != Method::POST {
        // GET listen stream / DELETE session end: no body, default route
        ctx.listen_stream = method == Method::GET;
        return decide(rt, ctx, &session.req_header().headers, pinned).await;
    }

    // 3. body: read whole (bounded), inspect
    check_body_headers(session.req_header(), rt.server.limits.max_body_bytes)?;
    ctx.body = Some(read_body(session, rt).await?);
    ctx.body_read = true;
    let body = ctx.body.as_deref().unwrap_or_default();
    ctx.envelope = Some(
        jsonrpc::inspect(body, rt.server.limits.max_json_depth).map_err(|e| match e {
            InspectError::Parse => GatewayError::Parse,
            InspectError::Invalid(r) => GatewayError::InvalidRequest(r),
        })?,
    );
    // a renamed tool's call names the tool from here on (tool_overrides)
    super::names::overridden(session, ctx, rt)?;
    // 4.-6. what it asks for, header agreement, authorize, rate limit, route
    decide(rt, ctx, &session.req_header().headers, pinned).await
}

/// Steps 4 to 6 for an admitted request: the call and its items, header/
/// body agreement (2026-07-28), authorization, rate limit, route. Sets the
/// route, upstream, endpoint and rate decision on `ctx`.
async fn decide(
    rt: &Runtime,
    ctx: &mut RequestCtx,
    headers: &http::HeaderMap,
    pinned: Option<Arc<crate::upstream::Upstream>>,
) -> std::result::Result<(), GatewayError> {
    let (rate, outcome) = verdict(rt, ctx, headers).await;
    ctx.rate = rate;
    let routed = outcome?;
    // a tool call's bounds (tool_limits): its permit is taken last
    super::limits::admit(rt, ctx)?;
    if ctx.virtual_server.is_some() {
        // a virtual server routes by what its members have
        return Ok(());
    }
    // a session lives on one upstream: its calls go there
    let (taken, upstream) = match pinned {
        Some(u) => (Taken::Session, u),
        None => routed.ok_or(GatewayError::NoRoute)?,
    };
    ctx.route = taken;
    ctx.upstream = Some(upstream);
    choose_endpoint(ctx);
    // a tool whose definition changed is refused until approved (block)
    super::integrity::check_routed_call(rt, ctx)
}

/// The decision on the call `ctx` holds (nothing when it has no body), read
/// from `ctx` without changing it: the rate decision (also for a 429) and
/// the route.
async fn verdict(
    rt: &Runtime,
    ctx: &RequestCtx,
    headers: &http::HeaderMap,
) -> (
    Option<crate::ratelimit::Decision>,
    std::result::Result<Option<(Taken, Arc<crate::upstream::Upstream>)>, GatewayError>,
) {
    let body = ctx.body.as_deref().unwrap_or_default();
    let call = match ctx.envelope.as_ref() {
        Some(env) => match Call::of(env, body) {
            Ok(c) => c,
            Err(BadParams(m)) => return (None, Err(GatewayError::InvalidParams(m))),
        },
        None => Call::default(),
    };
    if let Some(env) = ctx.envelope.as_ref() {
        let checked = mcp::check_version(
            headers.get("mcp-protocol-version").map(|v| v.as_bytes()),
            env.meta_version(body),
        )
        .and_then(|()| {
            mcp::check_headers(
                ctx.era,
                headers.get("mcp-method").map(|v| v.as_bytes()),
                headers.get("mcp-name").map(|v| v.as_bytes()),
                env.method(body),
                env.name(body),
                env.uri(body),
            )
        });
        if let Err(msg) = checked {
            return (None, Err(GatewayError::HeaderMismatch(msg)));
        }
    }
    // 5. authorize: a refused tool looks exactly like a tool that does not exist
    if let Err(deny) = authorize(rt, ctx, &call) {
        let err = if call.method == Some("tools/call") {
            GatewayError::UnknownTool
        } else {
            GatewayError::Forbidden(deny)
        };
        return (None, Err(err));
    }
    // rate limit: counts only calls that would be forwarded
    let rate = match rate_check(rt, ctx, &call).await {
        Ok(d) => d,
        Err(e) => return (None, Err(e)),
    };
    if rate.is_some_and(|d| !d.allowed) {
        return (rate, Err(GatewayError::RateLimited));
    }
    // 6. route
    let routed = rt.routes.route_taken(&call).map(|(t, u)| (t, u.clone()));
    (rate, Ok(routed))
}

/// A session's calls keep the endpoint its token names; anything else (a
/// new session, a stateless call) is balanced over the pool.
fn choose_endpoint(ctx: &mut RequestCtx) {
    if ctx.endpoint.is_none() {
        ctx.endpoint = ctx.upstream.as_ref().and_then(|u| u.pick());
    }
}

/// Opens the `Mcp-Session-Id` token of a session-era request for the
/// authenticated principal; the upstream that owns the session, if any.
fn open_session(
    rt: &Runtime,
    ctx: &mut RequestCtx,
    headers: &http::HeaderMap,
) -> std::result::Result<Option<Arc<crate::upstream::Upstream>>, GatewayError> {
    if ctx.era != Era::Session {
        return Ok(None);
    }
    let Some(value) = headers.get("mcp-session-id") else {
        return Ok(None);
    };
    let (Some(principal), Ok(token)) = (&ctx.principal, value.to_str()) else {
        return Err(GatewayError::SessionNotFound(
            crate::session::Refused::Malformed.label(),
        ));
    };
    let digest = principal.digest();
    if let Some(vs) = &ctx.virtual_server {
        // a virtual server's token carries every member's session; one
        // sealed for another virtual server is not this one's
        let c = rt
            .session_keys()
            .open_composite(token, &digest, crate::base::clock::now_secs())
            .map_err(|r| GatewayError::SessionNotFound(r.label()))?;
        if c.server != vs.path {
            return Err(GatewayError::SessionNotFound("session_other_server"));
        }
        ctx.composite = Some(c);
        ctx.session_token = Some(value.clone());
        return Ok(None);
    }
    let owner = rt
        .session_keys()
        .open(token, &digest, crate::base::clock::now_secs())
        .map_err(|r| GatewayError::SessionNotFound(r.label()))?;
    let upstream = rt
        .upstreams
        .iter()
        .find(|u| *u.name == *owner.upstream)
        .cloned()
        .ok_or(GatewayError::SessionNotFound("session_endpoint_gone"))?;
    // the session lives on exactly that pool member
    let endpoint = upstream
        .endpoint(&owner.endpoint)
        .map_err(GatewayError::SessionNotFound)?;
    ctx.endpoint = Some(endpoint);
    ctx.session = Some(owner);
    ctx.session_token = Some(value.clone());
    Ok(Some(upstream))
}

/// Counts the call against the identity's most specific limit; `Ok(None)` =
/// not limited; `Err` = the shared store failed and `on_error: deny`.
async fn rate_check(
    rt: &Runtime,
    ctx: &RequestCtx,
    call: &Call<'_>,
) -> std::result::Result<Option<crate::ratelimit::Decision>, GatewayError> {
    let (Some(limits), Some(p)) = (rt.rate_limits.as_ref(), ctx.principal.as_ref()) else {
        return Ok(None);
    };
    let Some((key, rate)) = limits.bucket(&p.tenant, &p.client, call.method, call.tool) else {
        return Ok(None);
    };
    match limits.decide(&key, rate).await {
        Ok(d) => Ok(Some(d)),
        Err(()) => Err(GatewayError::RateLimitUnavailable),
    }
}

/// Policy decision for the request's principal.
fn authorize(rt: &Runtime, ctx: &RequestCtx, call: &Call<'_>) -> std::result::Result<(), Deny> {
    match &ctx.principal {
        Some(p) => rt.policy.check(p, call),
        None => Err(Deny::NoRule),
    }
}

fn health(session: &Session, live: bool) -> std::result::Result<Admitted, GatewayError> {
    let method = &session.req_header().method;
    if method != Method::GET && method != Method::HEAD {
        return Err(GatewayError::MethodNotAllowed("GET, HEAD"));
    }
    let (status, body) = if live {
        crate::health::liveness()
    } else {
        crate::health::public_readiness(session.is_process_shutting_down())
    };
    Ok(Admitted::Answer(status, body))
}

/// Pingora accepts up to 256 headers / 1 MiB; enforce the configured limits.
fn check_header_limits(rt: &Runtime, req: &RequestHeader) -> std::result::Result<(), GatewayError> {
    let limits = &rt.server.limits;
    let uri_len = req.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return Err(GatewayError::UriTooLong);
    }
    if req.headers.len() > limits.max_headers {
        return Err(GatewayError::HeadersTooLarge);
    }
    let size: usize = req
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + uri_len;
    if size > limits.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge);
    }
    Ok(())
}

/// Content-Type, Content-Encoding and Content-Length checks before reading.
fn check_body_headers(req: &RequestHeader, max: usize) -> std::result::Result<(), GatewayError> {
    let ctype = req
        .headers
        .get(CONTENT_TYPE)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    let mime = ctype.split(|b| *b == b';').next().unwrap_or(b"");
    if !mime.trim_ascii().eq_ignore_ascii_case(b"application/json") {
        return Err(GatewayError::UnsupportedMediaType);
    }
    if let Some(enc) = req.headers.get(CONTENT_ENCODING) {
        // a compressed body cannot be inspected without inflating it: refuse
        if !enc
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"identity")
        {
            return Err(GatewayError::UnsupportedMediaType);
        }
    }
    if let Some(len) = req.headers.get(CONTENT_LENGTH) {
        let len = std::str::from_utf8(len.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match len {
            Some(n) if n > max as u64 => return Err(GatewayError::BodyTooLarge),
            Some(_) => {}
            None => {
                return Err(GatewayError::InvalidRequest(
                    jsonrpc::InvalidReason::NotAMessage,
                ))
            }
        }
    }
    Ok(())
}

/// Reads the whole body, at most `max_body_bytes`; never inspects a prefix.
async fn read_body(
    session: &mut Session,
    rt: &Runtime,
) -> std::result::Result<Bytes, GatewayError> {
    let limits = &rt.server.limits;
    let max = limits.max_body_bytes;
    if session
        .req_header()
        .headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
    {
        session
            .as_downstream_mut()
            .write_continue_response()
            .await
            .map_err(|_| GatewayError::BodyIncomplete)?;
    }
    // one deadline for the whole body (a per-read timeout would let a client
    // trickle a byte at a time forever)
    let deadline = tokio::time::Instant::now() + limits.body_timeout;
    session
        .as_downstream_mut()
        .set_read_timeout(Some(limits.body_timeout));
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total = 0usize;
    loop {
        let chunk = tokio::time::timeout_at(deadline, session.read_request_body()).await;
        let Ok(chunk) = chunk else {
            return Err(GatewayError::BodyIncomplete);
        };
        match chunk {
            Ok(Some(chunk)) => {
                total += chunk.len();
                if total > max {
                    return Err(GatewayError::BodyTooLarge);
                }
                match (&first, &mut rest) {
                    (None, _) => first = Some(chunk),
                    (Some(f), None) => {
                        let mut buf = BytesMut::with_capacity(
                            (f.len() + chunk.len()).max(16 * 1024).min(max),
                        );
                        buf.extend_from_slice(f);
                        buf.extend_from_slice(&chunk);
                        rest = Some(buf);
                    }
                    (Some(_), Some(buf)) => buf.extend_from_slice(&chunk),
                }
            }
            Ok(None) => break,
            Err(_) => return Err(GatewayError::BodyIncomplete),
        }
    }
    Ok(match rest {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}
