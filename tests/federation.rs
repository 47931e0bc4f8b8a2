//! Virtual servers (issue 19, docs/federation.md): one MCP endpoint over
//! several members. Real SDK clients (Python, TypeScript) against a virtual
//! server over server-everything and a Python SDK server; scripted members
//! to see exactly what each member received; the attacks (forged and
//! cross-principal tokens, garbage members, forged ids and cursors).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: [&str; 1] = ["federation-test-key-0123456789abcdef"];

/// A gateway whose virtual server `/tools` has the given members
/// (`upstream url`, `prefix`), plus `extra` edits.
fn federated(members: &[(&str, String, &str)], timeout_ms: u64) -> Config {
    let mut cfg = Config::base(&members[0].1).sessions(&KEYS).audit();
    for (i, (name, url, _)) in members.iter().enumerate() {
        if i == 0 {
            cfg = cfg
                .set("upstreams[0].name", *name)
                .set("routing[0].upstream", *name);
        } else {
            cfg = cfg.push(
                "upstreams",
                yaml(&format!("{{name: {name}, url: '{url}', timeout_ms: 5000}}")),
            );
        }
    }
    let list: Vec<Value> = members
        .iter()
        .map(|(n, _, p)| json!({"upstream": n, "prefix": p}))
        .collect();
    cfg.insert(
        "virtual_servers",
        json!([{"path": "/tools", "name": "acme-tools", "members": list, "member_timeout_ms": timeout_ms}]),
    )
}

fn post(port: u16, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    h.extend_from_slice(headers);
    request(port, "POST", path, &h, body.as_bytes()).expect("POST")
}

