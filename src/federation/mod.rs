//! Federation (docs/federation.md): one virtual MCP server composed from
//! member upstreams. Pingora-free: the names a member's tools and prompts
//! are exposed under and how an exposed name resolves back, which member
//! serves a resource URI (`Catalog`), the merged `initialize` answer and
//! list results with their composite cursor (`merge`), ids of
//! server-to-client requests namespaced per member, and byte-preserving
//! edits of the messages forwarded (`json`). The adapter that talks to
//! the members is `proxy::federate`.

pub mod cache;
pub mod json;
pub mod merge;

use std::collections::HashMap;

/// How member names are exposed (`virtual_servers[].prefix_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixMode {
    /// Every tool and prompt is `prefix + separator + name`.
    Always,
    /// Only names two members share are prefixed.
    Conflicts,
    /// Names are exposed as the members list them; a name two members
    /// share is exposed by neither (refused and logged, never shadowed).
    Never,
}

impl PrefixMode {
    /// Parses the configured word.
    pub fn parse(s: &str) -> Option<PrefixMode> {
        match s {
            "always" => Some(PrefixMode::Always),
            "conflicts" => Some(PrefixMode::Conflicts),
            "never" => Some(PrefixMode::Never),
            _ => None,
        }
    }

    /// The configured word.
    pub fn as_str(&self) -> &'static str {
        match self {
            PrefixMode::Always => "always",
            PrefixMode::Conflicts => "conflicts",
            PrefixMode::Never => "never",
        }
    }
}

/// The named things a member lists whose names are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Named {
    /// `tools/list` entries.
    Tool,
    /// `prompts/list` entries.
    Prompt,
}

/// The naming rules of one virtual server.
#[derive(Debug, Clone)]
pub struct Naming {
    /// Between prefix and name.
    pub separator: String,
    /// When names get their prefix.
    pub mode: PrefixMode,
    /// Each member's prefix, by member index.
    pub prefixes: Vec<String>,
}

/// One exposed name: which member has it under which name of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    /// The member's index in the virtual server.
    pub member: usize,
    /// The member's own name.
    pub own: String,
}

/// The names a set of member lists exposes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Exposed name → member and own name.
    pub names: HashMap<String, Exposed>,
    /// (exposed name, members) refused because several members would
    /// expose it.
    pub clashes: Vec<(String, Vec<usize>)>,
}

impl Naming {
    /// `prefix + separator + own` for member `m`.
    pub fn prefixed(&self, m: usize, own: &str) -> String {
        let p = self.prefixes.get(m).map_or("", String::as_str);
        let mut s = String::with_capacity(p.len() + self.separator.len() + own.len());
        s.push_str(p);
        s.push_str(&self.separator);
        s.push_str(own);
        s
    }

    /// The exposed names of the members' lists (`lists[i]` = (member,
    /// its own names)). A name two members would expose is exposed by
    /// neither and reported in `clashes`.
    pub fn expose(&self, lists: &[(usize, Vec<String>)]) -> Exposure {
        let mut count: HashMap<&str, usize> = HashMap::new();
        if self.mode == PrefixMode::Conflicts {
            for (_, names) in lists {
                let mut seen = std::collections::HashSet::new();
                for n in names {
                    if seen.insert(n.as_str()) {
                        *count.entry(n).or_default() += 1;
                    }
                }
            }
        }
        let mut all: HashMap<String, Vec<Exposed>> = HashMap::new();
        for (m, names) in lists {
            for own in names {
                let exposed = match self.mode {
                    PrefixMode::Always => self.prefixed(*m, own),
                    PrefixMode::Conflicts if count.get(own.as_str()).copied() > Some(1) => {
                        self.prefixed(*m, own)
                    }
                    PrefixMode::Conflicts | PrefixMode::Never => own.clone(),
                };
                let e = all.entry(exposed).or_default();
                if !e.iter().any(|x| x.member == *m) {
                    e.push(Exposed {
                        member: *m,
                        own: own.clone(),
                    });
                }
            }
        }
        let mut out = Exposure::default();
        for (name, mut by) in all {
            if by.len() == 1 {
                if let Some(e) = by.pop() {
                    out.names.insert(name, e);
                }
            } else {
                let mut ms: Vec<usize> = by.iter().map(|e| e.member).collect();
                ms.sort_unstable();
                out.clashes.push((name, ms));
            }
        }
        out.clashes.sort();
        out
    }

