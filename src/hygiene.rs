//! Header hygiene: which client request headers may reach an upstream.
//! Only `upstream_headers.forward` plus content headers pass; credentials and
//! hop-by-hop headers never do, whatever the configuration says.

use http::header::HeaderName;

/// Headers that never go upstream (client credentials, hop-by-hop, routing).
pub const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "x-request-id",
    // the gateway reads every answer: it asks for identity itself
    "accept-encoding",
    // forwarding headers: the gateway writes its own (addr::trusted)
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
];

/// Content headers that always travel with a body.
const CONTENT_HEADERS: &[&str] = &["content-type", "content-length"];

/// Compiled forward allowlist.
#[derive(Debug, Clone, Default)]
pub struct HeaderPolicy {
    forward: Vec<HeaderName>,
}

impl HeaderPolicy {
    /// Builds the allowlist; invalid names are reported as `[index]: message`.
    /// Names on [`NEVER_FORWARDED`] are dropped (documented: they never pass).
    pub fn new(names: &[String], errs: &mut Vec<String>) -> Self {
        let mut forward: Vec<HeaderName> = Vec::new();
        for (i, n) in names.iter().enumerate() {
            match HeaderName::from_bytes(n.trim().as_bytes()) {
                Ok(h) => {
                    let never =
                        NEVER_FORWARDED.contains(&h.as_str()) || h.as_str().starts_with("proxy-");
                    if !never && !forward.contains(&h) {
                        forward.push(h);
                    }
                }
                Err(_) => errs.push(format!("[{i}]: \"{n}\" is not a valid header name")),
            }
        }
        for c in CONTENT_HEADERS {
            let h = HeaderName::from_static(c);
            if !forward.contains(&h) {
                forward.push(h);
            }
        }
        HeaderPolicy { forward }
    }

    /// Whether a client header may be forwarded.
    pub fn keep(&self, name: &HeaderName) -> bool {
        self.forward.iter().any(|h| h == name)
    }

    /// The allowlist, for documentation and `routes` output.
    pub fn forwarded(&self) -> impl Iterator<Item = &str> {
        self.forward.iter().map(|h| h.as_str())
    }
}

/// Whether a client-supplied `X-Request-ID` is sane enough to keep:
/// 1–128 visible ASCII characters from a conservative set.
pub fn sane_request_id(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(names: &[&str]) -> HeaderPolicy {
        let mut errs = Vec::new();
        let p = HeaderPolicy::new(
            &names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        p
    }

    #[test]
    fn credentials_never_pass_even_if_listed() {
        let p = policy(&[
            "Authorization",
            "cookie",
            "X-API-Key",
            "api-key",
            "proxy-foo",
            "connection",
            "accept",
        ]);
        for h in [
            "authorization",
            "cookie",
            "x-api-key",
            "api-key",
            "proxy-foo",
            "connection",
        ] {
            assert!(!p.keep(&HeaderName::from_static(h)), "{h}");
        }
        assert!(p.keep(&HeaderName::from_static("accept")));
        assert!(p.keep(&HeaderName::from_static("content-type")));
        assert!(p.keep(&HeaderName::from_static("content-length")));
        assert!(!p.keep(&HeaderName::from_static("x-other")));
    }

    #[test]
    fn invalid_names_are_reported() {
        let mut errs = Vec::new();
        HeaderPolicy::new(&["ok".into(), "not ok".into()], &mut errs);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("[1]"));
    }

    #[test]
    fn request_ids() {
        assert!(sane_request_id(b"abc-123_x.y"));
        assert!(!sane_request_id(b""));
        assert!(!sane_request_id(b"has space"));
        assert!(!sane_request_id(b"inj\r\nx: y"));
        assert!(!sane_request_id(&[b'a'; 129]));
        let id = crate::base::ids::new_request_id();
        assert_eq!(id.len(), 32);
        assert!(sane_request_id(id.as_bytes()));
        assert_ne!(id, crate::base::ids::new_request_id());
    }
}
