//! Unit tests of `answer`.

use super::*;

fn allow(_: Item, name: &str) -> bool {
    !name.starts_with("admin") && !name.starts_with("file:///secret")
}

const TOOLS: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{}},{"name":"admin.drop"},{"name":"add"}],"nextCursor":"c"}}"#;

fn names(json: &[u8], list: &str, key: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
    v["result"][list]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[key].as_str().unwrap().to_string())
        .collect()
}

fn rewritten(json: &str) -> Vec<u8> {
    match check_message(json.as_bytes(), &allow) {
        Checked::Rewritten(v) => v,
        other => panic!("{json}: {other:?}"),
    }
}

#[test]
fn invalid_utf8_is_refused_even_where_nothing_is_read() {
    // Found by the fuzzer: a skipped member with a bad byte in a key.
    let body = b"{\"jsonrpc\":\"2.0\",\"id\":0,\"resu?t\":{\"Tools\":[{\"name\xab\":\"secret\"}]}}";
    assert!(matches!(check_message(body, &allow), Checked::Refused(_)));
    let mut sse = b"data: ".to_vec();
    sse.extend_from_slice(body);
    sse.extend_from_slice(b"\n\n");
    let mut g = SseGuard::new(1 << 16);
    let out = String::from_utf8(g.push(&sse, true, &allow).to_vec()).unwrap();
    assert!(!out.contains("secret") && out.contains("UTF-8"), "{out}");
}

#[test]
fn oracle_reads_numbers_beyond_f64() {
    assert_eq!(
        numbers_zeroed(br#"{"id":4400000e0441,"a":[-1.5E+3,true,false,null],"s":"1e9\"2"}"#),
        br#"{"id":0,"a":[0,true,false,null],"s":"1e9\"2"}"#.to_vec()
    );
    // found by the fuzzer: an id serde_json's Value cannot hold
    check_contract(
        b"\x00{\"jsonrpc\":\"2.0\",\"id\":4400000e0441,\"result\":{\"resources\":[{\"uri\":\"file:///secret/{x}\"}]}}",
    );
}

#[test]
fn contract_holds_on_known_answers() {
    for b in [
        format!("\x00{TOOLS}"),
        "\x00{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"},{\"name\":\"secret\"},{\"Name\":\"secret\",\"name\":\"b\"}]}}".to_string(),
        "\x00{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"resources\":[{\"uri\":\"file:///%73ecret\"}]}}".to_string(),
        format!("\x07\u{feff}data: {TOOLS}\r\r: c\ndata: [1]\n\nid: 3\nretry: x\ndata:\n\n"),
        "\x03data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"prompts\":[{\"name\":\"secret\"}]}}\r\n\r\n".to_string(),
    ] {
        check_contract(b.as_bytes());
    }
}

#[test]
fn media_types() {
    assert_eq!(media(Some(b"application/json")), Media::Json);
    assert_eq!(media(Some(b"Application/JSON; charset=utf-8")), Media::Json);
    assert_eq!(media(Some(b" application/json ;x=y")), Media::Json);
    assert_eq!(media(Some(b"application/problem+JSON")), Media::Json);
    assert_eq!(media(Some(b"TEXT/Event-Stream;charset=utf-8")), Media::Sse);
    assert_eq!(media(Some(b"text/plain")), Media::Other);
    assert_eq!(media(Some(b"application/jsonx")), Media::Other);
    assert_eq!(media(None), Media::Absent);
}

#[test]
fn lists_keep_only_allowed_items() {
    let out = rewritten(TOOLS);
    assert_eq!(names(&out, "tools", "name"), ["echo", "add"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["result"]["nextCursor"], "c");
    assert_eq!(v["id"], 1);
    // the rest of the message is byte-for-byte what the upstream sent
    assert!(String::from_utf8(out)
        .unwrap()
        .ends_with(r#"],"nextCursor":"c"}}"#));
    let r = r#"{"jsonrpc":"2.0","id":2,"result":{"resources":[{"uri":"file:///a"},{"uri":"FILE:///secret/k"},{"uri":"file:///x/../secret/k"}],"resourceTemplates":[{"uriTemplate":"file:///secret/{p}"},{"uriTemplate":"file:///{p}"}]}}"#;
    let out = rewritten(r);
    assert_eq!(names(&out, "resources", "uri"), ["file:///a"]);
    assert_eq!(
        names(&out, "resourceTemplates", "uriTemplate"),
        ["file:///{p}"]
    );
    // all allowed: passes untouched
    let ok = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}"#;
    assert_eq!(check_message(ok.as_bytes(), &allow), Checked::Pass);
}

#[test]
fn any_result_carrying_a_list_is_filtered() {
    // not the answer to a list request: a tool result shaped like one
    let b = r#"{"jsonrpc":"2.0","id":9,"result":{"content":[],"prompts":[{"name":"admin-prompt"},{"name":"ok"}]}}"#;
    assert_eq!(names(&rewritten(b), "prompts", "name"), ["ok"]);
}

#[test]
fn items_that_cannot_be_read_one_way_are_dropped() {
    for item in [
        r#"{"title":"no name"}"#,
        r#"{"name":5}"#,
        r#"{"name":"echo","name":"admin.drop"}"#,
        r#"{"name":"echo","Name":"admin.drop"}"#,
        r#"{"name":"echo","NAME":"admin.drop"}"#,
        r#""echo""#,
        r#"["echo"]"#,
    ] {
        let b =
            format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{item},{{"name":"add"}}]}}}}"#);
        assert_eq!(names(&rewritten(&b), "tools", "name"), ["add"], "{item}");
    }
}

