//! Unit tests of `inspect`.

use super::*;

fn ok(body: &str) -> Envelope {
    match inspect(body.as_bytes(), 64) {
        Ok(e) => e,
        Err(e) => panic!("{body}: {e:?}"),
    }
}
fn err(body: &str) -> InspectError {
    match inspect(body.as_bytes(), 64) {
        Ok(e) => panic!("{body}: accepted as {e:?}"),
        Err(e) => e,
    }
}

#[test]
fn invalid_utf8_is_a_parse_error_even_in_skipped_values() {
    for body in [
        &b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"x\xab\":1}}}"[..],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":\"\xc0\xae\"}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"_meta\":{\"\xed\xa0\x80\":1}}}",
    ] {
        assert_eq!(inspect(body, 64).unwrap_err(), InspectError::Parse);
    }
}

#[test]
fn tools_call_request() {
    let b = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"math.add","arguments":{"a":1,"b":[2,{"c":3}]}}}"#;
    let e = ok(b);
    assert_eq!(e.kind, Kind::Request);
    assert_eq!(e.method(b.as_bytes()), Some("tools/call"));
    assert_eq!(e.name(b.as_bytes()), Some("math.add"));
    assert_eq!(e.id, Some(Id::Int(7)));
    assert!(matches!(e.method, Some(Text::Span(..))));
}

#[test]
fn escaped_strings_are_unescaped() {
    let b =
        r#"{"jsonrpc":"2.0","id":"a\"b","method":"tools\/call","params":{"name":"adm\u0069n.x"}}"#;
    let e = ok(b);
    assert_eq!(e.method(b.as_bytes()), Some("tools/call"));
    assert_eq!(e.name(b.as_bytes()), Some("admin.x"));
    assert_eq!(
        e.id_ref(b.as_bytes()),
        Some(crate::jsonrpc::IdRef::Str("a\"b"))
    );
}

#[test]
fn key_order_does_not_matter() {
    let b = r#"{"params":{"uri":"file:///a"},"method":"resources/read","id":"x","jsonrpc":"2.0"}"#;
    let e = ok(b);
    assert_eq!(e.uri(b.as_bytes()), Some("file:///a"));
    assert_eq!(e.kind, Kind::Request);
}

#[test]
fn notification_and_response() {
    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).kind,
        Kind::Notification
    );
    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#).kind,
        Kind::Response
    );
    assert_eq!(
        ok(r#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}"#).kind,
        Kind::Response
    );
}

#[test]
fn malformed_json_is_parse_error() {
    for b in [
        "",
        "{",
        r#"{"jsonrpc":"2.0",}"#,
        r#"{"a":1} x"#,
        "nul",
        r#"{"jsonrpc":"2.0","method":"x","params":{"a":[1,2}}"#,
    ] {
        assert_eq!(err(b), InspectError::Parse, "{b}");
    }
}

