//! Real MCP SDK clients through the real gateway to real MCP servers:
//! the TypeScript SDK client and the Python SDK client against
//! `@modelcontextprotocol/server-everything` and a Python SDK `MCPServer`,
//! in the session era and (Python SDK) the stateless 2026-07-28 revision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;

const TS_KEY: &str = "ts-client-key-0001";
const PY_KEY: &str = "py-client-key-0002";

/// The clients' API keys (the TS SDK client sends `Authorization: Bearer`,
/// the Python one `X-API-Key`).
fn keys() -> [Yaml; 2] {
    [
        api_key("ts-key", TS_KEY, "team", Some("ts")),
        api_key("py-key", PY_KEY, "team", Some("py")),
    ]
}

/// Anonymous access off, the clients' API keys; every call is audited.
fn gateway_for(peer: &Peer) -> Gateway {
    let cfg = Config::base(&peer.url())
        .set("upstreams[0].timeout_ms", 20000)
        .api_keys(keys())
        .audit()
        // each key's principal may not see or call some tools
        .insert(
            "policy.rules[0]",
            yaml("{subject: {tenant: team, client: py}, deny: {tools: [add]}}"),
        )
        .insert(
            "policy.rules[1]",
            yaml("{subject: {tenant: team, client: ts}, deny: {tools: [get-env, add]}}"),
        );
    Gateway::start(&cfg)
}

/// The tool names a client saw in tools/list.
fn listed(steps: &[serde_json::Value]) -> Vec<String> {
    step(steps, "tools/list")["names"]
        .as_array()
        .expect("names")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

fn step<'a>(steps: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    steps
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {steps:?}"))
}

/// Progress notifications arrive as they are sent, not batched: consecutive
/// arrivals are spaced like the sends (`gap_ms` apart), not bunched at the end.
fn assert_streamed(steps: &[serde_json::Value], gap_ms: f64) {
    let arrivals: Vec<f64> = step(steps, "progress")["arrivals_ms"]
        .as_array()
        .expect("arrivals")
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    assert_eq!(arrivals.len(), 4, "{arrivals:?}");
    for w in arrivals.windows(2) {
        let d = w[1] - w[0];
        assert!(
            d > gap_ms * 0.5 && d < gap_ms * 1.5,
            "progress bunched: {arrivals:?}"
        );
    }
}

