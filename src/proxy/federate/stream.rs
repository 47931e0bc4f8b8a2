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
    let mut merged = Merged::new(streams, max_bytes(ctx)).shown(ctx);
    let (rt, principal) = (ctx.runtime.clone(), ctx.principal.clone());
    let allowed = |item, name: &str| match (&rt, &principal) {
        (Some(rt), Some(p)) => rt.policy.item_allowed(p, item, name),
        _ => false,
    };
    while let Some((i, out)) = merged.next(&allowed).await {
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

/// Member streams read as one: each stream's chunks through its own
/// [`crate::answer::SseGuard`] (the rules of a proxied stream).
pub struct Merged {
    all: futures_util::stream::SelectAll<
        futures_util::stream::BoxStream<'static, (usize, Option<Bytes>)>,
    >,
    guards: std::collections::HashMap<usize, crate::answer::SseGuard>,
    max: usize,
    /// How list results show tools (`tool_overrides`).
    tools: Option<std::sync::Arc<dyn crate::answer::ToolView>>,
}

impl Merged {
    /// Reads `streams` (index, stream) with events of at most `max` bytes.
    pub fn new(streams: Vec<(usize, member::Stream)>, max: usize) -> Merged {
        use futures_util::stream::{self, StreamExt};
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
        Merged {
            all: stream::select_all(reads),
            guards: std::collections::HashMap::new(),
            max,
            tools: None,
        }
    }

    /// The same, showing the tools of list results as the request's
    /// answers show them (`tool_overrides`).
    fn shown(mut self, ctx: &RequestCtx) -> Merged {
        self.tools = super::super::integrity::view_for(ctx);
        self
    }

    /// The next checked events (canonical SSE text) of stream `i`;
    /// `None` once every stream has ended.
    pub async fn next(
        &mut self,
        allowed: &(dyn Fn(crate::call::Item, &str) -> bool + Sync),
    ) -> Option<(usize, Vec<u8>)> {
        use futures_util::stream::StreamExt;
        while let Some((i, chunk)) = self.all.next().await {
            let (max, tools) = (self.max, self.tools.clone());
            let g = self.guards.entry(i).or_insert_with(|| {
                let g = crate::answer::SseGuard::new(max);
                match tools {
                    Some(t) => g.with_tools(t),
                    None => g,
                }
            });
            let out = g.push(
                chunk.as_deref().unwrap_or_default(),
                chunk.is_none(),
                allowed,
            );
            if !out.is_empty() {
                return Some((i, out.to_vec()));
            }
        }
        None
    }
}

/// The server messages of a legacy (HTTP+SSE) client's session outside
/// its requests: what a Streamable HTTP client reads on its GET stream.
pub struct Listener {
    merged: Merged,
    /// A virtual server's session: its members' ids are namespaced.
    composite: Option<(Arc<VirtualServer>, Composite)>,
}

/// Opens the GET stream(s) of the session `token` names for the
/// principal on `ctx`: the upstream's (a routing-table session) or every
/// member's (a virtual server's). `None` when there is none to open (a
/// server without GET stream, a token that no longer opens).
pub async fn open_listener(ctx: &RequestCtx, token: &str) -> Option<Listener> {
    let rt = ctx.runtime.clone()?;
    let p = ctx.principal.as_ref()?;
    let now = crate::base::clock::now_secs();
    let fwd = forwarded(ctx);
    if let Some(vs) = ctx.virtual_server.clone() {
        let c = rt
            .session_keys()
            .open_composite(token, &p.digest(), now)
            .ok()?;
        let deadline = Instant::now() + vs.member_timeout;
        let members = joined(&vs, &c);
        let opens = members.iter().map(|(_, m, ms)| {
            let call = call_for(ctx, Some(ms), &fwd);
            async move {
                let ep = member_endpoint(m, ms).map_err(|e| Failure::Broken(e.label().into()))?;
                member::open_stream(&m.upstream, &ep.0, &call, deadline).await
            }
        });
        let mut streams = Vec::new();
        for ((i, m, _), r) in members.iter().zip(join_all(opens).await) {
            match r {
                Ok(Some(s)) => streams.push((*i, s)),
                Ok(None) => {}
                Err(f) => left_out(&vs, ctx, m, "the legacy stream", &f.to_string()),
            }
        }
        if streams.is_empty() {
            return None;
        }
        return Some(Listener {
            merged: Merged::new(streams, max_bytes(ctx)).shown(ctx),
            composite: Some((vs, c)),
        });
    }
    let owner = rt.session_keys().open(token, &p.digest(), now).ok()?;
    let up = rt.upstreams.iter().find(|u| *u.name == *owner.upstream)?;
    let ep = up.endpoint(&owner.endpoint).ok()?;
    let call = member::Call {
        session: Some(&owner.session),
        request_id: &ctx.request_id,
        forwarded: fwd.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        claims: &p.forward,
        ..member::Call::default()
    };
    let deadline = Instant::now() + up.timeout;
    match member::open_stream(up, &ep.0, &call, deadline).await {
        Ok(Some(s)) => Some(Listener {
            merged: Merged::new(vec![(0, s)], max_bytes(ctx)),
            composite: None,
        }),
        Ok(None) => None,
        Err(f) => {
            log::info!(
                "upstream {}: no GET stream for a legacy client: {f}",
                up.name
            );
            None
        }
    }
}

impl Listener {
    /// The next messages (JSON texts, read by the proxy's rules, ids of a
    /// member's requests namespaced); `None` once the stream(s) ended.
    pub async fn next(
        &mut self,
        allowed: &(dyn Fn(crate::call::Item, &str) -> bool + Sync),
    ) -> Option<Vec<Vec<u8>>> {
        loop {
            let (i, out) = self.merged.next(allowed).await?;
            let mut out = match &self.composite {
                Some((vs, c)) => federation::map_events(&out, &|t| {
                    if let Some(ms) = c.members.get(i) {
                        note_changes(vs, &ms.upstream, t);
                    }
                    Some(federation::namespace_message(t, i).unwrap_or_else(|| t.to_string()))
                }),
                None => out,
            };
            let messages = member::take_events(&mut out);
            if !messages.is_empty() {
                return Some(messages);
            }
        }
    }
}
