//! Zero-copy JSON-RPC envelope inspection.
//!
//! The whole body is validated as JSON (serde_json's tokenizer, values we do not
//! need are skipped with a depth-checking visitor), but only the envelope fields
//! are kept, as byte ranges into the body (or owned text when the JSON string
//! had escapes). This is what lets the gateway authorize exactly the bytes it
//! forwards: the same bytes are inspected and then sent upstream untouched.

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
    /// or `params.name` / `params.uri`, appears twice.
    DuplicateKey,
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
            InvalidReason::NotAMessage => {
                "invalid request: not a JSON-RPC request, notification or response"
            }
            InvalidReason::TooDeep => "invalid request: JSON nested too deeply",
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
pub fn inspect(body: &[u8], max_depth: u32) -> Result<Envelope, InspectError> {
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
    name: Option<Option<Text>>,
    uri: Option<Option<Text>>,
    meta_version: Option<Text>,
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
        Ok(Envelope {
            kind,
            method: self.method.flatten(),
            id,
            name_not_string: matches!(self.name, Some(None)),
            uri_not_string: matches!(self.uri, Some(None)),
            name: self.name.flatten(),
            uri: self.uri.flatten(),
            meta_version: self.meta_version,
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
        while let Some(key) = map.next_key_seed(KeySeed(TOP_KEYS))? {
            if key != OTHER {
                let bit = 1u8 << key;
                if seen & bit != 0 {
                    st.mark(InvalidReason::DuplicateKey);
                }
                seen |= bit;
            }
            match key {
                K_JSONRPC => {
                    let v = map.next_value_seed(StrSeed { st, depth: 1 })?;
                    p.jsonrpc_ok = v.is_some_and(|t| t.as_str(st.body) == "2.0");
                }
                K_METHOD => p.method = Some(map.next_value_seed(StrSeed { st, depth: 1 })?),
                K_ID => p.id = Some(map.next_value_seed(IdSeed { st })?),
                K_PARAMS => {
                    let (name, uri, meta) = map.next_value_seed(ParamsSeed { st })?;
                    p.name = name;
                    p.uri = uri;
                    p.meta_version = meta;
                }
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
const OTHER: u8 = u8::MAX;
const TOP_KEYS: &[&str] = &["jsonrpc", "method", "id", "params", "result", "error"];
const PARAM_KEYS: &[&str] = &["name", "uri", "_meta"];
const META_KEYS: &[&str] = &["io.modelcontextprotocol/protocolVersion"];

/// Maps an object key to its index in a key list (or `OTHER`) without allocating.
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
        Ok(self
            .0
            .iter()
            .position(|k| *k == v)
            .map_or(OTHER, |i| i as u8))
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

/// `(params.name, params.uri, params._meta protocol version)`: outer `None` =
/// absent, `Some(None)` = not a string.
type NameUri = (Option<Option<Text>>, Option<Option<Text>>, Option<Text>);

/// The `params` member: picks `name` and `uri`, skips (and validates) the rest.
struct ParamsSeed<'s, 'b> {
    st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_, '_> {
    type Value = NameUri;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NameUri, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_, '_> {
    type Value = NameUri;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("params")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NameUri, A::Error> {
        let st = self.st;
        if st.max_depth < 2 {
            return Err(st.too_deep());
        }
        let (mut name, mut uri, mut meta) = (None, None, None);
        while let Some(key) = map.next_key_seed(KeySeed(PARAM_KEYS))? {
            let slot = match key {
                K_NAME => &mut name,
                K_URI => &mut uri,
                K_META => {
                    if meta.is_some() {
                        st.mark(InvalidReason::DuplicateKey);
                    }
                    meta = Some(map.next_value_seed(MetaSeed { st })?);
                    continue;
                }
                _ => {
                    map.next_value_seed(Skip { st, depth: 2 })?;
                    continue;
                }
            };
            if slot.is_some() {
                // {"name":"safe","name":"admin"}: parsers disagree on which wins,
                // so the gateway could authorize one and the upstream run the other.
                st.mark(InvalidReason::DuplicateKey);
            }
            *slot = Some(map.next_value_seed(StrSeed { st, depth: 2 })?);
        }
        Ok((name, uri, meta.flatten()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NameUri, A::Error> {
        Skip {
            st: self.st,
            depth: 1,
        }
        .visit_seq(seq)?;
        Ok((None, None, None))
    }
    scalars!(NameUri, (None, None, None); bool i64 u64 f64 str unit);
}

/// `params._meta`: picks the protocol version (MCP 2026-07-28), skips the rest.
struct MetaSeed<'s, 'b> {
    st: &'s State<'b>,
}

impl<'de> DeserializeSeed<'de> for MetaSeed<'_, '_> {
    type Value = Option<Text>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Text>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed<'_, '_> {
    type Value = Option<Text>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("_meta")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Text>, A::Error> {
        let st = self.st;
        if st.max_depth < 3 {
            return Err(st.too_deep());
        }
        let mut version = None;
        while let Some(key) = map.next_key_seed(KeySeed(META_KEYS))? {
            if key == 0 {
                if version.is_some() {
                    st.mark(InvalidReason::DuplicateKey);
                }
                version = Some(map.next_value_seed(StrSeed { st, depth: 3 })?);
            } else {
                map.next_value_seed(Skip { st, depth: 3 })?;
            }
        }
        Ok(version.flatten())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Text>, A::Error> {
        Skip {
            st: self.st,
            depth: 2,
        }
        .visit_seq(seq)?;
        Ok(None)
    }
    scalars!(Option<Text>, None; bool i64 u64 f64 str unit);
}

/// Validates and discards any value; `depth` is the nesting level of the
/// container holding it (a container value found here is at `depth + 1`).
struct Skip<'s, 'b> {
    st: &'s State<'b>,
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for Skip<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalars!((), (); bool i64 u64 f64 str unit);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        if depth > self.st.max_depth {
            return Err(self.st.too_deep());
        }
        while seq
            .next_element_seed(Skip { st: self.st, depth })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        if depth > self.st.max_depth {
            return Err(self.st.too_deep());
        }
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip { st: self.st, depth })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
        let b = r#"{"jsonrpc":"2.0","id":"a\"b","method":"tools\/call","params":{"name":"adm\u0069n.x"}}"#;
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
        let b =
            r#"{"params":{"uri":"file:///a"},"method":"resources/read","id":"x","jsonrpc":"2.0"}"#;
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
}
