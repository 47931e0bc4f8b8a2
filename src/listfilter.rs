//! Filtering of list results so that hidden tools, resources and prompts are
//! never advertised: `tools/list`, `resources/list`, `resources/templates/list`
//! and `prompts/list` responses, whether a JSON body or SSE-framed, keep only
//! the items the principal may use. Fails closed: a list response that cannot
//! be parsed is replaced by a JSON-RPC error. Pingora-free.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::policy::Item;

/// Largest list response buffered for filtering; larger ones fail closed.
pub const MAX_LIST_BYTES: usize = 8 << 20;

/// Which list a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `tools/list`: `result.tools[].name`.
    Tools,
    /// `resources/list`: `result.resources[].uri`.
    Resources,
    /// `resources/templates/list`: `result.resourceTemplates[].uriTemplate`.
    ResourceTemplates,
    /// `prompts/list`: `result.prompts[].name`.
    Prompts,
}

impl ListKind {
    /// The list kind of a method, if it is a list method.
    pub fn of(method: &str) -> Option<ListKind> {
        match method {
            "tools/list" => Some(ListKind::Tools),
            "resources/list" => Some(ListKind::Resources),
            "resources/templates/list" => Some(ListKind::ResourceTemplates),
            "prompts/list" => Some(ListKind::Prompts),
            _ => None,
        }
    }

    fn field(&self) -> (&'static str, &'static str, Item) {
        match self {
            ListKind::Tools => ("tools", "name", Item::Tool),
            ListKind::Resources => ("resources", "uri", Item::Resource),
            ListKind::ResourceTemplates => ("resourceTemplates", "uriTemplate", Item::Resource),
            ListKind::Prompts => ("prompts", "name", Item::Prompt),
        }
    }
}

/// Filters one JSON-RPC message. Messages that are not a list result (errors,
/// notifications) pass unchanged; `None` = not JSON at all.
pub fn filter_message(
    json: &[u8],
    kind: ListKind,
    allowed: &dyn Fn(Item, &str) -> bool,
) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(json).ok()?;
    let (field, key, item) = kind.field();
    let Some(list) = v.get_mut("result").and_then(|r| r.get_mut(field)) else {
        return Some(json.to_vec());
    };
    let items = list.as_array_mut()?;
    items.retain(|it| {
        it.get(key)
            .and_then(Value::as_str)
            .is_some_and(|name| allowed(item, name))
    });
    serde_json::to_vec(&v).ok()
}

/// The error that replaces a list response that could not be filtered.
pub fn fail_closed() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"upstream list response could not be filtered"}}"#
        .to_vec()
}

/// Incremental filter for a response body (JSON or SSE).
#[derive(Debug)]
pub struct ListFilter {
    kind: ListKind,
    sse: bool,
    buf: BytesMut,
    failed: bool,
}

impl ListFilter {
    /// A filter for a response of `kind`; `sse` = `text/event-stream`.
    pub fn new(kind: ListKind, sse: bool) -> ListFilter {
        ListFilter {
            kind,
            sse,
            buf: BytesMut::new(),
            failed: false,
        }
    }