/// The JSON-RPC message of a JSON or SSE answer (the one with an id).
fn message(r: &Response) -> Value {
    let text = String::from_utf8_lossy(&r.body).to_string();
    if r.header("content-type")
        .is_some_and(|c| c.contains("event-stream"))
    {
        for line in text.lines() {
            if let Some(d) = line.strip_prefix("data: ") {
                if let Ok(v) = serde_json::from_str::<Value>(d) {
                    if v.get("id").is_some() && v.get("method").is_none() {
                        return v;
                    }
                }
            }
        }
        panic!("no message in {text}");
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// Initializes a session on `/tools`; its token.
fn initialize(port: u16, headers: &[(&str, &str)]) -> String {
    let r = post(port, "/tools", INIT, headers);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r
        .header("mcp-session-id")
        .expect("a session token")
        .to_string();
    let mut h = vec![("Mcp-Session-Id", token.as_str())];
    h.extend_from_slice(headers);
    let n = post(
        port,
        "/tools",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &h,
    );
    assert_eq!(n.status, 202);
    token
}

fn call(port: u16, token: &str, body: &str) -> Response {
    post(
        port,
        "/tools",
        body,
        &[
            ("Mcp-Session-Id", token),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
    )
}

fn tool_names(r: &Response) -> Vec<String> {
    message(r)["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&r.body)))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// A scripted MCP member: session `sess-<tag>`, tools `<tag>-tool` and
/// `shared`, resource `<tag>://doc`; `hook` may answer a method first.
fn member(
    tag: &'static str,
    hook: impl Fn(&scripted::Req) -> Option<scripted::Reply> + Send + Sync + 'static,
) -> scripted::Scripted {
    scripted::Scripted::start(move |req| {
        if let Some(r) = hook(req) {
            return r;
        }
        let id = req.rpc_id();
        let sid = format!("sess-{tag}");
        let ok = |result: Value| {
            scripted::Reply::json(
                200,
                &json!({"jsonrpc":"2.0","id":id,"result":result}).to_string(),
            )
            .header("Mcp-Session-Id", &sid)
        };
        if req.method == "DELETE" {
            return scripted::Reply::json(200, "{}");
        }
        if req.method == "GET" {
            return scripted::Reply::json(405, "{}");
        }
        match req.rpc_method().as_deref() {
            Some("initialize") => ok(
                json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":true},"resources":{}},"serverInfo":{"name":tag,"version":"1"}}),
            ),
            Some("tools/list") => ok(
                json!({"tools":[{"name": format!("{tag}-tool"),"inputSchema":{"type":"object"}},{"name":"shared","inputSchema":{"type":"object"}}]}),
            ),
            Some("resources/list") => {
                ok(json!({"resources":[{"uri": format!("{tag}://doc"),"name":"doc"}]}))
            }
            Some("resources/templates/list") => ok(json!({"resourceTemplates":[]})),
            Some("tools/call") | Some("resources/read") => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                ok(
                    json!({"content":[{"type":"text","text": format!("{tag} got {}", body["params"])}]}),
                )
            }
            Some(_) if id.is_null() => scripted::Reply::accepted(),
            Some(_) => ok(json!({})),
            None => scripted::Reply::accepted(),
        }
    })
}

fn none(_: &scripted::Req) -> Option<scripted::Reply> {
    None
}

#[test]
fn python_sdk_client_sees_one_server_over_server_everything_and_a_python_server() {
    let ev = Peer::everything();
    let py = Peer::python();
    let g = Gateway::start(&federated(
        &[("ev", ev.url(), "ev"), ("py", py.url(), "py")],
        5000,
    ));
    let url = format!("http://127.0.0.1:{}/tools", g.port);
    let steps = run_client(Command::new("python3").args(["py_fed_client.py", &url]));
    let names = steps.iter().find(|s| s["step"] == "tools/list").unwrap()["names"].clone();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("ev__") || n.starts_with("py__")),
        "{names:?}"
    );
    // the audit line of a forwarded call names the exposed name, the member and its own name
    let audit = AuditLog::of(&g).settle_ms(500).lines();
    let add = audit
        .iter()
        .find(|a| a["method"] == "tools/call" && a["target"] == "py__add")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    assert_eq!(add["upstream"], "py");
    assert_eq!(add["member_name"], "add");
    assert_eq!(add["decision"], "allow");
}

#[test]
fn typescript_sdk_client_sees_one_server_over_two_members() {
    assert!(have("node"), "node is needed (.ci/run installs it)");
    let ev = Peer::everything();
    let py = Peer::python();
    let g = Gateway::start(&federated(
        &[("ev", ev.url(), "ev"), ("py", py.url(), "py")],
        5000,
    ));
    let url = format!("http://127.0.0.1:{}/tools", g.port);
    run_client(Command::new("node").args(["ts_fed_client.mjs", &url]));
}

#[test]
fn members_see_their_own_names_sessions_and_versions() {
    let a = member("a", none);
    let b = member("b", none);
    let g = Gateway::start(&federated(
        &[("a", a.url(), "pa"), ("b", b.url(), "pb")],
        2000,
    ));
    let t = initialize(g.port, &[]);
    assert!(
        !t.contains("sess-"),
        "member session ids never reach the client"
    );
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    let mut names = tool_names(&r);
    names.sort();
    assert_eq!(
        names,
        ["pa__a-tool", "pa__shared", "pb__b-tool", "pb__shared"]
    );
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pb__shared","arguments":{"n":1.50}}}"#,
        &[
            ("Mcp-Session-Id", &t),
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "pb__shared"),
        ],
    );
    assert_eq!(r.status, 200);
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("b got"));
    // what member b received: its own name in the body and Mcp-Name, its own
    // session id, the arguments' bytes unchanged, no client credential
    let got = b.received();
    let c = got
        .iter()
        .find(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .unwrap();
    let body: Value = serde_json::from_slice(&c.body).unwrap();
    assert_eq!(body["params"]["name"], "shared");
    assert!(
        String::from_utf8_lossy(&c.body).contains(r#""n":1.50"#),
        "number bytes kept"
    );
    assert_eq!(c.header("mcp-name"), Some("shared"));
    assert_eq!(c.header("mcp-session-id"), Some("sess-b"));
    assert_eq!(c.header("mcp-protocol-version"), Some("2025-11-25"));
    assert_eq!(
        c.header("x-upstream-key"),
        None,
        "a's credential never goes to b"
    );
    assert!(a
        .received()
        .iter()
        .all(|r| r.rpc_method().as_deref() != Some("tools/call")));
    // notifications reached both members with each one's own session
    for (m, sid) in [(&a, "sess-a"), (&b, "sess-b")] {
        assert!(m.received().iter().any(|r| r.rpc_method().as_deref()
            == Some("notifications/initialized")
            && r.header("mcp-session-id") == Some(sid)));
    }
    // resources keep their URIs and go to the member that lists them
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"a://doc"}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("a got"));
    // ping is the gateway's
    let before = a.count() + b.count();
    let r = call(g.port, &t, r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#);
    assert_eq!(message(&r)["result"], json!({}));
    assert_eq!(a.count() + b.count(), before);
    // DELETE ends every member's session
    let d = request(g.port, "DELETE", "/tools", &[("Mcp-Session-Id", &t)], b"").unwrap();
    assert!(d.status < 300);
    for (m, sid) in [(&a, "sess-a"), (&b, "sess-b")] {
        assert!(
            m.received()
                .iter()
                .any(|r| r.method == "DELETE" && r.header("mcp-session-id") == Some(sid)),
            "{sid}"
        );
    }
}

