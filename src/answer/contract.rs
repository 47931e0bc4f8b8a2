//! The fuzz contract of `answer`: an oracle that panics when the code
//! beside it breaks a property (fuzz target and `tests/fuzz_corpus.rs`).
//! Built only for tests and with the `contracts` feature.

#![allow(clippy::panic)]

use super::*;

/// Reports a broken contract: the panic is the fuzzer's finding.
#[allow(clippy::panic)]
#[track_caller]
pub(super) fn broken(what: fmt::Arguments<'_>) -> ! {
    panic!("answer contract broken: {what}")
}

/// The contract's policy: an item whose name or URI contains `secret` is hidden.
pub(super) fn contract_allowed(_: Item, name: &str) -> bool {
    !name.contains("secret")
}

/// `json` with every number token outside strings replaced by `0`, so the
/// oracle's `serde_json::Value` can hold what the scanner accepts (JSON
/// allows numbers beyond `f64`, like an id of `4e447`; clients read them as
/// infinity). Structure and strings are unchanged.
pub(super) fn numbers_zeroed(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_str, mut escaped, mut in_num) = (false, false, false);
    for &b in json {
        if in_str {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_str = false;
            }
            continue;
        }
        let numeric = if in_num {
            b.is_ascii_digit() || b"+-.eE".contains(&b)
        } else {
            b.is_ascii_digit() || b == b'-'
        };
        if numeric {
            if !in_num {
                out.push(b'0');
            }
            in_num = true;
            continue;
        }
        in_num = false;
        in_str = b == b'"';
        out.push(b);
    }
    out
}

/// Whether a message, as a case-insensitive client could read it, still
/// shows a hidden item: any `result`-like member, any list-like member in
/// it, any item with a key naming something hidden (keys compared ignoring
/// case; every duplicate counted, as some parser may keep it).
pub(super) fn shows_hidden(json: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    struct Members(#[serde(with = "members")] Vec<(String, serde_json::Value)>);
    mod members {
        use serde::de::{Deserializer, MapAccess, Visitor};
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<(String, serde_json::Value)>, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Vec<(String, serde_json::Value)>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some(e) = m.next_entry()? {
                        out.push(e);
                    }
                    Ok(out)
                }
            }
            d.deserialize_map(V)
        }
    }
    let Ok(Members(top)) = serde_json::from_slice::<Members>(&numbers_zeroed(json)) else {
        return false;
    };
    let folded = |k: &str| k.to_lowercase().to_uppercase().to_lowercase();
    let item_hidden = |item: &serde_json::Value| match item {
        serde_json::Value::Object(m) => m.iter().any(|(k, v)| {
            let key = folded(k);
            // a name is a name (a tool called `x:///%73ecret` is not the
            // resource `x:///secret`); a URI is read in its normal form
            let uri = matches!(key.as_str(), "uri" | "uritemplate");
            (uri || key == "name")
                && v.as_str().is_some_and(|s| {
                    !contract_allowed(Item::Tool, s)
                        || (uri
                            && crate::uri::normalize(s)
                                .is_ok_and(|n| !contract_allowed(Item::Resource, &n)))
                })
        }),
        _ => false,
    };
    top.iter()
        .filter(|(k, _)| folded(k) == "result")
        .filter_map(|(_, r)| serde_json::from_value::<Members>(r.clone()).ok())
        .any(|Members(result)| {
            result.iter().any(|(k, v)| {
                matches!(
                    folded(k).as_str(),
                    "tools" | "prompts" | "resources" | "resourcetemplates"
                ) && v.as_array().is_some_and(|a| a.iter().any(item_hidden))
            })
        })
}

/// The answer guard's contract on any input (fuzz target `answer_filter`,
/// `cargo test` over `fuzz/corpus/answer_filter`). The first byte picks the
/// mode, the rest is the upstream's body. Panics when broken:
///
/// - `check_message` never panics; what it passes or rewrites is a JSON
///   object that shows no hidden item even to a client that matches keys
///   ignoring case and keeps any duplicate; a rewrite removes only list
///   items (the rest parses to the same value);
/// - the SSE guard, fed the body in pieces cut where the first byte says,
///   writes LF-only canonical events that no `data:` line of shows a hidden
///   item to a client splitting on LF alone, and writes the same bytes
///   again when fed its own output (canonical form is a fixed point).
pub fn check_contract(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let allowed = contract_allowed;
    if mode & 1 == 0 {
        let out: Cow<'_, [u8]> = match check_message(body, &allowed) {
            Checked::Refused(_) => return,
            Checked::Pass => Cow::Borrowed(body),
            Checked::Rewritten(v) => Cow::Owned(v),
        };
        let Ok(serde_json::Value::Object(m)) =
            serde_json::from_slice::<serde_json::Value>(&numbers_zeroed(&out))
        else {
            broken(format_args!(
                "relayed a message that is not an object: {:?}",
                String::from_utf8_lossy(&out)
            ));
        };
        if shows_hidden(&out) {
            broken(format_args!(
                "relayed a hidden item: {:?}",
                String::from_utf8_lossy(&out)
            ));
        }
        if let Cow::Owned(_) = out {
            // the rewrite only removed list items
            let Ok(serde_json::Value::Object(mut orig)) =
                serde_json::from_slice::<serde_json::Value>(&numbers_zeroed(body))
            else {
                broken(format_args!("rewrote a message that was not an object"));
            };
            let mut got = m;
            for v in [&mut orig, &mut got] {
                if let Some(serde_json::Value::Object(r)) = v.get_mut("result") {
                    for (k, _, _) in LISTS {
                        r.remove(*k);
                    }
                }
            }
            if orig != got {
                broken(format_args!("the rewrite changed more than the lists"));
            }
        }
        return;
    }
    let piece = usize::from(mode >> 1).max(1);
    let mut g = SseGuard::new(1 << 16);
    let mut out = Vec::new();
    for c in body.chunks(piece) {
        out.extend_from_slice(&g.push(c, false, &allowed));
    }
    out.extend_from_slice(&g.push(b"", true, &allowed));
    if out.contains(&b'\r') {
        broken(format_args!("CR in the canonical output"));
    }
    let text = String::from_utf8_lossy(&out);
    for event in text.split("\n\n") {
        let data: Vec<&str> = event
            .split('\n')
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if !data.is_empty() && shows_hidden(data.join("\n").as_bytes()) {
            broken(format_args!("an event shows a hidden item: {event:?}"));
        }
    }
    let mut again = SseGuard::new(1 << 16);
    let twice = again.push(&out, true, &allowed);
    if twice.as_ref() != out.as_slice() {
        broken(format_args!(
            "canonical output is not a fixed point: {:?} -> {:?}",
            text,
            String::from_utf8_lossy(&twice)
        ));
    }
}
