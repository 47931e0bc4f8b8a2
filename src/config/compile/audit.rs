//! The `audit` section: where audit lines go, what happens when the queue
//! is full, file rotation size, and the environments (`MCP_EDGE_ENV`) in
//! which auditing is on.

use super::errors::Errors;
use super::policy::compile_globs;
use crate::config::raw;
use crate::telemetry::sink::OnFull;

/// Environment name when `MCP_EDGE_ENV` is not set.
pub const DEFAULT_ENV: &str = "production";

pub(super) fn compile_audit(
    a: &raw::Audit,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<(crate::telemetry::sink::Target, OnFull, usize)> {
    let on_full = match a.on_full.as_str() {
        "block" => OnFull::Block,
        "drop" => OnFull::Drop,
        other => {
            errs.push(
                "audit.on_full",
                format!("expected block or drop, got \"{other}\""),
            );
            OnFull::Block
        }
    };
    if a.path.is_empty() {
        errs.push("audit.path", "must be a file path or \"-\" (stdout)");
    } else if a.path != "-" {
        let parent = std::path::Path::new(&a.path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            if !crate::base::hermetic::is_dir(dir) {
                errs.push(
                    "audit.path",
                    format!("directory {} does not exist", dir.display()),
                );
            }
        }
    }
    if a.max_file_bytes < 4096 {
        errs.push("audit.max_file_bytes", "must be at least 4096");
    }
    if !(1..=1 << 20).contains(&a.queue_lines) {
        errs.push("audit.queue_lines", "must be between 1 and 1048576");
    }
    let envs = compile_globs(&a.environments, "audit.environments", errs);
    let current = env("MCP_EDGE_ENV").unwrap_or_else(|| DEFAULT_ENV.to_string());
    if !a.enabled || !crate::telemetry::audit::enabled_in(&envs, &current) {
        return None;
    }
    Some((
        crate::telemetry::audit::Audit::target(&a.path, a.max_file_bytes),
        on_full,
        a.queue_lines,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::compile;
    use super::super::test_support::{one_error, GOOD};

    #[test]
    fn audit_follows_mcp_edge_env() {
        let t = format!("{GOOD}audit: {{path: \"-\", environments: [\"prod*\"]}}\n");
        let with_env = |v: Option<&str>| {
            let v = v.map(String::from);
            compile(&t, &move |n| {
                if n == "MCP_EDGE_ENV" {
                    v.clone()
                } else {
                    None
                }
            })
            .map(|rt| rt.audit_settings.is_some())
            .unwrap_or_default()
        };
        assert!(with_env(None), "unset = production");
        assert!(with_env(Some("prod-eu")));
        assert!(!with_env(Some("dev")));
        one_error(
            &format!("{GOOD}audit: {{on_full: maybe}}\n"),
            "audit.on_full",
        );
        one_error(
            &format!("{GOOD}audit: {{path: /no/such/dir/a.jsonl}}\n"),
            "audit.path",
        );
        one_error(
            &format!("{GOOD}audit: {{queue_lines: 0}}\n"),
            "audit.queue_lines",
        );
    }
}
