//! The `routing` section: an ordered list of rules, each matching a method,
//! tool, resource or prompt glob and naming the upstream that serves it.

use std::collections::HashSet;
use std::sync::Arc;

use serde_yaml::Value;

use super::document::section;
use super::errors::Errors;
use crate::base::glob::Glob;
use crate::config::raw;
use crate::routing::Rule;
use crate::upstream::Upstream;

/// Every rule, each entry read on its own; `names` are all upstream names
/// given (so a rule naming an invalid upstream is not reported twice).
pub(super) fn compile_routing(
    value: Option<&Value>,
    upstreams: &[Arc<Upstream>],
    names: &HashSet<String>,
    errs: &mut Errors,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    match value {
        Some(Value::Sequence(list)) => {
            for (i, item) in list.iter().enumerate() {
                let path = format!("routing[{i}]");
                let Some(r) = section::<raw::Route>(item, &path, errs) else {
                    continue;
                };
                if let Some(rule) = compile_rule(&r, &path, upstreams, names, errs) {
                    rules.push(rule);
                }
            }
            if list.is_empty() {
                errs.push("routing", "at least one rule is required");
            }
        }
        Some(_) => errs.push("routing", "expected a list"),
        None => errs.push("routing", "missing (at least one rule is required)"),
    }
    rules
}

fn compile_rule(
    r: &raw::Route,
    path: &str,
    upstreams: &[Arc<Upstream>],
    names: &HashSet<String>,
    errs: &mut Errors,
) -> Option<Rule> {
    let m = &r.matches;
    for (field, value) in [
        ("method", &m.method),
        ("tool", &m.tool),
        ("resource", &m.resource),
        ("prompt", &m.prompt),
    ] {
        if matches!(value.as_deref(), Some("")) {
            errs.push(format!("{path}.match.{field}"), "empty pattern");
        }
    }
    if let Some(Err(e)) = m.resource.as_deref().map(crate::uri::check_pattern) {
        errs.push(format!("{path}.match.resource"), e);
    }
    let target = upstreams.iter().find(|u| *u.name == *r.upstream).cloned();
    let Some(upstream) = target else {
        if !names.contains(&r.upstream) {
            errs.push(
                format!("{path}.upstream"),
                format!("unknown upstream \"{}\"", r.upstream),
            );
        }
        return None;
    };
    Some(Rule {
        method: m.method.as_deref().map(Glob::new),
        tool: m.tool.as_deref().map(Glob::new),
        resource: m.resource.as_deref().map(Glob::new),
        prompt: m.prompt.as_deref().map(Glob::new),
        upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{one_error, GOOD};

    #[test]
    fn unknown_upstream_in_route() {
        let t = GOOD.replace("upstream: a", "upstream: mcp-kb");
        one_error(&t, "routing[0].upstream: unknown upstream \"mcp-kb\"");
    }
}