#[test]
fn unknown_names_forged_tokens_ids_and_cursors_are_refused() {
    let a = member("a", none);
    let b = member("b", none);
    let cfg = federated(&[("a", a.url(), "pa"), ("b", b.url(), "pb")], 2000)
        .set("auth", yaml("{anonymous: false, api_keys: [{id: k1, key: key-one-0001, tenant: t1}, {id: k2, key: key-two-0002, tenant: t2}]}"))
        .insert("policy.rules[0].deny", yaml("{tools: ['pb__shared']}"));
    let g = Gateway::start(&cfg);
    let k1 = [("X-API-Key", "key-one-0001")];
    let t = initialize(g.port, &k1);
    let session: Vec<(&str, &str)> = vec![
        ("Mcp-Session-Id", t.as_str()),
        ("X-API-Key", "key-one-0001"),
    ];
    let with = |_: &[(&str, &str)]| session.clone();
    // a name no member has, a hidden name, a prefix without a name: all
    // answer like a tool that does not exist, and nothing is forwarded
    let calls = |m: &scripted::Scripted| {
        m.received()
            .iter()
            .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
            .count()
    };
    for name in [
        "pc__x",
        "pb__shared",
        "pa__",
        "PA__a-tool",
        "pa_a-tool",
        "shared",
        "pa__a-tool\u{0}",
        "pa__nothing",
        "pa__pa__a-tool",
    ] {
        let body = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":name}})
            .to_string();
        let r = post(g.port, "/tools", &body, &with(&[]));
        let m = message(&r);
        assert_eq!(m["error"]["code"], -32602, "{name}: {m}");
    }
    assert_eq!(
        calls(&a) + calls(&b),
        0,
        "refused calls reach no member (a miss only lists again)"
    );
    // the hidden tool is not listed either
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &with(&[]),
    );
    assert!(!tool_names(&r).contains(&"pb__shared".to_string()));
    // forged, other-principal and plain-route tokens: 404
    let k2 = [("X-API-Key", "key-two-0002")];
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[("Mcp-Session-Id", t.as_str()), k2[0]],
    );
    assert_eq!(r.status, 404, "another principal's composite token");
    let mut forged = t.clone().into_bytes();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[("Mcp-Session-Id", forged.as_str()), k1[0]],
    );
    assert_eq!(r.status, 404);
    // a composite token is no session on the plain endpoint, and back
    let r = post(
        g.port,
        "/mcp",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[("Mcp-Session-Id", t.as_str()), k1[0]],
    );
    assert_eq!(r.status, 404);
    // no session at all: the answer a server gives
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &k1,
    );
    assert_eq!(r.status, 400);
    // a client answer with an id no member asked: refused
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":"m7:1","result":{}}"#,
        &with(&[]),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":5,"result":{}}"#,
        &with(&[]),
    );
    assert_eq!(r.status, 400);
    // a forged cursor
    for cur in ["garbage", "mcp-edge:!!", "mcp-edge:W10"] {
        let body = json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":cur}})
            .to_string();
        let m = message(&post(g.port, "/tools", &body, &with(&[])));
        assert_eq!(m["error"]["code"], -32602, "{cur}");
    }
    // a cursor naming an unknown member asks no member
    let cur = format!("mcp-edge:{}", base64url(br#"[["nobody","x"]]"#));
    let before = a.count() + b.count();
    let body =
        json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":cur}}).to_string();
    let m = message(&post(g.port, "/tools", &body, &with(&[])));
    assert_eq!(m["result"]["tools"], json!([]));
    assert_eq!(a.count() + b.count(), before);
}

fn base64url(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = c.iter().fold(0u32, |n, x| (n << 8) | u32::from(*x)) << (8 * (3 - c.len()));
        for i in 0..=c.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn a_slow_or_broken_member_is_left_out_at_its_deadline() {
    let slow = Arc::new(AtomicUsize::new(0));
    let s2 = slow.clone();
    let a = member("a", move |req| {
        // after initialize, a's lists hang far past the member timeout
        if req.rpc_method().as_deref() == Some("tools/list") && s2.load(Ordering::SeqCst) == 1 {
            std::thread::sleep(Duration::from_secs(8));
        }
        None
    });
    let b = member("b", |req| match req.rpc_method().as_deref() {
        // b answers garbage to resources/list and to one call
        Some("resources/list") => Some(scripted::Reply::json(200, "{\"jsonrpc\":\"2.0\",\"id\":")),
        Some("tools/call") => Some(scripted::Reply::json(200, "not json")),
        _ => None,
    });
    let g = Gateway::start(&federated(
        &[("a", a.url(), "pa"), ("b", b.url(), "pb")],
        1500,
    ));
    let t = initialize(g.port, &[]);
    slow.store(1, Ordering::SeqCst);
    let start = Instant::now();
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(5000),
        "answered at the deadline, not later: {took:?}"
    );
    let mut names = tool_names(&r);
    names.sort();
    assert_eq!(names, ["pb__b-tool", "pb__shared"]);
    // garbage from b: b is left out of resources, a's resources still listed
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/list"}"#,
    );
    let m = message(&r);
    assert_eq!(m["result"]["resources"][0]["uri"], "a://doc", "{m}");
    // garbage to a call: an error for that call only; the session goes on
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"pb__b-tool"}}"#,
    );
    assert!(r.status >= 400 || message(&r).get("error").is_some());
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"pa__a-tool"}}"#,
    );
    assert_eq!(
        message(&r)["result"]["content"][0]["text"]
            .as_str()
            .map(|s| s.starts_with("a got")),
        Some(true)
    );
    // the audit line of the list notes who was left out
    let audit = AuditLog::of(&g).settle_ms(500).lines();
    assert!(
        audit
            .iter()
            .any(|l| l["method"] == "tools/list" && l["left_out"] == json!(["a"])),
        "{audit:#?}"
    );
}

