//! Calls that name one member's item (`tools/call`, `prompts/get`,
//! `resources/*`, `completion/complete`, `tasks/*`): set up for the proxy
//! path with the member's own name, session and version; what the
//! member's answer becomes on its way to the client.

use super::*;

/// The session member at catalog index `i` (config index of the member).
pub(super) fn session_member<'a>(
    vs: &'a VirtualServer,
    c: &'a Composite,
    config_index: usize,
) -> Option<(usize, &'a Member, &'a MemberSession)> {
    let m = vs.members.get(config_index)?;
    let (i, ms) = c.member(&m.upstream.name)?;
    Some((i, m, ms))
}

pub(super) async fn forward_named(
    vs: &VirtualServer,
    ctx: &mut RequestCtx,
    c: &Composite,
    body: &Bytes,
    kind: Named,
) -> Res<Done> {
    let unknown = match kind {
        Named::Tool => GatewayError::UnknownTool,
        Named::Prompt => GatewayError::UnknownItem("Unknown prompt"),
    };
    let exposed = ctx.target().unwrap_or_default().to_string();
    let Some(e) = resolve_name(vs, ctx, c, kind, &exposed).await else {
        return Err(unknown);
    };
    let Some((i, m, ms)) = session_member(vs, c, e.member) else {
        return Err(unknown);
    };
    if let (Named::Tool, Some(rt)) = (kind, ctx.runtime.as_ref()) {
        super::super::integrity::check_call(rt, &m.upstream.name, &e.own)?;
    }
    let rewritten = super::super::names::with_name(ctx, body, &e.own)?;
    forward(ctx, i, m, ms, rewritten, Some(e.own))
}

pub(super) async fn forward_uri(
    vs: &VirtualServer,
    ctx: &mut RequestCtx,
    c: &Composite,
    body: Bytes,
    uri: &str,
) -> Res<Done> {
    let unknown = GatewayError::UnknownItem("Resource not found");
    let Some(idx) = resolve_uri(vs, ctx, c, uri).await else {
        return Err(unknown);
    };
    let Some((i, m, ms)) = session_member(vs, c, idx) else {
        return Err(unknown);
    };
    forward(ctx, i, m, ms, body, None)
}

pub(super) async fn complete(
    vs: &VirtualServer,
    ctx: &mut RequestCtx,
    c: &Composite,
    body: &Bytes,
) -> Res<Done> {
    let (kind, name, uri) = {
        let env = ctx.envelope.as_ref().ok_or(GatewayError::Internal)?;
        let r = env
            .reference
            .as_deref()
            .ok_or(GatewayError::InvalidParams("params.ref is required"))?;
        (
            r.kind.text().map(|t| t.as_str(body).to_string()),
            r.name.text().map(|t| t.as_str(body).to_string()),
            r.uri.text().map(|t| t.as_str(body).to_string()),
        )
    };
    match (kind.as_deref(), name, uri) {
        (Some("ref/prompt"), Some(exposed), _) => {
            let e = resolve_name(vs, ctx, c, Named::Prompt, &exposed)
                .await
                .ok_or(GatewayError::UnknownItem("Unknown prompt"))?;
            let (i, m, ms) = session_member(vs, c, e.member)
                .ok_or(GatewayError::UnknownItem("Unknown prompt"))?;
            let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
            let rewritten = json::set_path(text, &["params", "ref", "name"], &json::string(&e.own))
                .ok_or(GatewayError::Internal)?;
            forward(ctx, i, m, ms, Bytes::from(rewritten), Some(e.own))
        }
        (Some("ref/resource"), _, Some(uri)) => forward_uri(vs, ctx, c, body.clone(), &uri).await,
        _ => Err(GatewayError::InvalidParams(
            "params.ref must name a prompt or a resource",
        )),
    }
}