    /// Feeds a chunk; returns what may be sent now. JSON bodies come out whole
    /// at the end; SSE events as soon as each is complete.
    pub fn push(&mut self, chunk: &[u8], end: bool, allowed: &dyn Fn(Item, &str) -> bool) -> Bytes {
        if self.failed {
            return Bytes::new();
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() > MAX_LIST_BYTES {
            self.failed = true;
            self.buf.clear();
            return Bytes::from(self.fail_output());
        }
        if !self.sse {
            if !end {
                return Bytes::new();
            }
            let body = self.buf.split();
            return Bytes::from(
                filter_message(&body, self.kind, allowed).unwrap_or_else(fail_closed),
            );
        }
        let mut out = Vec::new();
        while let Some((len, sep)) = event_end(&self.buf) {
            let event = self.buf.split_to(len + sep);
            out.extend_from_slice(&self.filter_event(&event[..len], allowed));
            out.extend_from_slice(&event[len..]);
        }
        if end && !self.buf.is_empty() {
            let rest = self.buf.split();
            out.extend_from_slice(&self.filter_event(&rest, allowed));
        }
        Bytes::from(out)
    }

    fn fail_output(&self) -> Vec<u8> {
        if self.sse {
            let mut e = b"event: message\ndata: ".to_vec();
            e.extend_from_slice(&fail_closed());
            e.extend_from_slice(b"\n\n");
            e
        } else {
            fail_closed()
        }
    }

    /// Rewrites the `data:` of one SSE event; other lines are kept as they are.
    fn filter_event(&self, event: &[u8], allowed: &dyn Fn(Item, &str) -> bool) -> Vec<u8> {
        let mut data: Vec<u8> = Vec::new();
        let mut has_data = false;
        for line in split_lines(event) {
            if let Some(rest) = line.strip_prefix(b"data:") {
                if has_data {
                    data.push(b'\n');
                }
                has_data = true;
                data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
            }
        }
        if !has_data || data.iter().all(|b| b.is_ascii_whitespace()) {
            return event.to_vec();
        }
        let filtered = filter_message(&data, self.kind, allowed).unwrap_or_else(fail_closed);
        let mut out = Vec::with_capacity(event.len());
        let mut wrote = false;
        for line in split_lines(event) {
            if line.starts_with(b"data:") {
                if !wrote {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&filtered);
                    out.push(b'\n');
                    wrote = true;
                }
            } else {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
        // the event's own terminator follows; drop our last newline
        out.pop();
        out
    }
}

fn split_lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|c| *c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// End of the first complete SSE event: (event length, separator length).
fn event_end(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\n' && b[i + 1] == b'\n' {
            return Some((i, 2));
        }
        if i + 3 < b.len() && &b[i..i + 4] == b"\r\n\r\n" {
            return Some((i, 4));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(_: Item, name: &str) -> bool {
        !name.starts_with("admin")
    }

    const TOOLS: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{}},{"name":"admin.drop"},{"name":"add"}],"nextCursor":"c"}}"#;

    #[test]
    fn json_list_is_filtered() {
        let out = filter_message(TOOLS.as_bytes(), ListKind::Tools, &allow).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let names: Vec<&str> = v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["echo", "add"]);
        assert_eq!(v["result"]["nextCursor"], "c");
        assert_eq!(v["id"], 1);
    }

    #[test]
    fn other_kinds_and_passthrough() {
        let r = br#"{"jsonrpc":"2.0","id":2,"result":{"resources":[{"uri":"file:///a"},{"uri":"admin://x"}]}}"#;
        let out = filter_message(r, ListKind::Resources, &allow).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("admin://x"));
        let t = br#"{"jsonrpc":"2.0","id":2,"result":{"resourceTemplates":[{"uriTemplate":"admin://{id}"},{"uriTemplate":"file:///{p}"}]}}"#;
        let out =
            String::from_utf8(filter_message(t, ListKind::ResourceTemplates, &allow).unwrap())
                .unwrap();
        assert!(!out.contains("admin://") && out.contains("file:///"));
        // an error response passes unchanged
        let e = br#"{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"x"}}"#;
        assert_eq!(
            filter_message(e, ListKind::Tools, &allow).unwrap(),
            e.to_vec()
        );
        // items without a name are dropped (fail closed)
        let odd = br#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"title":"no name"}]}}"#;
        assert!(
            !String::from_utf8(filter_message(odd, ListKind::Tools, &allow).unwrap())
                .unwrap()
                .contains("no name")
        );
        assert!(filter_message(b"not json", ListKind::Tools, &allow).is_none());
    }

    #[test]
    fn json_body_in_chunks() {
        let mut f = ListFilter::new(ListKind::Tools, false);
        let (a, b) = TOOLS.as_bytes().split_at(20);
        assert!(f.push(a, false, &allow).is_empty());
        let out = f.push(b, true, &allow);
        assert!(!String::from_utf8_lossy(&out).contains("admin"));
        let mut f = ListFilter::new(ListKind::Tools, false);
        let out = f.push(b"{truncated", true, &allow);
        assert_eq!(out.as_ref(), fail_closed().as_slice());
    }

    #[test]
    fn sse_events_are_filtered_one_by_one() {
        let stream = format!(
            "id: 1\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{}}}}\n\nid: 2\r\nevent: message\r\ndata: {TOOLS}\r\n\r\n: keepalive\n\n"
        );
        let bytes = stream.as_bytes();
        let mut f = ListFilter::new(ListKind::Tools, true);
        let mut out = Vec::new();
        // feed in awkward pieces
        for chunk in bytes.chunks(7) {
            out.extend_from_slice(&f.push(chunk, false, &allow));
        }
        out.extend_from_slice(&f.push(b"", true, &allow));
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("admin.drop"), "{text}");
        assert!(text.contains("\"echo\"") && text.contains("\"add\""));
        assert!(
            text.contains("id: 1\n")
                && text.contains("id: 2\n")
                && text.contains(": keepalive\n\n")
        );
        assert!(text.contains("notifications/message"));
        // event boundaries survive: three events
        assert_eq!(
            text.matches("\n\n").count() + text.matches("\r\n\r\n").count(),
            3,
            "{text:?}"
        );
    }
}