#[test]
fn a_killed_member_is_left_out_and_the_others_keep_serving() {
    let ev = Peer::everything();
    let py = Peer::python();
    let g = Gateway::start(&federated(
        &[("ev", ev.url(), "ev"), ("py", py.url(), "py")],
        2500,
    ));
    let t = initialize(g.port, &[]);
    drop(py);
    let start = Instant::now();
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    assert!(start.elapsed() < Duration::from_millis(4000));
    let names = tool_names(&r);
    assert!(
        names.contains(&"ev__echo".to_string()) && !names.iter().any(|n| n.starts_with("py__")),
        "{names:?}"
    );
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ev__echo","arguments":{"message":"still here"}}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("still here"));
    // a call to the dead member: an error for that call only
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"py__add","arguments":{"a":1,"b":2}}}"#,
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn a_member_that_forgot_its_session_ends_the_whole_session_with_404() {
    let py = Peer::python();
    let ev = Peer::everything();
    let ev_port = ev.reservation();
    let cfg = federated(&[("ev", ev.url(), "ev"), ("py", py.url(), "py")], 3000);
    let g = Gateway::start(&cfg);
    let t = initialize(g.port, &[]);
    drop(ev);
    let _ev2 = Peer::everything_on(ev_port);
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ev__echo","arguments":{"message":"x"}}}"#,
    );
    assert_eq!(r.status, 404);
    // the client re-initializes and is served again
    let t2 = initialize(g.port, &[]);
    let r = call(
        g.port,
        &t2,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"ev__echo","arguments":{"message":"back"}}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("back"));
}

#[test]
fn a_composite_session_survives_a_restart_and_another_replica() {
    let ev = Peer::everything();
    let py = Peer::python();
    let cfg = federated(&[("ev", ev.url(), "ev"), ("py", py.url(), "py")], 3000);
    let g1 = Gateway::start(&cfg);
    let t = initialize(g1.port, &[]);
    let g2 = Gateway::start(&cfg);
    let body = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"py__add","arguments":{"a":20,"b":22}}}"#;
    let r = call(g2.port, &t, body);
    assert_eq!(message(&r)["result"]["content"][0]["text"], "42");
    drop(g1);
    let g3 = Gateway::start(&cfg);
    let r = call(
        g3.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ev__echo","arguments":{"message":"replica"}}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("replica"));
}

#[test]
fn the_get_stream_merges_the_members_streams() {
    let ev = Peer::everything();
    let py = Peer::python();
    let g = Gateway::start(&federated(
        &[("ev", ev.url(), "ev"), ("py", py.url(), "py")],
        3000,
    ));
    let t = initialize(g.port, &[]);
    // logging from ev arrives on the merged stream
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ev__toggle-simulated-logging","arguments":{}}}"#,
    );
    assert_eq!(r.status, 200);
    let port = g.port;
    let tok = t.clone();
    let reader = std::thread::spawn(move || {
        sse_events_on(
            port,
            "/tools",
            &[("Mcp-Session-Id", &tok), ("Accept", "text/event-stream")],
            Duration::from_secs(6),
        )
    });
    let (resp, events) = reader.join().unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .contains("text/event-stream"));
    let logging = events
        .iter()
        .filter(|e| e.contains("notifications/message"))
        .count();
    assert!(logging > 0, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| !e.lines().any(|l| l.starts_with("id:"))),
        "member event ids are not relayed"
    );
}

