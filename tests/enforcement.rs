//! Policy enforcement that cannot be talked around (issue 17), tried as an
//! attacker would against the built gateway in front of a scripted
//! upstream that records every request: case and Unicode variants of keys,
//! dot segments and encodings in URIs, items named by other methods, list
//! answers in odd framings and on other streams, unknown protocol versions,
//! an upstream 400 that is not about the session, GET/DELETE with a body,
//! early refusals that must stay readable, and the refusal budget. Each
//! refusal is a JSON-RPC error and the upstream received nothing; each
//! filtered answer shows no hidden item.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::scripted::{Reply, Req, Scripted};
use common::*;

const KEY: &str = "enforce-key-5b7e2c";
const SESSION_KEY: &str = "enforce-session-key-0123456789abcdef";

/// The policy of the issue: `echo`, `file:///public/*`, `simple-prompt`
/// allowed; `file:///secret/*` denied; method globs as an operator writes them.
const RULES: &str = r#"
- subject: {tenant: acme}
  allow:
    methods: [initialize, "notifications/*", ping, "tools/*", "resources/*", "prompts/*", "completion/*", subscriptions/listen]
    tools: [echo]
    resources: ["file:///public/*"]
    prompts: [simple-prompt]
  deny:
    resources: ["file:///secret/*"]
"#;

/// An API key, [`RULES`], sealed sessions, audited; the upstream without a
/// connect timeout or its own credential.
fn config(url: &str) -> Config {
    Config::base(url)
        .insert("server.trust_proxy", ["127.0.0.0/8"])
        .api_keys([api_key("k1", KEY, "acme", Some("agent"))])
        .set(
            "upstreams",
            json!([{"name": "up", "url": url, "timeout_ms": 3000}]),
        )
        .set("policy.rules", yaml(RULES))
        .sessions(&[SESSION_KEY])
        .audit()
}

const AUTH: (&str, &str) = ("Authorization", "Bearer enforce-key-5b7e2c");

/// The hidden and visible items every scripted list answer carries.
const TOOLS_RESULT: &str = r#"{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"admin.drop","inputSchema":{"type":"object"}}]}"#;

fn tools_answer(id: &serde_json::Value) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{TOOLS_RESULT}}}"#)
}

/// An upstream that answers everything with the tools list as JSON (the
/// most a leak could show), initialize with a session id.
fn lister() -> Scripted {
    Scripted::start(|r: &Req| {
        if r.rpc_method().as_deref() == Some("initialize") {
            return Reply::json(
                200,
                &format!(
                    r#"{{"jsonrpc":"2.0","id":{},"result":{{"protocolVersion":"2025-11-25","capabilities":{{}},"serverInfo":{{"name":"s","version":"1"}}}}}}"#,
                    r.rpc_id()
                ),
            )
            .header("Mcp-Session-Id", "upstream-session-9");
        }
        if r.method != "POST" {
            return Reply::sse(format!("data: {}\n\n", tools_answer(&1.into())).as_bytes());
        }
        Reply::json(200, &tools_answer(&r.rpc_id()))
    })
}

fn post(g: &Gateway, body: &str, extra: &[(&str, &str)]) -> Response {
    let mut h = vec![AUTH];
    h.extend_from_slice(extra);
    post_json(g.port, body.as_bytes(), &h)
}

/// Asserts a refusal: the status, a JSON-RPC error with `code`, and that
/// the upstream's request count did not move.
fn refused(g: &Gateway, up: &Scripted, body: &str, extra: &[(&str, &str)], status: u16, code: i64) {
    let before = up.count();
    let r = post(g, body, extra);
    assert_eq!(
        r.status,
        status,
        "{body}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["error"]["code"], code, "{body}");
    assert_eq!(r.json()["jsonrpc"], "2.0");
    assert_eq!(up.count(), before, "{body} reached the upstream");
}

#[test]
fn keys_that_differ_only_in_case_are_refused() {
    let up = lister();
    let g = Gateway::start(&config(&up.url()));
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","nam\u0065":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","param\u017f":{"name":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/a","URI":"file:///secret/k"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/a","ur\u0131":"file:///secret/k"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name\u0000":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"simple-prompt","NAME":"secret"},"argument":{"name":"a","value":"b"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolversion":"1999-01-01"}}}"#,
    ] {
        refused(&g, &up, body, &[], 400, -32600);
    }
    // the same calls spelled once pass
    let r = post(
        &g,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"Name":"x"}}}"#,
        &[],
    );
    assert_eq!(r.status, 200);
    let lines = AuditLog::of(&g).settle_ms(150).skip_health().lines();
    assert!(
        lines
            .iter()
            .filter(|a| a["reason"] == "invalid_request")
            .count()
            >= 12,
        "every refusal is audited"
    );
}