    /// Resolves an exposed name without a catalog: under `always` the
    /// prefix names the member (every prefix [`prefix_fits`], so the first
    /// separator ends it). `None` under the other modes or when no member
    /// has the prefix.
    pub fn split(&self, exposed: &str) -> Option<Exposed> {
        if self.mode != PrefixMode::Always || self.separator.is_empty() {
            return None;
        }
        let (prefix, own) = exposed.split_once(self.separator.as_str())?;
        if own.is_empty() {
            return None;
        }
        let member = self.prefixes.iter().position(|p| p == prefix)?;
        Some(Exposed {
            member,
            own: own.to_string(),
        })
    }
}

/// Whether `prefix` may name a member under `separator` (the config also
/// checks the alphabet, the length and that prefixes are unique): the
/// separator occurs in `prefix + separator` only at its end, so the first
/// separator of an exposed name ends the prefix ([`Naming::split`]). Not
/// containing the separator is not enough: under `__`, `_` + `__` + `x`
/// reads as an empty prefix + `__` + `_x`, and `a_` + `__` + `x` as `a` +
/// `__` + `_x` (another member's `_x`).
pub fn prefix_fits(prefix: &str, separator: &str) -> bool {
    let mut joined = String::with_capacity(prefix.len() + separator.len());
    joined.push_str(prefix);
    joined.push_str(separator);
    joined.find(separator) == Some(prefix.len())
}

/// What the members listed last, per virtual server: exposed tool and
/// prompt names, resource URIs and URI templates by member. Built from
/// list answers; a call whose name or URI it does not know makes the
/// gateway list again before it answers "unknown".
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Own names each member listed, by kind and member.
    pub own: HashMap<(Named, usize), std::collections::HashSet<String>>,
    /// Exposed tool names.
    pub tools: Exposure,
    /// Exposed prompt names.
    pub prompts: Exposure,
    /// Resource URI → the members that list it (config order).
    pub resources: HashMap<String, Vec<usize>>,
    /// (member, URI template) in member order.
    pub templates: Vec<(usize, String)>,
}

impl Catalog {
    /// Records member `m`'s own names of `kind` (`first`: its first page,
    /// which replaces what it listed before) and exposes the names anew.
    pub fn learn_names(
        &mut self,
        naming: &Naming,
        kind: Named,
        m: usize,
        names: Vec<String>,
        first: bool,
    ) {
        let entry = self.own.entry((kind, m)).or_default();
        if first {
            entry.clear();
        }
        entry.extend(names);
        let mut lists: Vec<(usize, Vec<String>)> = self
            .own
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, m), v)| {
                let mut names: Vec<String> = v.iter().cloned().collect();
                names.sort_unstable();
                (*m, names)
            })
            .collect();
        lists.sort_by_key(|(m, _)| *m);
        let exposure = naming.expose(&lists);
        match kind {
            Named::Tool => self.tools = exposure,
            Named::Prompt => self.prompts = exposure,
        }
    }

    /// Records the resource URIs member `m` listed (`first`: its first page).
    pub fn learn_resources(&mut self, m: usize, uris: Vec<String>, first: bool) {
        if first {
            for v in self.resources.values_mut() {
                v.retain(|x| *x != m);
            }
            self.resources.retain(|_, v| !v.is_empty());
        }
        for u in uris {
            let e = self.resources.entry(u).or_default();
            if let Err(at) = e.binary_search(&m) {
                e.insert(at, m);
            }
        }
    }

    /// Records the URI templates member `m` listed (`first`: its first page).
    pub fn learn_templates(&mut self, m: usize, templates: Vec<String>, first: bool) {
        if first {
            self.templates.retain(|(x, _)| *x != m);
        }
        let mut known: std::collections::HashSet<String> = self
            .templates
            .iter()
            .filter(|(x, _)| *x == m)
            .map(|(_, t)| t.clone())
            .collect();
        for t in templates {
            if known.insert(t.clone()) {
                self.templates.push((m, t));
            }
        }
        self.templates.sort_by_key(|(m, _)| *m);
    }

    /// The exposure of `kind`.
    pub fn names(&self, kind: Named) -> &Exposure {
        match kind {
            Named::Tool => &self.tools,
            Named::Prompt => &self.prompts,
        }
    }

    /// The member serving `uri`: the first member (config order) that
    /// lists it, else the first whose URI template matches it.
    pub fn resource_member(&self, uri: &str) -> Option<usize> {
        if let Some(m) = self.resources.get(uri).and_then(|v| v.first()) {
            return Some(*m);
        }
        self.templates
            .iter()
            .find(|(_, t)| template_matches(t, uri))
            .map(|(m, _)| *m)
    }
}