#[test]
fn validate_and_routes_show_virtual_servers() {
    let cfg = Config::base("http://127.0.0.1:9/mcp").insert(
        "virtual_servers",
        yaml("[{path: /mcp, name: x, members: [{upstream: nope}, {upstream: up, prefix: a}, {upstream: up, prefix: a}]}, {path: /v, name: y, members: [{upstream: up}]}, {path: /v, name: z, members: [{upstream: up}]}]"),
    );
    let (ok, _out, err) = validate(&cfg);
    assert!(!ok);
    for want in [
        "virtual_servers[0].path: must differ from server.path",
        "virtual_servers[0].members[0].upstream: unknown upstream \"nope\"",
        "virtual_servers[0].members[2].prefix: duplicate prefix \"a\"",
        "virtual_servers[2].path: duplicate path",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    let good = Config::base("http://127.0.0.1:9/mcp").insert(
        "virtual_servers",
        yaml("[{path: /tools, name: acme, members: [{upstream: up, prefix: m}]}]"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    good.clone().with_port(7).with_dir(dir.path()).write(&path);
    let out = Command::new(bin())
        .args(["routes", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("virtual server /tools") && text.contains("m__<name>"),
        "{text}"
    );
}

#[test]
fn a_reload_keeps_sessions_for_the_members_that_remain() {
    let a = member("a", none);
    let b = member("b", none);
    let cfg = federated(&[("a", a.url(), "pa"), ("b", b.url(), "pb")], 2000);
    let g = Gateway::start(&cfg);
    let t = initialize(g.port, &[]);
    // b leaves the virtual server
    let reloaded = cfg.clone().remove("virtual_servers[0].members[1]");
    reloaded
        .with_port(g.port)
        .with_dir(g.dir.path())
        .write(&g.conf());
    g.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = call(
            g.port,
            &t,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        );
        let names = tool_names(&r);
        if !names.iter().any(|n| n.starts_with("pb__")) {
            assert!(names.contains(&"pa__a-tool".to_string()), "{names:?}");
            break;
        }
        assert!(Instant::now() < deadline, "reload not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pa__a-tool"}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("a got"));
}

#[test]
fn python_sdk_client_in_2026_07_28_mode_over_a_session_era_and_a_stateless_member() {
    let ev = Peer::everything();
    let py = Peer::python();
    let g = Gateway::start(&federated(
        &[("ev", ev.url(), "ev"), ("py", py.url(), "py")],
        5000,
    ));
    let url = format!("http://127.0.0.1:{}/tools", g.port);
    // server-everything speaks only the session era: it cannot ask a 2026
    // client for input (elicitation), so that step is left out
    let steps = run_client(Command::new("python3").args([
        "py_fed_client.py",
        &url,
        "--mode",
        "2026-07-28",
        "--skip",
        "elicitation",
    ]));
    assert!(
        steps.iter().all(|s| s["step"] != "delete"),
        "no session, no DELETE"
    );
    let d = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        &[
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "server/discover"),
        ],
    );
    let m = message(&d);
    assert_eq!(
        m["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "acme-tools"
    );
    assert!(m["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("2026-07-28")));
    assert!(m["result"]["capabilities"]["tools"].is_object());
    assert!(d.header("mcp-session-id").is_none());
}

#[test]
fn a_stateless_client_reuses_one_held_member_session_and_holds_a_new_one_when_it_is_gone() {
    let gone = Arc::new(AtomicUsize::new(0));
    let g2 = gone.clone();
    // a session-era member (no server/discover); after `gone` it forgets sessions
    let a = member("a", move |req| {
        match req.rpc_method().as_deref() {
        Some("server/discover") => Some(scripted::Reply::json(
            200,
            &json!({"jsonrpc":"2.0","id":req.rpc_id(),"error":{"code":-32601,"message":"Method not found"}}).to_string(),
        )),
        Some("tools/call") if g2.load(Ordering::SeqCst) == 1 && req.header("mcp-session-id") == Some("sess-a") => {
            g2.store(2, Ordering::SeqCst);
            Some(scripted::Reply::json(404, r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}"#))
        }
        _ => None,
    }
    });
    // a 2026-07-28 member
    let b = scripted::Scripted::start(|req| {
        let id = req.rpc_id();
        let ok = |r: Value| {
            scripted::Reply::json(
                200,
                &json!({"jsonrpc":"2.0","id":id,"result":r}).to_string(),
            )
        };
        match req.rpc_method().as_deref() {
            Some("server/discover") => ok(
                json!({"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"ttlMs":60000,"cacheScope":"public"}),
            ),
            Some("tools/list") => ok(
                json!({"resultType":"complete","tools":[{"name":"b-tool","inputSchema":{"type":"object"}}],"ttlMs":60000,"cacheScope":"public"}),
            ),
            _ => ok(json!({"resultType":"complete","content":[{"type":"text","text":"b"}]})),
        }
    });
    let g = Gateway::start(&federated(
        &[("a", a.url(), "pa"), ("b", b.url(), "pb")],
        2000,
    ));
    let h = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "pa__a-tool"),
    ];
    let body = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pa__a-tool","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    for _ in 0..3 {
        let r = post(g.port, "/tools", body, &h);
        let m = message(&r);
        assert_eq!(m["result"]["resultType"], "complete", "{m}");
        assert!(r.header("mcp-session-id").is_none());
    }
    let inits = |s: &scripted::Scripted| {
        s.received()
            .iter()
            .filter(|r| r.rpc_method().as_deref() == Some("initialize"))
            .count()
    };
    assert_eq!(inits(&a), 1, "one member session held for the principal");
    assert_eq!(inits(&b), 0, "a 2026-07-28 member is never initialized");
    let calls: Vec<_> = a
        .received()
        .into_iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .collect();
    assert!(calls
        .iter()
        .all(|c| c.header("mcp-session-id") == Some("sess-a")
            && c.header("mcp-protocol-version") == Some("2025-11-25")));
    // the member forgets: that call fails, the next one holds a new session
    gone.store(1, Ordering::SeqCst);
    let r = post(g.port, "/tools", body, &h);
    assert!(r.status >= 400);
    let r = post(g.port, "/tools", body, &h);
    assert_eq!(message(&r)["result"]["resultType"], "complete");
    assert_eq!(inits(&a), 2);
    // the 2026 member: no session, its own name in Mcp-Name, merged list cache hints
    let lh = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/list"),
    ];
    let l = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        &lh,
    );
    let m = message(&l);
    assert_eq!(m["result"]["cacheScope"], "private");
    assert_eq!(
        m["result"]["ttlMs"], 0,
        "a session-era member gave no freshness"
    );
    let hb = [
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "pb__b-tool"),
    ];
    let r = post(
        g.port,
        "/tools",
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"pb__b-tool","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        &hb,
    );
    assert_eq!(message(&r)["result"]["content"][0]["text"], "b");
    let got = b.received();
    let c = got
        .iter()
        .find(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .unwrap();
    assert_eq!(c.header("mcp-session-id"), None);
    assert_eq!(c.header("mcp-name"), Some("b-tool"));
    assert_eq!(c.header("mcp-method"), Some("tools/call"));
    assert!(got
        .iter()
        .all(|r| r.header("mcp-protocol-version") == Some("2026-07-28")));
}

#[test]
fn a_tunnel_member_serves_beside_an_http_member() {
    const TOKEN: &str = "federation-tunnel-token-0123456789";
    let ev = Peer::everything();
    let cfg = federated(&[("ev", ev.url(), "ev")], 5000)
        .push("upstreams", yaml("{name: laptop, type: tunnel}"))
        .insert(
            "tunnel",
            json!({"enabled": true, "tokens": [{"id": "laptop-token", "token": TOKEN, "upstreams": ["laptop"]}]}),
        )
        .push("virtual_servers[0].members", json!({"upstream": "laptop", "prefix": "lp"}));
    let g = Gateway::start(&cfg);
    let log = g.dir.path().join("tunnel.log");
    let mut tunnel = Command::new(bin())
        .args([
            "tunnel",
            "--local-stdio",
            "python3 py_server.py --stdio",
            "--name",
            "laptop",
        ])
        .args([
            "--gateway",
            &format!("http://127.0.0.1:{}", g.port),
            "--reconnect-delay",
            "200",
        ])
        .env("MCP_EDGE_TUNNEL_TOKEN", TOKEN)
        .current_dir(peers_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start mcp-edge tunnel");
    // the tunnel member joins sessions once it is registered
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = initialize(g.port, &[]);
        let names = tool_names(&call(
            g.port,
            &t,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        ));
        if names.contains(&"lp__add".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tunnel member never joined: {names:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let url = format!("http://127.0.0.1:{}/tools", g.port);
    run_client(Command::new("python3").args(["py_fed_client.py", &url, "--py", "lp"]));
    let _ = tunnel.kill();
    let _ = tunnel.wait();
}

#[test]
fn members_the_principal_may_use_nothing_of_are_not_asked() {
    let a = member("a", none);
    let b = member("b", none);
    let cfg = federated(&[("a", a.url(), "pa"), ("b", b.url(), "pb")], 2000)
        .set("policy.rules[0].allow.tools", json!(["pa__*"]))
        .set("policy.rules[0].allow.resources", json!([]))
        .set("policy.rules[0].allow.prompts", json!([]));
    let g = Gateway::start(&cfg);
    let t = initialize(g.port, &[]);
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    let mut names = tool_names(&r);
    names.sort();
    assert_eq!(names, ["pa__a-tool", "pa__shared"]);
    assert_eq!(b.count(), 0, "b was never asked: {:?}", b.received());
}

#[test]
fn conflicts_prefixes_shared_names_and_never_refuses_them() {
    let a = member("a", none);
    let b = member("b", none);
    let base = federated(&[("a", a.url(), "pa"), ("b", b.url(), "pb")], 2000);
    let g = Gateway::start(
        &base
            .clone()
            .insert("virtual_servers[0].prefix_mode", "conflicts"),
    );
    let t = initialize(g.port, &[]);
    let mut names = tool_names(&call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ));
    names.sort();
    assert_eq!(names, ["a-tool", "b-tool", "pa__shared", "pb__shared"]);
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b-tool"}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("b got"));
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"pa__shared"}}"#,
    );
    let text = message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.starts_with("a got") && text.contains(r#""name":"shared""#),
        "{text}"
    );
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"shared"}}"#,
    );
    assert_eq!(
        message(&r)["error"]["code"],
        -32602,
        "a shared name is only exposed prefixed"
    );
    drop(g);

    let g = Gateway::start(&base.insert("virtual_servers[0].prefix_mode", "never"));
    let t = initialize(g.port, &[]);
    let mut names = tool_names(&call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ));
    names.sort();
    assert_eq!(
        names,
        ["a-tool", "b-tool"],
        "the clash is exposed by neither"
    );
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"shared"}}"#,
    );
    assert_eq!(message(&r)["error"]["code"], -32602);
    assert!(
        g.log_text()
            .contains("is listed by several members: refused"),
        "logged"
    );
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"a-tool"}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("a got"));
}

