//! A session-era MCP client in a few raw HTTP requests, for tests that
//! need to see exact answers: `initialize` (the session token),
//! `tools/list`, `tools/call`, and the JSON-RPC answer of a JSON or SSE
//! response.

use serde_json::{json, Value};

use super::client::{request, Response};

/// A 2025-11-25 `initialize` request.
pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// POSTs a JSON-RPC body to `path`, accepting JSON and SSE.
pub fn post(port: u16, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    h.extend_from_slice(headers);
    request(port, "POST", path, &h, body.as_bytes()).expect("POST")
}

/// The JSON-RPC answer (a message with an id and no method) of a JSON
/// body or of an SSE stream's events.
pub fn answer(r: &Response) -> Value {
    let text = String::from_utf8_lossy(&r.body).to_string();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data: ") {
            if let Ok(v) = serde_json::from_str::<Value>(d) {
                if v.get("id").is_some() && v.get("method").is_none() {
                    return v;
                }
            }
        }
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Initializes a session at `path` (and sends `notifications/initialized`);
/// its token.
pub fn initialize(port: u16, path: &str) -> String {
    let r = post(port, path, INIT, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.header("mcp-session-id").expect("a session").to_string();
    let n = post(
        port,
        path,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[("Mcp-Session-Id", &token)],
    );
    assert_eq!(n.status, 202);
    token
}

/// The tools a session lists (first page).
pub fn list_tools(port: u16, path: &str, token: &str) -> Vec<Value> {
    let r = post(
        port,
        path,
        r#"{"jsonrpc":"2.0","id":"l","method":"tools/list"}"#,
        &[
            ("Mcp-Session-Id", token),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
    );
    answer(&r)["result"]["tools"]
        .as_array()
        .expect("a tools list")
        .clone()
}

/// The answer to a `tools/call` of `name` with `args` (id `"c"`).
pub fn call_tool(port: u16, path: &str, token: &str, name: &str, args: Value) -> Value {
    let body = json!({"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":name,"arguments":args}});
    answer(&post(
        port,
        path,
        &body.to_string(),
        &[
            ("Mcp-Session-Id", token),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
    ))
}

/// The text of a tool result's first content item ("" when none).
pub fn text_of(m: &Value) -> String {
    m["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
