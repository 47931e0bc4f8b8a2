//! The `policy` section: deny by default, and per-subject allow/deny
//! grants of methods, tools, resources and prompts as globs. The glob-list
//! helper is shared with `audit.environments`.

use super::errors::Errors;
use crate::base::glob::Glob;
use crate::config::raw;
use crate::policy::{self, Globs, Policy};

pub(super) fn compile_globs(list: &[String], path: &str, errs: &mut Errors) -> Vec<Glob> {
    list.iter()
        .enumerate()
        .filter_map(|(i, g)| {
            if g.is_empty() {
                errs.push(format!("{path}[{i}]"), "empty pattern");
                None
            } else {
                Some(Glob::new(g))
            }
        })
        .collect()
}

/// Resource globs: matched against normalized URIs (`crate::uri`), so a
/// pattern must be written in normal form too.
fn compile_resource_globs(list: &[String], path: &str, errs: &mut Errors) -> Vec<Glob> {
    for (i, g) in list.iter().enumerate() {
        if let Err(e) = crate::uri::check_pattern(g) {
            errs.push(format!("{path}[{i}]"), e);
        }
    }
    compile_globs(list, path, errs)
}

fn compile_grants(g: &raw::Grants, path: &str, errs: &mut Errors) -> Globs {
    Globs {
        methods: compile_globs(&g.methods, &format!("{path}.methods"), errs),
        tools: compile_globs(&g.tools, &format!("{path}.tools"), errs),
        resources: compile_resource_globs(&g.resources, &format!("{path}.resources"), errs),
        prompts: compile_globs(&g.prompts, &format!("{path}.prompts"), errs),
    }
}

pub(super) fn compile_policy(p: &raw::Policy, errs: &mut Errors) -> Policy {
    if p.default != "deny" {
        errs.push(
            "policy.default",
            "only \"deny\" is supported (deny by default)",
        );
    }
    let rules = p
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| policy::Rule {
            tenant: Glob::new(r.subject.tenant.as_deref().unwrap_or("*")),
            client: Glob::new(r.subject.client.as_deref().unwrap_or("*")),
            claims: r
                .subject
                .claims
                .iter()
                .map(|(k, g)| (k.clone(), Glob::new(g)))
                .collect(),
            allow: compile_grants(&r.allow, &format!("policy.rules[{i}].allow"), errs),
            deny: compile_grants(&r.deny, &format!("policy.rules[{i}].deny"), errs),
        })
        .collect();
    Policy { rules }
}