/// Whether an RFC 6570 URI template could expand to `uri`: literal text
/// must match exactly, each `{…}` expression matches any run (a simple
/// `{var}` not crossing `/`, `?` or `#`; reserved `{+var}`/`{#var}` and
/// the other operators any run). Dynamic programming over (piece, offset):
/// time and memory linear in pieces × URI length, whatever the template
/// (a backtracking matcher is exponential in the expressions, and
/// templates come from members, URIs from clients); past [`MAX_MATCH_WORK`]
/// it says no.
pub fn template_matches(template: &str, uri: &str) -> bool {
    enum Piece<'a> {
        Lit(&'a [u8]),
        Var { crosses: bool },
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        let expr = &rest[open + 1..open + close];
        if open > 0 {
            pieces.push(Piece::Lit(&rest.as_bytes()[..open]));
        }
        pieces.push(Piece::Var {
            crosses: expr.starts_with(['+', '#', '/', '?', '&', ';', '.']),
        });
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest.as_bytes()));
    }
    let u = uri.as_bytes();
    let n = u.len();
    if (pieces.len() + 1).saturating_mul(n + 1) > MAX_MATCH_WORK {
        return false;
    }
    // next[j]: pieces[i+1..] match u[j..]; built from the last piece back
    let mut next = vec![false; n + 1];
    next[n] = true;
    for p in pieces.iter().rev() {
        let mut cur = vec![false; n + 1];
        match p {
            Piece::Lit(l) => {
                for j in 0..=n {
                    cur[j] = u[j..].starts_with(l) && next[j + l.len()];
                }
            }
            Piece::Var { crosses } => {
                // cur[j] = next[j] || (u[j] may be taken && cur[j+1])
                cur[n] = next[n];
                for j in (0..n).rev() {
                    let takes = *crosses || !matches!(u[j], b'/' | b'?' | b'#');
                    cur[j] = next[j] || (takes && cur[j + 1]);
                }
            }
        }
        next = cur;
    }
    next[0]
}

/// Bound on the matching work of one URI against one template.
pub const MAX_MATCH_WORK: usize = 4 << 20;

/// Canonical SSE text (`answer::SseGuard` output: whole events) with the
/// id of every request a member sends (sampling, elicitation, roots)
/// namespaced by [`wrap_id`]; other events unchanged.
pub fn namespace_events(canonical: &[u8], member: usize) -> Vec<u8> {
    map_event_data(canonical, |t| namespace_message(t, member))
}

/// A member's message on its way to the client: its request ids and the
/// task ids it owns namespaced; `None` when nothing changes.
pub fn namespace_message(text: &str, member: usize) -> Option<String> {
    match namespace_request(text, member) {
        Some(t) => Some(namespace_tasks(&t, member).unwrap_or(t)),
        None => namespace_tasks(text, member),
    }
}

/// A member's request message with its id namespaced; `None` for any
/// other message.
pub fn namespace_request(text: &str, member: usize) -> Option<String> {
    let m = json::Members::of(text)?;
    m.get("method")?;
    let id = m.get("id")?;
    if id.get() == "null" {
        return None;
    }
    Some(m.with("id", &wrap_id(member, id.get())))
}

