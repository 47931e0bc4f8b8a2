//! The fuzz contract of `federation`: an oracle that panics when the code
//! beside it breaks a property (fuzz target `federation` and
//! `tests/fuzz_corpus.rs`). Built only for tests and with the `contracts`
//! feature.
//!
//! The first input byte picks the property (`byte % MODES`) and a small
//! parameter (`byte / MODES`: a member index, a prefix mode, a list kind);
//! the rest is split at `0xFF` bytes (never part of UTF-8) into fields,
//! each read as lossy UTF-8. The oracle reads JSON its own way: every
//! member of an object in order, duplicates kept, each value as its raw
//! bytes ([`entries`]), and as a client would (`serde_json::Value`, the
//! last duplicate wins).

#![allow(clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::merge::{self, ListKind};
use super::*;

/// How many properties the first byte chooses from.
const MODES: u8 = 7;

/// Reports a broken contract: the panic is the fuzzer's finding.
#[allow(clippy::panic)]
#[track_caller]
pub(super) fn broken(what: fmt::Arguments<'_>) -> ! {
    panic!("federation contract broken: {what}")
}

/// An object as the oracle reads it: (key unescaped, raw value text).
type Object = Vec<(String, String)>;

/// The oracle's reader of one JSON object: every member in order,
/// duplicates kept, each value's raw text; `None` when `text` is not one
/// JSON object.
pub(super) fn entries(text: &str) -> Option<Object> {
    struct All(Object);
    impl<'de> Deserialize<'de> for All {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = All;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<All, A::Error> {
                    let mut out = Vec::new();
                    while let Some(k) = m.next_key::<String>()? {
                        let v: Box<RawValue> = m.next_value()?;
                        out.push((k, v.get().to_string()));
                    }
                    Ok(All(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<All>(text).ok().map(|a| a.0)
}

/// The raw value of the first member named `key`.
fn first<'a>(o: &'a Object, key: &str) -> Option<&'a str> {
    o.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// JSON text trimmed of the whitespace JSON allows around a value.
fn trimmed(json: &str) -> &str {
    json.trim_matches([' ', '\t', '\n', '\r'])
}

/// `o` as it must read after setting `key` to `value`: the first member
/// named `key` holds `value`, no other member has that name (a reader
/// keeping the last duplicate would read the old value), every other
/// member is as it was and where it was; `key` is added last when absent.
fn with_set(o: &Object, key: &str, value: &str) -> Object {
    let mut out = Vec::with_capacity(o.len() + 1);
    let mut found = false;
    for (k, v) in o {
        if k != key {
            out.push((k.clone(), v.clone()));
        } else if !found {
            found = true;
            out.push((k.clone(), trimmed(value).to_string()));
        }
    }
    if !found {
        out.push((key.to_string(), trimmed(value).to_string()));
    }
    out
}

/// The fields of the input after the first byte.
fn fields(body: &[u8]) -> Vec<String> {
    body.split(|b| *b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

fn field(f: &[String], i: usize) -> &str {
    f.get(i).map_or("", String::as_str)
}

/// The federation's contract on any input (fuzz target `federation`,
/// `cargo test` over `fuzz/corpus/federation`). Panics when broken:
///
/// - mode 0, `json`: `Members::of` never panics and reads exactly the
///   members the oracle reads; `with(key, value)` is one JSON object with
///   `key` once, holding `value`, and every other member byte-equal and in
///   its place (a client's `serde_json::Value` reads the same); `string`
///   round-trips; `set_path(text, ["params", "name"], string(s))` answers
///   exactly when `params` is an object, and changes only `params.name`;
/// - mode 1, ids: `namespace_request` answers exactly for a message with
///   a `method` and a non-null `id`, changes only the id, and the id a
///   client reads back unwraps to (the member, the original raw id) when
///   that was a string or an integer; `unwrap_id` of any text accepts
///   exactly `m<1 to 4 digits>:<a JSON string or integer>`, and what it
///   gives splices into valid JSON; `namespace_events` on a canonical
///   event gives the event of `namespace_message` (request and task ids)
///   and never panics on any
///   bytes;
/// - mode 2, cursors: `decode_cursor` never panics and what it accepts
///   re-encodes to itself; `decode_cursor(encode_cursor(parts))` gives
///   `parts` back for any (upstream, cursor) pairs within the bound;
/// - mode 3, templates: `template_matches` never panics and, on the first
///   12 characters of template and URI, agrees with a plain recursive
///   matcher written from its doc comment;
/// - mode 4, naming: over small member lists and any separator and
///   prefixes, every exposed name maps to a member and an own name that
///   member listed and that exposes as it; clashes are exactly the names
///   two members would expose; under `always` with a configuration the
///   config accepts, nothing clashes and `split` maps every exposed name
///   back to its member and own name (other modes: `split` never answers);
/// - mode 5, lists: `read_page` never panics and reads the page the
///   oracle reads; `merge_list` over the pages (names exposed as the
///   catalog exposes them) is one JSON object whose items are exactly the
///   kept ones, in member order, named by their exposed name (only `name`
///   changed) or the first copy of a URI, the others reported dropped, and
///   whose `nextCursor` decodes to the members' cursors;
/// - mode 6, `upgrade_result` answers exactly when a result object lacks
///   a member it adds, adds only those, and changes nothing else.
pub fn check_contract(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let param = first / MODES;
    let f = fields(body);
    match first % MODES {
        0 => check_json(&f),
        1 => check_ids(body, &f, param),
        2 => check_cursors(&f),
        3 => check_templates(&f),
        4 => check_naming(&f, param),
        5 => check_lists(&f, param),
        _ => check_upgrade(&f, param),
    }
}

/// `s` when it is JSON text, else the JSON string of `s`.
fn json_value(s: &str) -> String {
    if serde_json::from_str::<IgnoredAny>(s).is_ok() {
        s.to_string()
    } else {
        json::string(s)
    }
}

fn check_json(f: &[String]) {
    let (text, key, value, s) = (field(f, 0), field(f, 1), field(f, 2), field(f, 3));
    let lit = json::string(s);
    match serde_json::from_str::<String>(&lit) {
        Ok(back) if back == s => {}
        other => broken(format_args!("string({s:?}) = {lit} reads {other:?}")),
    }
    let Some(m) = json::Members::of(text) else {
        if entries(text).is_some() {
            broken(format_args!("Members refused the object {text:?}"));
        }
        if json::set_path(text, &["params", "name"], &lit).is_some() {
            broken(format_args!("set_path edited {text:?}, not an object"));
        }
        return;
    };
    let Some(orig) = entries(text) else {
        broken(format_args!("Members read {text:?}, not an object"));
    };
    let read: Object =
        m.0.iter()
            .map(|(k, v)| (k.clone(), v.get().to_string()))
            .collect();
    if read != orig {
        broken(format_args!("Members read {read:?}, the oracle {orig:?}"));
    }
    // with: one member set, the rest as it was
    let value = json_value(value);
    let out = m.with(key, &value);
    expect_object(&out, &with_set(&orig, key, &value), "with");
    if let (Ok(Value::Object(o)), Ok(v)) = (
        serde_json::from_str::<Value>(text),
        serde_json::from_str::<Value>(&value),
    ) {
        let Ok(Value::Object(n)) = serde_json::from_str::<Value>(&out) else {
            broken(format_args!("a client cannot read {out:?}"));
        };
        if n.get(key) != Some(&v) {
            broken(format_args!(
                "a client reads {key:?} in {out:?} as {:?}",
                n.get(key)
            ));
        }
        let others = |o: &serde_json::Map<String, Value>| -> BTreeMap<String, Value> {
            o.iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        if others(&o) != others(&n) {
            broken(format_args!(
                "with changed other members: {text:?} -> {out:?}"
            ));
        }
    }
    // set_path: params.name only
    let params = first(&orig, "params").and_then(entries);
    match (json::set_path(text, &["params", "name"], &lit), params) {
        (None, None) => {}
        (Some(out), Some(params)) => {
            let Some(got) = entries(&out) else {
                broken(format_args!("set_path wrote {out:?}, not an object"));
            };
            let want = with_set(&orig, "params", "{}");
            let same_shape = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|((gk, gv), (wk, wv))| gk == wk && (gk == "params" || gv == wv));
            if !same_shape {
                broken(format_args!(
                    "set_path changed more than params: {text:?} -> {out:?}"
                ));
            }
            let inner = first(&got, "params").unwrap_or("");
            expect_object(inner, &with_set(&params, "name", &lit), "set_path params");
            if let Ok(v) = serde_json::from_str::<Value>(&out) {
                if v["params"]["name"].as_str() != Some(s) {
                    broken(format_args!(
                        "a client reads params.name of {out:?} not as {s:?}"
                    ));
                }
            }
        }
        (got, params) => broken(format_args!(
            "set_path({text:?}) = {got:?} while params reads {params:?}"
        )),
    }
}

/// `text` must be one JSON object reading exactly `want`.
#[track_caller]
fn expect_object(text: &str, want: &Object, what: &str) {
    match entries(text) {
        Some(got) if got == *want => {}
        got => broken(format_args!(
            "{what} wrote {text:?}: reads {got:?}, want {want:?}"
        )),
    }
}

/// The raw id a member's request had when a client can answer it: a JSON
/// string or an integer.
fn answerable(raw: &str) -> bool {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(_)) => true,
        Ok(Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

fn check_ids(body: &[u8], f: &[String], param: u8) {
    let m = usize::from(param);
    let text = field(f, 0);
    let orig = entries(text);
    let got = namespace_request(text, m);
    let raw_id = orig.as_ref().and_then(|o| {
        first(o, "method")?;
        first(o, "id").filter(|id| *id != "null")
    });
    match (&got, raw_id) {
        (None, None) => {}
        (Some(out), Some(raw_id)) => {
            let o = orig.clone().unwrap_or_default();
            let Some(new) = entries(out) else {
                broken(format_args!(
                    "namespaced {text:?} into {out:?}, not an object"
                ));
            };
            let wrapped = first(&new, "id").unwrap_or("").to_string();
            expect_object(out, &with_set(&o, "id", &wrapped), "namespace_request");
            // what a client reads and echoes in its answer
            let Ok(id) = serde_json::from_str::<String>(&wrapped) else {
                broken(format_args!("namespaced id {wrapped} is not a string"));
            };
            if let Ok(Value::Object(v)) = serde_json::from_str::<Value>(out) {
                if v.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                    broken(format_args!(
                        "a client reads the id of {out:?} as {:?}",
                        v.get("id")
                    ));
                }
            }
            let answer = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{{}}}}",
                json::string(&id)
            );
            let echoed = json::Members::of(&answer).and_then(|a| a.str("id"));
            if echoed.as_deref() != Some(id.as_str()) {
                broken(format_args!("the answer's id reads {echoed:?}, not {id:?}"));
            }
            let want = answerable(raw_id).then(|| (m, raw_id.to_string()));
            if unwrap_id(&id) != want {
                broken(format_args!(
                    "{id:?} unwraps to {:?}, want {want:?}",
                    unwrap_id(&id)
                ));
            }
        }
        (got, raw_id) => broken(format_args!(
            "namespace_request({text:?}) = {got:?} for the raw id {raw_id:?}"
        )),
    }
    for s in [text, field(f, 1)] {
        check_unwrap(s);
    }
    // the same message as a canonical event; any bytes
    let lines = |t: &str| format!("data: {}\n\n", t.replace('\n', "\ndata: "));
    let event = lines(text);
    // events namespace request ids and task ids (`namespace_message`)
    let both = namespace_message(text, m);
    let want = lines(both.as_deref().unwrap_or(text));
    let out = namespace_events(event.as_bytes(), m);
    if out != want.as_bytes() {
        broken(format_args!(
            "namespace_events({event:?}) = {:?}, want {want:?}",
            String::from_utf8_lossy(&out)
        ));
    }
    let _ = namespace_events(body, m);
    let _ = upgrade_events(body, m % 2 == 0);
}

/// `unwrap_id` accepts exactly `m<1 to 4 digits>:<JSON string or integer>`.
fn check_unwrap(s: &str) {
    let want = (|| {
        let rest = s.strip_prefix('m')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if !(1..=4).contains(&digits) {
            return None;
        }
        let raw = rest[digits..].strip_prefix(':')?;
        if !answerable(raw) {
            return None;
        }
        Some((rest[..digits].parse::<usize>().ok()?, raw.to_string()))
    })();
    let got = unwrap_id(s);
    if got != want {
        broken(format_args!("unwrap_id({s:?}) = {got:?}, want {want:?}"));
    }
    if let Some((_, raw)) = got {
        let spliced = format!("{{\"jsonrpc\":\"2.0\",\"id\":{raw},\"result\":{{}}}}");
        if serde_json::from_str::<IgnoredAny>(&spliced).is_err() {
            broken(format_args!(
                "unwrapped id {raw:?} does not splice into JSON"
            ));
        }
    }
}

/// A composite cursor's bound on its base64 text (`merge::decode_cursor`).
const CURSOR_BOUND: usize = merge::MAX_CURSOR_CHARS;

fn check_cursors(f: &[String]) {
    for c in f {
        if let Some(parts) = merge::decode_cursor(c) {
            if parts.is_empty() {
                broken(format_args!("{c:?} decodes to no member"));
            }
            let again = merge::encode_cursor(&parts).and_then(|e| merge::decode_cursor(&e));
            if again.as_ref() != Some(&parts) {
                broken(format_args!("{c:?} -> {parts:?} re-encodes to {again:?}"));
            }
        }
    }
    let parts: Vec<(String, String)> = f
        .chunks(2)
        .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
        .collect();
    for n in [parts.len(), parts.len().min(1), 0] {
        let parts = &parts[..n];
        let Some(c) = merge::encode_cursor(parts) else {
            if !parts.is_empty() {
                broken(format_args!("no cursor for {parts:?}"));
            }
            continue;
        };
        let Some(b) = c.strip_prefix("mcp-edge:") else {
            broken(format_args!("cursor {c:?} lacks its prefix"));
        };
        if !b
            .bytes()
            .all(|x| x.is_ascii_alphanumeric() || x == b'-' || x == b'_')
        {
            broken(format_args!("cursor {c:?} is not URL-safe base64"));
        }
        let back = merge::decode_cursor(&c);
        let want = (b.len() <= CURSOR_BOUND).then(|| parts.to_vec());
        if back != want {
            broken(format_args!("{parts:?} -> {c:?} -> {back:?}"));
        }
    }
}

/// A piece of a URI template as the reference matcher reads it.
enum Piece {
    Lit(Vec<char>),
    /// An expression; `true` when it may cross `/`, `?` and `#`.
    Var(bool),
}

/// The template's pieces per `template_matches`' doc comment; `None` for
/// an unclosed `{`.
fn pieces(template: &str) -> Option<Vec<Piece>> {
    let cs: Vec<char> = template.chars().collect();
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i] != '{' {
            lit.push(cs[i]);
            i += 1;
            continue;
        }
        let close = (i + 1..cs.len()).find(|j| cs[*j] == '}')?;
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        let op = cs.get(i + 1).filter(|_| i + 1 < close);
        out.push(Piece::Var(op.is_some_and(|c| {
            matches!(c, '+' | '#' | '/' | '?' | '&' | ';' | '.')
        })));
        i = close + 1;
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Some(out)
}

/// Plain recursion over every way to cut the URI (exponential: short
/// inputs only).
fn reference_match(p: &[Piece], u: &[char]) -> bool {
    match p.split_first() {
        None => u.is_empty(),
        Some((Piece::Lit(l), rest)) => u.starts_with(l) && reference_match(rest, &u[l.len()..]),
        Some((Piece::Var(crosses), rest)) => (0..=u.len()).any(|k| {
            u[..k]
                .iter()
                .all(|c| *crosses || !matches!(c, '/' | '?' | '#'))
                && reference_match(rest, &u[k..])
        }),
    }
}

fn check_templates(f: &[String]) {
    let (t, u) = (field(f, 0), field(f, 1));
    let _ = template_matches(t, u);
    let short = |s: &str| s.chars().take(12).collect::<String>();
    let (t, u) = (short(t), short(u));
    let got = template_matches(&t, &u);
    let u_chars: Vec<char> = u.chars().collect();
    let want = pieces(&t).is_some_and(|p| reference_match(&p, &u_chars));
    if got != want {
        broken(format_args!(
            "template_matches({t:?}, {u:?}) = {got}, want {want}"
        ));
    }
}

fn mode_of(param: u8) -> PrefixMode {
    match param % 3 {
        0 => PrefixMode::Always,
        1 => PrefixMode::Conflicts,
        _ => PrefixMode::Never,
    }
}

/// A character of a tool name (the config's alphabet for prefixes and
/// separators).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Whether the configuration accepts this naming for `members` members
/// (`config::compile::virtual_servers`): a separator and prefixes in the
/// tool-name alphabet (restated here), a prefix per member, unique, each
/// one [`prefix_fits`] (the rule the config applies).
fn config_accepts(n: &Naming, members: usize) -> bool {
    let sep = n.separator.as_str();
    let mut seen = BTreeSet::new();
    (1..=8).contains(&sep.len())
        && sep.chars().all(name_char)
        && n.prefixes.len() >= members
        && n.prefixes.iter().all(|p| {
            (1..=64).contains(&p.len())
                && p.chars().all(name_char)
                && seen.insert(p.as_str())
                && prefix_fits(p, sep)
        })
}

fn check_naming(f: &[String], param: u8) {
    let mode = mode_of(param);
    let naming = Naming {
        separator: field(f, 0).to_string(),
        mode,
        prefixes: field(f, 1).split(',').take(8).map(str::to_string).collect(),
    };
    let lists: Vec<(usize, Vec<String>)> = f
        .iter()
        .skip(2)
        .take(6)
        .enumerate()
        .map(|(m, l)| (m, l.split(',').take(6).map(str::to_string).collect()))
        .collect();
    let e = naming.expose(&lists);
    // what each member's name would be exposed as
    let mut listed_by: HashMap<&str, BTreeSet<usize>> = HashMap::new();
    for (m, names) in &lists {
        for n in names {
            listed_by.entry(n).or_default().insert(*m);
        }
    }
    let prefix = |m: usize| naming.prefixes.get(m).map_or("", String::as_str);
    let mut would: BTreeMap<String, BTreeMap<usize, BTreeSet<&str>>> = BTreeMap::new();
    for (m, names) in &lists {
        for own in names {
            let shared = listed_by.get(own.as_str()).map_or(0, BTreeSet::len) > 1;
            let exposed = match mode {
                PrefixMode::Always => format!("{}{}{own}", prefix(*m), naming.separator),
                PrefixMode::Conflicts if shared => {
                    format!("{}{}{own}", prefix(*m), naming.separator)
                }
                PrefixMode::Conflicts | PrefixMode::Never => own.clone(),
            };
            would
                .entry(exposed)
                .or_default()
                .entry(*m)
                .or_default()
                .insert(own);
        }
    }
    let mut clashes = Vec::new();
    for (exposed, by) in &would {
        if by.len() == 1 {
            let (m, owns) = by.iter().next().map_or((0, None), |(m, o)| (*m, Some(o)));
            match e.names.get(exposed) {
                Some(x) if x.member == m && owns.is_some_and(|o| o.contains(x.own.as_str())) => {}
                got => broken(format_args!(
                    "{exposed:?} is member {m}'s {owns:?}, exposed as {got:?}"
                )),
            }
        } else {
            clashes.push((exposed.clone(), by.keys().copied().collect::<Vec<_>>()));
        }
    }
    if e.clashes != clashes || e.names.len() + clashes.len() != would.len() {
        broken(format_args!(
            "exposure {e:?}, want clashes {clashes:?} of {would:?}"
        ));
    }
    if mode != PrefixMode::Always {
        if let Some(name) = e.names.keys().find(|n| naming.split(n).is_some()) {
            broken(format_args!("split({name:?}) answered under {mode:?}"));
        }
        return;
    }
    if !config_accepts(&naming, lists.len()) {
        return;
    }
    if !e.clashes.is_empty() {
        broken(format_args!("{naming:?} has clashes {:?}", e.clashes));
    }
    for (exposed, x) in &e.names {
        let got = naming.split(exposed);
        if !x.own.is_empty() && got.as_ref() != Some(x) {
            broken(format_args!(
                "{naming:?}: split({exposed:?}) = {got:?}, exposed for {x:?}"
            ));
        }
    }
}

const KINDS: [ListKind; 4] = [
    ListKind::Tools,
    ListKind::Prompts,
    ListKind::Resources,
    ListKind::Templates,
];

/// The page the oracle reads: the first list member an array of objects
/// with a string id (the first one), `nextCursor` a string or null.
fn oracle_page(kind: ListKind, text: &str) -> Option<merge::MemberPage> {
    let top = entries(text)?;
    let list: Vec<Box<RawValue>> = serde_json::from_str(first(&top, kind.key())?).ok()?;
    let mut items = Vec::new();
    for raw in list {
        let item = entries(raw.get())?;
        let id: String = serde_json::from_str(first(&item, kind.id_key())?).ok()?;
        items.push((id, raw.get().to_string()));
    }
    let next = match first(&top, "nextCursor") {
        None | Some("null") => None,
        Some(v) => Some(serde_json::from_str::<String>(v).ok()?),
    };
    Some(merge::MemberPage { items, next })
}

fn check_lists(f: &[String], param: u8) {
    let kind = KINDS[usize::from(param % 4)];
    let naming = Naming {
        separator: "__".into(),
        mode: mode_of(param / 4),
        prefixes: (0..6).map(|i| format!("p{i}")).collect(),
    };
    let mut pages = Vec::new();
    for (m, text) in f.iter().take(6).enumerate() {
        let page = merge::read_page(kind, text);
        let want = oracle_page(kind, text);
        if page != want {
            broken(format_args!(
                "read_page({kind:?}, {text:?}) = {page:?}, want {want:?}"
            ));
        }
        if let Some(p) = page {
            pages.push((m, p));
        }
    }
    let mut catalog = Catalog::default();
    if let Some(named) = kind.named() {
        for (m, p) in &pages {
            let ids = p.items.iter().map(|(id, _)| id.clone()).collect();
            catalog.learn_names(&naming, named, *m, ids, true);
        }
    }
    let exposure = kind.named().map(|n| catalog.names(n).clone());
    let next: Vec<(String, String)> = pages
        .iter()
        .filter_map(|(m, p)| Some((format!("u{m}"), p.next.clone()?)))
        .collect();
    let (out, dropped) =
        merge::merge_list(kind, &pages, exposure.as_ref(), merge::encode_cursor(&next));
    let Some(top) = entries(&out) else {
        broken(format_args!("merged {out:?}, not an object"));
    };
    let keys: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
    let want_keys: &[&str] = if next.is_empty() {
        &[kind.key()]
    } else {
        &[kind.key(), "nextCursor"]
    };
    if keys != want_keys {
        broken(format_args!("merged {out:?} has members {keys:?}"));
    }
    if let Some(c) = first(&top, "nextCursor") {
        let back = serde_json::from_str::<String>(c)
            .ok()
            .and_then(|c| merge::decode_cursor(&c));
        if back.as_ref() != Some(&next) {
            broken(format_args!("nextCursor {c} reads {back:?}, want {next:?}"));
        }
    }
    let items: Vec<Box<RawValue>> =
        match serde_json::from_str(first(&top, kind.key()).unwrap_or("")) {
            Ok(v) => v,
            Err(e) => broken(format_args!("merged list of {out:?} is not an array: {e}")),
        };
    let mut got = items.iter().map(|r| r.get());
    let mut owner: HashMap<&str, usize> = HashMap::new();
    let mut dropped_ids = BTreeSet::new();
    for (m, page) in &pages {
        for (id, raw) in &page.items {
            let kept = match &exposure {
                Some(e) => {
                    let Some((name, _)) =
                        e.names.iter().find(|(_, x)| x.member == *m && x.own == *id)
                    else {
                        if !dropped.clashes.contains(id) {
                            broken(format_args!(
                                "member {m}'s {id:?} is not exposed and not reported dropped"
                            ));
                        }
                        dropped_ids.insert(id.as_str());
                        continue;
                    };
                    let orig = entries(raw).unwrap_or_default();
                    with_set(&orig, "name", &json::string(name))
                }
                None => {
                    if let Some(o) = owner.get(id.as_str()) {
                        let reported = dropped
                            .duplicate_uris
                            .iter()
                            .any(|(u, first, others)| u == id && first == o && others.contains(m));
                        if !reported {
                            broken(format_args!(
                                "member {m}'s copy of {id:?} (member {o} lists it first) not reported dropped"
                            ));
                        }
                        continue;
                    }
                    owner.insert(id, *m);
                    entries(raw).unwrap_or_default()
                }
            };
            let Some(item) = got.next() else {
                broken(format_args!("merged {out:?} lacks member {m}'s {id:?}"));
            };
            let read = entries(item);
            // the new name as the oracle writes it, compared unescaped
            let unescaped = |o: Option<Object>| {
                o.map(|o| {
                    o.into_iter()
                        .map(|(k, v)| match serde_json::from_str::<String>(&v) {
                            Ok(s) if k == "name" && exposure.is_some() => (k, s),
                            _ => (k, v),
                        })
                        .collect::<Object>()
                })
            };
            if unescaped(read) != unescaped(Some(kept.clone())) {
                broken(format_args!("merged item {item:?}, want {kept:?}"));
            }
        }
    }
    if let Some(extra) = got.next() {
        broken(format_args!("merged {out:?} has an extra item {extra:?}"));
    }
    if dropped
        .clashes
        .iter()
        .any(|c| !dropped_ids.contains(c.as_str()))
    {
        broken(format_args!(
            "clashes {:?} were not dropped",
            dropped.clashes
        ));
    }
}

fn check_upgrade(f: &[String], param: u8) {
    let text = field(f, 0);
    let cacheable = param % 2 == 1;
    let got = upgrade_result(text, cacheable);
    let want = (|| {
        let top = entries(text)?;
        let result = entries(first(&top, "result")?)?;
        let mut new = result.clone();
        let mut adds = vec![("resultType", "\"complete\"")];
        if cacheable {
            adds.extend([("ttlMs", "0"), ("cacheScope", "\"private\"")]);
        }
        for (k, v) in adds {
            if first(&result, k).is_none() {
                new.push((k.to_string(), v.to_string()));
            }
        }
        (new != result).then_some((top, new))
    })();
    match (&got, want) {
        (None, None) => {}
        (Some(out), Some((top, new))) => {
            let Some(read) = entries(out) else {
                broken(format_args!(
                    "upgraded {text:?} into {out:?}, not an object"
                ));
            };
            let r = first(&read, "result").unwrap_or("").to_string();
            expect_object(out, &with_set(&top, "result", &r), "upgrade_result");
            expect_object(&r, &new, "upgrade_result's result");
        }
        (got, want) => broken(format_args!(
            "upgrade_result({text:?}) = {got:?}, want {want:?}"
        )),
    }
}
