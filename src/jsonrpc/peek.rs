//! What the tunnel relay needs of a message it carries (client requests
//! the gateway already inspected, and every line a stdio server writes):
//! the inspector's own reading (kind, `id`, `method`: the same members,
//! duplicate and case rules as every client body), the id as canonical
//! JSON text for matching answers to requests, and the progress token
//! that routes `notifications/progress` to the request that asked for it.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{inspect, Id};

/// Nesting the relay accepts in a carried message (serde_json's own limit).
const PEEK_DEPTH: u32 = 128;

/// What routing needs to know about a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// The id as JSON text (`1`, `"a"`), if any.
    pub id: Option<String>,
    /// The method, if any (requests and notifications).
    pub method: Option<String>,
    /// The progress token: `params._meta.progressToken` of a request, or
    /// `params.progressToken` of `notifications/progress`, as JSON text.
    pub progress_token: Option<String>,
}

impl Peek {
    /// A response (or error response): an id and no method.
    pub fn is_response(&self) -> bool {
        self.id.is_some() && self.method.is_none()
    }

    /// A request: an id and a method.
    pub fn is_request(&self) -> bool {
        self.id.is_some() && self.method.is_some()
    }
}

#[derive(Deserialize)]
struct Progress<'a> {
    #[serde(borrow, default)]
    params: Option<ProgressParams<'a>>,
}

#[derive(Deserialize)]
struct ProgressParams<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<ProgressMeta<'a>>,
}

#[derive(Deserialize)]
struct ProgressMeta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
}

/// Peeks at one JSON-RPC message; `None` if the inspector refuses it.
pub fn peek(json: &[u8]) -> Option<Peek> {
    let env = inspect(json, PEEK_DEPTH).ok()?;
    let id = match env.id.as_ref() {
        Some(Id::Int(n)) => Some(n.to_string()),
        Some(Id::Uint(n)) => Some(n.to_string()),
        Some(Id::Str(t)) => serde_json::to_string(t.as_str(json)).ok(),
        Some(Id::Null) | None => None,
    };
    let method = env.method(json).map(str::to_string);
    Some(Peek {
        progress_token: progress_token(json, method.as_deref()),
        id,
        method,
    })
}

/// The progress token of a message the inspector accepted.
fn progress_token(json: &[u8], method: Option<&str>) -> Option<String> {
    let p = serde_json::from_slice::<Progress<'_>>(json).ok()?.params?;
    let t = if method == Some("notifications/progress") {
        p.progress_token
    } else {
        p.meta.and_then(|m| m.progress_token)
    };
    t.map(|v| v.get().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_finds_ids_methods_and_progress_tokens() {
        let p = peek(br#"{"jsonrpc":"2.0","id":"a\"b","result":{}}"#).unwrap();
        assert!(p.is_response());
        assert_eq!(p.id.as_deref(), Some(r#""a\"b""#));
        let p = peek(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"t1"}}}"#).unwrap();
        assert!(p.is_request());
        assert_eq!(p.progress_token.as_deref(), Some(r#""t1""#));
        let p = peek(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t1","progress":1}}"#).unwrap();
        assert_eq!((p.id, p.progress_token.as_deref()), (None, Some(r#""t1""#)));
        let p =
            peek(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#).unwrap();
        assert_eq!(p.id, None);
        assert!(peek(b"[1,2]").is_none());
        assert!(peek(b"nope").is_none());
    }

    #[test]
    fn carried_messages_get_the_inspectors_reading() {
        // an extra member, a case-variant method or a duplicate id is refused
        // here as it is on a client body
        for bad in [
            &br#"{"jsonrpc":"2.0","id":1,"result":{},"extra":1}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"initialize"}"#,
            br#"{"jsonrpc":"2.0","id":1,"id":2,"result":{}}"#,
        ] {
            assert!(peek(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        let p = peek(br#"{"jsonrpc":"2.0","id":"\u0061","result":{}}"#).unwrap();
        assert_eq!(p.id.as_deref(), Some(r#""a""#));
    }
}
