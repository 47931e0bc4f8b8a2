//! Zero-copy JSON-RPC envelope inspection.
//!
//! The whole body is validated as JSON (serde_json's tokenizer, values we do not
//! need are skipped with a depth-checking visitor), but only the envelope fields
//! are kept, as byte ranges into the body (or owned text when the JSON string
//! had escapes). This is what lets the gateway authorize exactly the bytes it
//! forwards: the same bytes are inspected and then sent upstream untouched.
//!
//! One reading of every message: parsers disagree on duplicate keys (first or
//! last wins) and on key case (Go's `encoding/json` and case-insensitive .NET
//! servers match `"Name"` to `name`, and fold `ſ` to `s`), so the inspector
//! refuses any envelope member other than the six of JSON-RPC 2.0, any
//! duplicate of a key it reads, and, in `params`, `params._meta`,
//! `params.ref` and `params.notifications`, any key that differs from a key
//! it reads but case-folds to it (or carries a control character).

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Why a well-formed JSON body is not an acceptable JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    /// The top-level value is an array (JSON-RPC batch); MCP 2025-06-18+ has no batches.
    Batch,
    /// The top-level value is not an object.
    NotObject,
    /// `jsonrpc` is missing or not the string `"2.0"`.
    Version,
    /// `method` is present but not a string.
    MethodNotString,
    /// `id` is not a string or an integer.
    BadId,
    /// An envelope key (`jsonrpc`, `method`, `id`, `params`, `result`, `error`),
    /// or a key the gateway reads inside `params` (`name`, `uri`, `_meta`,
    /// `ref`, `notifications` and theirs), appears twice.
    DuplicateKey,
    /// A member of the message other than the six JSON-RPC 2.0 members.
    UnknownMember,
    /// A key in `params`, `_meta`, `ref` or `notifications` that is not a key
    /// the gateway reads but case-folds to one (`Name`, `paramſ`, `URI`), or
    /// that carries a control character: servers that match keys ignoring
    /// case would read what the gateway did not authorize.
    ConfusableKey,
    /// Neither a request/notification (`method`) nor a response (`result`/`error` with `id`).
    NotAMessage,
    /// Nesting deeper than the configured maximum.
    TooDeep,
}

impl InvalidReason {
    /// Message used in the JSON-RPC error object.
    pub fn message(&self) -> &'static str {
        match self {
            InvalidReason::Batch => "invalid request: JSON-RPC batches are not supported",
            InvalidReason::NotObject => "invalid request: body must be a JSON object",
            InvalidReason::Version => "invalid request: \"jsonrpc\" must be \"2.0\"",
            InvalidReason::MethodNotString => "invalid request: \"method\" must be a string",
            InvalidReason::BadId => "invalid request: \"id\" must be a string or an integer",
            InvalidReason::DuplicateKey => "invalid request: duplicate key in the message",
            InvalidReason::UnknownMember => {
                "invalid request: member other than jsonrpc, id, method, params, result, error"
            }
            InvalidReason::ConfusableKey => {
                "invalid request: key differs only in case (or by a control character) from a protocol key"
            }
            InvalidReason::NotAMessage => {
                "invalid request: not a JSON-RPC request, notification or response"
            }
            InvalidReason::TooDeep => "invalid request: JSON nested too deeply",
        }
    }

    /// Short label for audit and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            InvalidReason::Batch => "batch",
            InvalidReason::NotObject => "not_object",
            InvalidReason::Version => "jsonrpc_version",
            InvalidReason::MethodNotString => "method_not_string",
            InvalidReason::BadId => "bad_id",
            InvalidReason::DuplicateKey => "duplicate_key",
            InvalidReason::UnknownMember => "unknown_member",
            InvalidReason::ConfusableKey => "confusable_key",
            InvalidReason::NotAMessage => "not_a_message",
            InvalidReason::TooDeep => "too_deep",
        }
    }
}