#[test]
fn a_stateless_client_listens_to_members_through_one_subscription() {
    let ev = Peer::everything();
    let py = Peer::python();
    let g = Gateway::start(&federated(
        &[("ev", ev.url(), "ev"), ("py", py.url(), "py")],
        5000,
    ));
    let uri = "demo://resource/static/document/architecture.md";
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
    let h = |m: &'static str| {
        vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", m),
        ]
    };
    // the catalog learns who serves the URI
    let r = post(
        g.port,
        "/tools",
        &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"resources/list","params":{{{meta}}}}}"#),
        &h("resources/list")[2..],
    );
    assert!(String::from_utf8_lossy(&r.body).contains(uri));
    let port = g.port;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"sub-1","method":"subscriptions/listen","params":{{{meta},"notifications":{{"toolsListChanged":true,"resourceSubscriptions":["{uri}"]}}}}}}"#
    );
    let listener = std::thread::spawn(move || {
        sse_stream_on(
            port,
            "POST",
            "/tools",
            &h("subscriptions/listen"),
            body.as_bytes(),
            Duration::from_secs(9),
        )
    });
    std::thread::sleep(Duration::from_millis(800));
    // server-everything sends updates for subscribed URIs every 5 s once asked to
    let mut ch = h("tools/call");
    ch.push(("Mcp-Name", "ev__toggle-subscriber-updates"));
    let r = post(
        g.port,
        "/tools",
        &format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"ev__toggle-subscriber-updates","arguments":{{}},{meta}}}}}"#
        ),
        &ch[2..],
    );
    assert_eq!(r.status, 200);
    let (resp, events) = listener.join().unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp.header("mcp-session-id").is_none());
    let msgs: Vec<Value> = events
        .iter()
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str(d).ok())
        })
        .collect();
    assert_eq!(
        msgs[0]["method"], "notifications/subscriptions/acknowledged",
        "{msgs:?}"
    );
    assert_eq!(
        msgs[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert_eq!(
        msgs[0]["params"]["notifications"]["resourceSubscriptions"],
        json!([uri])
    );
    let updates: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/resources/updated")
        .collect();
    assert!(!updates.is_empty(), "{msgs:?}");
    for u in &updates {
        assert_eq!(u["params"]["uri"], uri);
        assert_eq!(
            u["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            "sub-1"
        );
    }
    // nothing the client did not ask for (logging, other URIs)
    assert!(
        msgs.iter()
            .skip(1)
            .all(|m| m["method"] == "notifications/resources/updated"
                || m["method"] == "notifications/tools/list_changed"),
        "{msgs:?}"
    );
}

/// A member with one task `t-1` (the tasks utility).
fn task_member(tag: &'static str) -> scripted::Scripted {
    member(tag, move |req| {
        let id = req.rpc_id();
        let ok = |r: Value| {
            Some(scripted::Reply::json(
                200,
                &json!({"jsonrpc":"2.0","id":id,"result":r}).to_string(),
            ))
        };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match req.rpc_method().as_deref() {
            Some("initialize") => ok(json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{},"tasks":{"list":{},"requests":{"tools":{"call":{}}}}},"serverInfo":{"name":tag,"version":"1"}}))
                .map(|r| r.header("Mcp-Session-Id", &format!("sess-{tag}"))),
            Some("tools/call") if body["params"]["task"].is_object() => ok(json!({"task":{"taskId":"t-1","status":"working"}})),
            Some("tasks/get") => ok(json!({"taskId": body["params"]["taskId"], "status":"completed", "from": tag})),
            Some("tasks/list") => ok(json!({"tasks":[{"taskId":"t-1","status":"completed"}]})),
            _ => None,
        }
    })
}

