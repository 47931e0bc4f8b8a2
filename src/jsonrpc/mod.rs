//! JSON-RPC envelope handling on the exact body bytes: [`inspect`] finds the
//! message kind, `method`, `id`, and `params.name` / `params.uri` without building a
//! `serde_json::Value` tree, and [`error_body`] writes gateway-made JSON-RPC error
//! objects. No Pingora types here.

#[cfg(any(test, feature = "contracts"))]
mod contract;
mod inspect;
mod peek;

#[cfg(any(test, feature = "contracts"))]
#[doc(hidden)]
pub use contract::check_contract;
pub use inspect::{
    confusable, inspect, keys, Envelope, Field, Id, InspectError, InvalidReason, Kind, Ref,
    Subscriptions, Text,
};
pub use peek::{peek, Peek};

use bytes::Bytes;

/// Serialises `{"jsonrpc":"2.0","id":<id>,"error":{"code":..,"message":..}}`.
///
/// `id` is echoed when the request's id is known (`None` writes `null`, as
/// JSON-RPC requires when the id could not be determined).
pub fn error_body(id: Option<IdRef<'_>>, code: i32, message: &str) -> Bytes {
    let mut out = String::with_capacity(96 + message.len());
    out.push_str("{\"jsonrpc\":\"2.0\",\"id\":");
    match id {
        None => out.push_str("null"),
        Some(IdRef::Int(n)) => out.push_str(&n.to_string()),
        Some(IdRef::Uint(n)) => out.push_str(&n.to_string()),
        Some(IdRef::Str(s)) => push_json_string(&mut out, s),
    }
    out.push_str(",\"error\":{\"code\":");
    out.push_str(&code.to_string());
    out.push_str(",\"message\":");
    push_json_string(&mut out, message);
    out.push_str("}}");
    Bytes::from(out)
}

/// A borrowed request id, ready to echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRef<'a> {
    /// Negative or small integer id.
    Int(i64),
    /// Large non-negative integer id.
    Uint(u64),
    /// String id (already unescaped).
    Str(&'a str),
}

impl IdRef<'_> {
    /// The id as a JSON value.
    pub fn to_value(self) -> serde_json::Value {
        match self {
            IdRef::Int(n) => n.into(),
            IdRef::Uint(n) => n.into(),
            IdRef::Str(s) => s.into(),
        }
    }
}

/// `notifications/cancelled` for the request `id`, with a reason.
pub fn cancelled_body(id: IdRef<'_>, reason: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": id.to_value(), "reason": reason},
        })
        .to_string(),
    )
}

fn push_json_string(out: &mut String, s: &str) {
    // serde_json's string escaping cannot fail for a &str.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_echoes_ids() {
        let b = error_body(Some(IdRef::Int(7)), -32600, "bad \"thing\"");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], -32600);
        assert_eq!(v["error"]["message"], "bad \"thing\"");
        assert_eq!(v["jsonrpc"], "2.0");
        let b = error_body(Some(IdRef::Str("a\nb")), -1, "m");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(v["id"], "a\nb");
        let b = error_body(None, -32700, "m");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        assert!(v["id"].is_null());
        assert!(v.get("id").is_some());
    }
}
