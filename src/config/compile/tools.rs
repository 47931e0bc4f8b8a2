//! The `tool_limits` and `tool_overrides` sections (docs/tool-safety.md),
//! lists read entry by entry. `tool_limits`: the patterns (non-empty), at
//! least one bound per rule, `timeout_ms` within a day, `max_concurrent`
//! and `max_response_bytes` at least 1 and 1024. `tool_overrides`: each
//! tool once, a new name in the MCP tool-name alphabet (1 to 128 of
//! `A-Z a-z 0-9 _ - .`), unique, and not another entry's tool.
//! `tool_integrity`: the mode, and the pins file's directory.

use std::sync::Arc;
use std::time::Duration;

use serde_yaml::Value;

use super::document::{optional_list, section};
use super::errors::Errors;
use super::policy::compile_globs;
use crate::config::raw;
use crate::tools::integrity::{Mode, Settings};
use crate::tools::{Override, Rule, ToolLimits, ToolOverrides};

/// Longest `timeout_ms` (a day).
const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// Every `tool_limits` entry.
pub(super) fn compile_tool_limits(value: Option<&Value>, errs: &mut Errors) -> ToolLimits {
    let list = optional_list(value, "tool_limits", errs);
    let mut rules = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("tool_limits[{i}]");
        let Some(r) = section::<raw::ToolLimit>(item, &at, errs) else {
            continue;
        };
        if let Some(rule) = compile_rule(&r, &at, errs) {
            rules.push(rule);
        }
    }
    ToolLimits::new(rules)
}

/// The `tool_integrity` section.
pub(super) fn compile_tool_integrity(
    raw: Option<&raw::ToolIntegrity>,
    errs: &mut Errors,
) -> Settings {
    let Some(r) = raw else {
        return Settings::default();
    };
    let mode = match r.mode.as_str() {
        "off" => Mode::Off,
        "warn" => Mode::Warn,
        "block" => Mode::Block,
        other => {
            errs.push(
                "tool_integrity.mode",
                format!("unknown mode {other:?} (off, warn or block)"),
            );
            Mode::Off
        }
    };
    let pins_file = r.pins_file.as_ref().map(std::path::PathBuf::from);
    if let Some(p) = &pins_file {
        if p.as_os_str().is_empty() || crate::base::hermetic::is_dir(p) {
            errs.push("tool_integrity.pins_file", "must be a file path");
        } else if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !crate::base::hermetic::is_dir(dir) {
                errs.push(
                    "tool_integrity.pins_file",
                    format!("directory {} does not exist", dir.display()),
                );
            }
        }
    }
    Settings { mode, pins_file }
}

/// Every `tool_overrides` entry.
pub(super) fn compile_tool_overrides(value: Option<&Value>, errs: &mut Errors) -> ToolOverrides {
    let list = optional_list(value, "tool_overrides", errs);
    let entries: Vec<(String, raw::ToolOverride)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let at = format!("tool_overrides[{i}]");
            section::<raw::ToolOverride>(item, &at, errs).map(|o| (at, o))
        })
        .collect();
    let tools: std::collections::HashSet<&str> =
        entries.iter().map(|(_, o)| o.tool.as_str()).collect();
    let mut seen_tools = std::collections::HashSet::new();
    let mut seen_names = std::collections::HashSet::new();
    let before = errs.len();
    for (at, o) in &entries {
        if o.tool.is_empty() {
            errs.push(format!("{at}.tool"), "must name a tool (its exposed name)");
        }
        if !seen_tools.insert(o.tool.as_str()) {
            errs.push(
                format!("{at}.tool"),
                format!("{:?} has another entry", o.tool),
            );
        }
        if o.name.is_none() && o.description.is_none() {
            errs.push(at, "changes nothing (name or description)");
        }
        if let Some(n) = &o.name {
            let at = format!("{at}.name");
            if n.is_empty()
                || n.len() > 128
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                errs.push(
                    &at,
                    "must be 1 to 128 of A-Z a-z 0-9 _ - . (an MCP tool name)",
                );
            }
            if *n == o.tool || tools.contains(n.as_str()) {
                errs.push(&at, format!("{n:?} is a tool an entry names"));
            }
            if !seen_names.insert(n.as_str()) {
                errs.push(&at, format!("{n:?} is another entry's new name"));
            }
        }
    }
    if errs.len() > before {
        return ToolOverrides::default();
    }
    ToolOverrides::new(
        entries
            .into_iter()
            .map(|(_, o)| Override {
                tool: o.tool,
                name: o.name,
                description: o.description,
            })
            .collect(),
    )
}