#[test]
fn invalid_envelopes() {
    use InvalidReason::*;
    let cases = [
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, Batch),
        (r#""hello""#, NotObject),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, Version),
        (r#"{"id":1,"method":"ping"}"#, Version),
        (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, MethodNotString),
        (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, BadId),
        (r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#, BadId),
        (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, BadId),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}"#,
            DuplicateKey,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            DuplicateKey,
        ),
        (r#"{"jsonrpc":"2.0","id":1}"#, NotAMessage),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#,
            NotAMessage,
        ),
        (r#"{"jsonrpc":"2.0","result":{}}"#, NotAMessage),
        // found by the fuzz contract: a result may not answer a null id
        (r#"{"jsonrpc":"2.0","id":null,"result":{}}"#, BadId),
    ];
    for (b, r) in cases {
        assert_eq!(err(b), InspectError::Invalid(r), "{b}");
    }
}

#[test]
fn parse_error_wins_over_invalid_envelope() {
    assert_eq!(
        err(r#"{"jsonrpc":"1.0","id":1,"method":"ping""#),
        InspectError::Parse
    );
}

#[test]
fn depth_limit() {
    let deep = |n: usize| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}1{}}}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    // object(1) > params(2) > n arrays
    assert!(inspect(deep(62).as_bytes(), 64).is_ok());
    assert_eq!(
        inspect(deep(63).as_bytes(), 64),
        Err(InspectError::Invalid(InvalidReason::TooDeep))
    );
    // far deeper than serde_json's own recursion limit: still a clean answer
    assert_eq!(
        inspect(deep(100_000).as_bytes(), 64),
        Err(InspectError::Invalid(InvalidReason::TooDeep))
    );
    assert_eq!(
        inspect(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#, 0),
        Err(InspectError::Invalid(InvalidReason::TooDeep))
    );
}

#[test]
fn meta_protocol_version() {
    let b = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"x":{"y":1},"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    assert_eq!(ok(b).meta_version(b.as_bytes()), Some("2026-07-28"));
    let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/protocolVersion":"2025-06-18"}}}"#;
    assert_eq!(err(dup), InspectError::Invalid(InvalidReason::DuplicateKey));
}

#[test]
fn non_string_name_is_flagged() {
    let e = ok(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#);
    assert!(e.name_not_string);
    assert!(e.name.is_none());
}

#[test]
fn never_panics_on_prefixes() {
    let b = r#"{"jsonrpc":"2.0","id":"q","method":"tools/call","params":{"name":"x","arguments":{"s":"\u00e9\n","n":[1,2.5e3,true,null]}}}"#;
    for i in 0..b.len() {
        let _ = inspect(&b.as_bytes()[..i], 8);
    }
    assert!(inspect(b.as_bytes(), 8).is_ok());
}

#[test]
fn only_the_six_members() {
    use InvalidReason::*;
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"Name":"admin.drop"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","extra":true}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","param\u017f":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","Params":{}}"#,
    ] {
        assert_eq!(err(b), InspectError::Invalid(UnknownMember), "{b}");
    }
}

#[test]
fn keys_that_fold_to_a_read_key_are_refused() {
    use InvalidReason::*;
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/a","URI":"file:///secret/k"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/a","ur\u0131":"file:///secret/k"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name\u0000":"admin.drop"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_META":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolversion":"1"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","Name":"b"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"Ref":{"type":"ref/prompt","name":"b"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"noti\ufb01cations":{"resourceSubscriptions":["file:///secret/k"]}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourcesubscriptions":["file:///secret/k"]}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"re\u017fourceSubscriptions":["file:///secret/k"]}}}"#,
    ] {
        assert_eq!(err(b), InspectError::Invalid(ConfusableKey), "{b}");
    }
    // keys the gateway does not read may be spelled any way
    let b = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Arguments":{"Name":"x"},"_meta":{"progressToken":1,"ProgressToken":2}}}"#;
    assert_eq!(ok(b).name(b.as_bytes()), Some("echo"));
}

#[test]
fn duplicates_inside_ref_and_notifications() {
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt"},"ref":{"type":"ref/resource"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":[],"resourceSubscriptions":["x:y"]}}}"#,
    ] {
        assert_eq!(
            err(b),
            InspectError::Invalid(InvalidReason::DuplicateKey),
            "{b}"
        );
    }
}

#[test]
fn completion_ref_and_subscriptions_are_read() {
    let b = r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///x/{p}"},"argument":{"name":"p","value":"a"}}}"#;
    let e = ok(b);
    let r = e.reference.as_deref().unwrap();
    assert_eq!(r.kind.text().unwrap().as_str(b.as_bytes()), "ref/resource");
    assert_eq!(r.uri.text().unwrap().as_str(b.as_bytes()), "file:///x/{p}");
    assert_eq!(r.name, Field::Absent);
    let b =
        r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":"ref/prompt"}}"#;
    assert!(ok(b).reference.unwrap().not_object);
    let b = r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["file:///a","file:///b"]}}}"#;
    match ok(b).subscriptions {
        Some(Subscriptions::Uris(u)) => {
            let u: Vec<&str> = u.iter().map(|t| t.as_str(b.as_bytes())).collect();
            assert_eq!(u, ["file:///a", "file:///b"]);
        }
        other => panic!("{other:?}"),
    }
    for b in [
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":"file:///a"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["file:///a",1]}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":[]}}"#,
    ] {
        assert_eq!(ok(b).subscriptions, Some(Subscriptions::Malformed), "{b}");
    }
}

#[test]
fn fold_covers_every_character_that_case_maps_to_ascii() {
    // the folding a case-insensitive parser may apply: lower, upper, lower
    // (full mappings, so ß and the ligatures expand)
    for cp in 0x80..=0x10FFFFu32 {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        let m: String = c
            .to_lowercase()
            .collect::<String>()
            .to_uppercase()
            .to_lowercase();
        let got: String = fold(c).map(|x| x.to_ascii_lowercase()).collect();
        if m.is_ascii() || got.is_ascii() {
            assert_eq!(got, m, "U+{cp:04X}");
        }
    }
    assert!(confusable("Name", "name"));
    assert!(confusable("\u{212A}ey", "key"));
    assert!(!confusable("name", "name"));
    assert!(!confusable("names", "name"));
    assert!(confusable("nam\u{0}e", "name"));
    assert!(confusable(
        "re\u{17F}ourceSub\u{17F}criptions",
        "resourceSubscriptions"
    ));
}