/// A session-era member's answer as a 2026-07-28 client must read it:
/// a `result` object gets `resultType: "complete"` when it has none (and a
/// cacheable one, `ttlMs: 0` and `cacheScope: "private"`). `None` when the
/// message needs nothing (or is not a result).
pub fn upgrade_result(text: &str, cacheable: bool) -> Option<String> {
    let m = json::Members::of(text)?;
    let result = json::Members::of(m.get("result")?.get())?;
    let mut out = None::<String>;
    let mut cur = m.get("result")?.get().to_string();
    let set = |key: &str, value: &str, cur: &mut String| {
        if let Some(r) = json::Members::of(cur) {
            *cur = r.with(key, value);
        }
    };
    if result.get("resultType").is_none() {
        set("resultType", "\"complete\"", &mut cur);
    }
    if cacheable {
        if result.get("ttlMs").is_none() {
            set("ttlMs", "0", &mut cur);
        }
        if result.get("cacheScope").is_none() {
            set("cacheScope", "\"private\"", &mut cur);
        }
    }
    if cur != m.get("result")?.get() {
        out = Some(m.with("result", &cur));
    }
    out
}

/// [`upgrade_result`] over canonical SSE text (whole events).
pub fn upgrade_events(canonical: &[u8], cacheable: bool) -> Vec<u8> {
    map_event_data(canonical, |t| upgrade_result(t, cacheable))
}

/// Canonical SSE text with each data-carrying event's message replaced by
/// what `f` returns, or dropped (`None`); empty messages (priming events)
/// are dropped; events without data (comments) pass.
pub fn map_events(canonical: &[u8], f: &dyn Fn(&str) -> Option<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len() + 32);
    for (fields, data) in events(canonical) {
        let Some(data) = data else {
            out.extend_from_slice(&fields);
            out.push(b'\n');
            continue;
        };
        let text = String::from_utf8_lossy(&data);
        if text.trim().is_empty() {
            continue;
        }
        if let Some(t) = f(&text) {
            write_event(&mut out, &fields, Some(t.as_bytes()));
        }
    }
    out
}

/// Canonical SSE text with each event's data replaced where `f` says
/// (`None`: unchanged); every event kept.
fn map_event_data(canonical: &[u8], f: impl Fn(&str) -> Option<String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical.len() + 32);
    for (fields, data) in events(canonical) {
        let replaced = data
            .as_deref()
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(&f);
        let text = replaced.as_deref().map(str::as_bytes).or(data.as_deref());
        write_event(&mut out, &fields, text);
    }
    out
}

/// The events of canonical SSE text: each one's other lines, and its data
/// lines joined with LF (`None`: it has none).
fn events(canonical: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut all = Vec::new();
    for event in canonical
        .split_inclusive(|b| *b == b'\n')
        .collect::<Vec<_>>()
        .split(|l| *l == b"\n")
    {
        if event.is_empty() {
            continue;
        }
        let mut data: Option<Vec<u8>> = None;
        let mut fields = Vec::new();
        for line in event {
            match line.strip_prefix(b"data: ") {
                Some(d) => {
                    let buf = data.get_or_insert_with(Vec::new);
                    buf.extend_from_slice(d.strip_suffix(b"\n").unwrap_or(d));
                    buf.push(b'\n');
                }
                None => fields.extend_from_slice(line),
            }
        }
        if let Some(d) = data.as_mut() {
            d.pop();
        }
        all.push((fields, data));
    }
    all
}

/// One event: its other lines, its data (one `data:` line per LF), the
/// blank line that ends it.
fn write_event(out: &mut Vec<u8>, fields: &[u8], data: Option<&[u8]>) {
    out.extend_from_slice(fields);
    if let Some(d) = data {
        for l in d.split(|b| *b == b'\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(l);
            out.push(b'\n');
        }
    }
    out.push(b'\n');
}

/// A member's task id as the client sees it: `m<index>:<its id>`.
pub fn wrap_task_id(member: usize, id: &str) -> String {
    format!("m{member}:{id}")
}

/// The member and its own task id of a task id the client repeats;
/// `None` for any id the gateway did not hand out.
pub fn unwrap_task_id(id: &str) -> Option<(usize, &str)> {
    let (n, own) = id.strip_prefix('m')?.split_once(':')?;
    if n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) || own.is_empty() {
        return None;
    }
    Some((n.parse().ok()?, own))
}