/// `tasks/get`, `tasks/result`, `tasks/cancel`: to the member that owns
/// the task, with its own task id (the answer's task ids namespaced again
/// by [`member_answer`]).
pub(super) async fn task(
    vs: &VirtualServer,
    ctx: &mut RequestCtx,
    c: &Composite,
    body: &Bytes,
) -> Res<Done> {
    let unknown = GatewayError::InvalidParams("Failed to retrieve task: Task not found");
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    let params = Members::of(text)
        .and_then(|m| m.get("params").map(|p| p.get().to_string()))
        .ok_or(GatewayError::InvalidParams("params.taskId is required"))?;
    let id = Members::of(&params)
        .and_then(|p| p.str("taskId"))
        .ok_or(GatewayError::InvalidParams("params.taskId is required"))?;
    let (i, own) = federation::unwrap_task_id(&id).ok_or(unknown.clone())?;
    let ms = c.members.get(i).ok_or(unknown.clone())?;
    let (_, m) = vs.member(&ms.upstream).ok_or(unknown)?;
    let rewritten = json::set_path(text, &["params", "taskId"], &json::string(own))
        .ok_or(GatewayError::Internal)?;
    forward(ctx, i, m, ms, Bytes::from(rewritten), None)
}

/// What a forwarded call's answer becomes on its way to the client: the
/// ids of a member's requests on its stream namespaced; a session-era
/// member's results upgraded for a 2026-07-28 client.
pub fn member_answer(
    ctx: &RequestCtx,
    m: &MemberCall,
    guard: &crate::answer::Guard,
    out: Bytes,
) -> Bytes {
    let sse = matches!(guard, crate::answer::Guard::Sse(_));
    let has = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
    if let (Some(vs), true) = (&ctx.virtual_server, has(b"list_changed")) {
        // a member's list changed: its kept pages of that kind are stale
        if let Ok(text) = std::str::from_utf8(&out) {
            for line in text.lines() {
                note_changes(vs, &m.upstream, line.strip_prefix("data: ").unwrap_or(line));
            }
        }
    }
    let upgrade =
        ctx.era == crate::mcp::Era::Stateless && m.version.as_str() < crate::mcp::STATELESS_SINCE;
    let cacheable = ctx.method() == Some("resources/read");
    match (sse, upgrade) {
        // only a message with a `method` can be a member's request, only
        // one with `taskId` names a task: the rest pass unparsed (a key
        // spelled with escapes is not namespaced, and the client's answer
        // to it is refused: it fails closed)
        (true, false) if !has(b"\"method\"") && !has(b"\"taskId\"") => out,
        (true, false) => Bytes::from(federation::namespace_events(&out, m.index)),
        (false, false) if !has(b"\"taskId\"") => out,
        (false, false) => std::str::from_utf8(&out)
            .ok()
            .and_then(|t| federation::namespace_tasks(t, m.index))
            .map_or(out, Bytes::from),
        (true, true) => Bytes::from(federation::upgrade_events(&out, cacheable)),
        (false, true) => std::str::from_utf8(&out)
            .ok()
            .and_then(|t| federation::upgrade_result(t, cacheable))
            .map_or(out, Bytes::from),
    }
}

/// Sets `ctx` up to proxy `body` to member `m` of the session.
pub(super) fn forward(
    ctx: &mut RequestCtx,
    index: usize,
    m: &Member,
    ms: &MemberSession,
    body: Bytes,
    own: Option<String>,
) -> Res<Done> {
    let picked = member_endpoint(m, ms)?;
    ctx.upstream = Some(m.upstream.clone());
    ctx.endpoint = Some(picked);
    // a member without a session (2026-07-28, or one that issued none)
    // gets no session id and no session refusal mapping
    ctx.session = (!ms.session.is_empty()).then(|| crate::session::Owner {
        upstream: ms.upstream.clone(),
        endpoint: ms.endpoint.clone(),
        session: ms.session.clone(),
        principal: ctx.principal.as_ref().map_or([0; 16], |p| p.digest()),
        issued: 0,
    });
    ctx.member = Some(MemberCall {
        index,
        upstream: m.upstream.name.clone(),
        own,
        version: ms.version.clone(),
    });
    ctx.forward_body = Some(body);
    Ok(Done::Forward)
}
