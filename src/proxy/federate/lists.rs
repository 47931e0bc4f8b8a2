//! List fan-out (`tools/list`, `prompts/list`, `resources/list`,
//! `resources/templates/list`, `tasks/list`): concurrent, bounded by
//! `member_timeout_ms`, kept pages, the composite cursor, the catalog it
//! teaches, and resolving exposed names and URIs (listing again on a miss).

use super::*;

/// A member's list page: asked now, or kept from before.
pub(super) enum Page {
    Fresh(Reply),
    Kept(String),
}

/// Fans a list out to the session's members (a composite cursor names
/// the members that have more), merges the pages with exposed names,
/// filters them by policy and answers.
pub(super) async fn list(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    body: &Bytes,
    kind: ListKind,
) -> Res<Done> {
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    let cursor = Members::of(text)
        .and_then(|m| m.get("params").map(|p| p.get().to_string()))
        .and_then(|p| Members::of(&p).and_then(|m| m.str("cursor")));
    let wanted: Option<Vec<(String, String)>> = match &cursor {
        None => None,
        Some(cur) => {
            Some(merge::decode_cursor(cur).ok_or(GatewayError::InvalidParams("Invalid cursor"))?)
        }
    };
    let mut targets = Vec::new();
    for (si, m, ms) in joined(vs, c) {
        if !may_use(vs, ctx, m) {
            continue;
        }
        // names and the catalog go by the member's place in the virtual
        // server; task ids by its place in the session
        let Some((config_index, _)) = vs.member(&m.upstream.name) else {
            continue;
        };
        let i = if kind == ListKind::Tasks {
            si
        } else {
            config_index
        };
        let own_cursor = match &wanted {
            None => None,
            Some(w) => match w.iter().find(|(u, _)| *u == *m.upstream.name) {
                Some((_, cur)) => Some(cur.clone()),
                None => continue,
            },
        };
        let b = match &own_cursor {
            None => body.clone(),
            Some(cur) => Bytes::from(
                json::set_path(text, &["params", "cursor"], &json::string(cur))
                    .ok_or(GatewayError::Internal)?,
            ),
        };
        targets.push((i, m, ms, b, own_cursor));
    }
    let deadline = Instant::now() + vs.member_timeout;
    let principal = ctx.principal.as_ref().map_or([0; 16], |p| p.digest());
    // a page a member said may be kept (ttlMs, cacheScope) is not asked again
    let replies = join_all(targets.iter().map(|(i, m, ms, b, cur)| async move {
        if kind != ListKind::Tasks {
            if let Some(hit) = vs.lists.get(*i, kind, cur.as_deref(), principal) {
                return Ok(Page::Kept(hit));
            }
        }
        ask(ctx, m, Some(ms), b.clone(), deadline)
            .await
            .map(Page::Fresh)
    }))
    .await;
    let mut pages: Vec<(usize, MemberPage)> = Vec::new();
    let mut ttls: Vec<u64> = Vec::new();
    let mut next = Vec::new();
    let mut catalog = vs.catalog.write().unwrap_or_else(|e| e.into_inner());
    for ((i, m, _, _, cur), r) in targets.iter().zip(replies) {
        let first = cur.is_none();
        let text = match r {
            Ok(Page::Kept(t)) => Ok(t),
            Ok(Page::Fresh(r)) => {
                let t = result_of(&r);
                // pinned definitions are checked before the page is kept or merged
                let t = match (t, kind) {
                    (Ok(t), ListKind::Tools) => Ok(super::super::integrity::member_page(
                        ctx,
                        &m.upstream.name,
                        t,
                    )),
                    (t, _) => t,
                };
                if let (Ok(t), true) = (&t, kind != ListKind::Tasks) {
                    vs.lists.put(*i, kind, cur.as_deref(), principal, t);
                }
                t
            }
            Err(f) => {
                left_out(vs, ctx, m, kind.method(), &f.to_string());
                continue;
            }
        };
        let page = match text {
            Ok(t) => {
                ttls.push(
                    Members::of(&t)
                        .and_then(|m| m.get("ttlMs").and_then(|v| v.get().parse::<u64>().ok()))
                        .unwrap_or(0),
                );
                merge::read_page(kind, &t)
            }
            Err(why) if why == "session_gone" => {
                return Err(GatewayError::SessionNotFound("member_session_gone"))
            }
            Err(why) => {
                left_out(vs, ctx, m, kind.method(), &why);
                continue;
            }
        };
        let Some(page) = page else {
            left_out(vs, ctx, m, kind.method(), "not a list result");
            continue;
        };
        let ids: Vec<String> = page.items.iter().map(|(id, _)| id.clone()).collect();
        match kind.named() {
            Some(named) => catalog.learn_names(&vs.naming, named, *i, ids, first),
            None if kind == ListKind::Resources => catalog.learn_resources(*i, ids, first),
            None if kind == ListKind::Templates => catalog.learn_templates(*i, ids, first),
            None => {}
        }
        if let Some(n) = &page.next {
            next.push((m.upstream.name.to_string(), n.clone()));
        }
        pages.push((*i, page));
    }
    let exposure = kind.named().map(|n| catalog.names(n).clone());
    drop(catalog);
    let (mut merged, dropped) =
        merge::merge_list(kind, &pages, exposure.as_ref(), merge::encode_cursor(&next));
    if ctx.era == crate::mcp::Era::Stateless {
        // 2026-07-28 list results are cacheable: the shortest freshness a
        // member gave (0 when one gave none), and private (the list is
        // filtered for this principal)
        let ttl = ttls.iter().min().copied().unwrap_or(0).to_string();
        for (k, v) in [
            ("resultType", "\"complete\""),
            ("ttlMs", ttl.as_str()),
            ("cacheScope", "\"private\""),
        ] {
            if let Some(m) = Members::of(&merged) {
                merged = m.with(k, v);
            }
        }
    }
    for name in &dropped.clashes {
        log::warn!(
            "virtual server {}: {} {name:?} is listed by several members: refused",
            vs.path,
            kind.key()
        );
    }
    let Done::Answer(status, out, _) = result(ctx, &merged) else {
        return Err(GatewayError::Internal);
    };
    // policy: the principal sees only what it may use (the same check as
    // any proxied list answer)
    let (Some(rt), Some(p)) = (&ctx.runtime, &ctx.principal) else {
        return Err(GatewayError::Internal);
    };
    let allowed = |item, name: &str| rt.policy.item_allowed(p, item, name);
    let tools = (!rt.tool_overrides.is_empty())
        .then(|| &*rt.tool_overrides as &dyn crate::answer::ToolView);
    let out = match crate::answer::check_message_with(&out, &allowed, tools) {
        crate::answer::Checked::Pass => out,
        crate::answer::Checked::Rewritten(v) => Bytes::from(v),
        crate::answer::Checked::Refused(m) => crate::answer::refused_body(ctx.id_ref(), m),
    };
    Ok(Done::Answer(status, out, None))
}

