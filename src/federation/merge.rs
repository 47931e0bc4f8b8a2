//! Merging members' answers into the virtual server's: the `initialize`
//! result (capabilities only some member offers, the virtual name, one
//! protocol version), list results with exposed names (items kept as
//! their bytes, only `name` rewritten) and the composite cursor that
//! carries each member's own cursor to the next page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::json::{string, Members};
use super::{Exposure, Named};

/// The list methods a virtual server fans out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    Templates,
    /// `tasks/list` (the tasks utility): task ids are namespaced.
    Tasks,
}

impl ListKind {
    /// The list a method asks for.
    pub fn of_method(m: &str) -> Option<ListKind> {
        match m {
            "tools/list" => Some(ListKind::Tools),
            "prompts/list" => Some(ListKind::Prompts),
            "resources/list" => Some(ListKind::Resources),
            "resources/templates/list" => Some(ListKind::Templates),
            "tasks/list" => Some(ListKind::Tasks),
            _ => None,
        }
    }

    /// The method.
    pub fn method(&self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
            ListKind::Tasks => "tasks/list",
        }
    }

    /// The result member holding the items.
    pub fn key(&self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
            ListKind::Tasks => "tasks",
        }
    }

    /// The member of an item that identifies it.
    pub fn id_key(&self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::Templates => "uriTemplate",
            ListKind::Tasks => "taskId",
        }
    }

    /// Whether the items' names are rewritten.
    pub fn named(&self) -> Option<Named> {
        match self {
            ListKind::Tools => Some(Named::Tool),
            ListKind::Prompts => Some(Named::Prompt),
            _ => None,
        }
    }

    /// The capability a member must announce to be asked.
    pub fn capability(&self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::Templates => "resources",
            ListKind::Tasks => "tasks",
        }
    }
}

/// One member's page: its items (identifying key, raw item) and its own
/// next cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPage {
    /// (name or URI, the item's JSON text).
    pub items: Vec<(String, String)>,
    /// The member's `nextCursor`.
    pub next: Option<String>,
}

/// Reads a member's list result; `None` when it is not one.
pub fn read_page(kind: ListKind, result: &str) -> Option<MemberPage> {
    let m = Members::of(result)?;
    let list: Vec<&RawValue> = serde_json::from_str(m.get(kind.key())?.get()).ok()?;
    let mut items = Vec::with_capacity(list.len());
    for raw in list {
        let item = Members::of(raw.get())?;
        let id = item.str(kind.id_key())?;
        items.push((id, raw.get().to_string()));
    }
    let next = match m.get("nextCursor") {
        None => None,
        Some(v) if v.get() == "null" => None,
        Some(v) => Some(serde_json::from_str::<String>(v.get()).ok()?),
    };
    Some(MemberPage { items, next })
}

/// What merging dropped, for the log and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Exposed names left out because several members would expose them.
    pub clashes: Vec<String>,
    /// URIs listed by more than one member: (URI, the member that serves
    /// it, the members whose copy was left out).
    pub duplicate_uris: Vec<(String, usize, Vec<usize>)>,
}