#[test]
fn ambiguous_messages_are_refused() {
    for b in [
        "[]",
        r#""x""#,
        "5",
        "not json",
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":{"name":"admin.drop"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[{"name":"admin.drop"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"Tools":[{"name":"admin.drop"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"Result":{"tools":[{"name":"admin.drop"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"result":{"tools":[{"name":"admin.drop"}]}}"#,
    ] {
        assert!(
            matches!(check_message(b.as_bytes(), &allow), Checked::Refused(_)),
            "{b}"
        );
    }
    // messages with nothing to filter pass
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
    ] {
        assert_eq!(check_message(b.as_bytes(), &allow), Checked::Pass, "{b}");
    }
}

#[test]
fn unpaired_surrogate_escapes_are_refused() {
    // found by the answer_filter fuzz target: a skipped string with a lone
    // surrogate, which JavaScript and Python clients decode and Rust refuses
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a\udBBB"}]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"x":"\uDC00\ud800"}}"#,
        r#"{"jesult":{"resources":[{"uri":"f\udBBB\\\"ft/{x}"}]}}"#,
    ] {
        assert!(
            matches!(check_message(b.as_bytes(), &allow), Checked::Refused(_)),
            "{b}"
        );
    }
    // paired surrogates, and an escaped backslash before `ud800`, pass
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"result":{"x":"\ud83d\ude00"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"x":"\\ud800"}}"#,
    ] {
        assert_eq!(check_message(b.as_bytes(), &allow), Checked::Pass, "{b}");
    }
}

#[test]
fn json_body_whole_at_the_end() {
    let mut g = Guard::json(1 << 20);
    let (a, b) = TOOLS.as_bytes().split_at(20);
    assert!(g.push(a, false, &allow, None).is_empty());
    let out = g.push(b, true, &allow, None);
    assert!(!String::from_utf8_lossy(&out).contains("admin"));
    assert_eq!(g.verdict(), Some(&Verdict::Rewritten));
    let mut g = Guard::json(1 << 20);
    let out = g.push(
        b"{truncated",
        true,
        &allow,
        Some(crate::jsonrpc::IdRef::Int(4)),
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["id"], 4);
    assert!(matches!(g.verdict(), Some(Verdict::Refused(_))));
    let mut g = Guard::json(64);
    let out = g.push(TOOLS.as_bytes(), false, &allow, None);
    assert!(String::from_utf8_lossy(&out).contains("max_response_bytes"));
    assert_eq!(
        g.verdict(),
        Some(&Verdict::TooLarge(crate::answer::TOO_LARGE))
    );
    assert!(g.push(b"more", true, &allow, None).is_empty());
    let mut g = Guard::json_bounded(64, "tool result too large");
    let out = g.push(
        TOOLS.as_bytes(),
        false,
        &allow,
        Some(crate::jsonrpc::IdRef::Int(9)),
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (v["id"].as_i64(), v["error"]["message"].as_str()),
        (Some(9), Some("tool result too large"))
    );
}