fn compile_rule(r: &raw::ToolLimit, at: &str, errs: &mut Errors) -> Option<Rule> {
    let before = errs.len();
    if r.tools.is_empty() {
        errs.push(
            format!("{at}.tools"),
            "must name at least one tool (a glob)",
        );
    }
    let tools = compile_globs(&r.tools, &format!("{at}.tools"), errs);
    if r.timeout_ms.is_none() && r.max_concurrent.is_none() && r.max_response_bytes.is_none() {
        errs.push(
            at,
            "sets no bound (timeout_ms, max_concurrent or max_response_bytes)",
        );
    }
    if let Some(t) = r.timeout_ms {
        if t == 0 || t > MAX_TIMEOUT_MS {
            errs.push(
                format!("{at}.timeout_ms"),
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            );
        }
    }
    if r.max_concurrent == Some(0) {
        errs.push(format!("{at}.max_concurrent"), "must be at least 1");
    }
    if let Some(b) = r.max_response_bytes {
        if b < 1024 {
            errs.push(format!("{at}.max_response_bytes"), "must be at least 1024");
        }
    }
    if errs.len() > before {
        return None;
    }
    Some(Rule {
        tools,
        key: Arc::from(r.tools.join("\n")),
        timeout: r.timeout_ms.map(Duration::from_millis),
        max_concurrent: r.max_concurrent,
        max_response_bytes: r
            .max_response_bytes
            .map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{errors, GOOD};

    #[test]
    fn tool_limits_compile_and_every_problem_has_its_path() {
        let ok = format!(
            "{GOOD}\ntool_limits:\n  - {{tools: [\"git__log*\"], timeout_ms: 10000, max_concurrent: 4, max_response_bytes: 1048576}}\n  - {{tools: [\"*\"], timeout_ms: 60000}}\n"
        );
        let rt = crate::config::compile::compile(&ok, &|_| None).unwrap();
        let rule = rt.tool_limits.for_tool("git__log_all").unwrap();
        assert_eq!(rule.max_concurrent, Some(4));
        assert_eq!(rule.max_response_bytes, Some(1 << 20));
        assert_eq!(
            rt.tool_limits.for_tool("x").unwrap().timeout,
            Some(std::time::Duration::from_secs(60))
        );
        let bad = format!(
            "{GOOD}\ntool_limits:\n  - {{tools: [], timeout_ms: 0}}\n  - {{tools: [\"a\"]}}\n  - {{tools: [\"\"], max_concurrent: 0, max_response_bytes: 10}}\n  - {{tools: [\"b\"], timeout: 5}}\n"
        );
        let e = errors(&bad);
        for want in [
            "tool_limits[0].tools: must name at least one tool",
            "tool_limits[0].timeout_ms: must be between 1 and 86400000",
            "tool_limits[1]: sets no bound",
            "tool_limits[2].tools[0]: empty pattern",
            "tool_limits[2].max_concurrent: must be at least 1",
            "tool_limits[2].max_response_bytes: must be at least 1024",
            "tool_limits[3].timeout: unknown field `timeout`",
        ] {
            assert!(e.iter().any(|l| l.contains(want)), "{want} not in {e:#?}");
        }
    }

    #[test]
    fn tool_overrides_compile_and_every_problem_has_its_path() {
        let ok = format!(
            "{GOOD}\ntool_overrides:\n  - {{tool: math__add, description: \"Add (audited)\"}}\n  - {{tool: git__git_log, name: git__history}}\n"
        );
        let rt = crate::config::compile::compile(&ok, &|_| None).unwrap();
        assert_eq!(
            rt.tool_overrides.called("git__history"),
            crate::tools::Called::Renamed("git__git_log")
        );
        let bad = format!(
            "{GOOD}\ntool_overrides:\n  - {{tool: a, name: b}}\n  - {{tool: a, description: x}}\n  - {{tool: c}}\n  - {{tool: d, name: a}}\n  - {{tool: e, name: b}}\n  - {{tool: f, name: \"has space\"}}\n  - {{tool: \"\", descripton: y}}\n"
        );
        let e = errors(&bad);
        for want in [
            "tool_overrides[1].tool: \"a\" has another entry",
            "tool_overrides[2]: changes nothing",
            "tool_overrides[3].name: \"a\" is a tool an entry names",
            "tool_overrides[4].name: \"b\" is another entry's new name",
            "tool_overrides[5].name: must be 1 to 128",
            "tool_overrides[6].descripton: unknown field",
        ] {
            assert!(e.iter().any(|l| l.contains(want)), "{want} not in {e:#?}");
        }
    }
}