/// The merged list result: the members' pages in member order, names
/// exposed by `exposure` (items of a clashed name left out), a URI two
/// members list kept once (the first member's), and `next` as the
/// composite cursor.
pub fn merge_list(
    kind: ListKind,
    pages: &[(usize, MemberPage)],
    exposure: Option<&Exposure>,
    next: Option<String>,
) -> (String, Dropped) {
    let mut out = String::from("{");
    out.push_str(&string(kind.key()));
    out.push_str(":[");
    let mut dropped = Dropped::default();
    let mut first = true;
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    // (member, own name) -> exposed name, built once: a lookup per item
    let reverse: std::collections::HashMap<(usize, &str), &str> = exposure
        .map(|e| {
            e.names
                .iter()
                .map(|(k, v)| ((v.member, v.own.as_str()), k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    for (m, page) in pages {
        for (id, raw) in &page.items {
            if kind == ListKind::Tasks {
                // a member's task id names the member on the way out
                let Some(item) = Members::of(raw) else {
                    continue;
                };
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&item.with("taskId", &string(&super::wrap_task_id(*m, id))));
                continue;
            }
            let text = match (kind.named(), exposure) {
                (Some(_), Some(_)) => {
                    let Some(name) = reverse.get(&(*m, id.as_str())) else {
                        if !dropped.clashes.contains(id) {
                            dropped.clashes.push(id.clone());
                        }
                        continue;
                    };
                    match Members::of(raw) {
                        Some(item) => item.with("name", &string(name)),
                        None => continue,
                    }
                }
                _ => {
                    if let Some(owner) = seen.get(id.as_str()) {
                        match dropped.duplicate_uris.iter_mut().find(|d| d.0 == *id) {
                            Some(d) => d.2.push(*m),
                            None => dropped.duplicate_uris.push((id.clone(), *owner, vec![*m])),
                        }
                        continue;
                    }
                    seen.insert(id, *m);
                    raw.clone()
                }
            };
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&text);
        }
    }
    out.push(']');
    if let Some(c) = next {
        out.push_str(",\"nextCursor\":");
        out.push_str(&string(&c));
    }
    out.push('}');
    (out, dropped)
}

/// Longest composite cursor read back (base64 characters).
pub const MAX_CURSOR_CHARS: usize = 1 << 20;

/// The composite cursor: each member (by upstream name) with its own
/// cursor to the next page. Not sealed: it only carries what the members
/// handed out, and which members it names is checked when it comes back.
pub fn encode_cursor(parts: &[(String, String)]) -> Option<String> {
    if parts.is_empty() {
        return None;
    }
    let v: Vec<[&str; 2]> = parts
        .iter()
        .map(|(m, c)| [m.as_str(), c.as_str()])
        .collect();
    let text = serde_json::to_vec(&v).ok()?;
    Some(format!("mcp-edge:{}", URL_SAFE_NO_PAD.encode(text)))
}

/// The (upstream, cursor) pairs of a composite cursor; `None` when it is
/// not one.
pub fn decode_cursor(cursor: &str) -> Option<Vec<(String, String)>> {
    let b = cursor.strip_prefix("mcp-edge:")?;
    // as long as a request body may be: a member's own cursors can be long
    if b.len() > MAX_CURSOR_CHARS {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(b).ok()?;
    let v: Vec<(String, String)> = serde_json::from_slice(&raw).ok()?;
    if v.is_empty() {
        return None;
    }
    Some(v)
}

/// Capabilities a virtual server can offer on a member's behalf; others
/// (`tasks`, `experimental`) are not federated.
const CAPABILITIES: &[&str] = &[
    "tools",
    "prompts",
    "resources",
    "logging",
    "completions",
    "tasks",
];

/// The union of two capability objects: nested objects merged, `true`
/// flags kept when either sets them; other values of the first.
fn union(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => union(a, b),
            (Some(Value::Bool(a)), Value::Bool(b)) => *a |= *b,
            (Some(_), _) => {}
            (None, Value::Bool(false)) => {}
            (None, v) => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// One member's `initialize` result as the merge needs it.
#[derive(Debug, Clone)]
pub struct MemberInit {
    /// The member's index.
    pub member: usize,
    /// Its prefix (instructions are labelled with it).
    pub prefix: String,
    /// The result object.
    pub result: Value,
}

impl MemberInit {
    /// The protocol version the member chose.
    pub fn version(&self) -> Option<&str> {
        self.result.get("protocolVersion")?.as_str()
    }

    /// Whether it announced capability `cap`.
    pub fn offers(&self, cap: &str) -> bool {
        self.result
            .get("capabilities")
            .and_then(|c| c.get(cap))
            .is_some_and(|v| !v.is_null())
    }
}

/// The virtual server's `initialize` result: the version the client asked
/// for when every member chose it, else the oldest a member chose; the
/// capabilities some member offers (flags such as `listChanged` and
/// `subscribe` when any offering member sets them); the virtual name; the
/// members' instructions, each labelled with its prefix.
pub fn merge_initialize(name: &str, requested: &str, members: &[MemberInit]) -> Value {
    let mut version = requested.to_string();
    if members
        .iter()
        .any(|m| m.version().is_some_and(|v| v != requested))
    {
        if let Some(oldest) = members.iter().filter_map(|m| m.version()).min() {
            version = oldest.to_string();
        }
    }
    let mut caps = Map::new();
    for cap in CAPABILITIES {
        let mut merged: Option<Map<String, Value>> = None;
        for m in members.iter().filter(|m| m.offers(cap)) {
            let entry = merged.get_or_insert_with(Map::new);
            if let Some(Value::Object(o)) = m.result.get("capabilities").and_then(|c| c.get(*cap)) {
                union(entry, o);
            }
        }
        if let Some(o) = merged {
            caps.insert((*cap).to_string(), Value::Object(o));
        }
    }
    let instructions: Vec<String> = members
        .iter()
        .filter_map(|m| {
            let t = m.result.get("instructions")?.as_str()?.trim();
            (!t.is_empty()).then(|| format!("[{}] {}", m.prefix, t))
        })
        .collect();
    let mut out = Map::new();
    out.insert("protocolVersion".into(), Value::String(version));
    out.insert("capabilities".into(), Value::Object(caps));
    out.insert(
        "serverInfo".into(),
        serde_json::json!({"name": name, "version": env!("CARGO_PKG_VERSION")}),
    );
    if !instructions.is_empty() {
        out.insert(
            "instructions".into(),
            Value::String(instructions.join("\n\n")),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Naming, PrefixMode};
    use super::*;

    #[test]
    fn pages_merge_with_names_exposed_and_bytes_kept() {
        let a = read_page(
            ListKind::Tools,
            r#"{"tools":[{"name":"echo","inputSchema":{"type":"object","maximum":1e400}}],"nextCursor":"p2"}"#,
        )
        .unwrap();
        assert_eq!(a.next.as_deref(), Some("p2"));
        let b = read_page(
            ListKind::Tools,
            r#"{"tools":[{"name":"add"},{"name":"echo"}]}"#,
        )
        .unwrap();
        let naming = Naming {
            separator: "__".into(),
            mode: PrefixMode::Conflicts,
            prefixes: vec!["ev".into(), "py".into()],
        };
        let exp = naming.expose(&[
            (0, vec!["echo".into()]),
            (1, vec!["add".into(), "echo".into()]),
        ]);
        let (out, dropped) = merge_list(
            ListKind::Tools,
            &[(0, a), (1, b)],
            Some(&exp),
            Some("c".into()),
        );
        assert_eq!(
            out,
            r#"{"tools":[{"name":"ev__echo","inputSchema":{"type":"object","maximum":1e400}},{"name":"add"},{"name":"py__echo"}],"nextCursor":"c"}"#
        );
        assert_eq!(dropped, Dropped::default());
    }

    #[test]
    fn a_uri_two_members_list_is_served_by_the_first() {
        let a = read_page(
            ListKind::Resources,
            r#"{"resources":[{"uri":"x://1","name":"one"}]}"#,
        )
        .unwrap();
        let b = read_page(
            ListKind::Resources,
            r#"{"resources":[{"uri":"x://1","name":"uno"},{"uri":"x://2","name":"two"}]}"#,
        )
        .unwrap();
        let (out, dropped) = merge_list(ListKind::Resources, &[(0, a), (1, b)], None, None);
        assert_eq!(
            out,
            r#"{"resources":[{"uri":"x://1","name":"one"},{"uri":"x://2","name":"two"}]}"#
        );
        assert_eq!(dropped.duplicate_uris, vec![("x://1".into(), 0, vec![1])]);
    }

    #[test]
    fn garbage_is_not_a_page() {
        for bad in [
            "[]",
            r#"{"tools":{}}"#,
            r#"{"tools":[{"title":"no name"}]}"#,
            r#"{"tools":[],"nextCursor":5}"#,
        ] {
            assert_eq!(read_page(ListKind::Tools, bad), None, "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        let parts = vec![
            ("a".to_string(), "1".to_string()),
            ("b".into(), "x y".into()),
        ];
        let c = encode_cursor(&parts).unwrap();
        assert_eq!(decode_cursor(&c), Some(parts));
        assert_eq!(encode_cursor(&[]), None);
        for bad in ["", "mcp-edge:", "mcp-edge:!!", "p2", "mcp-edge:W10"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn initialize_merges_what_members_offer() {
        let m = |i: usize, v: &str, caps: Value, instr: Option<&str>| MemberInit {
            member: i,
            prefix: format!("p{i}"),
            result: serde_json::json!({"protocolVersion": v, "capabilities": caps,
                "serverInfo": {"name": "x"}, "instructions": instr}),
        };
        let out = merge_initialize(
            "acme",
            "2025-11-25",
            &[
                m(
                    0,
                    "2025-11-25",
                    serde_json::json!({"tools": {"listChanged": true}, "tasks": {}}),
                    Some("use me"),
                ),
                m(
                    1,
                    "2025-06-18",
                    serde_json::json!({"tools": {}, "resources": {"subscribe": true}, "logging": {}}),
                    None,
                ),
            ],
        );
        assert_eq!(out["protocolVersion"], "2025-06-18");
        assert_eq!(
            out["capabilities"],
            serde_json::json!({"tools": {"listChanged": true}, "resources": {"subscribe": true}, "logging": {}, "tasks": {}})
        );
        assert_eq!(out["serverInfo"]["name"], "acme");
        assert_eq!(out["instructions"], "[p0] use me");
        let t = merge_initialize(
            "acme",
            "2025-11-25",
            &[
                m(
                    0,
                    "2025-11-25",
                    serde_json::json!({"tasks": {"list": {}, "requests": {"tools": {"call": {}}}}}),
                    None,
                ),
                m(
                    1,
                    "2025-11-25",
                    serde_json::json!({"tasks": {"cancel": {}}}),
                    None,
                ),
            ],
        );
        assert_eq!(
            t["capabilities"]["tasks"],
            serde_json::json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}})
        );
    }
}
