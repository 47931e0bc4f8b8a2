//! What an upstream answer may carry to the client, failing closed.
//!
//! Every JSON body and every SSE event the gateway relays is one JSON-RPC
//! message it reads before the client does (POST answers, GET streams,
//! replays after `Last-Event-ID` alike: a list can arrive on any of them):
//!
//! - a result that carries `tools`, `prompts`, `resources` or
//!   `resourceTemplates` keeps only the items the principal may use (by
//!   `name`, `uri` normalized, `uriTemplate`); an item whose key is missing,
//!   not a string, duplicated or spelled in another case is dropped, and
//!   so are all items that share a name (or URI) with another item of the
//!   list;
//! - a message that is not a JSON object, a list that is not an array, a
//!   duplicated or case-variant `result` or list key becomes a JSON-RPC
//!   error (case-insensitive client parsers would read what was not
//!   filtered);
//! - SSE is parsed by the WHATWG rules (CR, LF and CRLF line ends, one
//!   leading BOM, multi-line `data:`, comments, fields without a colon) and
//!   written back canonically (LF only, one field per line), so every
//!   client parser reads the events the gateway read; an event still
//!   unterminated when the stream ends is dropped, as WHATWG clients do;
//! - one message larger than the inspection bound becomes an error too.
//!
//! Content types are compared case-insensitively with their parameters
//! ([`media`]). Unfiltered bytes are passed on unchanged. Pingora-free.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::call::Item;
use crate::jsonrpc::confusable;

/// A response body's media type, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json` or any `+json` type.
    Json,
    /// `text/event-stream`.
    Sse,
    /// Something else.
    Other,
    /// No `Content-Type`.
    Absent,
}

/// The media type of a `Content-Type` value: the essence before any
/// parameter, trimmed, compared ignoring ASCII case.
pub fn media(content_type: Option<&[u8]>) -> Media {
    let Some(v) = content_type else {
        return Media::Absent;
    };
    let essence = v.split(|b| *b == b';').next().unwrap_or(b"").trim_ascii();
    if essence.eq_ignore_ascii_case(b"text/event-stream") {
        Media::Sse
    } else if essence.eq_ignore_ascii_case(b"application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].starts_with(b"application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json"))
    {
        Media::Json
    } else {
        Media::Other
    }
}

/// The keys of a result whose arrays are filtered, with the item key each
/// item is identified by.
const LISTS: &[(&str, &str, Item)] = &[
    ("tools", "name", Item::Tool),
    ("prompts", "name", Item::Prompt),
    ("resources", "uri", Item::Resource),
    ("resourceTemplates", "uriTemplate", Item::Resource),
];

/// What one message may be relayed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// As it is.
    Pass,
    /// With hidden items removed.
    Rewritten(Vec<u8>),
    /// Not at all: replaced by a JSON-RPC error with this message.
    Refused(&'static str),
}

/// Who may see what: `(kind, name or normalized URI)`.
pub type Allowed<'a> = dyn Fn(Item, &str) -> bool + 'a;

/// What a client sees of a tool a list result carries (`tool_overrides`):
/// asked for every tool the principal may see, with its name and the item
/// as the upstream wrote it.
pub trait ToolView: Send + Sync + fmt::Debug {
    /// The tool as it is, another text for it, or nothing.
    fn view(&self, name: &str, item: &str) -> ItemView;
}

/// One tool item of a list, as a [`ToolView`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemView {
    /// As the upstream wrote it.
    Keep,
    /// Left out of the list.
    Drop,
    /// This JSON object instead.
    Replace(String),
}

/// Checks one JSON-RPC message from an upstream.
pub fn check_message(json: &[u8], allowed: &Allowed<'_>) -> Checked {
    check_message_with(json, allowed, None)
}

