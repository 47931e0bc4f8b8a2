//! Deny-by-default authorization. Rules select principals by tenant/client
//! globs; every rule that selects the principal applies; any matching `deny`
//! wins; a call is allowed only if some rule allows its method **and**, when
//! it names a tool, resource or prompt, some rule allows that item too.
//! Pingora-free, evaluated in `request_filter` before anything is forwarded.

use crate::auth::Principal;
use crate::base::glob::Glob;
use crate::call::{is_unknown_item_method, Call, Item};

/// Glob lists over the things a call touches.
#[derive(Debug, Clone, Default)]
pub struct Globs {
    /// Method globs.
    pub methods: Vec<Glob>,
    /// Tool globs.
    pub tools: Vec<Glob>,
    /// Resource URI globs.
    pub resources: Vec<Glob>,
    /// Prompt globs.
    pub prompts: Vec<Glob>,
}

fn any(globs: &[Glob], v: &str) -> bool {
    globs.iter().any(|g| g.matches(v))
}

impl Globs {
    fn item_list(&self, kind: Item) -> &[Glob] {
        match kind {
            Item::Tool => &self.tools,
            Item::Resource => &self.resources,
            Item::Prompt => &self.prompts,
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Tenant glob.
    pub tenant: Glob,
    /// Client glob.
    pub client: Glob,
    /// JWT claim globs the principal must also match (all of them).
    pub claims: Vec<(String, Glob)>,
    /// Grants.
    pub allow: Globs,
    /// Refusals (win over grants).
    pub deny: Globs,
}

impl Rule {
    fn selects(&self, p: &Principal) -> bool {
        self.tenant.matches(&p.tenant)
            && self.client.matches(&p.client)
            && self
                .claims
                .iter()
                .all(|(name, g)| p.claim(name).is_some_and(|v| g.matches(v)))
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deny {
    /// No rule selects this principal.
    NoRule,
    /// No rule allows the method.
    Method,
    /// No rule allows the tool/resource/prompt.
    Item,
    /// A deny list matched.
    Explicit,
}

impl Deny {
    /// Label for logs and audit.
    pub fn as_str(&self) -> &'static str {
        match self {
            Deny::NoRule => "policy_no_rule",
            Deny::Method => "policy_method",
            Deny::Item => "policy_item",
            Deny::Explicit => "policy_deny_rule",
        }
    }
}

/// The compiled policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Rules in file order (order does not change the outcome).
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Decides a call. Calls without a method (GET streams, DELETE, JSON-RPC
    /// responses) belong to a session the principal opened; they are allowed
    /// when some selecting rule allows any method at all. A method under a
    /// guarded prefix that the gateway does not know (`tools/describe`) is
    /// allowed only by its exact name in `methods:`, never by a glob. Every
    /// item the call names (a `subscriptions/listen` may name many) must be
    /// allowed, and a deny of any of them wins.
    pub fn check(&self, p: &Principal, call: &Call<'_>) -> Result<(), Deny> {
        let mut selected = false;
        let mut method_ok = false;
        let unknown = call.method.is_some_and(is_unknown_item_method);
        for r in self.rules.iter().filter(|r| r.selects(p)) {
            selected = true;
            if let Some(m) = call.method {
                if any(&r.deny.methods, m) {
                    return Err(Deny::Explicit);
                }
                method_ok |= if unknown {
                    r.allow.methods.iter().any(|g| g.is_exact(m))
                } else {
                    any(&r.allow.methods, m)
                };
            } else {
                method_ok |= !r.allow.methods.is_empty();
            }
            for (kind, name) in call.items() {
                if any(r.deny.item_list(kind), name) {
                    return Err(Deny::Explicit);
                }
            }
        }
        if !selected {
            return Err(Deny::NoRule);
        }
        if !method_ok {
            return Err(Deny::Method);
        }
        for (kind, name) in call.items() {
            let allowed = self
                .rules
                .iter()
                .filter(|r| r.selects(p))
                .any(|r| any(r.allow.item_list(kind), name));
            if !allowed {
                return Err(Deny::Item);
            }
        }
        Ok(())
    }

    /// Whether some item of `kind` whose name starts with `prefix` could be
    /// allowed for the principal (deny lists are left to the item check):
    /// a virtual server does not ask a member the principal may use
    /// nothing of.
    pub fn may_allow_prefix(&self, p: &Principal, kind: Item, prefix: &str) -> bool {
        self.rules.iter().filter(|r| r.selects(p)).any(|r| {
            r.allow
                .item_list(kind)
                .iter()
                .any(|g| g.may_match_prefix(prefix))
        })
    }

    /// Whether the principal may use a listed item (for list filtering).
    pub fn item_allowed(&self, p: &Principal, kind: Item, name: &str) -> bool {
        let mut ok = false;
        for r in self.rules.iter().filter(|r| r.selects(p)) {
            if any(r.deny.item_list(kind), name) {
                return false;
            }
            ok |= any(r.allow.item_list(kind), name);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(v: &[&str]) -> Vec<Glob> {
        v.iter().map(|s| Glob::new(s)).collect()
    }

    fn policy() -> Policy {
        Policy {
            rules: vec![
                Rule {
                    tenant: Glob::new("client"),
                    client: Glob::new("*"),
                    claims: vec![],
                    allow: Globs {
                        methods: globs(&[
                            "initialize",
                            "notifications/*",
                            "tools/*",
                            "resources/*",
                            "prompts/*",
                        ]),
                        tools: globs(&["*"]),
                        resources: globs(&["file:///public/*"]),
                        prompts: globs(&["*"]),
                    },
                    deny: Globs {
                        tools: globs(&["admin.*"]),
                        ..Globs::default()
                    },
                },
                Rule {
                    tenant: Glob::new("ops"),
                    client: Glob::new("bot-*"),
                    claims: vec![],
                    allow: Globs {
                        methods: globs(&["tools/call"]),
                        tools: globs(&["admin.restart"]),
                        ..Globs::default()
                    },
                    deny: Globs::default(),
                },
            ],
        }
    }

    fn p(tenant: &str, client: &str) -> Principal {
        let mut p = Principal::anonymous(client);
        p.tenant = tenant.into();
        p
    }

    fn call<'a>(m: &'a str, name: Option<&'a str>, uri: Option<&'a str>) -> Call<'a> {
        Call::from_parts(Some(m), name, uri)
    }

    #[test]
    fn allows_and_denies() {
        let pol = policy();
        let c = p("client", "x");
        assert_eq!(
            pol.check(&c, &call("tools/call", Some("math.add"), None)),
            Ok(())
        );
        assert_eq!(
            pol.check(&c, &call("tools/call", Some("admin.drop"), None)),
            Err(Deny::Explicit)
        );
        assert_eq!(
            pol.check(&c, &call("resources/read", None, Some("file:///public/a"))),
            Ok(())
        );
        assert_eq!(
            pol.check(
                &c,
                &call("resources/read", None, Some("file:///etc/passwd"))
            ),
            Err(Deny::Item)
        );
        assert_eq!(
            pol.check(&c, &call("logging/setLevel", None, None)),
            Err(Deny::Method)
        );
        assert_eq!(
            pol.check(&c, &call("notifications/initialized", None, None)),
            Ok(())
        );
        assert_eq!(
            pol.check(&p("nobody", "x"), &call("tools/list", None, None)),
            Err(Deny::NoRule)
        );
        assert_eq!(
            pol.check(
                &p("ops", "bot-1"),
                &call("tools/call", Some("admin.restart"), None)
            ),
            Ok(())
        );
        assert_eq!(
            pol.check(
                &p("ops", "human"),
                &call("tools/call", Some("admin.restart"), None)
            ),
            Err(Deny::NoRule)
        );
        // method-less traffic (GET stream, DELETE) needs some allowed method
        assert_eq!(pol.check(&c, &Call::default()), Ok(()));
        assert_eq!(
            pol.check(&p("nobody", "x"), &Call::default()),
            Err(Deny::NoRule)
        );
    }

    #[test]
    fn unknown_item_methods_need_their_exact_name() {
        let mut pol = policy();
        let c = p("client", "x");
        // "tools/*" opens the known tools/ methods, not one MCP adds later
        assert_eq!(
            pol.check(&c, &call("tools/describe", None, None)),
            Err(Deny::Method)
        );
        pol.rules[0].allow.methods.push(Glob::new("tools/describe"));
        assert_eq!(pol.check(&c, &call("tools/describe", None, None)), Ok(()));
        // and what it names is still checked
        let mut named = call("tools/describe", None, None);
        named.tool = Some("admin.drop");
        assert_eq!(pol.check(&c, &named), Err(Deny::Explicit));
    }

    #[test]
    fn every_item_of_a_call_is_checked() {
        let pol = policy();
        let c = p("client", "x");
        let mut listen = call("resources/subscribe", None, None);
        listen.method = Some("resources/subscribe");
        listen.subscriptions = vec!["file:///public/a".into(), "file:///etc/passwd".into()];
        assert_eq!(pol.check(&c, &listen), Err(Deny::Item));
        listen.subscriptions.pop();
        assert_eq!(pol.check(&c, &listen), Ok(()));
        // completion/complete for a prompt is checked as the prompt
        let mut complete = call("prompts/get", None, None);
        complete.prompt = Some("anything");
        assert_eq!(pol.check(&c, &complete), Ok(()));
    }

    #[test]
    fn claims_narrow_the_subject() {
        let pol = Policy {
            rules: vec![Rule {
                tenant: Glob::new("*"),
                client: Glob::new("*"),
                claims: vec![("plan".into(), Glob::new("gold"))],
                allow: Globs {
                    methods: globs(&["tools/list"]),
                    ..Globs::default()
                },
                deny: Globs::default(),
            }],
        };
        let mut gold = p("t", "c");
        gold.claims = vec![("plan".into(), "gold".into())].into();
        let mut free = p("t", "c");
        free.claims = vec![("plan".into(), "free".into())].into();
        let list = call("tools/list", None, None);
        assert_eq!(pol.check(&gold, &list), Ok(()));
        assert_eq!(pol.check(&free, &list), Err(Deny::NoRule));
        assert_eq!(pol.check(&p("t", "c"), &list), Err(Deny::NoRule));
    }

    #[test]
    fn empty_policy_denies_everything() {
        let pol = Policy::default();
        assert!(pol
            .check(&p("client", "x"), &call("tools/list", None, None))
            .is_err());
        assert!(!pol.item_allowed(&p("client", "x"), Item::Tool, "anything"));
    }

    #[test]
    fn list_filtering_decisions() {
        let pol = policy();
        let c = p("client", "x");
        assert!(pol.item_allowed(&c, Item::Tool, "math.add"));
        assert!(!pol.item_allowed(&c, Item::Tool, "admin.drop"));
        assert!(!pol.item_allowed(&c, Item::Resource, "file:///etc/passwd"));
        assert!(!pol.item_allowed(&p("ops", "bot-1"), Item::Tool, "math.add"));
    }

    /// Property: for generated principals, methods and names, a call is
    /// allowed only if some selecting rule allows its method and item and no
    /// selecting rule denies either (a brute-force model of the semantics).
    #[test]
    fn property_nothing_is_allowed_unless_a_rule_allows_it() {
        let pol = policy();
        let tenants = ["client", "ops", "other", ""];
        let clients = ["x", "bot-1", "bot-", "human"];
        let methods = [
            "tools/call",
            "tools/list",
            "prompts/get",
            "resources/read",
            "initialize",
            "ping",
            "x",
        ];
        let names = [
            "math.add",
            "admin.restart",
            "admin.x",
            "file:///public/a",
            "file:///private",
            "",
        ];
        let mut allowed = 0;
        for t in tenants {
            for cl in clients {
                let pr = p(t, cl);
                for m in methods {
                    for n in names {
                        let c = Call::from_parts(Some(m), Some(n), Some(n));
                        let got = pol.check(&pr, &c).is_ok();
                        let item = c.items().next();
                        let sel: Vec<&Rule> = pol.rules.iter().filter(|r| r.selects(&pr)).collect();
                        let denied = sel.iter().any(|r| {
                            any(&r.deny.methods, m)
                                || item.is_some_and(|(k, v)| any(r.deny.item_list(k), v))
                        });
                        let m_ok = sel.iter().any(|r| any(&r.allow.methods, m));
                        let i_ok = item
                            .is_none_or(|(k, v)| sel.iter().any(|r| any(r.allow.item_list(k), v)));
                        assert_eq!(got, !denied && m_ok && i_ok, "{t} {cl} {m} {n}");
                        allowed += got as usize;
                    }
                }
            }
        }
        assert!(allowed > 0);
    }
}
