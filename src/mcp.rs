//! MCP protocol rules the gateway enforces: protocol eras and versions, and the
//! 2026-07-28 rule that the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
//! headers agree with the body (spec: 2026-07-28/basic/transports/streamable-http,
//! "Request Metadata" and "Server Validation").

use std::borrow::Cow;

use base64::Engine;

/// Which MCP transport model a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Era {
    /// 2024-11-05 … 2025-11-25: `initialize`, `Mcp-Session-Id`, GET stream, DELETE.
    #[default]
    Session,
    /// 2026-07-28 and later: stateless, `Mcp-Method`/`Mcp-Name` headers, no GET/DELETE.
    Stateless,
}

/// First revision of the stateless era.
pub const STATELESS_SINCE: &str = "2026-07-28";

/// `MCP-Protocol-Version` names a revision this gateway does not serve
/// (unknown, or not a `YYYY-MM-DD` revision at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidVersion;

/// An MCP header value with control or non-ASCII bytes, or broken base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHeaderValue;

/// Protocol revisions this gateway knows.
pub const KNOWN_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// Era of a request from its `MCP-Protocol-Version` header. Absent = session
/// era (the spec's default is 2025-03-26). A value that is not one of
/// [`KNOWN_VERSIONS`] is refused by the gateway itself with 400 and an
/// `UnsupportedProtocolVersionError` ([`unsupported_version_body`]), in both
/// eras: forwarding it would let the upstream guess (or answer a session
/// call with 404, sending the client into a re-initialize loop).
pub fn era(version: Option<&[u8]>) -> Result<Era, InvalidVersion> {
    let Some(v) = version else {
        return Ok(Era::Session);
    };
    if !KNOWN_VERSIONS.iter().any(|k| k.as_bytes() == v) {
        return Err(InvalidVersion);
    }
    Ok(if v >= STATELESS_SINCE.as_bytes() {
        Era::Stateless
    } else {
        Era::Session
    })
}

/// The body of the 400 for an unsupported `MCP-Protocol-Version` (MCP
/// 2026-07-28 `UnsupportedProtocolVersionError`): code -32022 with the
/// versions served and the one requested (as text, at most 64 bytes).
pub fn unsupported_version_body(requested: &[u8]) -> bytes::Bytes {
    let requested: String = String::from_utf8_lossy(&requested[..requested.len().min(64)])
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32022,
            "message": "Unsupported protocol version",
            "data": {"supported": KNOWN_VERSIONS.iter().rev().collect::<Vec<_>>(), "requested": requested},
        },
    });
    bytes::Bytes::from(body.to_string())
}

/// The value `Mcp-Name` must carry for a method, if the method has one:
/// the tool name, the prompt name, or the resource URI.
pub fn name_for_header<'a>(
    method: &str,
    name: Option<&'a str>,
    uri: Option<&'a str>,
) -> Option<Option<&'a str>> {
    match method {
        "tools/call" | "prompts/get" => Some(name),
        "resources/read" => Some(uri),
        _ => None,
    }
}

/// Decodes an MCP header value: plain visible ASCII as is, or the spec's
/// `=?base64?<base64 of UTF-8>?=` form (used for non-ASCII and edge cases).
/// Control characters, non-ASCII bytes and broken base64 are errors.
pub fn decode_header_value(raw: &[u8]) -> Result<Cow<'_, [u8]>, InvalidHeaderValue> {
    if let Some(inner) = raw
        .strip_prefix(b"=?base64?")
        .and_then(|r| r.strip_suffix(b"?="))
    {
        return base64::engine::general_purpose::STANDARD
            .decode(inner)
            .map(Cow::Owned)
            .map_err(|_| InvalidHeaderValue);
    }
    if raw.iter().all(|b| (0x20..0x7f).contains(b)) {
        Ok(Cow::Borrowed(raw))
    } else {
        Err(InvalidHeaderValue)
    }
}

/// The 2026-07-28 version rule: a body that declares its protocol version in
/// `params._meta` must carry the same value in `MCP-Protocol-Version` (a
/// client cannot dodge header validation by leaving the header out).
pub fn check_version(header: Option<&[u8]>, meta: Option<&str>) -> Result<(), &'static str> {
    match (header, meta) {
        (None, Some(_)) => Err("MCP-Protocol-Version header is required"),
        (Some(h), Some(m)) if h != m.as_bytes() => {
            Err("MCP-Protocol-Version header does not match params._meta")
        }
        _ => Ok(()),
    }
}