/// [`check_message`], with the tools of a list result shown through
/// `tools`.
pub fn check_message_with(
    json: &[u8],
    allowed: &Allowed<'_>,
    tools: Option<&dyn ToolView>,
) -> Checked {
    // Skipped strings are not checked by serde_json: without this, bytes a
    // client decodes as U+FFFD (or refuses) would pass unread.
    if std::str::from_utf8(json).is_err() {
        return Checked::Refused("upstream message is not valid UTF-8");
    }
    if has_lone_surrogate(json) {
        return Checked::Refused("upstream message has an unpaired surrogate escape");
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let scan = match TopScan
        .deserialize(&mut de)
        .and_then(|s| de.end().map(|()| s))
    {
        Ok(s) => s,
        Err(_) => return Checked::Refused("upstream message is not valid JSON"),
    };
    let lists = match scan {
        Top::NotObject => return Checked::Refused("upstream message is not a JSON object"),
        Top::Ambiguous => {
            return Checked::Refused("upstream message has duplicate or case-variant keys")
        }
        Top::Lists(l) if l.is_empty() => return Checked::Pass,
        Top::Lists(l) => l,
    };
    let base = json.as_ptr() as usize;
    let mut spans: Vec<(usize, usize, usize)> = lists
        .into_iter()
        .map(|(s, e, i)| (s.wrapping_sub(base), e.wrapping_sub(base), i))
        .collect();
    spans.sort_by_key(|(s, _, _)| *s);
    let mut out = Vec::with_capacity(json.len());
    let mut at = 0;
    for (start, end, which) in spans {
        let Some(raw) = json.get(start..end).filter(|_| start >= at) else {
            return Checked::Refused("upstream list could not be filtered");
        };
        let Some(kept) = filter_list(raw, which, allowed, tools) else {
            return Checked::Refused("upstream list is not an array");
        };
        out.extend_from_slice(&json[at..start]);
        out.extend_from_slice(&kept);
        at = end;
    }
    out.extend_from_slice(&json[at..]);
    if out == json {
        Checked::Pass
    } else {
        Checked::Rewritten(out)
    }
}

/// Whether some string of `json` escapes a surrogate that is not paired
/// (`"\\ud800"` alone). serde_json skips strings it is not asked to read
/// without checking their escapes, and clients disagree on such strings
/// (JavaScript keeps the lone code unit, Python keeps it too, Rust and Go
/// refuse or write U+FFFD): an answer is relayed only when every reader
/// decodes it alike. A byte scan finds the rare candidate (`\\u` then `d8`
/// to `df`); only then is the whole message decoded, which refuses lone
/// surrogates.
fn has_lone_surrogate(json: &[u8]) -> bool {
    let candidate = json.windows(4).any(|w| {
        w[0] == b'\\'
            && w[1] == b'u'
            && (w[2] | 0x20) == b'd'
            && matches!(w[3] | 0x20, b'8'..=b'9' | b'a'..=b'f')
    });
    candidate && serde_json::from_slice::<serde_json::Value>(json).is_err()
}

/// The error that replaces a message that cannot be relayed, echoing `id`.
pub fn refused_body(id: Option<crate::jsonrpc::IdRef<'_>>, message: &str) -> Bytes {
    crate::jsonrpc::error_body(id, crate::error::INTERNAL_ERROR, message)
}

/// The id of a message, when it has a usable one (for the error that
/// replaces it).
fn message_id(json: &[u8]) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    match v.get("id")? {
        id @ (serde_json::Value::String(_) | serde_json::Value::Number(_)) => Some(id.clone()),
        _ => None,
    }
}

/// The replacement of a refused message, with its own id when it has one.
fn replacement(json: &[u8], message: &str) -> Vec<u8> {
    let id = message_id(json).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": crate::error::INTERNAL_ERROR, "message": message},
    })
    .to_string()
    .into_bytes()
}

