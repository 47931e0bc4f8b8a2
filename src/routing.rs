//! First-match routing table: rules over JSON-RPC method, tool, resource and
//! prompt globs, each naming an upstream. Compiled once per config snapshot;
//! matching allocates nothing.

use std::sync::Arc;

use crate::upstream::Upstream;

/// A compiled glob: `*` matches any run of characters (including `/` and `.`),
/// everything else matches itself. Case-sensitive, like MCP method names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glob {
    /// `*`: anything.
    Any,
    /// No wildcard.
    Exact(Box<str>),
    /// `prefix*`.
    Prefix(Box<str>),
    /// `*suffix`.
    Suffix(Box<str>),
    /// Several `*`: literal pieces that must appear in order.
    Pieces(Box<[Box<str>]>, bool, bool),
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Glob {
        let stars = pattern.matches('*').count();
        if pattern == "*" || (stars > 0 && pattern.chars().all(|c| c == '*')) {
            return Glob::Any;
        }
        match stars {
            0 => Glob::Exact(pattern.into()),
            1 if pattern.ends_with('*') => Glob::Prefix(pattern.trim_end_matches('*').into()),
            1 if pattern.starts_with('*') => Glob::Suffix(pattern.trim_start_matches('*').into()),
            _ => Glob::Pieces(
                pattern
                    .split('*')
                    .filter(|p| !p.is_empty())
                    .map(Into::into)
                    .collect(),
                pattern.starts_with('*'),
                pattern.ends_with('*'),
            ),
        }
    }

    /// Whether the pattern is exactly `s`, with no wildcard.
    pub fn is_exact(&self, s: &str) -> bool {
        matches!(self, Glob::Exact(e) if **e == *s)
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(e) => s == &**e,
            Glob::Prefix(p) => s.starts_with(&**p),
            Glob::Suffix(p) => s.ends_with(&**p),
            Glob::Pieces(pieces, open_start, open_end) => {
                let mut rest = s;
                for (i, piece) in pieces.iter().enumerate() {
                    let last = i + 1 == pieces.len();
                    if i == 0 && !open_start {
                        match rest.strip_prefix(&**piece) {
                            Some(r) => rest = r,
                            None => return false,
                        }
                    } else if last && !open_end {
                        return rest.len() >= piece.len() && rest.ends_with(&**piece);
                    } else {
                        match rest.find(&**piece) {
                            Some(at) => rest = &rest[at + piece.len()..],
                            None => return false,
                        }
                    }
                }
                true
            }
        }
    }
}

pub use crate::call::Call;

/// One compiled rule. A field that is `None` is not checked; a field that is
/// set only matches calls that have that field (a `tool` rule never matches
/// `tools/list`).
#[derive(Debug, Clone)]
pub struct Rule {
    /// `match.method`.
    pub method: Option<Glob>,
    /// `match.tool`.
    pub tool: Option<Glob>,
    /// `match.resource`.
    pub resource: Option<Glob>,
    /// `match.prompt`.
    pub prompt: Option<Glob>,
    /// The upstream calls matching this rule go to.
    pub upstream: Arc<Upstream>,
}

fn field_matches(glob: &Option<Glob>, value: Option<&str>) -> bool {
    match (glob, value) {
        (None, _) => true,
        (Some(g), Some(v)) => g.matches(v),
        (Some(_), None) => false,
    }
}

impl Rule {
    /// Whether this rule takes `call`.
    pub fn matches(&self, call: &Call<'_>) -> bool {
        field_matches(&self.method, call.method)
            && field_matches(&self.tool, call.tool)
            && field_matches(&self.resource, call.resource.as_deref())
            && field_matches(&self.prompt, call.prompt)
    }

    /// A rule with no criteria other than `method: "*"` (or none at all): it
    /// also takes traffic without a method (GET streams, DELETE, responses).
    pub fn is_catch_all(&self) -> bool {
        matches!(self.method, None | Some(Glob::Any))
            && self.tool.is_none()
            && self.resource.is_none()
            && self.prompt.is_none()
    }
}

