//! Merged streams: the client's GET stream over the members' GET streams,
//! and the one SSE writer (`relay`) every merged stream uses (also
//! `subscriptions/listen`).

use super::*;

/// The client's GET stream: every member's GET stream merged into one,
/// event by event (each read by the same rules as a proxied stream, the
/// ids of a member's requests namespaced, event ids dropped: the merged
/// stream cannot be resumed with `Last-Event-ID`). A member without a
/// stream (405) is left out; one whose session is gone ends the whole
/// session (404); the stream ends when every member's has.
pub(super) async fn listen(session: &mut Session, ctx: &mut RequestCtx) -> Res<()> {
    let (Some(vs), Some(c)) = (ctx.virtual_server.clone(), ctx.composite.clone()) else {
        return Err(GatewayError::SessionRequired);
    };
    let deadline = Instant::now() + vs.member_timeout;
    let fwd = forwarded(ctx);
    let members = joined(&vs, &c);
    let ctx_ref: &RequestCtx = ctx;
    let opens = members.iter().map(|(_, m, ms)| {
        let call = call_for(ctx_ref, Some(ms), &fwd);
        async move {
            let ep = member_endpoint(m, ms).map_err(|e| Failure::Broken(e.label().into()))?;
            member::open_stream(&m.upstream, &ep.0, &call, deadline).await
        }
    });
    let opened = join_all(opens).await;
    let mut streams = Vec::new();
    for ((i, m, _), r) in members.iter().zip(opened) {
        match r {
            Ok(Some(s)) => streams.push((*i, s)),
            Ok(None) => {}
            Err(Failure::Broken(w)) if w == "session_gone" => {
                return Err(GatewayError::SessionNotFound("member_session_gone"))
            }
            Err(f) => left_out(&vs, ctx_ref, m, "the GET stream", &f.to_string()),
        }
    }
    if streams.is_empty() {
        return Err(GatewayError::MethodNotAllowed("POST, DELETE"));
    }
    ctx.sse = true;
    relay(session, ctx, streams, None, &|i, text| {
        if let Some(ms) = c.members.get(i) {
            note_changes(&vs, &ms.upstream, text);
        }
        Some(federation::namespace_message(text, i).unwrap_or_else(|| text.to_string()))
    })
    .await
}

/// Writes an SSE answer that merges member streams: each event read by
/// the same rules as a proxied stream (policy-filtered lists, ambiguous
/// messages replaced), its data passed through `map` (member index,
/// message text → what to send, `None` = drop), event ids dropped;
/// `first` is sent before any member's event, `last` (when every member
/// stream ended) after the last. Ends when every member stream has, or
/// the client went away.
pub(super) async fn relay(
    session: &mut Session,
    ctx: &RequestCtx,
    streams: Vec<(usize, member::Stream)>,
    edges: Option<(String, String)>,
    map: &(dyn Fn(usize, &str) -> Option<String> + Sync),
) -> Res<()> {
    use futures_util::stream::{self, StreamExt};
    let max = max_bytes(ctx);
    let mut resp =
        pingora::http::ResponseHeader::build(200, Some(4)).map_err(|_| GatewayError::Internal)?;
    for (k, v) in [
        ("content-type", "text/event-stream"),
        ("cache-control", "no-store"),
        ("transfer-encoding", "chunked"),
    ] {
        resp.insert_header(k, v)
            .map_err(|_| GatewayError::Internal)?;
    }
    resp.insert_header("x-request-id", ctx.request_id.as_str())
        .map_err(|_| GatewayError::Internal)?;
    if let Some(t) = ctx.composite.as_ref().and(ctx.session_token.as_ref()) {
        resp.insert_header("mcp-session-id", t.clone())
            .map_err(|_| GatewayError::Internal)?;
    }
    // from here on the answer has started: failures end the stream
    if session
        .write_response_header(Box::new(resp), false)
        .await
        .is_err()
    {
        return Ok(());
    }
    let (first, last) = edges.unzip();
    if let Some(f) = first {
        let event = format!("event: message\ndata: {f}\n\n");
        if session
            .write_response_body(Some(Bytes::from(event)), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    let _gauge = crate::telemetry::metrics::SseStream::start();
    let reads = streams.into_iter().map(|(i, s)| {
        stream::unfold(Some(s), move |st| async move {
            let mut s = st?;
            match s.next().await {
                Some(b) => Some(((i, Some(b)), Some(s))),
                None => Some(((i, None), None)),
            }
        })
        .boxed()
    });
    let mut all = stream::select_all(reads);
    let mut guards: std::collections::HashMap<usize, crate::answer::SseGuard> =
        std::collections::HashMap::new();
    let (rt, principal) = (ctx.runtime.clone(), ctx.principal.clone());
    let allowed = |item, name: &str| match (&rt, &principal) {
        (Some(rt), Some(p)) => rt.policy.item_allowed(p, item, name),
        _ => false,
    };
    while let Some((i, chunk)) = all.next().await {
        let g = guards
            .entry(i)
            .or_insert_with(|| crate::answer::SseGuard::new(max));
        let end = chunk.is_none();
        let out = g.push(chunk.as_deref().unwrap_or_default(), end, &allowed);
        if out.is_empty() {
            continue;
        }
        let out = drop_event_ids(&federation::map_events(&out, &|t| map(i, t)));
        if out.is_empty() {
            continue;
        }
        if session
            .write_response_body(Some(Bytes::from(out)), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    if let Some(l) = last {
        let event = format!("event: message\ndata: {l}\n\n");
        let _ = session
            .write_response_body(Some(Bytes::from(event)), false)
            .await;
    }
    let _ = session.write_response_body(None, true).await;
    Ok(())
}

/// Canonical SSE text without its `id:` lines (members' event ids mean
/// nothing on the merged stream).
pub(super) fn drop_event_ids(canonical: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len());
    for line in canonical.split_inclusive(|b| *b == b'\n') {
        if !line.starts_with(b"id: ") {
            out.extend_from_slice(line);
        }
    }
    out
}