/// A member's message with the task ids it owns namespaced (the tasks
/// utility): `result.task.taskId` (a task-augmented call), `result.taskId`
/// (`tasks/get`, `tasks/cancel`), `params.taskId` (`notifications/tasks/status`).
/// `None` when it names no task.
pub fn namespace_tasks(text: &str, member: usize) -> Option<String> {
    let m = json::Members::of(text)?;
    let wrap = |raw: &str| -> Option<String> {
        let id: String = serde_json::from_str(raw).ok()?;
        Some(json::string(&wrap_task_id(member, &id)))
    };
    if let Some(r) = m.get("result") {
        let rm = json::Members::of(r.get())?;
        if let Some(task) = rm.get("task") {
            let tm = json::Members::of(task.get())?;
            let new = wrap(tm.get("taskId")?.get())?;
            return Some(m.with("result", &rm.with("task", &tm.with("taskId", &new))));
        }
        let new = wrap(rm.get("taskId")?.get())?;
        return Some(m.with("result", &rm.with("taskId", &new)));
    }
    let p = json::Members::of(m.get("params")?.get())?;
    let new = wrap(p.get("taskId")?.get())?;
    Some(m.with("params", &p.with("taskId", &new)))
}

/// The id a member's request gets on the way to the client: the member's
/// index in the session and its own id, so requests of two members never
/// collide and the answer finds its way back (`unwrap_id`).
pub fn wrap_id(member: usize, raw_id: &str) -> String {
    json::string(&format!("m{member}:{raw_id}"))
}