fn sse(stream: &[u8], piece: usize) -> String {
    let mut g = SseGuard::new(1 << 20);
    let mut out = Vec::new();
    for c in stream.chunks(piece.max(1)) {
        out.extend_from_slice(&g.push(c, false, &allow));
    }
    out.extend_from_slice(&g.push(b"", true, &allow));
    String::from_utf8(out).unwrap()
}

#[test]
fn sse_line_endings_bom_and_multiline_data() {
    for (stream, what) in [
        (format!("id: 1\nevent: message\ndata: {TOOLS}\n\n"), "LF"),
        (
            format!("id: 1\r\nevent: message\r\ndata: {TOOLS}\r\n\r\n"),
            "CRLF",
        ),
        (format!("id: 1\revent: message\rdata: {TOOLS}\r\r"), "CR"),
        (format!("\u{feff}id: 1\ndata: {TOOLS}\n\n"), "BOM"),
        (format!("data:{TOOLS}\n\n"), "no space"),
        (
            format!("data: {}\n\n", TOOLS.replace(",", "\ndata: ,")),
            "multi-line data",
        ),
        (
            format!(": comment\nfoo: bar\ndata: {TOOLS}\n\n"),
            "comment, unknown field",
        ),
    ] {
        for piece in [1, 3, 7, 4096] {
            let out = sse(stream.as_bytes(), piece);
            assert!(!out.contains("admin"), "{what} in {piece}s: {out:?}");
            assert!(out.contains("\"echo\""), "{what}: {out:?}");
            assert!(!out.contains('\r'), "{what}: canonical LF only");
            assert!(out.ends_with("\n\n"), "{what}");
            assert_eq!(out.matches("\n\n").count(), 1, "{what}: {out:?}");
        }
    }
}

#[test]
fn a_cr_inside_data_ends_the_line() {
    // WHATWG reads the CR as a line end, so the message is cut there; a
    // client that splits on LF alone would read the whole list: refused
    let tools_cr = TOOLS.replace(',', ",\r");
    let out = sse(format!("data: {tools_cr}\n\n").as_bytes(), 3);
    assert!(!out.contains("admin"), "{out}");
    assert!(out.contains("-32603"), "{out}");
}

#[test]
fn sse_events_pass_through_canonically() {
    let out = sse(
        b"id: ev-1\nretry: 1500\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n: keepalive\n\nid: prime\ndata:\n\n",
        5,
    );
    assert_eq!(
        out,
        "id: ev-1\nretry: 1500\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n: keepalive\n\nid: prime\ndata: \n\n"
    );
}

#[test]
fn sse_bad_messages_become_errors() {
    for data in [
        "[1,2]",
        "not json",
        r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[],"Tools":[]}}"#,
    ] {
        let out = sse(format!("data: {data}\n\n").as_bytes(), 4);
        let line = out.lines().find(|l| l.starts_with("data: ")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line[6..]).unwrap();
        assert_eq!(v["error"]["code"], -32603, "{data}");
    }
    let out = sse(
        br#"data: {"jsonrpc":"2.0","id":7,"result":{"tools":{}}}"#,
        4,
    );
    assert!(out.is_empty(), "unterminated at the end: dropped");
    let out = sse(
        b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":{}}}\n\n",
        4,
    );
    assert!(out.contains("\"id\":7"), "{out}");
}

#[test]
fn sse_oversized_event_is_refused() {
    let mut g = SseGuard::new(1024);
    let big = format!(
        "data: {}\n\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"x\"}}\n\n",
        "x".repeat(5000)
    );
    let out = String::from_utf8(g.push(big.as_bytes(), true, &allow).to_vec()).unwrap();
    assert!(out.contains("max_response_bytes"), "{out}");
    assert!(
        out.contains("\"method\":\"x\""),
        "the next event passes: {out}"
    );
    assert!(out.len() < 600);
}