fn ts_client(url: &str, server: &str) -> Vec<serde_json::Value> {
    assert!(have("node"), "node is needed (.ci/run installs it)");
    run_client(
        Command::new("node")
            .args(["ts_client.mjs", url, "--server", server])
            .env(
                "MCP_HEADERS",
                format!(r#"{{"Authorization":"Bearer {TS_KEY}"}}"#),
            ),
    )
}

fn py_client(url: &str, server: &str, mode: &str) -> Vec<serde_json::Value> {
    run_client(
        Command::new("python3")
            .args(["py_client.py", url, "--server", server, "--mode", mode])
            .env("MCP_HEADERS", format!(r#"{{"X-API-Key":"{PY_KEY}"}}"#)),
    )
}

fn access(g: &Gateway) -> Vec<serde_json::Value> {
    std::thread::sleep(std::time::Duration::from_millis(100));
    g.access_lines()
}

#[test]
fn typescript_client_through_gateway_to_server_everything() {
    let peer = Peer::everything();
    let g = gateway_for(&peer);
    let steps = ts_client(&g.url(), "everything");
    assert_streamed(&steps, 500.0);
    // policy hides get-env: the SSE-framed tools/list result no longer has it
    let names = listed(&steps);
    assert!(
        names.contains(&"echo".to_string()) && !names.contains(&"get-env".to_string()),
        "{names:?}"
    );
    assert_eq!(step(&steps, "initialize")["protocolVersion"], "2025-11-25");
    let lines = access(&g);
    // the SDK opened the GET listen stream and ended the session with DELETE
    assert!(
        lines
            .iter()
            .any(|l| l["http_method"] == "GET" && l["status"] == 200 && l["sse"] == true),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["http_method"] == "DELETE" && l["status"] == 200),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l["mcp_method"] == "initialize"));
    assert!(lines.iter().all(|l| l["error"].is_null()), "{lines:?}");
    // one audit line per request, each naming the key id (never the key)
    let audit = AuditLog::of(&g).strict().skip_health().lines();
    assert_eq!(audit.len(), lines.len(), "{audit:?}");
    assert!(audit
        .iter()
        .all(|a| a["principal"]["key_id"] == "ts-key" && a["decision"] == "allow"));
    let all = format!(
        "{}{}",
        g.log_text(),
        std::fs::read_to_string(g.dir.path().join("audit.jsonl")).unwrap_or_default()
    );
    assert!(!all.contains(TS_KEY), "the API key leaked into the logs");
}

#[test]
fn typescript_client_through_gateway_to_python_server() {
    let peer = Peer::python();
    let g = gateway_for(&peer);
    let steps = ts_client(&g.url(), "py");
    assert_streamed(&steps, 400.0);
}

#[test]
fn python_client_through_gateway_to_server_everything() {
    let peer = Peer::everything();
    let g = gateway_for(&peer);
    let steps = py_client(&g.url(), "everything", "legacy");
    assert_streamed(&steps, 500.0);
    let lines = access(&g);
    assert!(lines.iter().any(|l| l["mcp_method"] == "tools/call"
        && l["target"] == "trigger-long-running-operation"
        && l["sse"] == true));
}

/// The Python server's tools a `py` client may see (`add` is denied to it).
const PY_VISIBLE: [&str; 6] = [
    "echo",
    "slow_progress",
    "big_echo",
    "slow_count",
    "cancelled_calls",
    "big_text",
];

#[test]
fn python_client_session_era_through_gateway_to_python_server() {
    let peer = Peer::python();
    let g = gateway_for(&peer);
    let steps = py_client(&g.url(), "py", "legacy");
    assert_streamed(&steps, 400.0);
    assert_eq!(listed(&steps), PY_VISIBLE, "hidden tool listed");
    let lines = access(&g);
    assert!(lines.iter().all(|l| l["era"] == "session"), "{lines:?}");
    let audit = AuditLog::of(&g).strict().skip_health().lines();
    assert_eq!(audit.len(), lines.len());
    assert!(audit.iter().all(|a| a["principal"]["key_id"] == "py-key"));
}

#[test]
fn python_client_stateless_2026_07_28_through_gateway() {
    let peer = Peer::python();
    let g = gateway_for(&peer);
    let steps = py_client(&g.url(), "py", "2026-07-28");
    assert_streamed(&steps, 400.0);
    assert_eq!(listed(&steps), PY_VISIBLE, "hidden tool listed");
    let lines = access(&g);
    assert!(!lines.is_empty());
    // every request was checked as stateless: Mcp-Method/Mcp-Name agreed with the body
    assert!(
        lines
            .iter()
            .all(|l| l["era"] == "stateless" && l["status"] == 200),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l["mcp_method"] == "resources/read" && l["target"] == "demo://greeting"));
    assert!(!lines
        .iter()
        .any(|l| l["http_method"] == "GET" || l["mcp_method"] == "initialize"));
    // calling the hidden tool gets the answer an unknown tool gets, from the gateway
    let call = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let r = post_json(
        g.port,
        call,
        &[
            ("X-API-Key", PY_KEY),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "add"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["error"]["code"], -32602);
    assert_eq!(r.json()["error"]["message"], "Unknown tool: add");
}

/// Two Python `MCPServer` replicas behind one pooled upstream: real SDK
/// sessions (TypeScript and Python clients) are spread over both, and every
/// request of a session reaches the replica that created it (a stray
/// request would get the replica's own 404 and fail the client).
#[test]
fn sdk_sessions_over_a_pool_of_python_replicas_stay_on_their_replica() {
    let (p1, p2) = (Peer::python(), Peer::python());
    let cfg = Config::base("http://127.0.0.1:1/mcp")
        .endpoints(&[p1.url(), p2.url()])
        .set("upstreams[0].timeout_ms", 20000)
        .api_keys(keys());
    let g = Gateway::start(&cfg);
    for _ in 0..2 {
        ts_client(&g.url(), "py");
        py_client(&g.url(), "py", "legacy");
    }
    let lines = access(&g);
    let mut homes: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    let mut endpoints = std::collections::HashSet::new();
    for l in &lines {
        let ep = l["endpoint"].as_str().unwrap_or_default().to_string();
        endpoints.insert(ep.clone());
        if let Some(s) = l["session"].as_str() {
            homes.entry(s.to_string()).or_default().insert(ep);
        }
    }
    assert_eq!(endpoints.len(), 2, "both replicas served: {endpoints:?}");
    assert!(homes.len() >= 4, "{} sessions", homes.len());
    for (s, eps) in &homes {
        assert_eq!(eps.len(), 1, "session {s} reached {eps:?}");
    }
    assert!(lines.iter().all(|l| l["error"].is_null()), "{lines:?}");
}