#[test]
fn resource_uris_are_normalized_or_refused() {
    let up = Scripted::start(|r: &Req| {
        Reply::json(
            200,
            &format!(
                r#"{{"jsonrpc":"2.0","id":{},"result":{{"contents":[]}}}}"#,
                r.rpc_id()
            ),
        )
    });
    let g = Gateway::start(&config(&up.url()));
    let read = |uri: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{{"uri":{}}}}}"#,
            serde_json::Value::from(uri)
        )
    };
    for uri in [
        "file:///public/../secret/k",
        "file:///public/%2e%2e/secret/k",
        "file:///public/%2E%2E/secret/k",
        "file:///public/.%2e/secret/k",
        "file:///public%2f..%2fsecret%2fk",
        "file:///public/..%5csecret%5ck",
        "file:///public\\..\\secret\\k",
        "file:///public/./../secret/k",
        "file:///public/\u{ff0e}\u{ff0e}/secret/k",
        "file:///public/%252e%252e/secret/k",
        "file:///public/...",
        "file:////secret/k",
        "file:///public/a\nb",
        "file:///public/a%00",
        "/public/a",
    ] {
        refused(&g, &up, &read(uri), &[], 400, -32602);
    }
    // equivalent spellings of a denied URI are denied
    for uri in [
        "FILE:///secret/k",
        "file://localhost/secret/k",
        "file://LOCALHOST/secret/k",
        "file:/secret/k",
        "file:///%73ecret/k",
    ] {
        refused(&g, &up, &read(uri), &[], 403, -32600);
    }
    // an allowed one in another spelling passes, and the upstream gets the
    // client's exact bytes
    let body = read("file://LOCALHOST/%70ublic/a.txt");
    let r = post(&g, &body, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(up.received().last().unwrap().body, body.as_bytes());
}

#[test]
fn every_method_that_names_an_item_is_checked() {
    let up = lister();
    let g = Gateway::start(&config(&up.url()));
    let forbidden = [
        // completion for a denied prompt or resource
        r#"{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"secret-prompt"},"argument":{"name":"a","value":""}}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///secret/{k}"},"argument":{"name":"k","value":""}}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"file:///secret/k"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/unsubscribe","params":{"uri":"file:///secret/k"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["file:///public/a","file:///secret/k"]}}}"#,
        // methods "tools/*" does not open: MCP may add them later
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/describe","params":{"name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/write","params":{"uri":"file:///public/a"}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"prompts/render","params":{"name":"simple-prompt"}}"#,
    ];
    for body in forbidden {
        refused(&g, &up, body, &[], 403, -32600);
    }
    for body in [
        r#"{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"x"}}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":"file:///secret/k"}}}"#,
    ] {
        refused(&g, &up, body, &[], 400, -32602);
    }
    for body in [
        r#"{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"simple-prompt"},"argument":{"name":"a","value":""}}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"file:///public/a"}}"#,
    ] {
        let before = up.count();
        assert_eq!(post(&g, body, &[]).status, 200, "{body}");
        assert_eq!(up.count(), before + 1);
    }
    // an unknown method listed by its exact name passes, and what it names
    // is still checked
    let up2 = lister();
    let g2 =
        Gateway::start(&config(&up2.url()).push("policy.rules[0].allow.methods", "tools/describe"));
    let ok = r#"{"jsonrpc":"2.0","id":4,"method":"tools/describe","params":{"name":"echo"}}"#;
    assert_eq!(post(&g2, ok, &[]).status, 200);
    let hidden =
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/describe","params":{"name":"admin.drop"}}"#;
    refused(&g2, &up2, hidden, &[], 403, -32600);
}

/// A named way for the upstream to answer.
type Script = Box<dyn Fn(&Req) -> Reply + Send + Sync>;

/// The client's view of an answer never names the hidden tool.
fn no_leak(r: &Response, what: &str) {
    let text = String::from_utf8_lossy(&r.body);
    assert!(!text.contains("admin.drop"), "{what} leaked: {text}");
}

