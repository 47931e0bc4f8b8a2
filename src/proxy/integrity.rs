//! `tool_integrity` and `tool_overrides` on the proxy path: how a list
//! result shows tools ([`Shown`]: every listed definition checked against
//! its pin, a changed one logged, counted, audited and, under `block`,
//! left out; then the overrides), the refusal of a call to a changed tool
//! under `block`, a virtual server member's page checked before it is
//! merged, and the check a `notifications/tools/list_changed` triggers (the
//! gateway lists the upstream's tools itself, with the session's id).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::RequestCtx;
use crate::answer::{ItemView, ToolView};
use crate::error::GatewayError;
use crate::runtime::Runtime;
use crate::tools::integrity::{self, Mode, Seen};

/// Changes seen while answering one request, for its audit line.
pub type Changes = Arc<Mutex<Vec<String>>>;

/// How one answer shows the tools its list results carry.
#[derive(Debug)]
pub struct Shown {
    /// The upstream whose names the list carries (`None`: no pinning).
    upstream: Option<Arc<str>>,
    mode: Mode,
    overrides: Arc<crate::tools::ToolOverrides>,
    changes: Changes,
}

impl ToolView for Shown {
    fn view(&self, name: &str, item: &str) -> ItemView {
        if let Some(up) = &self.upstream {
            if !keep(up, name, item, self.mode, &self.changes) {
                return ItemView::Drop;
            }
        }
        self.overrides.view(name, item)
    }
}

/// The view of a routed answer (or `None`: nothing to show differently).
pub fn view_for(ctx: &RequestCtx) -> Option<Arc<dyn ToolView>> {
    let rt = ctx.runtime.as_ref()?;
    let pinning = rt.tool_integrity.mode != Mode::Off;
    if !pinning && rt.tool_overrides.is_empty() {
        return None;
    }
    Some(Arc::new(Shown {
        upstream: ctx
            .upstream
            .as_ref()
            .filter(|_| pinning)
            .map(|u| Arc::from(&*u.name)),
        mode: rt.tool_integrity.mode,
        overrides: rt.tool_overrides.clone(),
        changes: ctx.tool_changes.clone(),
    }))
}

/// Checks one listed definition: whether it may be shown.
fn keep(upstream: &str, name: &str, item: &str, mode: Mode, changes: &Changes) -> bool {
    let Some(d) = integrity::digest(item) else {
        return true;
    };
    match integrity::pins().check(upstream, name, &d) {
        Seen::Same => true,
        Seen::New => {
            log::info!("tool_integrity: pinned {upstream}/{name} {d}");
            crate::telemetry::metrics::record_tool_pin("pinned");
            true
        }
        Seen::Changed { pinned, seen } => {
            let blocked = mode == Mode::Block;
            log::warn!(
                "tool_integrity: {upstream}/{name} changed: pinned {pinned}, listed {seen}; {} until approved (mcp-edge pins approve)",
                if blocked { "hidden and refused" } else { "served" }
            );
            crate::telemetry::metrics::record_tool_pin(if blocked {
                "changed_blocked"
            } else {
                "changed_served"
            });
            if let Ok(mut c) = changes.lock() {
                if c.len() < 64 {
                    c.push(format!("{upstream}/{name} {pinned} -> {seen}"));
                }
            }
            !blocked
        }
    }
}

/// A member's `tools/list` result (JSON text), its tools checked against
/// their pins under the member's upstream before the page is merged.
pub fn member_page(ctx: &RequestCtx, upstream: &str, result: String) -> String {
    let Some(rt) = ctx.runtime.as_ref() else {
        return result;
    };
    let mode = rt.tool_integrity.mode;
    if mode == Mode::Off {
        return result;
    }
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str(&result) else {
        return result;
    };
    let Some(serde_json::Value::Array(tools)) = m.remove("tools") else {
        return result;
    };
    let kept: Vec<serde_json::Value> = tools
        .into_iter()
        .filter(|t| {
            let name = t.get("name").and_then(|n| n.as_str()).unwrap_or_default();
            keep(upstream, name, &t.to_string(), mode, &ctx.tool_changes)
        })
        .collect();
    m.insert("tools".into(), kept.into());
    serde_json::Value::Object(m).to_string()
}

/// Under `block`: a call to a tool whose definition changed since it was
/// pinned is refused as an unknown tool (`upstream` and its own name).
pub fn check_call(rt: &Runtime, upstream: &str, own: &str) -> Result<(), GatewayError> {
    if rt.tool_integrity.mode == Mode::Block && integrity::pins().changed(upstream, own) {
        return Err(GatewayError::ToolChanged);
    }
    Ok(())
}

/// The routed `tools/call` (after routing).
pub fn check_routed_call(rt: &Runtime, ctx: &RequestCtx) -> Result<(), GatewayError> {
    if ctx.method() != Some("tools/call") {
        return Ok(());
    }
    match (ctx.upstream.as_ref(), ctx.target()) {
        (Some(up), Some(name)) => check_call(rt, &up.name, name),
        _ => Ok(()),
    }
}

/// An answer relayed a `notifications/tools/list_changed`: the gateway
/// lists the upstream's tools now (first page, with the session's id), so
/// a changed definition is found even if the client does not list again.
pub fn on_relayed(ctx: &RequestCtx, out: &Bytes) {
    const NEEDLE: &[u8] = b"notifications/tools/list_changed";
    let Some(rt) = ctx.runtime.as_ref() else {
        return;
    };
    if rt.tool_integrity.mode == Mode::Off || !out.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        return;
    }
    let Some(up) = ctx.upstream.as_ref().map(|u| u.name.clone()) else {
        return;
    };
    let mode = rt.tool_integrity.mode;
    let changes = ctx.tool_changes.clone();
    let body =
        Bytes::from_static(br#"{"jsonrpc":"2.0","id":"mcp-edge-integrity","method":"tools/list"}"#);
    super::member::post_beside(ctx, "tools/list", body, 8 << 20, move |reply| {
        let Some(v) = reply
            .message
            .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
        else {
            return;
        };
        for t in v["result"]["tools"].as_array().into_iter().flatten() {
            let name = t.get("name").and_then(|n| n.as_str()).unwrap_or_default();
            keep(&up, name, &t.to_string(), mode, &changes);
        }
    });
}
