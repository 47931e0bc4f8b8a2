//! The fuzz contract of `uri`: an oracle that panics when the code
//! beside it breaks a property (fuzz target and `tests/fuzz_corpus.rs`).
//! Built only for tests and with the `contracts` feature.

#![allow(clippy::panic)]

use super::*;

/// Decodes every `%XY` once (the text passed the escape checks).
pub(super) fn decode_once(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Reports a broken contract: the panic is the fuzzer's finding.
#[allow(clippy::panic)]
#[track_caller]
pub(super) fn broken(what: fmt::Arguments<'_>) -> ! {
    panic!("uri normalize contract broken: {what}")
}

/// The normalizer's contract on any text (fuzz target `uri_normalize`,
/// `cargo test` over `fuzz/corpus/uri_normalize`). Panics when broken:
///
/// - it never panics, and an accepted URI's normal form is normal
///   (normalizing it again gives it back, borrowed);
/// - the normal form has a scheme, no control character, no backslash, no
///   escape of an unreserved character, of `.`, `/`, `\`, `%` or a control,
///   escapes in uppercase hex; decoded once (as a server does), no path
///   segment made of dots or dots and spaces, no empty inner segment: what a
///   server resolves from the client's bytes is what policy matched;
/// - the normal form of the input with its scheme and host uppercased is
///   the same (case never changes the decision).
pub fn check_contract(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(n) = normalize(&text) else {
        return;
    };
    match normalize(&n) {
        Ok(Cow::Borrowed(again)) if again == n => {}
        other => broken(format_args!("{text:?} -> {n:?} -> {other:?}")),
    }
    if scheme_end(n.as_bytes()).is_none() {
        broken(format_args!("{n:?} has no scheme"));
    }
    if n.chars().any(|c| c.is_control() || c == '\\') {
        broken(format_args!("{n:?} has a control character or a backslash"));
    }
    let b = n.as_bytes();
    for (i, _) in n.match_indices('%') {
        let (Some(h), Some(l)) = (b.get(i + 1), b.get(i + 2)) else {
            broken(format_args!("{n:?}: cut escape"));
        };
        if h.is_ascii_lowercase() || l.is_ascii_lowercase() {
            broken(format_args!("{n:?}: lowercase escape"));
        }
        let v = hex(*h).unwrap_or(0) << 4 | hex(*l).unwrap_or(0);
        if unreserved(v) || matches!(v, b'/' | b'\\' | 0..=0x1f | 0x7f) {
            broken(format_args!("{n:?}: escape of {v:#x} left"));
        }
    }
    // what a server reads after one decoding
    let decoded = String::from_utf8_lossy(&decode_once(&n)).into_owned();
    let after_scheme = &decoded[decoded.find(':').map_or(0, |i| i + 1)..];
    let hier = after_scheme.split(['?', '#']).next().unwrap_or("");
    let path = match hier.strip_prefix("//") {
        Some(h) => &h[h.find('/').unwrap_or(h.len())..],
        None => hier,
    };
    let segments: Vec<&str> = path.split('/').collect();
    for (i, s) in segments.iter().enumerate() {
        let dots =
            !s.is_empty() && s.chars().all(|c| dot_like(c) || c == ' ') && s.chars().any(dot_like);
        if dots || (s.is_empty() && i != 0 && i + 1 != segments.len()) {
            broken(format_args!(
                "{text:?} -> {n:?} resolves with segment {s:?}"
            ));
        }
    }
    // the scheme and host in upper case normalize to the same
    if let Some(colon) = text.find(':') {
        let mut upper = text[..colon].to_ascii_uppercase();
        upper.push_str(&text[colon..]);
        match normalize(&upper) {
            Ok(u) if u == n => {}
            other => broken(format_args!("{upper:?} -> {other:?}, {text:?} -> {n:?}")),
        }
    }
}
