//! Resource URI normalization (RFC 3986 §6.2.2 syntax-based and §6.2.3
//! scheme-based): the one form policy, routing and list filtering match.
//!
//! Two URIs that an RFC-conforming server reads as the same resource get the
//! same normal form; a URI that servers could read in more than one way is
//! refused instead of guessed at. The gateway forwards the client's own
//! bytes, never the normal form: the refusals below are what makes every
//! reading of those bytes land where the normal form says.
//!
//! Normalized: scheme and host lowercased; percent-encoded unreserved
//! characters decoded (`%41` → `A`), other escapes written with uppercase
//! hex (`%3a` → `%3A`); `file://localhost/` and `file:/` written `file:///`;
//! the default port of `http`/`https`/`ws`/`wss` dropped, an empty
//! `http(s)` path written `/`.
//!
//! Refused: no scheme; a control character (raw or encoded); a raw `\`; a
//! malformed escape; an encoded `.`, `/` or `\`; an encoded `%` before two
//! hex digits (double encoding); a `.` or `..` path segment (also spelled
//! with fullwidth or leader dots that compatibility normalization turns into
//! `.`); an empty segment inside the path (`a//b`: some servers collapse it).
//! Pingora-free.

use std::borrow::Cow;
use std::fmt;

/// Why a URI is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an absolute URI (`scheme:...`).
    NoScheme,
    /// A control character, raw or percent-encoded.
    Control,
    /// A raw backslash (WHATWG parsers read it as `/`).
    Backslash,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%2E`, `%2F` or `%5C`: an encoded dot, slash or backslash.
    EncodedSeparator,
    /// `%25` before two hex digits: an escape that decodes to another escape.
    DoubleEncoding,
    /// A `.` or `..` segment.
    DotSegment,
    /// An empty segment inside the path.
    EmptySegment,
    /// An authority another parser could split elsewhere: a port that is
    /// not decimal digits (RFC 3986 `port = *DIGIT`), or a `:`, `[` or `]`
    /// in the host outside one IP literal.
    BadAuthority,
}

impl Refusal {
    /// The message of the JSON-RPC error (-32602).
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::NoScheme => "invalid params: resource URI must be absolute",
            Refusal::Control => "invalid params: control character in resource URI",
            Refusal::Backslash => "invalid params: backslash in resource URI",
            Refusal::BadEscape => "invalid params: malformed percent-escape in resource URI",
            Refusal::EncodedSeparator => "invalid params: encoded '.', '/' or '\\' in resource URI",
            Refusal::DoubleEncoding => "invalid params: double-encoded resource URI",
            Refusal::DotSegment => "invalid params: dot segment in resource URI",
            Refusal::EmptySegment => "invalid params: empty path segment in resource URI",
            Refusal::BadAuthority => "invalid params: malformed host or port in resource URI",
        }
    }

    /// Short label for audit and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::NoScheme => "uri_no_scheme",
            Refusal::Control => "uri_control",
            Refusal::Backslash => "uri_backslash",
            Refusal::BadEscape => "uri_bad_escape",
            Refusal::EncodedSeparator => "uri_encoded_separator",
            Refusal::DoubleEncoding => "uri_double_encoding",
            Refusal::DotSegment => "uri_dot_segment",
            Refusal::EmptySegment => "uri_empty_segment",
            Refusal::BadAuthority => "uri_bad_authority",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters that Unicode compatibility normalization (NFKC) turns into
/// one or two full stops: a segment made of them is a dot segment to a
/// server that normalizes before resolving.
fn dot_like(c: char) -> bool {
    matches!(c, '.' | '\u{FF0E}' | '\u{2024}' | '\u{FE52}' | '\u{2025}')
}

/// The normal form of `uri`, borrowed when it already is normal.
pub fn normalize(uri: &str) -> Result<Cow<'_, str>, Refusal> {
    let b = uri.as_bytes();
    // one pass over the raw text: control characters, backslashes, escapes
    let mut needs_rewrite = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c < 0x20 || c == 0x7f => return Err(Refusal::Control),
            b'\\' => return Err(Refusal::Backslash),
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(Refusal::BadEscape);
                };
                let v = h << 4 | l;
                match v {
                    b'.' | b'/' | b'\\' => return Err(Refusal::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(Refusal::Control),
                    b'%' if escapes_after(b, i + 3) => return Err(Refusal::DoubleEncoding),
                    _ => {}
                }
                if unreserved(v) || b[i + 1].is_ascii_lowercase() || b[i + 2].is_ascii_lowercase() {
                    needs_rewrite = true;
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // C1 controls (U+0080..U+009F) are controls too
    if !uri.is_ascii() && uri.chars().any(|c| c.is_control()) {
        return Err(Refusal::Control);
    }
    let colon = scheme_end(b).ok_or(Refusal::NoScheme)?;
    let (scheme, rest) = (&uri[..colon], &uri[colon + 1..]);
    let scheme_upper = scheme.bytes().any(|c| c.is_ascii_uppercase());
    let scheme_l: Cow<'_, str> = if scheme_upper {
        Cow::Owned(scheme.to_ascii_lowercase())
    } else {
        Cow::Borrowed(scheme)
    };

    // hier-part: `//authority path` or a path; then `?query`, `#fragment`
    let (hier, tail) = match rest.find(['?', '#']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (authority, path) = match hier.strip_prefix("//") {
        Some(h) => {
            let end = h.find('/').unwrap_or(h.len());
            (Some(&h[..end]), &h[end..])
        }
        None => (None, hier),
    };
    check_segments(path)?;

    let authority_n = authority
        .map(|a| normal_authority(&scheme_l, a))
        .transpose()?;
    let file = scheme_l == "file";
    let web = matches!(&*scheme_l, "http" | "https" | "ws" | "wss");
    // file:/x and file://localhost/x are file:///x (RFC 8089)
    let file_rewrite = file
        && match &authority_n {
            None => path.starts_with('/'),
            Some(a) => a.eq_ignore_ascii_case("localhost"),
        };
    let empty_web_path = web && authority.is_some() && path.is_empty();
    let authority_changed = match (&authority_n, authority) {
        (Some(n), Some(a)) => n != a,
        _ => false,
    };
    if !needs_rewrite && !scheme_upper && !file_rewrite && !empty_web_path && !authority_changed {
        return Ok(Cow::Borrowed(uri));
    }
    let mut out = String::with_capacity(uri.len() + 2);
    out.push_str(&scheme_l);
    out.push(':');
    if file_rewrite {
        out.push_str("//");
    } else if let Some(a) = &authority_n {
        out.push_str("//");
        out.push_str(a);
    }
    push_unescaped(&mut out, path);
    if empty_web_path {
        out.push('/');
    }
    push_unescaped(&mut out, tail);
    Ok(Cow::Owned(out))
}

