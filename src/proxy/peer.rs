//! `upstream_peer` and `upstream_request_filter`: the upstream chosen in
//! `request_filter` becomes a peer, and the request header is rewritten for it:
//! upstream path and Host, the header allowlist (client credentials never
//! pass), exact Content-Length of the inspected body, X-Request-ID, and the
//! upstream's own credential.

use std::time::Duration;

use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::upstreams::peer::HttpPeer;

use super::RequestCtx;
use crate::upstream::{Endpoint, Upstream};

/// The peer for the routed upstream.
pub fn select(ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    match (&ctx.upstream, &ctx.endpoint) {
        (Some(u), Some(e)) => peer(u, &e.0, ctx.listen_stream),
        // request_filter always routes or answers; reaching here is a bug
        _ => Error::e_explain(InternalError, "no upstream chosen"),
    }
}

/// The peer for one request to `e`. `stream` = a GET listen stream,
/// which uses the SSE idle timeout instead of the response timeout.
fn peer(up: &Upstream, e: &Endpoint, stream: bool) -> Result<Box<HttpPeer>> {
    let mut peer = if e.bridge.is_some() {
        HttpPeer::new_uds(&crate::tunnel::bridge_socket(), false, String::new())?
    } else {
        HttpPeer::new(e.addr, e.tls, e.sni.clone())
    };
    let o = &mut peer.options;
    o.connection_timeout = Some(up.connect_timeout);
    o.read_timeout = Some(if stream {
        up.sse_idle_timeout
    } else {
        up.timeout
    });
    o.write_timeout = Some(up.timeout);
    o.idle_timeout = Some(Duration::from_secs(60));
    o.verify_cert = up.verify_tls;
    o.verify_hostname = up.verify_tls;
    o.ca = up.ca.clone();
    Ok(Box::new(peer))
}

/// The peer for the gateway's own request to a virtual server's member
/// (`proxy::member`): the upstream's response timeout per read.
pub(super) fn member_peer(up: &Upstream, e: &Endpoint) -> Result<Box<HttpPeer>> {
    peer(up, e, false)
}

/// The peer for a virtual server's merged GET stream to one member: the
/// SSE idle timeout per read.
pub(super) fn member_stream_peer(up: &Upstream, e: &Endpoint) -> Result<Box<HttpPeer>> {
    peer(up, e, true)
}

/// Rewrites the upstream request header.
pub fn rewrite_request(req: &mut RequestHeader, ctx: &mut RequestCtx) -> Result<()> {
    let (Some(rt), Some(up)) = (&ctx.runtime, &ctx.upstream) else {
        return Error::e_explain(InternalError, "request not admitted");
    };
    let drop: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|k| !rt.headers.keep(k))
        .cloned()
        .collect();
    for name in drop.iter().chain(rt.auth.claim_headers()) {
        req.remove_header(name);
    }
    if let Some(p) = &ctx.principal {
        for (name, value) in p.forward.iter() {
            req.insert_header(name.clone(), value.clone())?;
        }
    }
    if let Some(body) = ctx.forward_body.as_ref().or(ctx.body.as_ref()) {
        // the body is replayed whole: announce its exact length (no chunking)
        req.insert_header("content-length", body.len())?;
    }
    if let Some(owner) = &ctx.session {
        // the upstream gets its own session id back (a virtual server's
        // member may have issued none)
        if owner.session.is_empty() {
            req.remove_header("mcp-session-id");
        } else {
            req.insert_header("mcp-session-id", owner.session.as_str())?;
        }
    }
    if let Some(m) = &ctx.member {
        // a virtual server's member sees its own version and name
        req.insert_header("mcp-protocol-version", m.version.as_str())?;
        if let (Some(own), true) = (&m.own, req.headers.contains_key("mcp-name")) {
            req.insert_header("mcp-name", own.as_str())?;
        }
    }
    let Some(ep) = &ctx.endpoint else {
        return Error::e_explain(InternalError, "no endpoint chosen");
    };
    req.set_uri(ep.0.uri.clone());
    req.insert_header("host", ep.0.host_header.as_str())?;
    req.insert_header("x-request-id", ctx.request_id.as_str())?;
    // every answer is read before the client sees it (list filtering,
    // session refusals): no content coding
    req.insert_header("accept-encoding", "identity")?;
    if let Some(c) = &ctx.client {
        // the gateway's own forwarding headers replace whatever the client sent
        req.insert_header("x-forwarded-for", c.ip.to_string())?;
        req.insert_header("x-forwarded-proto", c.proto.as_deref().unwrap_or("http"))?;
    }
    if let Some(auth) = &up.auth {
        req.insert_header(auth.header.clone(), auth.value.clone())?;
    }
    // the bridge holds a session per principal for 2026-07-28 clients of a
    // stdio, sse or tunnel upstream: it is told whose call this is (never what a
    // client sent under that name)
    req.remove_header(crate::tunnel::bridge::PRINCIPAL_HEADER);
    if let (Some(_), Some(p)) = (ep.0.bridge, &ctx.principal) {
        if ctx.era == crate::mcp::Era::Stateless {
            let d = p.digest();
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            req.insert_header(crate::tunnel::bridge::PRINCIPAL_HEADER, hex)?;
        }
    }
    Ok(())
}

/// After a connect failure: eject the endpoint (passive health) and, for a
/// call that is not bound to a session, move to another pool member.
/// Returns whether to retry. A request that reached an upstream is never
/// retried (this runs only when the connection could not be made).
pub fn retry_elsewhere(ctx: &mut RequestCtx) -> bool {
    let (Some(up), Some(failed)) = (ctx.upstream.clone(), ctx.endpoint.as_ref()) else {
        return false;
    };
    let key = failed.0.key.clone();
    // a bridged endpoint's health is not this connect (a tunnel: its registration)
    if failed.0.bridge.is_none() && failed.0.health.eject() {
        log::warn!(
            "upstream {} endpoint {} is down (connect failed)",
            up.name,
            failed.0.url
        );
    }
    if ctx.session.is_some() || ctx.connect_retries >= 2 {
        return false;
    }
    match up.pick_except(Some(&key)) {
        Some(next) if next.0.health.is_up() => {
            ctx.connect_retries += 1;
            ctx.endpoint = Some(next);
            true
        }
        _ => false,
    }
}
