//! The `virtual_servers` section (docs/federation.md): each entry one MCP
//! server at its own path composed from member upstreams. Checked: the
//! path (absolute, unique, not another endpoint's), the members (known
//! upstreams, each once), the prefixes (unique, in the tool-name alphabet,
//! never containing the separator) and the naming mode.

use std::collections::HashSet;
use std::sync::Arc;

use serde_yaml::Value;

use super::document::{optional_list, section};
use super::errors::Errors;
use crate::config::raw;
use crate::federation::{self, Naming, PrefixMode};
use crate::runtime::{Member, VirtualServer};
use crate::upstream::Upstream;

/// Paths a virtual server may not take: the gateway answers them itself
/// or serves another endpoint there.
pub(super) struct Taken<'a> {
    /// `server.path`.
    pub mcp: Option<&'a str>,
    /// `tunnel.path`, when tunnels are on.
    pub tunnel: Option<&'a str>,
    /// The RFC 9728 metadata paths.
    pub metadata: &'a [String],
}

/// The public health paths (`proxy::request`).
const HEALTH_PATHS: [&str; 2] = ["/healthz", "/health"];

/// Characters of an MCP tool name (2025-11-25 recommends these).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Every virtual server, each entry read on its own; `names` are all
/// upstream names given (an invalid upstream is not reported twice).
pub(super) fn compile_virtual_servers(
    value: Option<&Value>,
    upstreams: &[Arc<Upstream>],
    names: &HashSet<String>,
    taken: &Taken<'_>,
    errs: &mut Errors,
) -> Vec<Arc<VirtualServer>> {
    let list = optional_list(value, "virtual_servers", errs);
    let mut out = Vec::new();
    let mut paths = HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("virtual_servers[{i}]");
        let Some(v) = section::<raw::VirtualServer>(item, &at, errs) else {
            continue;
        };
        check_path(&v.path, &format!("{at}.path"), taken, &mut paths, errs);
        if let Some(vs) = compile_one(&v, &at, upstreams, names, errs) {
            out.push(Arc::new(vs));
        }
    }
    out
}

/// `legacy_sse.path`: like a virtual server's path. The legacy endpoint
/// answers at `<path>` and `<path>/message` for `server.path`, and at
/// `<vs.path><path>` and `<vs.path><path>/message` for each virtual
/// server (`proxy::sse_front`): none of these may be another endpoint's
/// path or each other's.
pub(super) fn check_legacy_path(
    path: &str,
    taken: &Taken<'_>,
    virtual_servers: &[Arc<VirtualServer>],
    errs: &mut Errors,
) {
    let at = "legacy_sse.path";
    let mut paths: HashSet<String> = HashSet::new();
    check_path(path, at, taken, &mut paths, errs);
    let vs_paths: Vec<&str> = virtual_servers.iter().map(|v| v.path.as_str()).collect();
    let mcp = taken.mcp.unwrap_or_default();
    let mut seen: HashSet<String> = HashSet::new();
    for (front, _) in crate::runtime::legacy_fronts(path, mcp, virtual_servers) {
        for p in [front.clone(), format!("{front}/message")] {
            let clash = if vs_paths.contains(&p.as_str()) {
                Some("a virtual server's path")
            } else if Some(p.as_str()) == taken.mcp {
                Some("server.path")
            } else if Some(p.as_str()) == taken.tunnel {
                Some("tunnel.path")
            } else if HEALTH_PATHS.contains(&p.as_str()) || taken.metadata.contains(&p) {
                Some("a path the gateway answers itself")
            } else if !seen.insert(p.clone()) {
                Some("another legacy endpoint's path")
            } else {
                None
            };
            if let Some(what) = clash {
                errs.push(at, format!("the legacy endpoint's path {p:?} is {what}"));
            }
        }
    }
}

fn check_path(
    path: &str,
    at: &str,
    taken: &Taken<'_>,
    paths: &mut HashSet<String>,
    errs: &mut Errors,
) {
    if !path.starts_with('/') || path.contains(['?', '#', ' ', '%']) || path.len() > 256 {
        errs.push(
            at,
            "must be an absolute path without query, escapes or spaces",
        );
    }
    if Some(path) == taken.mcp {
        errs.push(
            at,
            "must differ from server.path (that path keeps the routing table)",
        );
    } else if Some(path) == taken.tunnel {
        errs.push(at, "must differ from tunnel.path");
    } else if HEALTH_PATHS.contains(&path) || taken.metadata.iter().any(|m| m == path) {
        errs.push(at, "is a path the gateway answers itself");
    }
    if !paths.insert(path.to_string()) {
        errs.push(
            at,
            format!("duplicate path {path:?} (another virtual server has it)"),
        );
    }
}