/// The character at `i` once an escape of an unreserved character is
/// decoded, and how many bytes it took.
fn decoded_at(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let c = *b.get(i)?;
    if c == b'%' {
        if let (Some(h), Some(l)) = (
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            let v = h << 4 | l;
            if unreserved(v) {
                return Some((v, 3));
            }
        }
    }
    Some((c, 1))
}

/// Whether two hex digits follow at `i` (also spelled as escapes of the
/// digits): after `%25` they make a second escape once the first is decoded.
fn escapes_after(b: &[u8], i: usize) -> bool {
    let Some((c1, n1)) = decoded_at(b, i) else {
        return false;
    };
    let Some((c2, _)) = decoded_at(b, i + n1) else {
        return false;
    };
    hex(c1).is_some() && hex(c2).is_some()
}

/// `scheme ":"` where scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ):
/// the index of the colon.
fn scheme_end(b: &[u8]) -> Option<usize> {
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    for (i, c) in b.iter().enumerate() {
        match c {
            b':' => return Some(i),
            c if c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.') => {}
            _ => return None,
        }
    }
    None
}

/// Path segments: no dot segments, no empty segment inside the path.
fn check_segments(path: &str) -> Result<(), Refusal> {
    let mut segments = path.split('/').peekable();
    let mut first = true;
    while let Some(s) = segments.next() {
        if dots_only(s) {
            return Err(Refusal::DotSegment);
        }
        // "/a" splits into ["", "a"]: the first empty piece is the root, the
        // last one a trailing slash; any other is "//"
        if s.is_empty() && !first && segments.peek().is_some() {
            return Err(Refusal::EmptySegment);
        }
        first = false;
    }
    Ok(())
}