#[test]
fn task_ids_of_two_members_never_collide() {
    let a = task_member("a");
    let b = task_member("b");
    let g = Gateway::start(&federated(
        &[("a", a.url(), "pa"), ("b", b.url(), "pb")],
        2000,
    ));
    let r = post(g.port, "/tools", INIT, &[]);
    assert_eq!(
        message(&r)["result"]["capabilities"]["tasks"]["requests"]["tools"]["call"],
        json!({})
    );
    let t = initialize(g.port, &[]);
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"pb__b-tool","task":{"ttl":60000}}}"#,
    );
    let task_id = message(&r)["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(task_id, "m1:t-1");
    let r = call(
        g.port,
        &t,
        &json!({"jsonrpc":"2.0","id":3,"method":"tasks/get","params":{"taskId": task_id}})
            .to_string(),
    );
    let m = message(&r);
    assert_eq!(m["result"]["from"], "b");
    assert_eq!(
        m["result"]["taskId"], "m1:t-1",
        "namespaced on the way back too"
    );
    let got = b.received();
    let g2 = got
        .iter()
        .find(|r| r.rpc_method().as_deref() == Some("tasks/get"))
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&g2.body).unwrap()["params"]["taskId"],
        "t-1"
    );
    assert!(a
        .received()
        .iter()
        .all(|r| r.rpc_method().as_deref() != Some("tasks/get")));
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":4,"method":"tasks/list"}"#,
    );
    let ids: Vec<String> = message(&r)["result"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["m0:t-1", "m1:t-1"]);
    for bad in ["t-1", "m9:t-1", "m1:"] {
        let r = call(
            g.port,
            &t,
            &json!({"jsonrpc":"2.0","id":5,"method":"tasks/get","params":{"taskId": bad}})
                .to_string(),
        );
        assert_eq!(message(&r)["error"]["code"], -32602, "{bad}");
    }
}

