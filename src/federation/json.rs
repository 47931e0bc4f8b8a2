//! Byte-preserving edits of one JSON object: members are kept as the raw
//! text they arrived in (`serde_json::value::RawValue`), in their order,
//! and only the member being replaced is written anew. Numbers, escapes
//! and the members nobody reads reach the peer exactly as they were sent.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// An object's members in order, each value as its raw JSON text.
#[derive(Debug)]
pub struct Members<'a>(pub Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Members<'a> {
    /// The members of `text`, or `None` when it is not one JSON object.
    pub fn of(text: &'a str) -> Option<Members<'a>> {
        serde_json::from_str(text).ok()
    }

    /// The raw value of the first member named `key`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The string value of `key`, unescaped.
    pub fn str(&self, key: &str) -> Option<String> {
        serde_json::from_str::<String>(self.get(key)?.get()).ok()
    }

    /// Writes the object back with `key` set to the JSON text `value`
    /// (added at the end when absent); every other member as it was. A
    /// later duplicate of `key` is left out: a reader that keeps the last
    /// duplicate (JavaScript's `JSON.parse`, serde_json) would read it,
    /// not `value` (a member's request with two ids would reach the client
    /// with its second id not namespaced).
    pub fn with(&self, key: &str, value: &str) -> String {
        let mut out = String::with_capacity(
            self.0
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + value.len()
                + key.len()
                + 8,
        );
        out.push('{');
        let mut found = false;
        let mut any = false;
        for (k, v) in &self.0 {
            if k == key && found {
                continue;
            }
            if any {
                out.push(',');
            }
            any = true;
            push_string(&mut out, k);
            out.push(':');
            if k == key {
                found = true;
                out.push_str(value);
            } else {
                out.push_str(v.get());
            }
        }
        if !found {
            if any {
                out.push(',');
            }
            push_string(&mut out, key);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        out
    }
}

/// A JSON string literal for `s`.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    out
}

fn push_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        // unreachable: a &str always serializes
        Err(_) => out.push_str("\"\""),
    }
}

/// `text` with the object member at `path` (object keys from the top)
/// set to the JSON text `value`; `None` when a step is not an object.
pub fn set_path(text: &str, path: &[&str], value: &str) -> Option<String> {
    let members = Members::of(text)?;
    match path {
        [] => None,
        [key] => Some(members.with(key, value)),
        [key, rest @ ..] => {
            let inner = members.get(key)?;
            let replaced = set_path(inner.get(), rest, value)?;
            Some(members.with(key, &replaced))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_member_set_changes() {
        let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"py__add","arguments":{"a":1.50,"b":100000000000000000000000,"s":"\u00e9"}}}"#;
        let out = set_path(body, &["params", "name"], &string("add")).unwrap();
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1.50,"b":100000000000000000000000,"s":"\u00e9"}}}"#
        );
    }

    #[test]
    fn escaped_keys_and_missing_members() {
        let out = set_path(r#"{"a":1}"#, &["id"], "\"x\"").unwrap();
        assert_eq!(out, r#"{"a":1,"id":"x"}"#);
        assert!(set_path("[1]", &["id"], "1").is_none());
        assert!(set_path(r#"{"params":3}"#, &["params", "name"], "1").is_none());
        let m = Members::of(r#"{"n\u0061me":"v"}"#).unwrap();
        assert_eq!(m.str("name").as_deref(), Some("v"));
    }

    #[test]
    fn a_duplicate_of_the_member_set_is_left_out() {
        // found by the fuzzer: the second `id` stayed, and a client that
        // keeps the last duplicate read it instead of the namespaced one
        let m = Members::of(r#"{"id":1,"method":"x","i\u0064":"m1:7","id":2}"#).unwrap();
        assert_eq!(m.with("id", "\"m0:1\""), r#"{"id":"m0:1","method":"x"}"#);
        let out = set_path(
            r#"{"params":{"name":"py__a","x":1,"name":"b"},"params":{"name":"c"}}"#,
            &["params", "name"],
            &string("a"),
        )
        .unwrap();
        assert_eq!(out, r#"{"params":{"name":"a","x":1}}"#);
    }
}