/// Checks `Mcp-Method` / `Mcp-Name` against the body. In the stateless era the
/// headers are required for requests and notifications; in the session era
/// they are optional but, when sent, must still agree (an intermediary may
/// route on them). `method` is `None` for JSON-RPC responses.
pub fn check_headers(
    era: Era,
    header_method: Option<&[u8]>,
    header_name: Option<&[u8]>,
    method: Option<&str>,
    name: Option<&str>,
    uri: Option<&str>,
) -> Result<(), &'static str> {
    let Some(method) = method else {
        // a response carries no method: the headers have nothing to agree with
        if header_method.is_some() || header_name.is_some() {
            return Err("Mcp-Method/Mcp-Name sent with a JSON-RPC response");
        }
        return Ok(());
    };
    match header_method.map(decode_header_value) {
        Some(Err(InvalidHeaderValue)) => return Err("Mcp-Method header has invalid characters"),
        Some(Ok(h)) if *h != *method.as_bytes() => {
            return Err("Mcp-Method header does not match the body's method")
        }
        None if era == Era::Stateless => return Err("Mcp-Method header is required"),
        _ => {}
    }
    let header_name = match header_name.map(decode_header_value) {
        Some(Err(InvalidHeaderValue)) => return Err("Mcp-Name header has invalid characters"),
        Some(Ok(v)) => Some(v),
        None => None,
    };
    match (name_for_header(method, name, uri), header_name) {
        (Some(Some(expected)), Some(h)) if *h != *expected.as_bytes() => {
            Err("Mcp-Name header does not match the body")
        }
        (Some(Some(_)), None) if era == Era::Stateless => Err("Mcp-Name header is required"),
        (Some(None), Some(_)) => Err("Mcp-Name header does not match the body"),
        (None, Some(_)) => Err("Mcp-Name header sent for a method without a name"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras() {
        assert_eq!(era(None), Ok(Era::Session));
        assert_eq!(era(Some(b"2025-06-18")), Ok(Era::Session));
        assert_eq!(era(Some(b"2025-11-25")), Ok(Era::Session));
        assert_eq!(era(Some(b"2026-07-28")), Ok(Era::Stateless));
        assert_eq!(era(Some(b"2024-11-05")), Ok(Era::Session));
        // unknown revisions are refused, whichever era they would be in
        assert_eq!(era(Some(b"2027-01-01")), Err(InvalidVersion));
        assert_eq!(era(Some(b"1999-01-01")), Err(InvalidVersion));
        assert_eq!(era(Some(b"2025-06-18 ")), Err(InvalidVersion));
        assert_eq!(era(Some(b"latest")), Err(InvalidVersion));
        assert_eq!(era(Some(b"2026-07-28x")), Err(InvalidVersion));
    }

    #[test]
    fn unsupported_version_answer() {
        let b = unsupported_version_body(b"1999-01-01\n");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        assert_eq!(v["error"]["code"], -32022);
        assert_eq!(v["error"]["data"]["requested"], "1999-01-01");
        assert_eq!(v["error"]["data"]["supported"][0], "2026-07-28");
        assert!(v.get("id").is_some_and(|i| i.is_null()));
    }

    #[test]
    fn stateless_headers_must_match() {
        let s = Era::Stateless;
        let ok =
            |m: Option<&[u8]>, n: Option<&[u8]>, bm, bn| check_headers(s, m, n, Some(bm), bn, None);
        assert!(ok(
            Some(b"tools/call"),
            Some(b"echo"),
            "tools/call",
            Some("echo")
        )
        .is_ok());
        assert!(ok(Some(b"tools/list"), None, "tools/list", None).is_ok());
        assert!(ok(Some(b"tools/list"), None, "tools/call", Some("echo")).is_err());
        assert!(ok(
            Some(b"tools/call"),
            Some(b"other"),
            "tools/call",
            Some("echo")
        )
        .is_err());
        assert!(ok(Some(b"tools/call"), None, "tools/call", Some("echo")).is_err());
        assert!(ok(None, None, "tools/list", None).is_err());
        assert!(ok(Some(b"tools/list"), Some(b"x"), "tools/list", None).is_err());
        assert!(check_headers(
            s,
            Some(b"resources/read"),
            Some(b"file:///a"),
            Some("resources/read"),
            None,
            Some("file:///a")
        )
        .is_ok());
        assert!(check_headers(
            s,
            Some(b"resources/read"),
            Some(b"file:///b"),
            Some("resources/read"),
            None,
            Some("file:///a")
        )
        .is_err());
    }

    #[test]
    fn base64_values() {
        assert_eq!(decode_header_value(b"echo").as_deref(), Ok(&b"echo"[..]));
        // "héllo" in the spec's base64 form
        assert_eq!(
            decode_header_value(b"=?base64?aMOpbGxv?=").as_deref(),
            Ok("héllo".as_bytes())
        );
        assert!(decode_header_value(b"=?base64?!!!?=").is_err());
        assert!(decode_header_value("héllo".as_bytes()).is_err());
        assert!(decode_header_value(&[b'a', 1, b'b']).is_err());
        let s = Era::Stateless;
        assert!(check_headers(
            s,
            Some(b"tools/call"),
            Some(b"=?base64?aMOpbGxv?="),
            Some("tools/call"),
            Some("héllo"),
            None
        )
        .is_ok());
        assert!(check_headers(
            s,
            Some(b"tools/call"),
            Some(b"=?base64?aMOpbGxv?="),
            Some("tools/call"),
            Some("hello"),
            None
        )
        .is_err());
    }

    #[test]
    fn meta_version_must_match_header() {
        assert!(check_version(None, None).is_ok());
        assert!(check_version(Some(b"2025-06-18"), None).is_ok());
        assert!(check_version(Some(b"2026-07-28"), Some("2026-07-28")).is_ok());
        assert!(check_version(None, Some("2026-07-28")).is_err());
        assert!(check_version(Some(b"2025-11-25"), Some("2026-07-28")).is_err());
    }

    #[test]
    fn session_era_headers_are_optional_but_checked() {
        let e = Era::Session;
        assert!(check_headers(e, None, None, Some("tools/call"), Some("x"), None).is_ok());
        assert!(check_headers(
            e,
            Some(b"tools/list"),
            None,
            Some("tools/call"),
            Some("x"),
            None
        )
        .is_err());
        assert!(check_headers(e, None, None, None, None, None).is_ok());
        assert!(check_headers(e, Some(b"x"), None, None, None, None).is_err());
    }
}