/// Which routing decision sent a request to its upstream (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Taken {
    /// Not routed (answered by the gateway first).
    #[default]
    None,
    /// `routing[N]` matched.
    Rule(usize),
    /// The session token named the upstream.
    Session,
    /// Traffic without a method went to the first catch-all rule.
    Default,
}

impl Taken {
    /// `-`, `routing[N]`, `session` or `default`.
    pub fn label(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Taken::None => "-".into(),
            Taken::Rule(i) => format!("routing[{i}]").into(),
            Taken::Session => "session".into(),
            Taken::Default => "default".into(),
        }
    }
}

/// The ordered rule table.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    rules: Vec<Rule>,
    /// Upstream of the first catch-all rule: where method-less traffic goes.
    default: Option<Arc<Upstream>>,
}

impl Routes {
    /// Builds the table; rule order is match order.
    pub fn new(rules: Vec<Rule>) -> Self {
        let default = rules
            .iter()
            .find(|r| r.is_catch_all())
            .map(|r| r.upstream.clone());
        Routes { rules, default }
    }

    /// First rule that matches, or the default route for calls without a method.
    pub fn route(&self, call: &Call<'_>) -> Option<&Arc<Upstream>> {
        self.route_taken(call).map(|(_, u)| u)
    }

    /// [`Routes::route`], also saying which rule decided.
    pub fn route_taken(&self, call: &Call<'_>) -> Option<(Taken, &Arc<Upstream>)> {
        if call.method.is_none() {
            return self.default.as_ref().map(|u| (Taken::Default, u));
        }
        self.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(call))
            .map(|(i, r)| (Taken::Rule(i), &r.upstream))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Where GET streams, DELETE and JSON-RPC responses go.
    pub fn default_upstream(&self) -> Option<&Arc<Upstream>> {
        self.default.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Upstream;

    #[test]
    fn globs() {
        let cases = [
            ("*", "anything/at.all", true),
            ("tools/call", "tools/call", true),
            ("tools/call", "tools/callx", false),
            ("tools/*", "tools/list", true),
            ("tools/*", "prompts/list", false),
            ("*.search", "web.search", true),
            ("*.search", "web.searcher", false),
            ("math.*.v*", "math.add.v2", true),
            ("math.*.v*", "math.add.x2", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a*a", "a", false),
            ("file:///public/*", "file:///public/x/y", true),
            ("**", "", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(Glob::new(p).matches(s), want, "{p} ~ {s}");
        }
    }

    fn up(name: &str) -> Arc<Upstream> {
        Arc::new(Upstream::for_tests(name))
    }

    #[test]
    fn first_match_wins_and_fields_are_specific() {
        let rule = |m: Option<&str>, t: Option<&str>, u: &str| Rule {
            method: m.map(Glob::new),
            tool: t.map(Glob::new),
            resource: None,
            prompt: None,
            upstream: up(u),
        };
        let routes = Routes::new(vec![
            rule(Some("tools/call"), Some("math.*"), "math"),
            rule(None, Some("kb.*"), "kb"),
            rule(Some("*"), None, "default"),
        ]);
        let route = |m, n| {
            routes
                .route(&Call::from_parts(m, n, None))
                .map(|u| u.name.to_string())
        };
        assert_eq!(
            route(Some("tools/call"), Some("math.add")).as_deref(),
            Some("math")
        );
        assert_eq!(
            route(Some("tools/call"), Some("kb.find")).as_deref(),
            Some("kb")
        );
        // a tool rule does not match prompts/get with the same name
        assert_eq!(
            route(Some("prompts/get"), Some("kb.find")).as_deref(),
            Some("default")
        );
        assert_eq!(route(Some("tools/list"), None).as_deref(), Some("default"));
        assert_eq!(route(None, None).as_deref(), Some("default"));
    }

    #[test]
    fn no_catch_all_means_no_default() {
        let routes = Routes::new(vec![Rule {
            method: Some(Glob::new("tools/*")),
            tool: None,
            resource: None,
            prompt: None,
            upstream: up("a"),
        }]);
        assert!(routes.route(&Call::default()).is_none());
        assert!(routes
            .route(&Call::from_parts(Some("ping"), None, None))
            .is_none());
    }
}