/// Filters one list array: `None` when it is not an array of JSON values.
fn filter_list(
    raw: &[u8],
    which: usize,
    allowed: &Allowed<'_>,
    tools: Option<&dyn ToolView>,
) -> Option<Vec<u8>> {
    let items: Vec<&RawValue> = serde_json::from_slice(raw).ok()?;
    let (_, key, kind) = LISTS[which];
    let names: Vec<Option<String>> = items.iter().map(|i| item_key(i.get(), key)).collect();
    // a name listed twice is ambiguous (clients keep the first or the
    // last; a pin or an override would hold for one of them): neither is
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for n in names.iter().flatten() {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    let twice = |n: &str| counts.get(n).is_some_and(|c| *c > 1);
    let mut out = Vec::with_capacity(raw.len());
    out.push(b'[');
    let mut first = true;
    for (item, name) in items.iter().zip(names.iter().cloned()) {
        let text = item.get();
        if name.as_deref().is_some_and(twice) {
            continue;
        }
        let keep = match &name {
            Some(name) => match kind {
                Item::Resource => crate::uri::normalize(name).is_ok_and(|n| allowed(kind, &n)),
                _ => allowed(kind, name),
            },
            None => false,
        };
        if !keep {
            continue;
        }
        let shown = match (kind, tools, &name) {
            (Item::Tool, Some(v), Some(name)) => v.view(name, text),
            _ => ItemView::Keep,
        };
        let text = match &shown {
            ItemView::Keep => text,
            ItemView::Drop => continue,
            ItemView::Replace(t) => t.as_str(),
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b']');
    Some(out)
}

/// The identifying key of a list item: `None` when the item is not an
/// object, or the key is missing, not a string, duplicated, or present in
/// another spelling that case-folds to it.
fn item_key(text: &str, key: &'static str) -> Option<String> {
    let mut de = serde_json::Deserializer::from_str(text);
    ItemScan(key).deserialize(&mut de).ok().flatten()
}

struct ItemScan(&'static str);

impl<'de> DeserializeSeed<'de> for ItemScan {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemScan {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list item")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut found: Option<Option<String>> = None;
        let mut bad = false;
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            if k == self.0 {
                let v: serde_json::Value = map.next_value()?;
                bad |= found.is_some();
                found = Some(v.as_str().map(str::to_string));
            } else {
                bad |= confusable(&k, self.0);
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(if bad { None } else { found.flatten() })
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> Result<Option<String>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
}

/// What the scan of a message found.
enum Top {
    NotObject,
    /// A duplicated or case-variant `result` or list key.
    Ambiguous,
    /// Byte spans of the list arrays in the result, with their `LISTS` index.
    Lists(Vec<(usize, usize, usize)>),
}

struct TopScan;

impl<'de> DeserializeSeed<'de> for TopScan {
    type Value = Top;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopScan {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut lists = None;
        let mut ambiguous = false;
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            if k == "result" {
                ambiguous |= lists.is_some();
                match map.next_value_seed(ResultScan)? {
                    Some(l) => lists = Some(l),
                    None => ambiguous = true,
                }
            } else {
                ambiguous |= confusable(&k, "result");
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(if ambiguous {
            Top::Ambiguous
        } else {
            Top::Lists(lists.unwrap_or_default())
        })
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::NotObject)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
}

/// The `result` value: `Some(spans)` of its list arrays, `None` when a list
/// key is duplicated or spelled in another case. A result that is not an
/// object has no lists.
struct ResultScan;

impl<'de> DeserializeSeed<'de> for ResultScan {
    type Value = Option<Vec<(usize, usize, usize)>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResultScan {
    type Value = Option<Vec<(usize, usize, usize)>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a result")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut seen = 0u8;
        let mut ambiguous = false;
        while let Some(k) = map.next_key::<Cow<'de, str>>()? {
            match LISTS.iter().position(|(name, _, _)| *name == k) {
                Some(i) => {
                    ambiguous |= seen & (1 << i) != 0;
                    seen |= 1 << i;
                    let raw: &'de RawValue = map.next_value()?;
                    // the span is found by the caller from the raw text's
                    // address inside the message
                    let s = raw.get();
                    spans.push((s.as_ptr() as usize, s.as_ptr() as usize + s.len(), i));
                }
                None => {
                    ambiguous |= LISTS.iter().any(|(name, _, _)| confusable(&k, name));
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((!ambiguous).then_some(spans))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some(Vec::new()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Some(Vec::new()))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Some(Vec::new()))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Some(Vec::new()))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Some(Vec::new()))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Some(Vec::new()))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Some(Vec::new()))
    }
}

/// Whether an upstream's 400 body speaks of the session (server-everything:
/// "Bad Request: No valid session ID provided"; SDK transports: "Missing
/// session ID", "Mcp-Session-Id header is required"): the session is gone.
pub fn about_the_session(body: &[u8]) -> bool {
    body.windows(7).any(|w| w.eq_ignore_ascii_case(b"session"))
}

/// The body guard of one response: a JSON body checked whole at its end,
/// or an SSE stream checked event by event as each completes.
#[derive(Debug)]
pub enum Guard {
    /// A JSON body, buffered up to `max` bytes.
    Json {
        /// What arrived so far.
        buf: BytesMut,
        /// The inspection bound.
        max: usize,
        /// The error's message when the body is larger.
        too_large: &'static str,
        /// How list results show tools.
        tools: Option<std::sync::Arc<dyn ToolView>>,
        /// The verdict once the body ended (`None` before).
        verdict: Option<Verdict>,
    },
    /// An SSE stream.
    Sse(SseGuard),
}

/// How a whole JSON body was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Relayed as it came.
    Pass,
    /// Relayed with hidden items removed.
    Rewritten,
    /// Replaced by a JSON-RPC error (the message).
    Refused(&'static str),
    /// Larger than its bound: replaced by a JSON-RPC error (the message),
    /// decided as soon as the bound is passed.
    TooLarge(&'static str),
}

/// The message of an answer larger than `server.limits.max_response_bytes`.
pub const TOO_LARGE: &str = "upstream answer larger than server.limits.max_response_bytes";

impl Guard {
    /// A guard for a JSON body of at most `max` bytes.
    pub fn json(max: usize) -> Guard {
        Guard::json_bounded(max, TOO_LARGE)
    }

    /// A guard for a JSON body of at most `max` bytes, refused with
    /// `too_large` beyond.
    pub fn json_bounded(max: usize, too_large: &'static str) -> Guard {
        Guard::Json {
            buf: BytesMut::new(),
            max,
            too_large,
            tools: None,
            verdict: None,
        }
    }

    /// The same guard, showing the tools of list results through `view`.
    pub fn with_tools(mut self, view: std::sync::Arc<dyn ToolView>) -> Guard {
        match &mut self {
            Guard::Json { tools, .. } => *tools = Some(view),
            Guard::Sse(g) => g.tools = Some(view),
        }
        self
    }

    /// A guard for an SSE stream whose events are at most `max` bytes.
    pub fn sse(max: usize) -> Guard {
        Guard::Sse(SseGuard::new(max))
    }

    /// Feeds a chunk; returns what may be sent now. A JSON body comes out
    /// whole at its end (`error_id` is echoed if it has to be replaced).
    pub fn push(
        &mut self,
        chunk: &[u8],
        end: bool,
        allowed: &Allowed<'_>,
        error_id: Option<crate::jsonrpc::IdRef<'_>>,
    ) -> Bytes {
        match self {
            Guard::Json {
                buf,
                max,
                too_large,
                tools,
                verdict,
            } => {
                if verdict.is_some() {
                    return Bytes::new();
                }
                if buf.len() + chunk.len() > *max {
                    buf.clear();
                    *verdict = Some(Verdict::TooLarge(too_large));
                    return refused_body(error_id, too_large);
                }
                buf.extend_from_slice(chunk);
                if !end {
                    return Bytes::new();
                }
                let body = buf.split().freeze();
                if body.is_empty() {
                    *verdict = Some(Verdict::Pass);
                    return body;
                }
                match check_message_with(&body, allowed, tools.as_deref()) {
                    Checked::Pass => {
                        *verdict = Some(Verdict::Pass);
                        body
                    }
                    Checked::Rewritten(v) => {
                        *verdict = Some(Verdict::Rewritten);
                        Bytes::from(v)
                    }
                    Checked::Refused(m) => {
                        *verdict = Some(Verdict::Refused(m));
                        refused_body(error_id, m)
                    }
                }
            }
            Guard::Sse(g) => g.push(chunk, end, allowed),
        }
    }

    /// The JSON verdict, once the body ended.
    pub fn verdict(&self) -> Option<&Verdict> {
        match self {
            Guard::Json { verdict, .. } => verdict.as_ref(),
            Guard::Sse(_) => None,
        }
    }
}

/// WHATWG `text/event-stream` parsing, event by event, with canonical output.
#[derive(Debug)]
pub struct SseGuard {
    max: usize,
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The previous byte ended a line with CR (an LF right after is part of it).
    after_cr: bool,
    /// Bytes of the stream seen so far (for the leading BOM), capped at 3.
    head: usize,
    /// The event being collected, in canonical form minus its data.
    fields: Vec<u8>,
    /// Its data lines joined with LF.
    data: Vec<u8>,
    has_data: bool,
    /// The current event grew past `max`: its lines are dropped until it ends.
    oversized: bool,
    /// How list results show tools.
    tools: Option<std::sync::Arc<dyn ToolView>>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseGuard {
    /// A parser whose events are at most `max` bytes.
    pub fn new(max: usize) -> SseGuard {
        SseGuard {
            max,
            line: Vec::new(),
            after_cr: false,
            head: 0,
            fields: Vec::new(),
            data: Vec::new(),
            has_data: false,
            oversized: false,
            tools: None,
        }
    }

    /// The same parser, showing the tools of list results through `view`.
    pub fn with_tools(mut self, view: std::sync::Arc<dyn ToolView>) -> SseGuard {
        self.tools = Some(view);
        self
    }

    /// Feeds a chunk, returns the complete events, checked and written
    /// canonically. At the end an unterminated event is dropped.
    pub fn push(&mut self, chunk: &[u8], end: bool, allowed: &Allowed<'_>) -> Bytes {
        let mut out = Vec::new();
        let mut rest = chunk;
        // one U+FEFF at the very start of the stream is not part of it
        while self.head < BOM.len() && !rest.is_empty() {
            if rest[0] == BOM[self.head] {
                self.head += 1;
                rest = &rest[1..];
            } else {
                // not a BOM after all: what was taken for one is data
                let taken = BOM[..self.head].to_vec();
                self.head = BOM.len();
                for b in taken {
                    self.byte(b, &mut out, allowed);
                }
            }
        }
        while !rest.is_empty() {
            // the text up to the next line end goes in one copy
            let cut = rest
                .iter()
                .position(|b| *b == b'\n' || *b == b'\r')
                .unwrap_or(rest.len());
            if cut > 0 {
                self.after_cr = false;
                self.text(&rest[..cut]);
                rest = &rest[cut..];
            } else {
                self.byte(rest[0], &mut out, allowed);
                rest = &rest[1..];
            }
        }
        if end {
            self.line.clear();
            self.reset_event();
        }
        Bytes::from(out)
    }

    /// Text without line ends, appended to the current line (bounded).
    fn text(&mut self, t: &[u8]) {
        if self.line.len() + t.len() + self.fields.len() + self.data.len() > self.max {
            self.oversized = true;
            self.line.clear();
            self.data.clear();
            self.fields.clear();
        }
        if self.oversized {
            let room = 16usize.saturating_sub(self.line.len());
            self.line.extend_from_slice(&t[..t.len().min(room)]);
        } else {
            self.line.extend_from_slice(t);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>, allowed: &Allowed<'_>) {
        match b {
            b'\n' if self.after_cr => self.after_cr = false,
            b'\n' | b'\r' => {
                self.after_cr = b == b'\r';
                let line = std::mem::take(&mut self.line);
                self.line_ended(&line, out, allowed);
                self.line = line;
                self.line.clear();
            }
            _ => {
                self.after_cr = false;
                if self.line.len() + self.fields.len() + self.data.len() > self.max {
                    self.oversized = true;
                    self.line.clear();
                    self.data.clear();
                    self.fields.clear();
                }
                if !self.oversized || self.line.len() < 16 {
                    self.line.push(b);
                }
            }
        }
    }

    fn reset_event(&mut self) {
        self.fields.clear();
        self.data.clear();
        self.has_data = false;
        self.oversized = false;
    }

    fn line_ended(&mut self, line: &[u8], out: &mut Vec<u8>, allowed: &Allowed<'_>) {
        if line.is_empty() {
            self.dispatch(out, allowed);
            return;
        }
        if self.oversized {
            return;
        }
        if let Some(comment) = line.strip_prefix(b":") {
            self.fields.push(b':');
            self.fields.extend_from_slice(comment);
            self.fields.push(b'\n');
            return;
        }
        let (name, value) = match line.iter().position(|c| *c == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.has_data = true;
                self.data.extend_from_slice(value);
            }
            b"event" | b"id" => {
                // an id with a NUL is ignored by WHATWG clients: not relayed
                if name == b"id" && value.contains(&0) {
                    return;
                }
                self.fields.extend_from_slice(name);
                self.fields.extend_from_slice(b": ");
                self.fields.extend_from_slice(value);
                self.fields.push(b'\n');
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.fields.extend_from_slice(b"retry: ");
                self.fields.extend_from_slice(value);
                self.fields.push(b'\n');
            }
            // other fields are ignored by every WHATWG client: not relayed
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<u8>, allowed: &Allowed<'_>) {
        if self.oversized {
            let msg = "upstream event larger than server.limits.max_response_bytes";
            out.extend_from_slice(b"event: message\ndata: ");
            out.extend_from_slice(&refused_body(None, msg));
            out.extend_from_slice(b"\n\n");
            self.reset_event();
            return;
        }
        if self.fields.is_empty() && !self.has_data {
            // a blank line with nothing before it: nothing to relay
            return;
        }
        out.extend_from_slice(&self.fields);
        if self.has_data {
            let data = std::mem::take(&mut self.data);
            let checked = if data.iter().all(u8::is_ascii_whitespace) {
                Checked::Pass
            } else {
                check_message_with(&data, allowed, self.tools.as_deref())
            };
            let text: Cow<'_, [u8]> = match checked {
                Checked::Pass => Cow::Borrowed(&data),
                Checked::Rewritten(v) => Cow::Owned(v),
                Checked::Refused(m) => Cow::Owned(replacement(&data, m)),
            };
            for l in text.split(|c| *c == b'\n') {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(l);
                out.push(b'\n');
            }
            self.data = data;
        }
        out.push(b'\n');
        self.reset_event();
    }
}

/// The fuzz contract (`contracts` feature; see `contract.rs`).
#[cfg(any(test, feature = "contracts"))]
mod contract;
#[cfg(any(test, feature = "contracts"))]
#[doc(hidden)]
pub use contract::check_contract;
#[cfg(test)]
#[allow(unused_imports)]
use contract::*;

#[cfg(test)]
mod tests;
