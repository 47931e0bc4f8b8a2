//! MCP protocol rules the gateway enforces: protocol eras and versions, and the
//! 2026-07-28 rule that the `Mcp-Method` / `Mcp-Name` headers agree with the body.

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

/// Protocol revisions this gateway knows.
pub const KNOWN_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// Era of a request from its `MCP-Protocol-Version` header. Absent = session era
/// (the spec's default is 2025-03-26). A value that is not a `YYYY-MM-DD`
/// revision is an error; an unknown date at or after 2026-07-28 is treated as
/// stateless, an unknown earlier one as session era (the upstream decides
/// whether it supports it).
pub fn era(version: Option<&[u8]>) -> Result<Era, ()> {
    let Some(v) = version else {
        return Ok(Era::Session);
    };
    let ok = v.len() == 10
        && v.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !ok {
        return Err(());
    }
    Ok(if v >= STATELESS_SINCE.as_bytes() {
        Era::Stateless
    } else {
        Era::Session
    })
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
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some(uri),
        _ => None,
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
    match header_method {
        Some(h) if h != method.as_bytes() => {
            return Err("Mcp-Method header does not match the body's method")
        }
        None if era == Era::Stateless => return Err("Mcp-Method header is required"),
        _ => {}
    }
    match (name_for_header(method, name, uri), header_name) {
        (Some(Some(expected)), Some(h)) if h != expected.as_bytes() => {
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
        assert_eq!(era(Some(b"2027-01-01")), Ok(Era::Stateless));
        assert_eq!(era(Some(b"latest")), Err(()));
        assert_eq!(era(Some(b"2026-07-28x")), Err(()));
    }

    #[test]
    fn stateless_headers_must_match() {
        let s = Era::Stateless;
        let ok = |m: Option<&[u8]>, n: Option<&[u8]>, bm, bn| check_headers(s, m, n, Some(bm), bn, None);
        assert!(ok(Some(b"tools/call"), Some(b"echo"), "tools/call", Some("echo")).is_ok());
        assert!(ok(Some(b"tools/list"), None, "tools/list", None).is_ok());
        assert!(ok(Some(b"tools/list"), None, "tools/call", Some("echo")).is_err());
        assert!(ok(Some(b"tools/call"), Some(b"other"), "tools/call", Some("echo")).is_err());
        assert!(ok(Some(b"tools/call"), None, "tools/call", Some("echo")).is_err());
        assert!(ok(None, None, "tools/list", None).is_err());
        assert!(ok(Some(b"tools/list"), Some(b"x"), "tools/list", None).is_err());
        assert!(check_headers(s, Some(b"resources/read"), Some(b"file:///a"), Some("resources/read"), None, Some("file:///a")).is_ok());
        assert!(check_headers(s, Some(b"resources/read"), Some(b"file:///b"), Some("resources/read"), None, Some("file:///a")).is_err());
    }

    #[test]
    fn session_era_headers_are_optional_but_checked() {
        let e = Era::Session;
        assert!(check_headers(e, None, None, Some("tools/call"), Some("x"), None).is_ok());
        assert!(check_headers(e, Some(b"tools/list"), None, Some("tools/call"), Some("x"), None).is_err());
        assert!(check_headers(e, None, None, None, None, None).is_ok());
        assert!(check_headers(e, Some(b"x"), None, None, None, None).is_err());
    }
}
