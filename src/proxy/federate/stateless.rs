//! 2026-07-28 clients of a virtual server: no sessions on their side. Each
//! request is served over the members as they are: a member that speaks
//! 2026-07-28 (it answers `server/discover` with that version; probed once
//! per member and snapshot) is called statelessly; a session-era member is
//! called in a member session the gateway holds per (virtual server,
//! member, principal) — initialized on first use with the client's
//! capabilities from `_meta`, kept while used (idle past
//! [`HELD_IDLE`] or beyond [`HELD_MAX`] entries the oldest goes), and
//! initialized again when the member says it is gone. The cost of a
//! session-era member is one `initialize` + `notifications/initialized`
//! per principal and replica, then nothing per call.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use tokio::time::Instant;

use super::{
    ask, call_for, forwarded, left_out, may_use, member_endpoint, relay, result, result_of, Done,
    Res,
};
use crate::error::GatewayError;
use crate::federation::json;
use crate::federation::json::Members;
use crate::federation::merge::{self, MemberInit};
use crate::proxy::member::{self, Failure};
use crate::proxy::RequestCtx;
use crate::runtime::{Member, VirtualServer};
use crate::session::{Composite, MemberSession, DIGEST};

/// Longest a held member session stays unused.
pub const HELD_IDLE: Duration = Duration::from_secs(600);
/// Most member sessions held per process.
pub const HELD_MAX: usize = 4096;

type Key = (String, String, [u8; DIGEST]);

struct Held {
    session: MemberSession,
    init: serde_json::Value,
    used: std::time::Instant,
}

/// The member sessions held for stateless clients. Process-wide on
/// purpose: they outlive a snapshot (a reload keeps them for the members
/// that remain) and are shared by the workers of this replica.
fn held() -> &'static Mutex<HashMap<Key, Held>> {
    static H: OnceLock<Mutex<HashMap<Key, Held>>> = OnceLock::new();
    H.get_or_init(Default::default)
}

fn key(vs: &VirtualServer, m: &Member, ctx: &RequestCtx) -> Key {
    (
        vs.path.clone(),
        m.upstream.name.to_string(),
        ctx.principal.as_ref().map_or([0; DIGEST], |p| p.digest()),
    )
}

/// Forgets the held session of a forwarded call whose member said it is
/// gone (the next call initializes a new one).
pub fn forget(ctx: &RequestCtx) {
    let (Some(vs), Some(m)) = (&ctx.virtual_server, &ctx.member) else {
        return;
    };
    if ctx.era != crate::mcp::Era::Stateless {
        return;
    }
    if let Some((_, member)) = vs.member(&m.upstream) {
        let k = key(vs, member, ctx);
        if let Ok(mut h) = held().lock() {
            h.remove(&k);
        }
    }
}

/// Drops the principal's held member sessions on `vs`.
pub(super) fn forget_all(vs: &VirtualServer, ctx: &RequestCtx) {
    if let Ok(mut h) = held().lock() {
        for m in &vs.members {
            h.remove(&key(vs, m, ctx));
        }
    }
}

/// The client's `_meta` member of `params`, as JSON text (clientInfo).
fn meta_member(ctx: &RequestCtx, name: &str) -> Option<String> {
    let body = std::str::from_utf8(ctx.body.as_deref()?).ok()?;
    let params = Members::of(body)?.get("params")?.get().to_string();
    let meta = Members::of(&params)?.get("_meta")?.get().to_string();
    Some(Members::of(&meta)?.get(name)?.get().to_string())
}

/// Whether member `i` speaks 2026-07-28 (cached per snapshot).
async fn speaks_stateless(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    i: usize,
    m: &Member,
    deadline: Instant,
) -> Result<(bool, Option<serde_json::Value>), String> {
    if let Some(known) = vs.stateless.read().ok().and_then(|s| s.get(&i).copied()) {
        if !known {
            return Ok((false, None));
        }
    }
    let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"mcp-edge-discover","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#);
    let probe = MemberSession {
        upstream: m.upstream.name.to_string(),
        endpoint: String::new(),
        session: String::new(),
        version: crate::mcp::STATELESS_SINCE.to_string(),
    };
    let reply = ask(ctx, m, Some(&probe), body, deadline)
        .await
        .map_err(|f| f.to_string())?;
    let found = result_of(&reply)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let yes = found.as_ref().is_some_and(|v| {
        v.get("supportedVersions")
            .and_then(|s| s.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str() == Some(crate::mcp::STATELESS_SINCE))
            })
    });
    if let Ok(mut s) = vs.stateless.write() {
        s.insert(i, yes);
    }
    Ok((yes, found.filter(|_| yes)))
}