/// Inspection failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectError {
    /// Not valid JSON (JSON-RPC -32700).
    Parse,
    /// Valid JSON, not an acceptable JSON-RPC message (JSON-RPC -32600).
    Invalid(InvalidReason),
}

/// A string field of the envelope: a range of the body when the JSON string had
/// no escapes (the common case, no allocation), or the unescaped text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// `body[start..end]` is the text.
    Span(u32, u32),
    /// Unescaped copy (the JSON string contained escapes).
    Owned(Box<str>),
}

impl Text {
    /// The text, given the body it was inspected from.
    pub fn as_str<'a>(&'a self, body: &'a [u8]) -> &'a str {
        match self {
            Text::Owned(s) => s,
            Text::Span(s, e) => body
                .get(*s as usize..*e as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
        }
    }
}

/// A JSON-RPC id (MCP: string or integer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// Signed integer id.
    Int(i64),
    /// Unsigned integer id above `i64::MAX`.
    Uint(u64),
    /// String id.
    Str(Text),
    /// `null` (only valid in error responses).
    Null,
}

/// What kind of JSON-RPC message the body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and `id`: expects a response.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `result` or `error` and `id`: a client answering a server request.
    Response,
}

/// A string member the gateway reads: absent, a string, or something else.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field {
    /// Not in the message.
    #[default]
    Absent,
    /// A string.
    Str(Text),
    /// Present, not a string.
    NotString,
}

impl Field {
    /// The string, if it is one.
    pub fn text(&self) -> Option<&Text> {
        match self {
            Field::Str(t) => Some(t),
            _ => None,
        }
    }
    /// Present but not a string.
    pub fn is_not_string(&self) -> bool {
        matches!(self, Field::NotString)
    }
    fn from_str_seed(v: Option<Text>) -> Field {
        match v {
            Some(t) => Field::Str(t),
            None => Field::NotString,
        }
    }
}

/// `params.ref` (`completion/complete`): which prompt or resource the
/// completion is for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ref {
    /// `ref` is present but not an object.
    pub not_object: bool,
    /// `ref.type` (`ref/prompt`, `ref/resource`).
    pub kind: Field,
    /// `ref.name` (a prompt).
    pub name: Field,
    /// `ref.uri` (a resource URI or URI template).
    pub uri: Field,
}

/// `params.notifications.resourceSubscriptions` (`subscriptions/listen`, MCP
/// 2026-07-28): the resource URIs a stream subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscriptions {
    /// An array of strings.
    Uris(Vec<Text>),
    /// `notifications` is not an object, or `resourceSubscriptions` is not
    /// an array of strings.
    Malformed,
}

