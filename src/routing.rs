//! First-match routing table: rules over JSON-RPC method, tool, resource and
//! prompt globs, each naming an upstream. Compiled once per config snapshot;
//! matching allocates nothing.

use std::sync::Arc;

use crate::upstream::Upstream;

pub use crate::base::glob::Glob;
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
    /// `virtual_servers[N]` answered it or chose its member.
    Virtual(usize),
}

impl Taken {
    /// `-`, `routing[N]`, `session`, `default` or `virtual_servers[N]`.
    pub fn label(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Taken::None => "-".into(),
            Taken::Rule(i) => format!("routing[{i}]").into(),
            Taken::Session => "session".into(),
            Taken::Default => "default".into(),
            Taken::Virtual(i) => format!("virtual_servers[{i}]").into(),
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
