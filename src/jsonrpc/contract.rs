//! The inspector's contract, checked against a full parse of the same body
//! (fuzz target `jsonrpc_inspect`, and `cargo test` over its committed
//! corpus). The oracle is written from JSON-RPC 2.0 and the documented
//! [`InvalidReason`]s, not from the inspector's code.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::inspect::keys;
use super::{
    error_body, inspect, Envelope, Field, Id, InspectError, InvalidReason, Kind, Subscriptions,
    Text,
};

/// A parsed JSON value that keeps every object member in order, duplicates
/// included (`serde_json::Value` keeps only the last of a duplicated key).
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool,
    Int(i64),
    Uint(u64),
    Float,
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<J, E> {
        Ok(J::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<J, E> {
        Ok(J::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J, E> {
        Ok(match i64::try_from(v) {
            Ok(n) => J::Int(n),
            Err(_) => J::Uint(v),
        })
    }
    fn visit_f64<E>(self, _: f64) -> Result<J, E> {
        Ok(J::Float)
    }
    fn visit_str<E>(self, v: &str) -> Result<J, E> {
        Ok(J::Str(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(J::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, J>()? {
            out.push((k, v));
        }
        Ok(J::Obj(out))
    }
}

impl J {
    /// Nesting depth: a scalar is 0, a container one more than its deepest member.
    fn depth(&self) -> u32 {
        match self {
            J::Arr(v) => 1 + v.iter().map(J::depth).max().unwrap_or(0),
            J::Obj(m) => 1 + m.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }
    /// The last member named `key` (what `serde_json::Value` keeps).
    fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// Whether one of `keys` appears more than once among the members.
    fn duplicates(&self, keys: &[&str]) -> bool {
        match self {
            J::Obj(m) => keys
                .iter()
                .any(|key| m.iter().filter(|(k, _)| k == key).count() > 1),
            _ => false,
        }
    }
    /// Every member named `key` (all of them, duplicates included).
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a J> + 'a {
        let members: &[(String, J)] = match self {
            J::Obj(m) => m,
            _ => &[],
        };
        members
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The objects whose keys the inspector reads, with those keys: the
/// envelope, every `params` object, and the `_meta`, `ref` and
/// `notifications` objects under them (every member of each name,
/// duplicates included).
fn read_objects(top: &J) -> Vec<(&J, &'static [&'static str])> {
    let mut out = vec![(top, keys::ENVELOPE)];
    for params in top.all("params").filter(|p| matches!(p, J::Obj(_))) {
        out.push((params, keys::PARAMS));
        for (name, list) in [
            ("_meta", keys::META),
            ("ref", keys::REF),
            ("notifications", keys::NOTIFICATIONS),
        ] {
            for inner in params.all(name).filter(|v| matches!(v, J::Obj(_))) {
                out.push((inner, list));
            }
        }
    }
    out
}

/// A duplicate at a level the inspector must refuse: any key it reads, in
/// any object it reads keys of.
fn has_envelope_duplicate(top: &J) -> bool {
    read_objects(top)
        .into_iter()
        .any(|(obj, keys)| obj.duplicates(keys))
}

/// The rule, stated independently of the inspector's folding table: a key
/// is confusable with a read key when it is not that key but equals it once
/// control characters are dropped and both are case-mapped the way a
/// case-insensitive parser may (lower, then upper, then lower: full
/// mappings, so `ß` is `ss` and `ſ` is `s`).
fn is_confusable(key: &str, read: &str) -> bool {
    if key == read {
        return false;
    }
    let stripped: String = key.chars().filter(|c| !c.is_control()).collect();
    stripped.to_lowercase().to_uppercase().to_lowercase() == read.to_lowercase()
}

/// Reasons the key rules give: an envelope member other than the six, a
/// confusable key in `params`, `_meta`, `ref` or `notifications`, a
/// duplicated read key.
fn key_reasons(top: &J) -> Vec<InvalidReason> {
    let mut why = Vec::new();
    if let J::Obj(m) = top {
        if m.iter().any(|(k, _)| !keys::ENVELOPE.contains(&k.as_str())) {
            why.push(InvalidReason::UnknownMember);
        }
    }
    let confusable = read_objects(top)
        .into_iter()
        .skip(1)
        .any(|(obj, list)| match obj {
            J::Obj(m) => m
                .iter()
                .any(|(k, _)| list.iter().any(|r| is_confusable(k, r))),
            _ => false,
        });
    if confusable {
        why.push(InvalidReason::ConfusableKey);
    }
    if has_envelope_duplicate(top) {
        why.push(InvalidReason::DuplicateKey);
    }
    why
}

/// What the inspector must answer for a body that parsed as `top` (no
/// duplicates left to consider) with `max_depth`: the kind, or every reason
/// that would justify refusing it.
fn expected(top: &J, max_depth: u32) -> Result<Kind, Vec<InvalidReason>> {
    use InvalidReason::*;
    if top.depth() > max_depth {
        return Err(vec![TooDeep]);
    }
    match top {
        J::Arr(_) => return Err(vec![Batch]),
        J::Obj(_) => {}
        _ => return Err(vec![NotObject]),
    }
    let keyed = key_reasons(top);
    if !keyed.is_empty() {
        return Err(keyed);
    }
    let mut why = Vec::new();
    if top.get("jsonrpc") != Some(&J::Str("2.0".into())) {
        why.push(Version);
    }
    let id = top.get("id");
    let id_ok = matches!(
        id,
        None | Some(J::Null | J::Int(_) | J::Uint(_) | J::Str(_))
    );
    if !id_ok {
        why.push(BadId);
    }
    let answer = top.get("result").is_some() || top.get("error").is_some();
    let kind = match top.get("method") {
        Some(J::Str(_)) => {
            if answer {
                why.push(NotAMessage);
            }
            match id {
                None => Some(Kind::Notification),
                Some(J::Null) => {
                    why.push(BadId);
                    None
                }
                Some(_) => Some(Kind::Request),
            }
        }
        Some(_) => {
            why.push(MethodNotString);
            None
        }
        None => {
            let both = top.get("result").is_some() && top.get("error").is_some();
            if id.is_none() || !answer || both {
                why.push(NotAMessage);
            }
            // JSON-RPC 2.0 §5: a null id only answers a request whose id
            // could not be read, so only an error may carry it
            if matches!(id, Some(J::Null)) && top.get("error").is_none() {
                why.push(BadId);
            }
            Some(Kind::Response)
        }
    };
    match kind {
        Some(k) if why.is_empty() => Ok(k),
        _ => Err(why),
    }
}

/// A text field agrees with the parsed string: the same text and, when it is
/// a span, exactly the bytes between the quotes of an escape-free string.
fn same_text(body: &[u8], t: &Text, want: &str, what: &str) {
    assert_eq!(t.as_str(body), want, "{what}");
    if let Text::Span(s, e) = t {
        let (s, e) = (*s as usize, *e as usize);
        assert!(s >= 1 && e < body.len(), "{what}: span out of the body");
        assert_eq!(body[s - 1], b'"', "{what}: span does not start a string");
        assert_eq!(body[e], b'"', "{what}: span does not end a string");
        assert!(!body[s..e].contains(&b'\\'), "{what}: span has escapes");
    }
}

/// A `params` string member as the inspector reports it: `(text, not_string)`.
fn same_member(body: &[u8], got: (&Option<Text>, bool), params: Option<&J>, key: &str) {
    match params.and_then(|p| p.get(key)) {
        None => assert!(got.0.is_none() && !got.1, "params.{key} absent"),
        Some(J::Str(s)) => {
            assert!(!got.1, "params.{key} is a string");
            match got.0 {
                Some(t) => same_text(body, t, s, key),
                None => broken(format_args!(
                    "params.{key} is a string but was not reported"
                )),
            }
        }
        Some(_) => assert!(got.0.is_none() && got.1, "params.{key} is not a string"),
    }
}

/// A read string field agrees with the parse: absent, the same string, or
/// flagged as not a string.
fn same_field(body: &[u8], got: &Field, want: Option<&J>, what: &str) {
    match (want, got) {
        (None, Field::Absent) => {}
        (Some(J::Str(s)), Field::Str(t)) => same_text(body, t, s, what),
        (Some(J::Str(_)), _) => broken(format_args!("{what} is a string, got {got:?}")),
        (Some(_), Field::NotString) => {}
        (want, got) => broken(format_args!("{what}: {want:?} vs {got:?}")),
    }
}

/// `params.ref` as the inspector reports it.
fn same_ref(body: &[u8], e: &Envelope, params: Option<&J>) {
    match (params.and_then(|p| p.get("ref")), e.reference.as_deref()) {
        (None, None) => {}
        (Some(r @ J::Obj(_)), Some(got)) => {
            assert!(!got.not_object, "ref is an object");
            same_field(body, &got.kind, r.get("type"), "ref.type");
            same_field(body, &got.name, r.get("name"), "ref.name");
            same_field(body, &got.uri, r.get("uri"), "ref.uri");
        }
        (Some(_), Some(got)) => assert!(
            got.not_object && got.kind == Field::Absent,
            "ref is not an object"
        ),
        (want, got) => broken(format_args!("ref: {want:?} vs {got:?}")),
    }
}

/// `params.notifications.resourceSubscriptions` as the inspector reports it.
fn same_subscriptions(body: &[u8], e: &Envelope, params: Option<&J>) {
    let want = params.and_then(|p| p.get("notifications"));
    let list = match want {
        None => None,
        Some(n @ J::Obj(_)) => n.get("resourceSubscriptions").map(Some),
        Some(_) => Some(None),
    };
    match (list, &e.subscriptions) {
        (None, None) => {}
        (Some(Some(J::Arr(items))), Some(Subscriptions::Uris(got)))
            if items.iter().all(|i| matches!(i, J::Str(_))) =>
        {
            assert_eq!(items.len(), got.len(), "resourceSubscriptions length");
            for (i, t) in items.iter().zip(got) {
                if let J::Str(s) = i {
                    same_text(body, t, s, "resourceSubscriptions[]");
                }
            }
        }
        (Some(Some(J::Arr(items))), Some(Subscriptions::Malformed))
            if !items.iter().all(|i| matches!(i, J::Str(_))) => {}
        (Some(Some(J::Arr(_))), got) => broken(format_args!("resourceSubscriptions: got {got:?}")),
        (Some(_), Some(Subscriptions::Malformed)) => {}
        (want, got) => broken(format_args!("notifications: {want:?} vs {got:?}")),
    }
}

/// Reports a broken contract: the panic is the fuzzer's finding.
#[allow(clippy::panic)]
#[track_caller]
fn broken(what: fmt::Arguments<'_>) -> ! {
    panic!("jsonrpc inspect contract broken: {what}")
}

/// An accepted envelope says what the full parse says.
fn same_envelope(body: &[u8], e: &Envelope, top: &J, value: &serde_json::Value) {
    // method
    match (top.get("method"), &e.method) {
        (None, None) => {}
        (Some(J::Str(m)), Some(t)) => {
            same_text(body, t, m, "method");
            assert_eq!(value["method"].as_str(), Some(m.as_str()));
        }
        (want, got) => broken(format_args!("method: {want:?} vs {got:?}")),
    }
    // id
    match (top.get("id"), &e.id) {
        (None, None) | (Some(J::Null), Some(Id::Null)) => {}
        (Some(J::Int(n)), Some(Id::Int(m))) => {
            assert_eq!(n, m, "id");
            assert_eq!(value["id"].as_i64(), Some(*n));
        }
        (Some(J::Uint(n)), Some(Id::Uint(m))) => {
            assert_eq!(n, m, "id");
            assert!(*m > i64::MAX as u64, "Uint id that fits i64");
            assert_eq!(value["id"].as_u64(), Some(*n));
        }
        (Some(J::Str(s)), Some(Id::Str(t))) => {
            same_text(body, t, s, "id");
            assert_eq!(value["id"].as_str(), Some(s.as_str()));
        }
        (want, got) => broken(format_args!("id: {want:?} vs {got:?}")),
    }
    // params.name, params.uri, params._meta version (params as an object only)
    let params = top.get("params").filter(|p| matches!(p, J::Obj(_)));
    same_member(body, (&e.name, e.name_not_string), params, "name");
    same_member(body, (&e.uri, e.uri_not_string), params, "uri");
    let version = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_VERSION));
    match (version, &e.meta_version) {
        (Some(J::Str(v)), Some(t)) => same_text(body, t, v, "_meta version"),
        (Some(J::Str(_)), None) => broken(format_args!("_meta version not reported")),
        (_, got) => assert!(got.is_none(), "_meta version that is not a string"),
    }
    same_ref(body, e, params);
    same_subscriptions(body, e, params);
    if let Some(serde_json::Value::String(n)) = value.get("params").and_then(|p| p.get("name")) {
        assert_eq!(e.name(body), Some(n.as_str()));
    }
    // the id echoes into a well-formed error body
    let err = error_body(e.id_ref(body), -32600, "x");
    let echoed: serde_json::Value = serde_json::from_slice(&err).unwrap_or_default();
    assert_eq!(echoed["jsonrpc"], "2.0", "error body is not JSON-RPC");
    match e.id.as_ref() {
        None | Some(Id::Null) => assert!(echoed["id"].is_null()),
        Some(_) => assert_eq!(echoed["id"], value["id"], "error body id"),
    }
}

/// One inspection of `body` at `max_depth` against the full parse.
fn check_at(body: &[u8], parsed: Option<(&J, &serde_json::Value)>, max_depth: u32) {
    let got = inspect(body, max_depth);
    let Some((top, value)) = parsed else {
        // not JSON (or past serde_json's own recursion limit): a parse error,
        // or too deep if the depth limit was crossed before the bad byte
        assert!(
            matches!(
                got,
                Err(InspectError::Parse | InspectError::Invalid(InvalidReason::TooDeep))
            ),
            "malformed JSON answered {got:?}"
        );
        return;
    };
    match (expected(top, max_depth), &got) {
        (Ok(kind), Ok(e)) => {
            assert_eq!(e.kind, kind, "kind");
            same_envelope(body, e, top, value);
        }
        (Ok(kind), Err(err)) => broken(format_args!("valid {kind:?} refused: {err:?}")),
        (Err(why), Ok(e)) => broken(format_args!("accepted {e:?}, but {why:?}")),
        (Err(why), Err(InspectError::Invalid(r))) => {
            assert!(
                why.contains(r),
                "refused as {r:?}, but the reasons are {why:?}"
            )
        }
        (Err(why), Err(InspectError::Parse)) => {
            broken(format_args!("well-formed JSON answered Parse ({why:?})"))
        }
    }
}

/// The inspector's contract on any body (fuzz target `jsonrpc_inspect`,
/// `cargo test` over `fuzz/corpus/jsonrpc_inspect`). Panics when broken:
///
/// - malformed JSON is `Parse` (or `TooDeep`), never accepted; well-formed
///   JSON is never `Parse`;
/// - a body is accepted exactly when a full parse (an order-preserving tree
///   that keeps duplicate keys, and `serde_json::Value`) finds one JSON-RPC
///   2.0 request, notification or response within the depth limit, with no
///   duplicated envelope key, `params.name`/`uri`/`_meta` or `_meta`
///   protocol version; batches are refused as `Batch`;
/// - every refusal names a reason that holds;
/// - an accepted envelope has the parse's kind, `method`, `id`,
///   `params.name`, `params.uri`, `_meta` protocol version, `params.ref`
///   and `resourceSubscriptions`, spans are the
///   exact escape-free bytes between a string's quotes, and the id echoes
///   into a well-formed error body;
/// - all of this at the default depth limit (64), at the body's own depth
///   and one below it.
#[doc(hidden)]
pub fn check_contract(body: &[u8]) {
    let tree = {
        let mut de = serde_json::Deserializer::from_slice(body);
        J::deserialize(&mut de).and_then(|j| de.end().map(|()| j))
    };
    let value = serde_json::from_slice::<serde_json::Value>(body);
    assert_eq!(
        tree.is_ok(),
        value.is_ok(),
        "the two full parses disagree on whether this is JSON"
    );
    let parsed = match (&tree, &value) {
        (Ok(t), Ok(v)) => Some((t, v)),
        _ => None,
    };
    check_at(body, parsed, 64);
    if let Some((top, _)) = parsed {
        let depth = top.depth();
        for max in [depth, depth.saturating_sub(1)] {
            if max != 64 && max <= 100 {
                check_at(body, parsed, max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_holds_on_known_bodies() {
        for b in [
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"math.add","arguments":{"a":1}}}"#,
            r#"{"jsonrpc":"2.0","id":"a\"b","method":"tools\/call","params":{"name":"adm\u0069n.x"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"name":"a","n\u0061me":"b"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#""hello""#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[[[[1]]]]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"admin.drop"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"},"Name":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"ur\u0131":"a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"ref":{"type":"ref/prompt","name":"p"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"ref":[1],"notifications":{"resourceSubscriptions":["a:b",2]}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"notifications":{"resourceSubscriptions":["a:b"]}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"notifications":{"Re\u017fourceSubscriptions":[]}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"IO.modelcontextprotocol/protocolVersion":"1"}}}"#,
            "{",
            "",
        ] {
            check_contract(b.as_bytes());
        }
    }

    #[test]
    fn duplicates_are_seen_at_every_envelope_level() {
        let j = |s: &str| serde_json::from_str::<J>(s).unwrap_or(J::Null);
        assert!(has_envelope_duplicate(&j(r#"{"id":1,"id":2}"#)));
        assert!(has_envelope_duplicate(&j(
            r#"{"params":{"uri":1,"uri":2}}"#
        )));
        assert!(has_envelope_duplicate(&j(
            r#"{"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":1,"io.modelcontextprotocol/protocolVersion":2}}}"#
        )));
        assert!(!has_envelope_duplicate(&j(
            r#"{"x":1,"x":2,"params":{"a":1,"a":2}}"#
        )));
        assert!(has_envelope_duplicate(&j(
            r#"{"params":{"ref":{"uri":1,"uri":2}}}"#
        )));
        assert!(is_confusable("\u{212A}ey", "key"));
        assert!(is_confusable("\u{1E9E}", "ss"));
        assert!(!is_confusable("names", "name"));
    }
}