/// The inspected envelope of one JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Message kind.
    pub kind: Kind,
    /// `method` (requests and notifications).
    pub method: Option<Text>,
    /// `id` (requests and responses).
    pub id: Option<Id>,
    /// `params.name` when it is a string.
    pub name: Option<Text>,
    /// `params.uri` when it is a string.
    pub uri: Option<Text>,
    /// `params.name` is present but not a string.
    pub name_not_string: bool,
    /// `params.uri` is present but not a string.
    pub uri_not_string: bool,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` (MCP 2026-07-28).
    pub meta_version: Option<Text>,
    /// `params.ref`, when present.
    pub reference: Option<Box<Ref>>,
    /// `params.notifications.resourceSubscriptions`, when present (or
    /// `Malformed` when `notifications` is not an object).
    pub subscriptions: Option<Subscriptions>,
}

impl Envelope {
    /// The method, given the body.
    pub fn method<'a>(&'a self, body: &'a [u8]) -> Option<&'a str> {
        self.method.as_ref().map(|t| t.as_str(body))
    }
    /// `params.name`, given the body.
    pub fn name<'a>(&'a self, body: &'a [u8]) -> Option<&'a str> {
        self.name.as_ref().map(|t| t.as_str(body))
    }
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, given the body.
    pub fn meta_version<'a>(&'a self, body: &'a [u8]) -> Option<&'a str> {
        self.meta_version.as_ref().map(|t| t.as_str(body))
    }
    /// `params.uri`, given the body.
    pub fn uri<'a>(&'a self, body: &'a [u8]) -> Option<&'a str> {
        self.uri.as_ref().map(|t| t.as_str(body))
    }
    /// The id, ready to echo in an error body.
    pub fn id_ref<'a>(&'a self, body: &'a [u8]) -> Option<super::IdRef<'a>> {
        match self.id.as_ref()? {
            Id::Int(n) => Some(super::IdRef::Int(*n)),
            Id::Uint(n) => Some(super::IdRef::Uint(*n)),
            Id::Str(t) => Some(super::IdRef::Str(t.as_str(body))),
            Id::Null => None,
        }
    }
}

/// Inspects `body` as one JSON-RPC message, rejecting nesting deeper than `max_depth`.
///
/// JSON is UTF-8 (RFC 8259 §8.1): a body that is not is refused whole, also
/// where the bytes sit in a value the inspector skips (serde_json does not
/// check skipped strings, and a peer replacing bad bytes with U+FFFD would
/// read text the gateway never saw).
pub fn inspect(body: &[u8], max_depth: u32) -> Result<Envelope, InspectError> {
    if std::str::from_utf8(body).is_err() {
        return Err(InspectError::Parse);
    }
    let state = State {
        body,
        max_depth,
        invalid: Cell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = TopSeed(&state).deserialize(&mut de);
    let parsed = match parsed.and_then(|p| de.end().map(|_| p)) {
        Ok(p) => p,
        Err(_) => {
            return Err(match state.invalid.get() {
                Some(InvalidReason::TooDeep) => InspectError::Invalid(InvalidReason::TooDeep),
                _ => InspectError::Parse,
            })
        }
    };
    if let Some(reason) = state.invalid.get() {
        return Err(InspectError::Invalid(reason));
    }
    parsed.into_envelope()
}

/// The keys the inspector reads, per object: refused in any other spelling
/// that case-folds to them. `pub` for the fuzz contract and the list filter.
pub mod keys {
    /// The JSON-RPC 2.0 members: the only keys a message may have.
    pub const ENVELOPE: &[&str] = &["jsonrpc", "method", "id", "params", "result", "error"];
    /// Read in `params`.
    pub const PARAMS: &[&str] = &["name", "uri", "_meta", "ref", "notifications"];
    /// Read in `params._meta`.
    pub const META: &[&str] = &["io.modelcontextprotocol/protocolVersion"];
    /// Read in `params.ref`.
    pub const REF: &[&str] = &["type", "name", "uri"];
    /// Read in `params.notifications`.
    pub const NOTIFICATIONS: &[&str] = &["resourceSubscriptions"];
}

/// Whether `key` is not `read` but a parser matching keys ignoring case
/// could take it for `read`: equal under Unicode case folding (simple and
/// full: `ſ`→`s`, `K`→`k`, `ı`→`i`, `ß`→`ss`, `ﬁ`→`fi`, ...), or `read` with a
/// control character in it (C parsers stop at NUL). `read` is ASCII.
pub fn confusable(key: &str, read: &str) -> bool {
    if key == read {
        return false;
    }
    if key.is_ascii() {
        return key.eq_ignore_ascii_case(read)
            || (key.bytes().any(|b| b < 0x20 || b == 0x7f)
                && key
                    .bytes()
                    .filter(|b| *b >= 0x20 && *b != 0x7f)
                    .map(|b| b.to_ascii_lowercase())
                    .eq(read.bytes().map(|b| b.to_ascii_lowercase())));
    }
    let folded = key
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(fold)
        .map(|c| c.to_ascii_lowercase());
    folded.eq(read.chars().map(|c| c.to_ascii_lowercase()))
}

/// The ASCII letters a character folds (or upper/lowercases) to, if any;
/// itself otherwise. Complete: every character whose lower-upper-lower
/// case mapping is ASCII (checked over all of Unicode by a test below).
fn fold(c: char) -> impl Iterator<Item = char> {
    let s: &'static str = match c {
        '\u{17F}' => "s",
        '\u{212A}' => "k",
        '\u{131}' => "i",
        '\u{DF}' | '\u{1E9E}' => "ss",
        '\u{FB00}' => "ff",
        '\u{FB01}' => "fi",
        '\u{FB02}' => "fl",
        '\u{FB03}' => "ffi",
        '\u{FB04}' => "ffl",
        '\u{FB05}' | '\u{FB06}' => "st",
        _ => "",
    };
    let own = s.is_empty().then_some(c);
    s.chars().chain(own)
}

/// Implements scalar `visit_*` methods that all answer `$v`:
/// `scalars!(Ty, value; bool i64 u64 f64 str unit)`.
macro_rules! scalars {
    ($ret:ty, $v:expr; $($kind:ident)+) => { $(scalars!(@one $kind, $ret, $v);)+ };
    (@one bool, $ret:ty, $v:expr) => { fn visit_bool<E>(self, _: bool) -> Result<$ret, E> { Ok($v) } };
    (@one i64, $ret:ty, $v:expr) => { fn visit_i64<E>(self, _: i64) -> Result<$ret, E> { Ok($v) } };
    (@one u64, $ret:ty, $v:expr) => { fn visit_u64<E>(self, _: u64) -> Result<$ret, E> { Ok($v) } };
    (@one f64, $ret:ty, $v:expr) => { fn visit_f64<E>(self, _: f64) -> Result<$ret, E> { Ok($v) } };
    (@one str, $ret:ty, $v:expr) => { fn visit_str<E>(self, _: &str) -> Result<$ret, E> { Ok($v) } };
    (@one unit, $ret:ty, $v:expr) => { fn visit_unit<E>(self) -> Result<$ret, E> { Ok($v) } };
}

struct State<'b> {
    body: &'b [u8],
    max_depth: u32,
    /// First envelope problem seen; parsing continues so that malformed JSON
    /// still wins (JSON-RPC: a parse error is reported as such).
    invalid: Cell<Option<InvalidReason>>,
}

impl State<'_> {
    fn mark(&self, r: InvalidReason) {
        if self.invalid.get().is_none() {
            self.invalid.set(Some(r));
        }
    }
    fn too_deep<E: serde::de::Error>(&self) -> E {
        self.invalid.set(Some(InvalidReason::TooDeep));
        E::custom("nested too deeply")
    }
    fn borrowed(&self, s: &str) -> Text {
        let start = (s.as_ptr() as usize).wrapping_sub(self.body.as_ptr() as usize);
        let end = start.wrapping_add(s.len());
        if start <= self.body.len() && end <= self.body.len() && end <= u32::MAX as usize {
            Text::Span(start as u32, end as u32)
        } else {
            Text::Owned(s.into())
        }
    }
    /// The next key of an object whose read keys are `keys`: its index, or
    /// `OTHER`. Marks duplicates of read keys (`seen` is the bitmask of those
    /// met so far), confusable spellings, and, with `only`, any other key.
    fn next_key<'de, A: MapAccess<'de>>(
        &self,
        map: &mut A,
        keys: &'static [&'static str],
        seen: &mut u8,
        only: bool,
    ) -> Result<Option<u8>, A::Error> {
        let Some(k) = map.next_key_seed(KeySeed(keys))? else {
            return Ok(None);
        };
        match k {
            CONFUSABLE => {
                self.mark(if only {
                    InvalidReason::UnknownMember
                } else {
                    InvalidReason::ConfusableKey
                });
                Ok(Some(OTHER))
            }
            OTHER => {
                if only {
                    self.mark(InvalidReason::UnknownMember);
                }
                Ok(Some(OTHER))
            }
            i => {
                let bit = 1u8 << i;
                if *seen & bit != 0 {
                    // {"name":"safe","name":"admin"}: parsers disagree on which
                    // wins, so the gateway could authorize one and the upstream
                    // run the other
                    self.mark(InvalidReason::DuplicateKey);
                }
                *seen |= bit;
                Ok(Some(i))
            }
        }
    }
}

/// Raw fields collected from the top-level object.
#[derive(Default)]
struct Parsed {
    object: bool,
    jsonrpc_ok: bool,
    method: Option<Option<Text>>,
    id: Option<Option<Id>>,
    has_result: bool,
    has_error: bool,
    params: ParamsOut,
}

impl Parsed {
    fn into_envelope(self) -> Result<Envelope, InspectError> {
        let invalid = |r| Err(InspectError::Invalid(r));
        if !self.object {
            return invalid(InvalidReason::NotObject);
        }
        if !self.jsonrpc_ok {
            return invalid(InvalidReason::Version);
        }
        let id = match self.id {
            None => None,
            Some(None) => return invalid(InvalidReason::BadId),
            Some(Some(id)) => Some(id),
        };
        let kind = match (&self.method, self.has_result || self.has_error) {
            (Some(None), _) => return invalid(InvalidReason::MethodNotString),
            (Some(Some(_)), true) => return invalid(InvalidReason::NotAMessage),
            (Some(Some(_)), false) => match id {
                None => Kind::Notification,
                Some(Id::Null) => return invalid(InvalidReason::BadId),
                Some(_) => Kind::Request,
            },
            // a null id answers a request whose id could not be read: only an
            // error may carry it (JSON-RPC 2.0 §5)
            (None, true) if self.has_result && !self.has_error && matches!(id, Some(Id::Null)) => {
                return invalid(InvalidReason::BadId)
            }
            (None, true) if id.is_some() && !(self.has_result && self.has_error) => Kind::Response,
            (None, _) => return invalid(InvalidReason::NotAMessage),
        };
        let p = self.params;
        Ok(Envelope {
            kind,
            method: self.method.flatten(),
            id,
            name_not_string: p.name.is_not_string(),
            uri_not_string: p.uri.is_not_string(),
            name: p.name.text().cloned(),
            uri: p.uri.text().cloned(),
            meta_version: p.meta_version,
            reference: p.reference,
            subscriptions: p.subscriptions,
        })
    }
}

struct TopSeed<'s, 'b>(&'s State<'b>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = Parsed;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = Parsed;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Parsed, A::Error> {
        self.0.mark(InvalidReason::Batch);
        Skip {
            st: self.0,
            depth: 0,
        }
        .visit_seq(seq)?;
        Ok(Parsed::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let st = self.0;
        if st.max_depth < 1 {
            return Err(st.too_deep());
        }
        let mut p = Parsed {
            object: true,
            ..Parsed::default()
        };
        let mut seen = 0u8;
        while let Some(key) = st.next_key(&mut map, keys::ENVELOPE, &mut seen, true)? {
            match key {
                K_JSONRPC => {
                    let v = map.next_value_seed(StrSeed { st, depth: 1 })?;
                    p.jsonrpc_ok = v.is_some_and(|t| t.as_str(st.body) == "2.0");
                }
                K_METHOD => p.method = Some(map.next_value_seed(StrSeed { st, depth: 1 })?),
                K_ID => p.id = Some(map.next_value_seed(IdSeed { st })?),
                K_PARAMS => p.params = map.next_value_seed(ParamsSeed { st })?,
                K_RESULT => {
                    p.has_result = true;
                    map.next_value_seed(Skip { st, depth: 1 })?;
                }
                K_ERROR => {
                    p.has_error = true;
                    map.next_value_seed(Skip { st, depth: 1 })?;
                }
                _ => map.next_value_seed(Skip { st, depth: 1 })?,
            }
        }
        Ok(p)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Parsed, E> {
        self.0.mark(InvalidReason::NotObject);
        Ok(Parsed::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Parsed, E> {
        self.0.mark(InvalidReason::NotObject);
        Ok(Parsed::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Parsed, E> {
        self.0.mark(InvalidReason::NotObject);
        Ok(Parsed::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Parsed, E> {
        self.0.mark(InvalidReason::NotObject);
        Ok(Parsed::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Parsed, E> {
        self.0.mark(InvalidReason::NotObject);
        Ok(Parsed::default())
    }
    fn visit_unit<E>(self) -> Result<Parsed, E> {
        self.0.mark(InvalidReason::NotObject);
        Ok(Parsed::default())
    }
}

const K_JSONRPC: u8 = 0;
const K_METHOD: u8 = 1;
const K_ID: u8 = 2;
const K_PARAMS: u8 = 3;
const K_RESULT: u8 = 4;
const K_ERROR: u8 = 5;
const K_NAME: u8 = 0;
const K_URI: u8 = 1;
const K_META: u8 = 2;
const K_REF: u8 = 3;
const K_NOTIFICATIONS: u8 = 4;
const R_TYPE: u8 = 0;
const R_NAME: u8 = 1;
const R_URI: u8 = 2;
const OTHER: u8 = u8::MAX;
const CONFUSABLE: u8 = u8::MAX - 1;

/// Maps an object key to its index in a key list, `CONFUSABLE` or `OTHER`,
/// without allocating.
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = u8;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u8, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = u8;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<u8, E> {
        if let Some(i) = self.0.iter().position(|k| *k == v) {
            return Ok(i as u8);
        }
        Ok(if self.0.iter().any(|k| confusable(v, k)) {
            CONFUSABLE
        } else {
            OTHER
        })
    }
}

/// A value that should be a string: `Some(text)` if it is, `None` (after
/// validating and skipping it) if it is anything else.
struct StrSeed<'s, 'b> {
    st: &'s State<'b>,
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for StrSeed<'_, '_> {
    type Value = Option<Text>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Text>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrSeed<'_, '_> {
    type Value = Option<Text>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Option<Text>, E> {
        Ok(Some(self.st.borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<Text>, E> {
        Ok(Some(Text::Owned(v.into())))
    }
    scalars!(Option<Text>, None; bool i64 u64 f64 unit);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Text>, A::Error> {
        Skip {
            st: self.st,
            depth: self.depth,
        }
        .visit_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Text>, A::Error> {
        Skip {
            st: self.st,
            depth: self.depth,
        }
        .visit_map(map)?;
        Ok(None)
    }
}

/// The `id` member: `Some(id)` for a string, integer or null, `None` otherwise.
struct IdSeed<'s, 'b> {
    st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for IdSeed<'_, '_> {
    type Value = Option<Id>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Id>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdSeed<'_, '_> {
    type Value = Option<Id>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC id")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Option<Id>, E> {
        Ok(Some(Id::Str(self.st.borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<Id>, E> {
        Ok(Some(Id::Str(Text::Owned(v.into()))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Option<Id>, E> {
        Ok(Some(Id::Int(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Option<Id>, E> {
        Ok(Some(match i64::try_from(v) {
            Ok(n) => Id::Int(n),
            Err(_) => Id::Uint(v),
        }))
    }
    fn visit_unit<E>(self) -> Result<Option<Id>, E> {
        Ok(Some(Id::Null))
    }
    scalars!(Option<Id>, None; f64 bool);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Id>, A::Error> {
        Skip {
            st: self.st,
            depth: 1,
        }
        .visit_seq(seq)?;
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Id>, A::Error> {
        Skip {
            st: self.st,
            depth: 1,
        }
        .visit_map(map)?;
        Ok(None)
    }
}

mod params;
use params::{ParamsOut, ParamsSeed, Skip};

#[cfg(test)]
mod tests;
