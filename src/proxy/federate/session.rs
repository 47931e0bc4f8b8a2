//! A virtual session's life: `initialize` answered by the gateway over
//! every member (one sealed token carrying their sessions), messages for
//! every member (notifications, `logging/setLevel`), DELETE, and a
//! client's answer to a member's request going back to that member.

use super::*;

pub(super) async fn initialize(
    vs: &Arc<VirtualServer>,
    ctx: &mut RequestCtx,
    body: &Bytes,
) -> Res<Done> {
    if ctx.era == crate::mcp::Era::Stateless {
        return Err(GatewayError::NoRoute);
    }
    let requested = Members::of(std::str::from_utf8(body).unwrap_or("{}"))
        .and_then(|m| m.get("params").map(|p| p.get().to_string()))
        .and_then(|p| Members::of(&p).and_then(|m| m.str("protocolVersion")))
        .unwrap_or_else(|| "2025-03-26".into());
    let deadline = Instant::now() + vs.member_timeout;
    let asked: Vec<(usize, &Member)> = vs
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| may_use(vs, ctx, m))
        .collect();
    let ctx_ref: &RequestCtx = ctx;
    let replies = join_all(
        asked
            .iter()
            .map(|(_, m)| ask(ctx_ref, m, None, body.clone(), deadline)),
    )
    .await;
    let mut inits = Vec::new();
    let mut sessions = Vec::new();
    for ((i, m), reply) in asked.iter().zip(replies) {
        let r = match reply {
            Ok(r) => r,
            Err(f) => {
                left_out(vs, ctx, m, "initialize", &f.to_string());
                continue;
            }
        };
        let parsed = result_of(&r)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
        let value = match parsed {
            Ok(v) if v.is_object() => v,
            Ok(_) => {
                left_out(vs, ctx, m, "initialize", "result is not an object");
                continue;
            }
            Err(why) => {
                left_out(vs, ctx, m, "initialize", &why);
                continue;
            }
        };
        let init = MemberInit {
            member: *i,
            prefix: m.prefix.clone(),
            result: value,
        };
        let endpoint = m
            .upstream
            .endpoints
            .iter()
            .find(|e| e.health.is_up())
            .map(|e| e.key.clone());
        sessions.push(MemberSession {
            upstream: m.upstream.name.to_string(),
            endpoint: endpoint.unwrap_or_default(),
            session: r.session.clone().unwrap_or_default(),
            version: init.version().unwrap_or(&requested).to_string(),
        });
        inits.push(init);
    }
    if inits.is_empty() && !asked.is_empty() {
        // every member the principal may use failed: nothing to serve
        return Err(GatewayError::UpstreamUnavailable);
    }
    let merged = merge::merge_initialize(&vs.name, &requested, &inits);
    let (Some(rt), Some(p)) = (&ctx.runtime, &ctx.principal) else {
        return Err(GatewayError::Internal);
    };
    let composite = Composite {
        server: vs.path.clone(),
        members: sessions,
        principal: p.digest(),
        issued: crate::base::clock::now_secs(),
    };
    let token = rt
        .session_keys()
        .seal_composite(&composite)
        .ok_or(GatewayError::Internal)?;
    crate::telemetry::metrics::record_session("sealed", "new_session");
    let Done::Answer(s, b, _) = result(ctx, &merged.to_string()) else {
        return Err(GatewayError::Internal);
    };
    ctx.composite = Some(composite);
    Ok(Done::Answer(s, b, Some(token)))
}

/// Sends the client's message to every member of the session (by the
/// deadline); a member whose session is gone ends the whole session.
pub(super) async fn broadcast(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    body: &Bytes,
) -> Res<()> {
    let deadline = Instant::now() + vs.member_timeout;
    let members = joined(vs, c);
    let replies = join_all(
        members
            .iter()
            .map(|(_, m, ms)| ask(ctx, m, Some(ms), body.clone(), deadline)),
    )
    .await;
    for ((_, m, _), r) in members.iter().zip(replies) {
        match r {
            Ok(r) if session_gone(&r) => {
                return Err(GatewayError::SessionNotFound("member_session_gone"))
            }
            Ok(r) if r.status >= 400 => {
                left_out(vs, ctx, m, "a broadcast", &format!("HTTP {}", r.status))
            }
            Ok(_) => {}
            Err(f) => left_out(vs, ctx, m, "a broadcast", &f.to_string()),
        }
    }
    Ok(())
}

pub(super) async fn delete(vs: &VirtualServer, ctx: &RequestCtx) -> Res<Done> {
    let Some(c) = ctx.composite.as_ref() else {
        return Err(GatewayError::SessionRequired);
    };
    end_members(vs, ctx, c).await;
    Ok(Done::Answer(200, Bytes::new(), None))
}

/// DELETEs every member session of `c` (by the member timeout); a
/// member that fails is logged and left out.
pub async fn end_members(vs: &VirtualServer, ctx: &RequestCtx, c: &Composite) {
    let deadline = Instant::now() + vs.member_timeout;
    let fwd = forwarded(ctx);
    let members = joined(vs, c);
    let asks = members.iter().map(|(_, m, ms)| {
        let call = call_for(ctx, Some(ms), &fwd);
        async move {
            let ep = member_endpoint(m, ms).map_err(|e| Failure::Broken(e.label().into()))?;
            member::delete(&m.upstream, &ep.0, &call, deadline).await
        }
    });
    for ((_, m, _), r) in members.iter().zip(join_all(asks).await) {
        if let Err(f) = r {
            left_out(vs, ctx, m, "DELETE", &f.to_string());
        }
    }
}

/// A client's answer to a member's request: back to that member with
/// the member's own id.
pub(super) async fn answer_member(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    c: &Composite,
    body: &Bytes,
) -> Res<Done> {
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::Parse)?;
    let members = Members::of(text).ok_or(GatewayError::Parse)?;
    let id = members
        .str("id")
        .ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let (i, raw) =
        federation::unwrap_id(&id).ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let ms = c
        .members
        .get(i)
        .ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let (_, m) = vs
        .member(&ms.upstream)
        .ok_or(GatewayError::InvalidParams("unknown request id"))?;
    let out = Bytes::from(members.with("id", &raw));
    let deadline = Instant::now() + vs.member_timeout;
    match ask(ctx, m, Some(ms), out, deadline).await {
        Ok(r) if session_gone(&r) => Err(GatewayError::SessionNotFound("member_session_gone")),
        Ok(_) => Ok(Done::Answer(202, Bytes::new(), None)),
        Err(Failure::Timeout) => Err(GatewayError::UpstreamTimeout),
        Err(Failure::Broken(_)) => Err(GatewayError::UpstreamUnavailable),
    }
}