#[test]
fn a_member_down_at_initialize_is_not_in_the_session_and_names_stay_right() {
    let a = member("a", |req| {
        (req.rpc_method().as_deref() == Some("initialize"))
            .then(|| scripted::Reply::json(500, "{}"))
    });
    let b = member("b", none);
    let g = Gateway::start(&federated(
        &[("a", a.url(), "pa"), ("b", b.url(), "pb")],
        2000,
    ));
    let t = initialize(g.port, &[]);
    let mut names = tool_names(&call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ));
    names.sort();
    assert_eq!(names, ["pb__b-tool", "pb__shared"]);
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pb__b-tool"}}"#,
    );
    assert!(message(&r)["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("b got"));
    let r = call(
        g.port,
        &t,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"pa__a-tool"}}"#,
    );
    assert_eq!(
        message(&r)["error"]["code"],
        -32602,
        "a is not in this session"
    );
    let audit = AuditLog::of(&g).settle_ms(500).lines();
    assert!(
        audit
            .iter()
            .any(|l| l["method"] == "initialize" && l["left_out"] == json!(["a"])),
        "{audit:#?}"
    );
}

#[test]
fn list_pages_are_kept_as_members_allow_and_never_across_principals() {
    // a 2026-07-28 member whose tool list is private to the caller, and one whose list is public
    let stateless = |tag: &'static str, scope: &'static str| {
        scripted::Scripted::start(move |req| {
            let id = req.rpc_id();
            let ok = |r: Value| {
                scripted::Reply::json(
                    200,
                    &json!({"jsonrpc":"2.0","id":id,"result":r}).to_string(),
                )
            };
            match req.rpc_method().as_deref() {
                Some("server/discover") => ok(
                    json!({"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"ttlMs":0,"cacheScope":"public"}),
                ),
                Some("tools/list") => ok(
                    json!({"resultType":"complete","tools":[{"name": format!("{tag}-tool"),"inputSchema":{"type":"object"}}],"ttlMs":60000,"cacheScope":scope}),
                ),
                _ => ok(json!({"resultType":"complete","content":[]})),
            }
        })
    };
    let a = stateless("a", "private");
    let b = stateless("b", "public");
    let cfg = federated(&[("a", a.url(), "pa"), ("b", b.url(), "pb")], 2000)
        .set("auth", yaml("{anonymous: false, api_keys: [{id: k1, key: key-one-0001, tenant: t1}, {id: k2, key: key-two-0002, tenant: t2}]}"));
    let g = Gateway::start(&cfg);
    let list = |key: &str| {
        let r = post(
            g.port,
            "/tools",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            &[
                ("MCP-Protocol-Version", "2026-07-28"),
                ("Mcp-Method", "tools/list"),
                ("X-API-Key", key),
            ],
        );
        let mut n = tool_names(&r);
        n.sort();
        assert_eq!(n, ["pa__a-tool", "pb__b-tool"]);
    };
    let lists = |s: &scripted::Scripted| {
        s.received()
            .iter()
            .filter(|r| r.rpc_method().as_deref() == Some("tools/list"))
            .count()
    };
    list("key-one-0001");
    list("key-one-0001");
    assert_eq!(
        (lists(&a), lists(&b)),
        (1, 1),
        "both kept for the first principal"
    );
    list("key-two-0002");
    assert_eq!(
        lists(&a),
        2,
        "a private page is never served to another principal"
    );
    assert_eq!(lists(&b), 1, "a public page is");
}

#[test]
fn pages_of_several_members_walk_with_one_composite_cursor() {
    // each member has three pages of tools: p1 -> p2 -> p3 (no next)
    let paged = |tag: &'static str| {
        member(tag, move |req| {
            if req.rpc_method().as_deref() != Some("tools/list") {
                return None;
            }
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let (page, next) = match body["params"]["cursor"].as_str() {
                None => (1, Some("c2")),
                Some("c2") => (2, Some("c3")),
                Some("c3") => (3, None),
                Some(other) => panic!("member {tag} got cursor {other}"),
            };
            let mut result = json!({"tools":[{"name": format!("{tag}-{page}"),"inputSchema":{"type":"object"}}]});
            if let Some(n) = next {
                result["nextCursor"] = json!(n);
            }
            Some(scripted::Reply::json(
                200,
                &json!({"jsonrpc":"2.0","id":req.rpc_id(),"result":result}).to_string(),
            ))
        })
    };
    let a = paged("a");
    let b = paged("b");
    let g = Gateway::start(&federated(
        &[("a", a.url(), "pa"), ("b", b.url(), "pb")],
        2000,
    ));
    let t = initialize(g.port, &[]);
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let body = match &cursor {
            None => json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
            Some(c) => json!({"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":c}}),
        };
        let m = message(&call(g.port, &t, &body.to_string()));
        all.extend(
            m["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        match m["result"]["nextCursor"].as_str() {
            Some(c) => {
                assert!(c.starts_with("mcp-edge:"), "{c}");
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    assert_eq!(
        all,
        ["pa__a-1", "pb__b-1", "pa__a-2", "pb__b-2", "pa__a-3", "pb__b-3"]
    );
}