/// The member and its own id (raw JSON: a string or an integer) of a
/// client's answer to a namespaced request; `None` for any other id.
pub fn unwrap_id(id: &str) -> Option<(usize, String)> {
    let rest = id.strip_prefix('m')?;
    let (n, raw) = rest.split_once(':')?;
    if n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let member = n.parse().ok()?;
    // the member's own id was a JSON string or integer, nothing else
    match serde_json::from_str::<serde_json::Value>(raw).ok()? {
        serde_json::Value::String(_) => {}
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {}
        _ => return None,
    }
    Some((member, raw.to_string()))
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

    fn naming(mode: PrefixMode) -> Naming {
        Naming {
            separator: "__".into(),
            mode,
            prefixes: vec!["ev".into(), "py".into()],
        }
    }

    fn lists() -> Vec<(usize, Vec<String>)> {
        vec![
            (0, vec!["echo".into(), "add".into(), "sum".into()]),
            (1, vec!["echo".into(), "greet".into()]),
        ]
    }

    #[test]
    fn always_prefixes_everything_and_splits_back() {
        let n = naming(PrefixMode::Always);
        let e = n.expose(&lists());
        assert_eq!(e.names.len(), 5);
        assert!(e.clashes.is_empty());
        assert_eq!(e.names["py__echo"].member, 1);
        assert_eq!(
            n.split("py__get__x"),
            Some(Exposed {
                member: 1,
                own: "get__x".into()
            })
        );
        assert_eq!(n.split("zz__echo"), None);
        assert_eq!(n.split("py__"), None);
        assert_eq!(n.split("echo"), None);
        assert_eq!(n.split("PY__echo"), None, "prefixes are case-sensitive");
    }

    #[test]
    fn a_prefix_must_not_form_the_separator_across_its_end() {
        // found by the fuzzer: `_` and `a_` do not contain `__`, yet the
        // first `__` of `_` + `__` + `x` or `a_` + `__` + `x` is not where
        // the prefix ends
        for (p, sep) in [("_", "__"), ("a_", "__"), ("ax_", "x_x"), ("a__b", "__")] {
            assert!(!prefix_fits(p, sep), "{p:?} {sep:?}");
        }
        for (p, sep) in [
            ("ev", "__"),
            ("xa", "ab"),
            ("a_", "-"),
            ("_a", "__"),
            ("a.", "._"),
        ] {
            assert!(prefix_fits(p, sep), "{p:?} {sep:?}");
        }
        let n = Naming {
            separator: "__".into(),
            mode: PrefixMode::Always,
            prefixes: vec!["a".into(), "a_".into()],
        };
        assert_eq!(
            n.split("a___x"),
            Some(Exposed {
                member: 0,
                own: "_x".into()
            }),
            "what `a_` would expose is read as `a`'s: the config refuses `a_`"
        );
        check_contract(b"\x04__\xffelev,_\xffele__tx,\xffa__b");
        check_contract(b"\x04__\xffa_,a\xffx\xff_x");
    }

    #[test]
    fn conflicts_prefixes_only_shared_names() {
        let e = naming(PrefixMode::Conflicts).expose(&lists());
        let mut names: Vec<_> = e.names.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["add", "ev__echo", "greet", "py__echo", "sum"]);
    }

    #[test]
    fn a_clash_is_refused_not_shadowed() {
        let e = naming(PrefixMode::Never).expose(&lists());
        assert!(!e.names.contains_key("echo"));
        assert_eq!(e.clashes, vec![("echo".to_string(), vec![0, 1])]);
        // conflicts: a prefixed name that equals another member's own name
        let l = vec![(0, vec!["x".into(), "py__x".into()]), (1, vec!["x".into()])];
        let e = naming(PrefixMode::Conflicts).expose(&l);
        assert_eq!(e.clashes, vec![("py__x".to_string(), vec![0, 1])]);
        assert!(e.names.contains_key("ev__x"));
    }

    #[test]
    fn resources_by_uri_then_template_in_member_order() {
        let mut c = Catalog::default();
        c.resources.insert("demo://a".into(), vec![1, 0]);
        c.templates.push((0, "file:///{path}".into()));
        c.templates.push((1, "file:///{+path}".into()));
        c.templates.push((1, "demo://resource/{id}".into()));
        assert_eq!(c.resource_member("demo://a"), Some(1));
        assert_eq!(c.resource_member("file:///x"), Some(0));
        assert_eq!(c.resource_member("file:///x/y"), Some(1));
        assert_eq!(c.resource_member("demo://resource/7"), Some(1));
        assert_eq!(c.resource_member("demo://resource/7/8"), None);
        assert_eq!(c.resource_member("other://"), None);
    }

    #[test]
    fn template_matching_is_linear_not_exponential() {
        let t = format!("a{}b", "{x}".repeat(40));
        let uri = format!("a{}", "y".repeat(5000));
        let start = std::time::Instant::now();
        assert!(!template_matches(&t, &uri));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert!(template_matches(&t, &format!("{uri}b")));
        assert!(
            !template_matches("{x}", &"z".repeat(5 << 20)),
            "over the work bound"
        );
    }

    #[test]
    fn templates() {
        assert!(template_matches("a://{x}/b{?q}", "a://1/b?q=2"));
        assert!(template_matches("a://{x}", "a://"));
        assert!(!template_matches("a://{x}", "b://1"));
        assert!(!template_matches("a://{x", "a://1"));
        assert!(template_matches("plain://x", "plain://x"));
    }

    #[test]
    fn requests_on_a_stream_get_namespaced_ids() {
        let s = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"elicitation/create\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n: keepalive\n\n";
        let out = String::from_utf8(namespace_events(s, 2)).unwrap();
        assert_eq!(
            out,
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"m2:4\",\"method\":\"elicitation/create\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n: keepalive\n\n"
        );
    }

    #[test]
    fn the_catalog_learns_pages_and_forgets_on_a_first_page() {
        let n = naming(PrefixMode::Never);
        let mut c = Catalog::default();
        c.learn_names(&n, Named::Tool, 0, vec!["a".into()], true);
        c.learn_names(&n, Named::Tool, 1, vec!["b".into()], true);
        c.learn_names(&n, Named::Tool, 1, vec!["a".into()], false);
        assert!(c.tools.names.contains_key("b"));
        assert_eq!(c.tools.clashes.len(), 1);
        c.learn_names(&n, Named::Tool, 1, vec!["c".into()], true);
        assert_eq!(c.tools.names["a"].member, 0);
        c.learn_resources(0, vec!["x://1".into()], true);
        c.learn_resources(1, vec!["x://1".into()], true);
        c.learn_resources(0, vec![], true);
        assert_eq!(c.resource_member("x://1"), Some(1));
    }

    #[test]
    fn session_era_results_are_upgraded_for_stateless_clients() {
        let up =
            upgrade_result(r#"{"jsonrpc":"2.0","id":1,"result":{"contents":[]}}"#, true).unwrap();
        assert_eq!(
            up,
            r#"{"jsonrpc":"2.0","id":1,"result":{"contents":[],"resultType":"complete","ttlMs":0,"cacheScope":"private"}}"#
        );
        assert_eq!(
            upgrade_result(
                r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete"}}"#,
                false
            ),
            None
        );
        assert_eq!(
            upgrade_result(r#"{"jsonrpc":"2.0","id":1,"error":{"code":1}}"#, true),
            None
        );
        assert_eq!(
            upgrade_result(
                r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#,
                true
            ),
            None
        );
        let ev = upgrade_events(b"event: message\ndata: {\"id\":1,\"result\":{}}\n\n", false);
        assert_eq!(
            ev,
            b"event: message\ndata: {\"id\":1,\"result\":{\"resultType\":\"complete\"}}\n\n"
        );
    }

    #[test]
    fn task_ids_are_namespaced_wherever_a_member_names_one() {
        let call =
            r#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"t-1","status":"working"}}}"#;
        assert_eq!(
            namespace_message(call, 2).unwrap(),
            r#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"m2:t-1","status":"working"}}}"#
        );
        let get = r#"{"jsonrpc":"2.0","id":1,"result":{"taskId":"t-1","status":"completed"}}"#;
        assert!(namespace_message(get, 0)
            .unwrap()
            .contains(r#""taskId":"m0:t-1""#));
        let note =
            r#"{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"t-1"}}"#;
        assert!(namespace_message(note, 1)
            .unwrap()
            .contains(r#""taskId":"m1:t-1""#));
        assert_eq!(
            namespace_message(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, 1),
            None
        );
        assert_eq!(unwrap_task_id("m2:t-1"), Some((2, "t-1")));
        assert_eq!(unwrap_task_id("m2:a:b"), Some((2, "a:b")));
        for bad in ["t-1", "m:1", "m1:", "mx:1", "m12345:1"] {
            assert_eq!(unwrap_task_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_request_with_two_ids_reaches_the_client_with_one() {
        // found by the fuzzer: member 0 could send a second id naming
        // member 1's request, which a client keeping the last duplicate
        // answered, and the gateway routed that answer to member 1
        let out = namespace_request(
            r#"{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","id":"m1:7"}"#,
            0,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":"m0:1","method":"sampling/createMessage"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(unwrap_id(v["id"].as_str().unwrap()), Some((0, "1".into())));
        check_contract(
            b"\x55{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"sampling/createMessage\",\"id\":\"m1:7\"}",
        );
    }

    #[test]
    fn contract_holds_on_known_inputs() {
        for d in [
            &b"\x00{\"id\":7,\"params\":{\"name\":\"py__add\",\"a\":1e400}}\xffid\xff\"x\"\xffadd"[..],
            b"\x00[1]\xffid\xff1\xffx",
            b"\x0f{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"elicitation/create\"}\xffm0:17",
            b"\x01{\"id\":{},\"method\":\"x\"}\xffm1:1.5",
            b"\x02a\xff1\xffb\xffx y\xffmcp-edge:W10",
            b"\x03a://{x}/b{?q}\xffa://1/b?q=2",
            b"\x03file:///{path}\xfffile:///x/y",
            b"\x04__\xffev,py\xffecho,add\xffecho,greet",
            b"\x0b__\xffev,py\xffx,py__x\xffx",
            b"\x05{\"tools\":[{\"name\":\"echo\"}],\"nextCursor\":\"p2\"}\xff{\"tools\":[{\"name\":\"echo\"}]}",
            b"\x13{\"resources\":[{\"uri\":\"x://1\"}]}\xff{\"resources\":[{\"uri\":\"x://1\"}]}",
            b"\x0d{\"id\":1,\"result\":{\"contents\":[]}}",
        ] {
            check_contract(d);
        }
    }

    #[test]
    fn ids_round_trip_and_nothing_else_unwraps() {
        let w = wrap_id(3, "\"abc\"");
        let s: String = serde_json::from_str(&w).unwrap();
        assert_eq!(unwrap_id(&s), Some((3, "\"abc\"".into())));
        assert_eq!(unwrap_id("m0:17"), Some((0, "17".into())));
        for bad in [
            "m:1", "mx:1", "m1:", "m1:{}", "m1:1.5", "m1:[1]", "1:1", "m99999:1", "m1:null",
        ] {
            assert_eq!(unwrap_id(bad), None, "{bad}");
        }
    }
}