/// A segment of dots, possibly with spaces (`.`, `..`, `...`, `.. `,
/// `..%20`, fullwidth dots), up to an encoded `?` or `#`: what some server
/// resolves as "here" or "up"
/// (Windows drops trailing dots and spaces, NFKC turns `．` into `.`).
fn dots_only(s: &str) -> bool {
    if !matches!(s.as_bytes().first(), Some(b'.' | b' ' | b'%' | 0x80..)) {
        return false;
    }
    let mut dots = 0;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("%20") {
            rest = r;
            continue;
        }
        // an encoded `?` or `#` ends the segment for a server that decodes
        // before it splits (found by the fuzzer: `.%3Fx` is `.` then a query)
        if ["%3F", "%3f", "%23"].iter().any(|e| rest.starts_with(e)) {
            break;
        }
        match c {
            ' ' => {}
            c if dot_like(c) => dots += 1,
            _ => return false,
        }
        rest = &rest[c.len_utf8()..];
    }
    dots > 0
}

/// Lowercases the host (not the userinfo), drops an empty or default port.
fn normal_authority(scheme: &str, a: &str) -> Result<String, Refusal> {
    let (userinfo, hostport) = match a.rfind('@') {
        Some(at) => (Some(&a[..at]), &a[at + 1..]),
        None => (None, a),
    };
    // the port follows the last ':' outside an IPv6 literal
    let (host, port) = match hostport.rfind(':') {
        Some(at) if !hostport[at..].contains(']') => (&hostport[..at], Some(&hostport[at + 1..])),
        _ => (hostport, None),
    };
    // found by the fuzzer: `h:4%3a` kept its lowercase escape, and
    // `[::1]:4DB8:` had a host that ended in `:4db8` (a port, next time)
    let literal = host.len() >= 2
        && host.starts_with('[')
        && host.ends_with(']')
        && !host[1..host.len() - 1].contains(['[', ']']);
    if port.is_some_and(|p| !p.bytes().all(|c| c.is_ascii_digit()))
        || (!literal && host.contains([':', '[', ']']))
    {
        return Err(Refusal::BadAuthority);
    }
    let default = match scheme {
        "http" | "ws" => Some("80"),
        "https" | "wss" => Some("443"),
        _ => None,
    };
    let mut out = String::with_capacity(a.len());
    if let Some(u) = userinfo {
        push_unescaped(&mut out, u);
        out.push('@');
    }
    // decoded first, then lowercased outside the escapes that stay
    let mut h = String::with_capacity(host.len());
    push_unescaped(&mut h, host);
    let mut in_escape = 0;
    for c in h.chars() {
        if in_escape > 0 {
            in_escape -= 1;
            out.push(c);
        } else if c == '%' {
            in_escape = 2;
            out.push(c);
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    match port {
        Some("") | None => {}
        Some(p) if Some(p) == default => {}
        Some(p) => {
            out.push(':');
            out.push_str(p);
        }
    }
    Ok(out)
}

/// Appends `s` with escapes of unreserved characters decoded and the other
/// escapes in uppercase hex (`s` passed the escape checks already).
fn push_unescaped(out: &mut String, s: &str) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut plain = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push_str(&s[plain..i]);
                let v = h << 4 | l;
                if unreserved(v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(b[i + 1].to_ascii_uppercase() as char);
                    out.push(b[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                plain = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[plain..]);
}

/// Whether a configured resource pattern is written in normal form (a
/// pattern that is not would never match a normalized URI). `*` stands for
/// any text and is kept as it is. `Err` = the form to write instead.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.contains('*') && !pattern.contains("://") {
        return Ok(());
    }
    // the literal text up to the first wildcard must be normal
    let head = pattern.split('*').next().unwrap_or("");
    if head.is_empty() || scheme_end(head.as_bytes()).is_none() {
        return Ok(());
    }
    // normalize the head with a placeholder so a trailing "/" or an empty
    // path is judged as it will be followed by more text
    let probe = format!("{head}x");
    match normalize(&probe) {
        Ok(n) if n == probe => Ok(()),
        Ok(n) => {
            let fixed = n.strip_suffix('x').unwrap_or(&n);
            Err(format!(
                "resource pattern {pattern:?} is not in normal form: write {:?}",
                pattern.replacen(head, fixed, 1)
            ))
        }
        Err(r) => Err(format!(
            "resource pattern {pattern:?} can never match: {}",
            r.message().trim_start_matches("invalid params: ")
        )),
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
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        match normalize(s) {
            Ok(v) => v.into_owned(),
            Err(e) => panic!("{s}: {e:?}"),
        }
    }
    fn refused(s: &str) -> Refusal {
        match normalize(s) {
            Ok(v) => panic!("{s}: accepted as {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn dots_before_an_encoded_query_or_fragment_are_dot_segments() {
        for bad in [
            "file:///public/..%3F/secret",
            "file:///public/.%3fx/y",
            "file:///p/..%23x",
        ] {
            assert_eq!(normalize(bad), Err(Refusal::DotSegment), "{bad}");
        }
        assert!(normalize("file:///p/a%3Fb").is_ok());
        check_contract(b"FIB9::1]:443/y=t1:\xff/.%3FIRRRRRf---------/");
    }

    #[test]
    fn authorities_split_one_way() {
        for bad in [
            "http://h:4%3a/x",
            "httpr://[2[2001:01:DB8::1]:4%3a\u{fffd}#z",
            "http://h:8x/",
            "https://[2000:DB8::1]:4DB8:?y=%3a#z",
            "http://a:b:80/",
            "http://[::1/x",
        ] {
            assert_eq!(normalize(bad), Err(Refusal::BadAuthority), "{bad}");
        }
        assert_eq!(
            normalize("http://[::1]:8080/x").unwrap(),
            "http://[::1]:8080/x"
        );
        assert_eq!(normalize("http://u:p@h/x").unwrap(), "http://u:p@h/x");
        assert_eq!(normalize("http://H:80/x").unwrap(), "http://h/x");
        assert_eq!(normalize("http://h:8080?q").unwrap(), "http://h:8080/?q");
        check_contract("httpr://[2[2001:01:DB8::1]:4%3a\u{fffd}#z".as_bytes());
        check_contract(b"https://[2000:DB8::1]:4DB8:?y=%3a#z");
    }

    #[test]
    fn normal_uris_are_borrowed() {
        for u in [
            "file:///public/a.txt",
            "test://static/resource/1",
            "https://example.com/a/b?x=1&y=%3A",
            "urn:isbn:0451450523",
            "file:///dir/",
            "mailto:a@example.com",
            "file:///My%20Documents/x",
            "file:///caf\u{e9}",
        ] {
            assert!(matches!(normalize(u), Ok(Cow::Borrowed(_))), "{u}");
        }
    }

    #[test]
    fn equivalent_spellings_normalize_alike() {
        let cases = [
            ("FILE:///public/a", "file:///public/a"),
            ("file://localhost/public/a", "file:///public/a"),
            ("file://LOCALHOST/public/a", "file:///public/a"),
            ("file:/public/a", "file:///public/a"),
            ("file:///public/%61", "file:///public/a"),
            ("file:///%70ublic/a", "file:///public/a"),
            ("file:///public/%7e%2d_", "file:///public/~-_"),
            ("file:///a%3ab", "file:///a%3Ab"),
            ("HTTPS://Example.COM:443/x", "https://example.com/x"),
            ("http://Example.com", "http://example.com/"),
            ("http://example.com:80/", "http://example.com/"),
            ("http://example.com:/", "http://example.com/"),
            (
                "http://User@EXAMPLE.com:8080/",
                "http://User@example.com:8080/",
            ),
            ("http://[2001:DB8::1]:80/", "http://[2001:db8::1]/"),
            ("Test://Static/Resource/1", "test://static/Resource/1"),
        ];
        for (raw, want) in cases {
            assert_eq!(n(raw), want, "{raw}");
        }
    }

    #[test]
    fn ambiguous_uris_are_refused() {
        use Refusal::*;
        let cases = [
            ("file:///public/../secret/k", DotSegment),
            ("file:///public/./k", DotSegment),
            ("file:///public/..", DotSegment),
            ("file:///public/%2e%2e/secret/k", EncodedSeparator),
            ("file:///public/%2E./secret/k", EncodedSeparator),
            ("file:///public/.%2e/secret", EncodedSeparator),
            ("file:///public%2f..%2fsecret", EncodedSeparator),
            ("file:///public/%5c..%5csecret", EncodedSeparator),
            ("file:///public\\..\\secret", Backslash),
            ("file:///public/%252e%252e/secret", DoubleEncoding),
            ("file:///a%25%32%65", DoubleEncoding),
            ("file:///a%25%32e", DoubleEncoding),
            ("file:///public/\u{ff0e}\u{ff0e}/secret", DotSegment),
            ("file:///public/\u{2025}/secret", DotSegment),
            ("file:///public/\u{2024}\u{2024}/secret", DotSegment),
            ("file:///public/\u{fe52}/secret", DotSegment),
            ("file:////secret/k", EmptySegment),
            ("file:///public//secret", EmptySegment),
            ("file:///a%00b", Control),
            ("file:///a\u{0}b", Control),
            ("file:///a\nb", Control),
            ("file:///a%0ab", Control),
            ("file:///a\u{85}b", Control),
            ("file:///a%7f", Control),
            ("file:///a%zz", BadEscape),
            ("file:///a%4", BadEscape),
            ("file:///a%", BadEscape),
            ("/etc/passwd", NoScheme),
            ("", NoScheme),
            ("1abc:x", NoScheme),
            ("../secret", NoScheme),
        ];
        for (raw, want) in cases {
            assert_eq!(refused(raw), want, "{raw}");
        }
    }

    #[test]
    fn dots_inside_names_are_fine() {
        for u in [
            "file:///a.txt",
            "file:///.hidden",
            "file:///v1.2/x",
            "file:///a..b",
            "https://x/?a=../b",
            "https://x/#..",
            "file:///%25",
            "file:///100%25done",
        ] {
            assert!(normalize(u).is_ok(), "{u}");
        }
        // RFC 3986 reads "..." and ".. " as names; Windows servers drop the
        // trailing dots and spaces: refused
        for u in ["file:///a/.../b", "file:///a/.. /b", "file:///a/..%20/b"] {
            assert_eq!(refused(u), Refusal::DotSegment, "{u}");
        }
    }

    #[test]
    fn normal_form_is_idempotent() {
        for u in [
            "FILE://LOCALHOST/%7Euser/a%3ab",
            "HTTP://EXAMPLE.com:80",
            "file:/x",
            "urn:A:%42",
        ] {
            let once = n(u);
            assert_eq!(n(&once), once, "{u}");
        }
    }

    #[test]
    fn contract_holds_on_known_uris() {
        for u in [
            "FILE://LOCALHOST/%7Euser/a%3ab",
            "file:///public/%2e%2e/x",
            "http://EXAMPLE.com:80",
            "file:/x",
            "urn:A:%42",
            "file:///a/..%20/b",
            "file:///a%25%32%65",
            "x:%",
            "file:///\u{ff0e}",
        ] {
            check_contract(u.as_bytes());
        }
    }

    #[test]
    fn patterns_must_be_normal() {
        assert!(check_pattern("file:///public/*").is_ok());
        assert!(check_pattern("*").is_ok());
        assert!(check_pattern("test://static/*").is_ok());
        assert!(check_pattern("file:///*").is_ok());
        let e = check_pattern("FILE:///public/*").unwrap_err();
        assert!(e.contains("\"file:///public/*\""), "{e}");
        let e = check_pattern("file://localhost/public/*").unwrap_err();
        assert!(e.contains("\"file:///public/*\""), "{e}");
        assert!(check_pattern("file:///public/../*").is_err());
    }
}