/// A held member session for the principal: the one held, or a new one.
async fn hold(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    m: &Member,
    deadline: Instant,
) -> Result<(MemberSession, serde_json::Value), String> {
    let k = key(vs, m, ctx);
    if let Ok(mut h) = held().lock() {
        if let Some(e) = h.get_mut(&k) {
            if e.used.elapsed() < HELD_IDLE && m.upstream.endpoint(&e.session.endpoint).is_ok() {
                e.used = std::time::Instant::now();
                return Ok((e.session.clone(), e.init.clone()));
            }
            h.remove(&k);
        }
    }
    // no sampling, elicitation or roots: a 2026-07-28 client answers no
    // server-to-client requests (it retries with inputResponses instead)
    let caps = "{}";
    let info = meta_member(ctx, "io.modelcontextprotocol/clientInfo")
        .unwrap_or_else(|| r#"{"name":"mcp-edge","version":"1"}"#.into());
    let init = format!(
        r#"{{"jsonrpc":"2.0","id":"mcp-edge-init","method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{caps},"clientInfo":{info}}}}}"#
    );
    let picked = m.upstream.pick().ok_or("no endpoint up")?;
    let reply = ask(ctx, m, None, Bytes::from(init), deadline)
        .await
        .map_err(|f| f.to_string())?;
    let result: serde_json::Value =
        serde_json::from_str(&result_of(&reply)?).map_err(|e| e.to_string())?;
    let version = result
        .get("protocolVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("2025-11-25")
        .to_string();
    let session = MemberSession {
        upstream: m.upstream.name.to_string(),
        endpoint: picked.0.key.clone(),
        session: reply.session.clone().unwrap_or_default(),
        version,
    };
    let note = Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let _ = ask(ctx, m, Some(&session), note, deadline).await;
    if let Ok(mut h) = held().lock() {
        if h.len() >= HELD_MAX {
            let oldest = h.iter().min_by_key(|(_, v)| v.used).map(|(k, _)| k.clone());
            if let Some(o) = oldest {
                h.remove(&o);
            }
        }
        h.insert(
            k,
            Held {
                session: session.clone(),
                init: result.clone(),
                used: std::time::Instant::now(),
            },
        );
    }
    Ok((session, result))
}

/// One member as a stateless request reaches it, and what it offers
/// (its discover or initialize result).
async fn reach(
    vs: &VirtualServer,
    ctx: &RequestCtx,
    i: usize,
    m: &Member,
    deadline: Instant,
) -> Result<(MemberSession, Option<serde_json::Value>), String> {
    let (stateless, discovered) = speaks_stateless(vs, ctx, i, m, deadline).await?;
    if stateless {
        let picked = m.upstream.pick().ok_or("no endpoint up")?;
        return Ok((
            MemberSession {
                upstream: m.upstream.name.to_string(),
                endpoint: picked.0.key.clone(),
                session: String::new(),
                version: crate::mcp::STATELESS_SINCE.to_string(),
            },
            discovered,
        ));
    }
    let (s, init) = hold(vs, ctx, m, deadline).await?;
    Ok((s, Some(init)))
}

/// The members a stateless request reaches, as a session the request
/// alone uses (the member order of the virtual server); what each offers.
pub(super) async fn targets(
    vs: &VirtualServer,
    ctx: &RequestCtx,
) -> Res<(Composite, Vec<MemberInit>)> {
    let deadline = Instant::now() + vs.member_timeout;
    let asked: Vec<(usize, &Member)> = vs
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| may_use(vs, ctx, m))
        .collect();
    let reached = join_all(asked.iter().map(|(i, m)| reach(vs, ctx, *i, m, deadline))).await;
    let mut members = Vec::new();
    let mut offers = Vec::new();
    for ((i, m), r) in asked.iter().zip(reached) {
        match r {
            Ok((s, offer)) => {
                if let Some(o) = offer {
                    offers.push(MemberInit {
                        member: *i,
                        prefix: m.prefix.clone(),
                        result: o,
                    });
                }
                members.push(s);
            }
            Err(why) => left_out(vs, ctx, m, "a stateless request", &why),
        }
    }
    Ok((
        Composite {
            server: vs.path.clone(),
            members,
            principal: ctx.principal.as_ref().map_or([0; DIGEST], |p| p.digest()),
            issued: 0,
        },
        offers,
    ))
}

/// `server/discover`: the versions the gateway serves, the capabilities
/// some member offers, the virtual name.
pub(super) async fn discover(vs: &VirtualServer, ctx: &RequestCtx) -> Res<Done> {
    let (c, offers) = targets(vs, ctx).await?;
    if c.members.is_empty() {
        return Err(GatewayError::UpstreamUnavailable);
    }
    let merged = merge::merge_initialize(&vs.name, crate::mcp::STATELESS_SINCE, &offers);
    let mut out = serde_json::Map::new();
    out.insert("resultType".into(), "complete".into());
    let mut versions: Vec<serde_json::Value> = crate::mcp::KNOWN_VERSIONS
        .iter()
        .rev()
        .map(|v| (*v).into())
        .collect();
    versions.dedup();
    out.insert(
        "supportedVersions".into(),
        serde_json::Value::Array(versions),
    );
    out.insert("capabilities".into(), merged["capabilities"].clone());
    if let Some(i) = merged.get("instructions") {
        out.insert("instructions".into(), i.clone());
    }
    out.insert(
        "_meta".into(),
        serde_json::json!({"io.modelcontextprotocol/serverInfo": merged["serverInfo"]}),
    );
    // per principal (policy filters what it sees): never shared
    out.insert("ttlMs".into(), 0.into());
    out.insert("cacheScope".into(), "private".into());
    Ok(result(ctx, &serde_json::Value::Object(out).to_string()))
}

/// What a `subscriptions/listen` asks for.
#[derive(Debug, Default)]
struct Wanted {
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: Vec<String>,
}

fn wanted(body: &str) -> Wanted {
    let n = Members::of(body)
        .and_then(|m| m.get("params").map(|p| p.get().to_string()))
        .and_then(|p| {
            Members::of(&p).and_then(|m| m.get("notifications").map(|n| n.get().to_string()))
        })
        .unwrap_or_else(|| "{}".into());
    let m = Members::of(&n);
    let flag = |k: &str| {
        m.as_ref()
            .and_then(|m| m.get(k))
            .is_some_and(|v| v.get() == "true")
    };
    Wanted {
        tools: flag("toolsListChanged"),
        prompts: flag("promptsListChanged"),
        resources: flag("resourcesListChanged"),
        uris: m
            .as_ref()
            .and_then(|m| m.get("resourceSubscriptions"))
            .and_then(|v| serde_json::from_str::<Vec<String>>(v.get()).ok())
            .unwrap_or_default(),
    }
}

/// `text` with `params._meta["io.modelcontextprotocol/subscriptionId"]` set.
fn tagged(text: &str, id: &str) -> Option<String> {
    let m = Members::of(text)?;
    let params = m
        .get("params")
        .map_or("{}".to_string(), |p| p.get().to_string());
    let pm = Members::of(&params)?;
    let meta = pm
        .get("_meta")
        .map_or("{}".to_string(), |v| v.get().to_string());
    let meta = Members::of(&meta)?.with("io.modelcontextprotocol/subscriptionId", id);
    Some(m.with("params", &pm.with("_meta", &meta)))
}

/// `subscriptions/listen` (2026-07-28) over the members: a 2026-07-28
/// member gets the listen request itself (with the resource URIs it
/// serves), a session-era member's held session is subscribed to its URIs
/// and its GET stream read; the client gets the gateway's acknowledgement
/// first (what some member can honour), then the notifications it asked
/// for, each tagged with its subscription id, and a completion result when
/// every member's stream has ended.
pub(super) async fn listen(session: &mut pingora_proxy::Session, ctx: &mut RequestCtx) -> Res<()> {
    let Some(vs) = ctx.virtual_server.clone() else {
        return Err(GatewayError::Internal);
    };
    let body = ctx.body.clone().unwrap_or_default();
    let text = std::str::from_utf8(&body)
        .map_err(|_| GatewayError::Parse)?
        .to_string();
    let id = Members::of(&text)
        .and_then(|m| m.get("id").map(|v| v.get().to_string()))
        .ok_or(GatewayError::Internal)?;
    let want = wanted(&text);
    let (c, offers) = targets(&vs, ctx).await?;
    let deadline = Instant::now() + vs.member_timeout;
    let serves = |idx: usize, uri: &str| {
        let cat = vs.catalog.read().unwrap_or_else(|e| e.into_inner());
        cat.resource_member(uri).is_none_or(|m| m == idx)
    };
    let fwd = forwarded(ctx);
    let ctx_ref: &RequestCtx = ctx;
    let mut opens = Vec::new();
    let mut stateless_members = Vec::new();
    for (i, ms) in c.members.iter().enumerate() {
        let Some((idx, m)) = vs.member(&ms.upstream) else {
            continue;
        };
        let uris: Vec<String> = want
            .uris
            .iter()
            .filter(|u| serves(idx, u))
            .cloned()
            .collect();
        let is_stateless =
            ms.session.is_empty() && ms.version.as_str() >= crate::mcp::STATELESS_SINCE;
        if is_stateless {
            stateless_members.push(i);
        }
        let call_body = if is_stateless {
            json::set_path(
                &text,
                &["params", "notifications", "resourceSubscriptions"],
                &serde_json::to_string(&uris).unwrap_or_else(|_| "[]".into()),
            )
            .map(Bytes::from)
        } else {
            None
        };
        let fwd = &fwd;
        opens.push(async move {
            let ep = member_endpoint(m, ms).map_err(|e| Failure::Broken(e.label().into()))?;
            let mut call = call_for(ctx_ref, Some(ms), fwd);
            match call_body {
                Some(b) => {
                    call.method = Some("subscriptions/listen");
                    member::open_post_stream(&m.upstream, &ep.0, &call, b, deadline).await
                }
                None => {
                    for u in &uris {
                        let sub = format!(
                            r#"{{"jsonrpc":"2.0","id":"mcp-edge-subscribe","method":"resources/subscribe","params":{{"uri":{}}}}}"#,
                            json::string(u)
                        );
                        let _ = ask(ctx_ref, m, Some(ms), Bytes::from(sub), deadline).await;
                    }
                    member::open_stream(&m.upstream, &ep.0, &call, deadline).await
                }
            }
        });
    }
    let opened = join_all(opens).await;
    let mut streams = Vec::new();
    for ((i, ms), r) in c.members.iter().enumerate().zip(opened) {
        match r {
            Ok(Some(s)) => streams.push((i, s)),
            Ok(None) => {}
            Err(f) => {
                if let Some((_, m)) = vs.member(&ms.upstream) {
                    left_out(&vs, ctx_ref, m, "subscriptions/listen", &f.to_string());
                }
            }
        }
    }
    let offer = |cap: &str| offers.iter().any(|o| o.offers(cap));
    let mut honoured = serde_json::Map::new();
    for (flag, key, cap) in [
        (want.tools, "toolsListChanged", "tools"),
        (want.prompts, "promptsListChanged", "prompts"),
        (want.resources, "resourcesListChanged", "resources"),
    ] {
        if flag && offer(cap) {
            honoured.insert(key.into(), true.into());
        }
    }
    if !want.uris.is_empty() && offer("resources") {
        honoured.insert("resourceSubscriptions".into(), serde_json::json!(want.uris));
    }
    let sub_id: serde_json::Value = serde_json::from_str(&id).unwrap_or(serde_json::Value::Null);
    let ack = serde_json::json!({"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged",
        "params":{"_meta":{"io.modelcontextprotocol/subscriptionId": sub_id},"notifications": honoured}});
    let done = serde_json::json!({"jsonrpc":"2.0","id": sub_id,
        "result":{"resultType":"complete","_meta":{"io.modelcontextprotocol/subscriptionId": sub_id}}});
    ctx.sse = true;
    let map = |i: usize, text: &str| -> Option<String> {
        if let Some(ms) = c.members.get(i) {
            super::note_changes(&vs, &ms.upstream, text);
        }
        let m = Members::of(text)?;
        let method = m.str("method")?;
        if stateless_members.contains(&i) {
            // the member's own acknowledgement and completion are the gateway's to send
            return (method != "notifications/subscriptions/acknowledged")
                .then(|| text.to_string());
        }
        let keep = match method.as_str() {
            "notifications/tools/list_changed" => want.tools,
            "notifications/prompts/list_changed" => want.prompts,
            "notifications/resources/list_changed" => want.resources,
            "notifications/resources/updated" => {
                let uri = m
                    .get("params")
                    .and_then(|p| Members::of(p.get()).and_then(|p| p.str("uri")));
                uri.is_some_and(|u| want.uris.contains(&u))
            }
            _ => false,
        };
        if keep {
            tagged(text, &id)
        } else {
            None
        }
    };
    relay(
        session,
        ctx,
        streams,
        Some((ack.to_string(), done.to_string())),
        &map,
    )
    .await
}