#[test]
fn list_answers_are_filtered_in_every_framing() {
    let framings: Vec<(&str, Script)> = vec![
        (
            "Application/JSON",
            Box::new(|r| {
                Reply::json(200, &tools_answer(&r.rpc_id()))
                    .header("Content-Type", "Application/JSON")
            }),
        ),
        (
            "json with parameters",
            Box::new(|r| {
                Reply::json(200, &tools_answer(&r.rpc_id()))
                    .header("Content-Type", "APPLICATION/JSON ; charset=UTF-8")
            }),
        ),
        (
            "no content type",
            Box::new(|r| {
                let mut x = Reply::json(200, &tools_answer(&r.rpc_id()));
                x.headers.clear();
                x
            }),
        ),
        (
            "SSE with CR line ends",
            Box::new(|r| {
                Reply::sse(
                    format!("event: message\rdata: {}\r\r", tools_answer(&r.rpc_id())).as_bytes(),
                )
                .header("Content-Type", "Text/Event-Stream; charset=utf-8")
            }),
        ),
        (
            "SSE with CRLF, a BOM and multi-line data",
            Box::new(|r| {
                let data = tools_answer(&r.rpc_id()).replace(',', "\r\ndata: ,");
                Reply::sse(format!("\u{feff}: hi\r\nid: 7\r\ndata: {data}\r\n\r\n").as_bytes())
            }),
        ),
        (
            "a tools/call result carrying a list",
            Box::new(|r| Reply::json(200, &tools_answer(&r.rpc_id()))),
        ),
    ];
    for (what, script) in framings {
        let up = Scripted::start(script);
        let g = Gateway::start(&config(&up.url()));
        let list = post(&g, r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#, &[]);
        assert_eq!(list.status, 200, "{what}");
        no_leak(&list, what);
        assert!(
            String::from_utf8_lossy(&list.body).contains("\"echo\""),
            "{what}"
        );
        let call = post(
            &g,
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo"}}"#,
            &[],
        );
        no_leak(&call, what);
        // nothing upstream was asked to compress
        for req in up.received() {
            assert_eq!(req.header("accept-encoding"), Some("identity"), "{what}");
        }
    }
}

#[test]
fn answers_that_cannot_be_filtered_become_errors() {
    let cases: Vec<(&str, Script)> = vec![
        (
            "gzip",
            Box::new(|r| {
                Reply::json(200, &tools_answer(&r.rpc_id())).header("Content-Encoding", "gzip")
            }),
        ),
        (
            "text/plain",
            Box::new(|r| {
                Reply::json(200, &tools_answer(&r.rpc_id())).header("Content-Type", "text/plain")
            }),
        ),
        (
            "a batch",
            Box::new(|r| Reply::json(200, &format!("[{}]", tools_answer(&r.rpc_id())))),
        ),
        (
            "a case variant",
            Box::new(|r| {
                Reply::json(
                    200,
                    &format!(
                        r#"{{"jsonrpc":"2.0","id":{},"result":{{"tools":[],"Tools":[{{"name":"admin.drop"}}]}}}}"#,
                        r.rpc_id()
                    ),
                )
            }),
        ),
        (
            "a duplicated result",
            Box::new(|r| {
                Reply::json(
                    200,
                    &format!(
                        r#"{{"jsonrpc":"2.0","id":{},"result":{{}},"result":{TOOLS_RESULT}}}"#,
                        r.rpc_id()
                    ),
                )
            }),
        ),
        (
            "not an array",
            Box::new(|r| {
                Reply::json(
                    200,
                    &format!(
                        r#"{{"jsonrpc":"2.0","id":{},"result":{{"tools":{{"name":"admin.drop"}}}}}}"#,
                        r.rpc_id()
                    ),
                )
            }),
        ),
        (
            "not JSON",
            Box::new(|_| Reply::json(200, r#"{"tools":[{"name":"admin.drop"}"#)),
        ),
    ];
    for (what, script) in cases {
        let up = Scripted::start(script);
        let g = Gateway::start(&config(&up.url()));
        let r = post(&g, r#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#, &[]);
        no_leak(&r, what);
        assert_eq!(
            r.status,
            502,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["error"]["code"], -32603, "{what}");
        assert_eq!(r.json()["id"], 8, "{what}: the error answers the request");
        let lines = AuditLog::of(&g).settle_ms(150).skip_health().lines();
        assert!(
            lines
                .iter()
                .any(|a| a["reason"] == "upstream_answer_refused"),
            "{what}: audited: {lines:?}"
        );
    }
    // an SSE event that is not an object is replaced, the stream goes on
    let up = Scripted::start(|r: &Req| {
        Reply::sse(format!("data: [1]\n\ndata: {}\n\n", tools_answer(&r.rpc_id())).as_bytes())
    });
    let g = Gateway::start(&config(&up.url()));
    let (resp, events) = sse_events(
        g.port,
        "POST",
        &[
            AUTH,
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        br#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].1.contains("-32603"), "{events:?}");
    assert!(events[1].1.contains("\"echo\"") && !events[1].1.contains("admin.drop"));
}

#[test]
fn lists_on_get_streams_and_replays_are_filtered() {
    let up = lister();
    let g = Gateway::start(&config(&up.url()));
    let init = post(
        &g,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        &[],
    );
    let token = init
        .header("mcp-session-id")
        .expect("sealed session")
        .to_string();
    for extra in [vec![], vec![("Last-Event-ID", "ev-3")]] {
        let mut h = vec![
            AUTH,
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", token.as_str()),
        ];
        h.extend(extra);
        let (resp, events) = sse_events(g.port, "GET", &h, b"");
        assert_eq!(resp.status, 200);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(!events[0].1.contains("admin.drop"), "{events:?}");
        assert!(events[0].1.contains("\"echo\""));
    }
}

#[test]
fn unsupported_protocol_versions_are_answered_by_the_gateway() {
    let up = lister();
    let g = Gateway::start(&config(&up.url()));
    let init = post(
        &g,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        &[],
    );
    let token = init.header("mcp-session-id").unwrap().to_string();
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    for version in ["1999-01-01", "2027-01-01", "latest", "2025-06-18x"] {
        for session in [None, Some(token.as_str())] {
            let mut h = vec![("MCP-Protocol-Version", version)];
            if let Some(t) = session {
                h.push(("Mcp-Session-Id", t));
            }
            let before = up.count();
            let r = post(&g, list, &h);
            assert_eq!(r.status, 400, "{version} {session:?}");
            let v = r.json();
            assert_eq!(v["error"]["code"], -32022);
            assert!(v["error"]["data"]["supported"]
                .as_array()
                .unwrap()
                .contains(&"2025-11-25".into()));
            assert_eq!(up.count(), before);
        }
    }
    // and GET streams too
    let r = get(
        g.port,
        "/mcp",
        &[
            AUTH,
            ("MCP-Protocol-Version", "1999-01-01"),
            ("Mcp-Session-Id", &token),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 400);
}

#[test]
fn an_upstream_400_is_404_only_when_it_is_about_the_session() {
    let up = Scripted::start(|r: &Req| {
        match r.rpc_method().as_deref() {
        Some("initialize") => Reply::json(
            200,
            &format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{"protocolVersion":"2025-11-25","capabilities":{{}},"serverInfo":{{"name":"s","version":"1"}}}}}}"#, r.rpc_id()),
        )
        .header("Mcp-Session-Id", "u-1"),
        Some("tools/call") => Reply::json(
            400,
            &format!(r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":-32602,"message":"Invalid params: a must be a number"}}}}"#, r.rpc_id()),
        ),
        _ => Reply::json(
            400,
            r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#,
        ),
    }
    });
    let g = Gateway::start(&config(&up.url()));
    let init = post(
        &g,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        &[],
    );
    let token = init.header("mcp-session-id").unwrap().to_string();
    let h = [("Mcp-Session-Id", token.as_str())];
    let bad_params = post(
        &g,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"a":"x"}}}"#,
        &h,
    );
    assert_eq!(bad_params.status, 400, "the upstream's 400 as it is");
    assert_eq!(
        bad_params.json()["error"]["message"],
        "Invalid params: a must be a number"
    );
    assert_eq!(bad_params.json()["id"], 3);
    let gone = post(&g, r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#, &h);
    assert_eq!(
        gone.status, 404,
        "a refused session: the client re-initializes"
    );
    assert_eq!(gone.json()["id"], 4);
}

#[test]
fn get_and_delete_with_a_body_are_refused() {
    let up = lister();
    let g = Gateway::start(&config(&up.url()));
    let before = up.count();
    for (method, framing) in [
        ("GET", "Content-Length: 5\r\n\r\nhello"),
        ("DELETE", "Content-Length: 5\r\n\r\nhello"),
        (
            "GET",
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "DELETE",
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
    ] {
        let req = format!(
            "{method} /mcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {KEY}\r\nAccept: text/event-stream\r\n{framing}"
        );
        let r = raw(g.port, req.as_bytes()).unwrap();
        assert_eq!(r.status, 400, "{method} {framing}");
        assert_eq!(r.json()["error"]["code"], -32600);
    }
    assert_eq!(up.count(), before);
    // without a body they pass
    let r = request(g.port, "DELETE", "/mcp", &[AUTH], b"").unwrap();
    assert_ne!(r.status, 400);
}

#[test]
fn early_refusals_reach_node_fetch_and_python_httpx() {
    let up = lister();
    let g = Gateway::start(&config(&up.url()));
    let url = g.url();
    let node = r#"
const [url, key] = process.argv.slice(1);
const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":"' + 'x'.repeat(4 << 20) + '"}}}';
const out = [];
for (const k of [key, 'wrong-key']) {
  try {
    const r = await fetch(url, {method: 'POST', body, headers: {'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer ' + k}});
    out.push({status: r.status, body: await r.json()});
  } catch (e) { out.push({error: String(e.cause ?? e)}); }
}
console.log(JSON.stringify(out));
"#;
    let py = r#"
# httpx2: the HTTP client the mcp Python SDK itself uses
import httpx2 as httpx, json, sys
url, key = sys.argv[1], sys.argv[2]
body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":"' + 'x' * (4 << 20) + '"}}}'
out = []
for k in (key, 'wrong-key'):
    try:
        r = httpx.post(url, content=body, headers={'content-type': 'application/json', 'accept': 'application/json, text/event-stream', 'authorization': 'Bearer ' + k}, timeout=30)
        out.append({'status': r.status_code, 'body': r.json()})
    except Exception as e:
        out.append({'error': repr(e)})
print(json.dumps(out))
"#;
    for (what, mut cmd) in [
        ("node fetch", {
            let mut c = Command::new("node");
            c.args(["--input-type=module", "-e", node, "--", &url, KEY]);
            c
        }),
        ("python httpx2", {
            let mut c = Command::new("python3");
            c.args(["-c", py, &url, KEY]);
            c
        }),
    ] {
        for _ in 0..3 {
            let out = cmd.current_dir(peers_dir()).output().expect(what);
            let text = String::from_utf8_lossy(&out.stdout);
            let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
                panic!("{what}: {text} {}", String::from_utf8_lossy(&out.stderr))
            });
            assert_eq!(v[0]["status"], 413, "{what}: {v}");
            assert_eq!(v[0]["body"]["error"]["code"], -32600, "{what}: {v}");
            assert_eq!(v[1]["status"], 401, "{what}: {v}");
            assert_eq!(v[1]["body"]["error"]["code"], -32600, "{what}: {v}");
        }
    }
    assert_eq!(up.count(), 0);
}

#[test]
fn refusals_cost_the_prober_not_the_good_clients() {
    let up = lister();
    let g = Gateway::start(&config(&up.url()).insert("rate_limit", json!({"refusals_rpm": 5})));
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#;
    let as_from = |ip: &str, key: &str| {
        post_json(
            g.port,
            call.as_bytes(),
            &[
                ("X-Forwarded-For", ip),
                ("Authorization", &format!("Bearer {key}")),
            ],
        )
    };
    for _ in 0..5 {
        assert_eq!(as_from("192.0.2.66", "guess").status, 401);
    }
    // the prober's address is out of refusals: 429 even with a good key,
    // before anything is verified
    let r = as_from("192.0.2.66", KEY);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.json()["error"]["code"], -32600);
    // a good client elsewhere is untouched, and so is a refused tool call's
    // own budget bookkeeping for it
    for _ in 0..10 {
        assert_eq!(as_from("192.0.2.7", KEY).status, 200);
    }
    // policy refusals count too
    let hidden = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin.drop"}}"#;
    for _ in 0..5 {
        let r = post_json(
            g.port,
            hidden.as_bytes(),
            &[("X-Forwarded-For", "192.0.2.8"), AUTH],
        );
        assert_eq!(r.json()["error"]["code"], -32602);
    }
    assert_eq!(as_from("192.0.2.8", KEY).status, 429);
    let lines = AuditLog::of(&g).settle_ms(150).skip_health().lines();
    assert!(lines.iter().any(|a| a["reason"] == "refusals_limited"));
}

#[test]
fn the_public_health_says_its_status_only() {
    let up = lister();
    let admin_port = Port::reserve();
    let admin = admin_port.get();
    let g = Gateway::start(&config(&up.url()).admin(&admin_port, None));
    let public = get(g.port, "/health", &[]).unwrap().json();
    assert_eq!(public, serde_json::json!({"status": "ready"}));
    let detail = get(admin, "/health", &[]).unwrap().json();
    assert_eq!(detail["upstreams"]["up"]["endpoints"], 1);
}

#[test]
fn validate_names_resource_patterns_that_are_not_normal() {
    let up = lister();
    let cfg = config(&up.url()).set(
        "policy.rules[0].deny.resources[0]",
        "FILE://localhost/secret/*",
    );
    let (ok, out, err) = validate(&cfg);
    assert!(!ok);
    let text = format!("{out}{err}");
    assert!(
        text.contains("policy.rules[0].deny.resources[0]") && text.contains("file:///secret/*"),
        "{text}"
    );
}