fn compile_one(
    v: &raw::VirtualServer,
    at: &str,
    upstreams: &[Arc<Upstream>],
    names: &HashSet<String>,
    errs: &mut Errors,
) -> Option<VirtualServer> {
    let before = errs.len();
    if v.name.trim().is_empty() || v.name.len() > 128 {
        errs.push(format!("{at}.name"), "must be 1 to 128 characters");
    }
    let mode = PrefixMode::parse(&v.prefix_mode);
    if mode.is_none() {
        errs.push(
            format!("{at}.prefix_mode"),
            format!(
                "unknown mode {:?} (always, conflicts, never)",
                v.prefix_mode
            ),
        );
    }
    let needs_sep = mode != Some(PrefixMode::Never);
    if needs_sep
        && (v.separator.is_empty() || v.separator.len() > 8 || !v.separator.chars().all(name_char))
    {
        errs.push(
            format!("{at}.separator"),
            "must be 1 to 8 characters of A-Z a-z 0-9 _ - .",
        );
    }
    if !(1..=600_000).contains(&v.member_timeout_ms) {
        errs.push(format!("{at}.member_timeout_ms"), "must be 1 to 600000");
    }
    if v.members.is_empty() {
        errs.push(format!("{at}.members"), "at least one member is required");
    }
    if v.members.len() > 16 {
        errs.push(format!("{at}.members"), "at most 16 members");
    }
    let mut members = Vec::new();
    let mut seen_up = HashSet::new();
    let mut seen_prefix = HashSet::new();
    for (j, m) in v.members.iter().enumerate() {
        let mat = format!("{at}.members[{j}]");
        if !seen_up.insert(m.upstream.as_str()) {
            errs.push(
                format!("{mat}.upstream"),
                format!("duplicate member \"{}\"", m.upstream),
            );
        }
        let prefix = m.prefix.clone().unwrap_or_else(|| m.upstream.clone());
        if needs_sep {
            if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(name_char) {
                errs.push(
                    format!("{mat}.prefix"),
                    "must be 1 to 64 characters of A-Z a-z 0-9 _ - .",
                );
            } else if !v.separator.is_empty() && !federation::prefix_fits(&prefix, &v.separator) {
                errs.push(
                    format!("{mat}.prefix"),
                    format!(
                        "must not contain the separator {:?}, also not across its end \
                         (in {:?} the first {:?} must end the prefix)",
                        v.separator,
                        format!("{prefix}{}x", v.separator),
                        v.separator
                    ),
                );
            }
            if !seen_prefix.insert(prefix.clone()) {
                errs.push(
                    format!("{mat}.prefix"),
                    format!("duplicate prefix {prefix:?}"),
                );
            }
        }
        match upstreams.iter().find(|u| *u.name == *m.upstream) {
            Some(u) => members.push(Member {
                upstream: u.clone(),
                prefix,
            }),
            None if names.contains(&m.upstream) => {}
            None => errs.push(
                format!("{mat}.upstream"),
                format!("unknown upstream \"{}\"", m.upstream),
            ),
        }
    }
    if errs.len() != before {
        return None;
    }
    Some(VirtualServer {
        path: v.path.clone(),
        name: v.name.clone(),
        naming: Naming {
            separator: v.separator.clone(),
            mode: mode?,
            prefixes: members.iter().map(|m| m.prefix.clone()).collect(),
        },
        members,
        member_timeout: std::time::Duration::from_millis(v.member_timeout_ms),
        catalog: Default::default(),
        stateless: Default::default(),
        lists: Default::default(),
        relisted: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::errors;

    const BASE: &str = "server: {listen: 127.0.0.1:1, path: /mcp}\nupstreams:\n  - {name: a, url: http://127.0.0.1:9/mcp}\n  - {name: b, url: http://127.0.0.1:8/mcp}\nrouting: [{match: {method: \"*\"}, upstream: a}]\n";

    #[test]
    fn a_good_virtual_server_compiles() {
        let t = format!("{BASE}virtual_servers:\n  - path: /tools\n    name: acme\n    members: [{{upstream: a, prefix: x}}, {{upstream: b}}]\n");
        assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    }

    #[test]
    fn every_problem_with_its_path() {
        let t = format!(
            "{BASE}virtual_servers:\n  - path: /mcp\n    name: one\n    members: [{{upstream: nope}}, {{upstream: a, prefix: p}}, {{upstream: a, prefix: p}}]\n  - path: /v\n    name: two\n    separator: '__'\n    prefix_mode: sometimes\n    member_timeout_ms: 0\n    members: [{{upstream: b, prefix: 'x__y'}}]\n  - path: /v\n    name: ''\n    members: []\n"
        );
        let e = errors(&t);
        for want in [
            "virtual_servers[0].path: must differ from server.path",
            "virtual_servers[0].members[0].upstream: unknown upstream \"nope\"",
            "virtual_servers[0].members[2].upstream: duplicate member \"a\"",
            "virtual_servers[0].members[2].prefix: duplicate prefix \"p\"",
            "virtual_servers[1].prefix_mode: unknown mode",
            "virtual_servers[1].member_timeout_ms",
            "virtual_servers[1].members[0].prefix: must not contain the separator",
            "virtual_servers[2].path: duplicate path",
            "virtual_servers[2].name",
            "virtual_servers[2].members: at least one member",
        ] {
            assert!(
                e.iter().any(|l| l.contains(want)),
                "wanted {want:?} in {e:#?}"
            );
        }
    }

    #[test]
    fn a_prefix_may_not_form_the_separator_across_its_end() {
        // `a_` + `__` + `x` would split as `a` + `__` + `_x`
        let t = format!("{BASE}virtual_servers:\n  - path: /v\n    name: v\n    members: [{{upstream: a, prefix: a_}}, {{upstream: b, prefix: _}}]\n");
        let e = errors(&t);
        for want in [
            "virtual_servers[0].members[0].prefix: must not contain the separator \"__\", also not across its end (in \"a___x\"",
            "virtual_servers[0].members[1].prefix: must not contain the separator",
        ] {
            assert!(e.iter().any(|l| l.contains(want)), "wanted {want:?} in {e:#?}");
        }
        let t = format!("{BASE}virtual_servers:\n  - path: /v\n    name: v\n    separator: '-'\n    members: [{{upstream: a, prefix: a_}}, {{upstream: b, prefix: _b.}}]\n");
        assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    }

    #[test]
    fn routing_is_optional_beside_a_virtual_server() {
        let t = "server: {listen: 127.0.0.1:1, path: /mcp}\nupstreams: [{name: a, url: http://127.0.0.1:9/mcp}]\nvirtual_servers: [{path: /v, name: v, members: [{upstream: a}]}]\n";
        assert!(errors(t).is_empty(), "{:?}", errors(t));
    }
}