/// The member and own name of an exposed tool or prompt name: by prefix
/// under `always`, else from the catalog (listing again once on a miss).
pub(super) async fn resolve_name(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    kind: Named,
    exposed: &str,
) -> Option<federation::Exposed> {
    let list = if kind == Named::Tool {
        ListKind::Tools
    } else {
        ListKind::Prompts
    };
    if let Some(e) = vs.naming.split(exposed) {
        // the prefix names the member; the member must have the name (a
        // member that could not be listed decides for itself)
        let has = |vs: &VirtualServer| {
            let cat = vs.catalog.read().unwrap_or_else(|e| e.into_inner());
            cat.own
                .get(&(kind, e.member))
                .map(|names| names.contains(&e.own))
        };
        if has(vs) == Some(true) {
            return Some(e);
        }
        relist(vs, ctx, c, list).await;
        return match has(vs) {
            Some(false) => None,
            _ => Some(e),
        };
    }
    if vs.naming.mode == PrefixMode::Always {
        return None;
    }
    let known = |vs: &VirtualServer| {
        let cat = vs.catalog.read().unwrap_or_else(|e| e.into_inner());
        cat.names(kind).names.get(exposed).cloned()
    };
    if let Some(e) = known(vs) {
        return Some(e);
    }
    relist(vs, ctx, c, list).await;
    known(vs)
}

/// Lists again (first pages) so the catalog knows what members have.
pub(super) async fn relist(vs: &VirtualServer, ctx: &RequestCtx, c: &Composite, kind: ListKind) {
    // at most once a second per kind: calls to names nobody has must not
    // turn into a fan-out each (the refusal itself counts against the
    // address's refusal budget)
    {
        let Ok(mut last) = vs.relisted.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        match last.get(&kind) {
            Some(t) if now.duration_since(*t) < RELIST_EVERY => return,
            _ => {
                last.insert(kind, now);
            }
        }
    }
    let body = Bytes::from(format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":\"mcp-edge-relist\",\"method\":\"{}\",\"params\":{{}}}}",
        kind.method()
    ));
    let _ = list(vs, ctx, c, &body, kind).await;
}

/// Shortest time between two listings a miss makes.
pub(super) const RELIST_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The member serving a resource URI: the catalog (listing resources and
/// templates again once on a miss).
pub(super) async fn resolve_uri(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    uri: &str,
) -> Option<usize> {
    let known = |vs: &VirtualServer| {
        let cat = vs.catalog.read().unwrap_or_else(|e| e.into_inner());
        cat.resource_member(uri)
    };
    if let Some(m) = known(vs) {
        return Some(m);
    }
    relist(vs, ctx, c, ListKind::Resources).await;
    relist(vs, ctx, c, ListKind::Templates).await;
    known(vs)
}
