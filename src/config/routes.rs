//! The routing table as `mcp-edge routes` prints it (and the config fuzz
//! contract renders): rules in order, where the calls without a rule go,
//! and each upstream with its endpoints and health check.

use crate::base::glob::Glob;
use crate::runtime::Runtime;

/// The `routes` output.
pub fn table(rt: &Runtime) -> String {
    let mut out = String::new();
    let fmt = |g: &Option<Glob>, raw: Option<String>| match (g, raw) {
        (None, _) => "-".to_string(),
        (Some(_), Some(r)) => r,
        (Some(_), None) => "?".into(),
    };
    out.push_str(&format!(
        "{:<4} {:<24} {:<24} {:<24} {:<16} {}\n",
        "#", "method", "tool", "resource/prompt", "upstream", "url"
    ));
    for (i, r) in rt.routes.rules().iter().enumerate() {
        let res = match (&r.resource, &r.prompt) {
            (Some(g), _) => format!("resource {g}"),
            (None, Some(g)) => format!("prompt {g}"),
            (None, None) => "-".into(),
        };
        out.push_str(&format!(
            "{:<4} {:<24} {:<24} {:<24} {:<16} {}\n",
            i,
            fmt(&r.method, r.method.as_ref().map(Glob::to_string)),
            fmt(&r.tool, r.tool.as_ref().map(Glob::to_string)),
            res,
            r.upstream.name,
            r.upstream.url
        ));
    }
    match rt.routes.default_upstream() {
        Some(u) => out.push_str(&format!(
            "GET streams, DELETE and JSON-RPC responses go to: {} ({})\n",
            u.name, u.url
        )),
        None => {
            out.push_str("no catch-all rule: GET streams, DELETE and JSON-RPC responses get 404\n")
        }
    }
    out.push_str("session calls go to the endpoint sealed in their Mcp-Session-Id\n");
    virtual_servers(rt, &mut out);
    out.push_str("\nupstreams:\n");
    for u in &rt.upstreams {
        if let Some(spawn) = &u.spawn {
            out.push_str(&format!(
                "  {} (type: stdio; one process per MCP session, at most {}, stopped after {} s idle)\n    - runs {:?} -> this gateway's bridge\n",
                u.name,
                spawn.max_processes,
                spawn.idle_timeout.as_secs(),
                spawn.command
            ));
            continue;
        }
        if let Some(legacy) = &u.legacy {
            out.push_str(&format!(
                "  {} (type: sse; one legacy HTTP+SSE connection per client session, at most {}, closed after {} s idle)\n    - {} -> {} (the gateway's bridge serves it as Streamable HTTP)\n",
                u.name,
                u.legacy_limits.0,
                u.legacy_limits.1.as_secs(),
                legacy.url,
                legacy.addr
            ));
            continue;
        }
        if u.endpoints.iter().any(|e| e.bridge.is_some()) {
            out.push_str(&format!(
                "  {} (type: tunnel; up while a tunnel registered as \"{}\" is connected)\n    - tunnel://{} -> this gateway's tunnel bridge\n",
                u.name, u.name, u.name
            ));
            continue;
        }
        let hc = &u.health_check;
        out.push_str(&format!(
            "  {} ({}; health: {} every {} ms, timeout {} ms)\n",
            u.name,
            u.balance.as_str(),
            hc.path
                .as_deref()
                .map_or("TCP connect".to_string(), |p| format!("GET {p}")),
            hc.interval.as_millis(),
            hc.timeout.as_millis()
        ));
        for e in &u.endpoints {
            out.push_str(&format!("    - {} -> {}\n", e.url, e.addr));
        }
    }
    out
}

/// Each virtual server with its members and exposed-name rules.
fn virtual_servers(rt: &Runtime, out: &mut String) {
    for v in &rt.virtual_servers {
        let n = &v.naming;
        out.push_str(&format!(
            "\nvirtual server {} (serverInfo.name {:?}; prefix_mode {}, separator {:?}, member_timeout_ms {})\n",
            v.path,
            v.name,
            n.mode.as_str(),
            n.separator,
            v.member_timeout.as_millis()
        ));
        for m in &v.members {
            let exposed = match n.mode {
                crate::federation::PrefixMode::Always => {
                    format!("tools/prompts exposed as {}{}<name>", m.prefix, n.separator)
                }
                crate::federation::PrefixMode::Conflicts => format!(
                    "tools/prompts as listed; a shared name as {}{}<name>",
                    m.prefix, n.separator
                ),
                crate::federation::PrefixMode::Never => {
                    "tools/prompts as listed; a shared name is refused".to_string()
                }
            };
            out.push_str(&format!(
                "  - {:<16} {} ({}); resources keep their URIs\n",
                m.upstream.name, m.upstream.url, exposed
            ));
        }
    }
}
