//! `type: stdio` upstreams: the command the gateway runs per MCP session
//! (argv, no shell; `command[0]` must exist and be executable, looked up on
//! the process's `PATH`), the process's whole environment (a minimal base
//! plus `env:`, `${VAR}` expanded: nothing of the gateway's own environment
//! passes unless named), and the process bounds.

use std::time::Duration;

use super::env::expand_env;
use super::errors::Errors;
use super::ms;
use crate::config::raw;
use crate::upstream::{Balance, Bridge, Endpoint, Spawn, Upstream};

/// `PATH` of a stdio process unless `env:` sets one.
pub(crate) const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// `max_processes` unless given.
const DEFAULT_MAX_PROCESSES: usize = 16;
/// `idle_timeout_secs` unless given.
const DEFAULT_IDLE_SECS: u64 = 600;

/// The keys only `type: stdio` takes, and whether `u` sets each.
pub(super) fn stdio_keys(u: &raw::Upstream) -> [(&'static str, bool); 4] {
    [
        ("command", u.command.is_some()),
        ("env", u.env.is_some()),
        ("max_processes", u.max_processes.is_some()),
        ("idle_timeout_secs", u.idle_timeout_secs.is_some()),
    ]
}

/// A `type: stdio` upstream: no address (the bridge serves it from
/// processes it spawns). Its timeouts were checked by the caller.
pub(super) fn compile_stdio_upstream(
    u: &raw::Upstream,
    path: &str,
    before: usize,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Upstream> {
    for (key, set) in [
        ("url", u.url.is_some()),
        ("endpoints", !u.endpoints.is_empty()),
        ("load_balancing", u.load_balancing.is_some()),
        ("health_check", u.health_check.is_some()),
        ("auth", u.auth.is_some()),
        ("tls", u.tls.is_some()),
    ] {
        if set {
            errs.push(
                format!("{path}.{key}"),
                "not used by type: stdio (the gateway runs `command` itself)",
            );
        }
    }
    let vars = environment(u, path, env, errs);
    let command = command(u, path, &vars, errs);
    let max_processes = u.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES);
    if !(1..=4096).contains(&max_processes) {
        errs.push(format!("{path}.max_processes"), "must be 1..=4096");
    }
    let idle = u.idle_timeout_secs.unwrap_or(DEFAULT_IDLE_SECS);
    if !(1..=7 * 86_400).contains(&idle) {
        errs.push(
            format!("{path}.idle_timeout_secs"),
            "must be 1..=604800 (a week)",
        );
    }
    if errs.len() != before {
        return None;
    }
    let spawn = Spawn {
        command: command?,
        env: vars,
        max_processes,
        idle_timeout: Duration::from_secs(idle),
    };
    Some(
        Upstream::new(
            &u.name,
            vec![Endpoint::bridged(Bridge::Stdio, &u.name)],
            Balance::RoundRobin,
            false,
            None,
            None,
            ms(u.timeout_ms),
            ms(u.connect_timeout_ms),
            ms(u.sse_idle_timeout_ms),
        )
        .with_spawn(spawn),
    )
}

/// The process's environment: `PATH`, `HOME` (the gateway user's home from
/// the user database), `LANG=C.UTF-8`, then `env:` (which may replace them).
fn environment(
    u: &raw::Upstream,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Vec<(String, String)> {
    let mut vars: std::collections::BTreeMap<String, String> = [
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOME".to_string(), crate::base::hermetic::home_dir()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
    ]
    .into_iter()
    .collect();
    for (k, v) in u.env.iter().flatten() {
        let at = format!("{path}.env.{k}");
        let name_ok = k
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            errs.push(&at, "a variable name is [A-Za-z_][A-Za-z0-9_]*");
            continue;
        }
        let mut env_errs = Vec::new();
        let value = expand_env(v, &at, env, &mut env_errs);
        errs.extend(env_errs);
        if value.contains('\0') {
            errs.push(&at, "contains a NUL byte");
            continue;
        }
        vars.insert(k.clone(), value);
    }
    vars.into_iter().collect()
}

/// `command:`: a non-empty argv whose program exists and is executable.
fn command(
    u: &raw::Upstream,
    path: &str,
    vars: &[(String, String)],
    errs: &mut Errors,
) -> Option<Vec<String>> {
    let Some(argv) = u.command.as_ref() else {
        errs.push(
            format!("{path}.command"),
            "required for type: stdio (program and arguments, e.g. [\"uvx\", \"mcp-server-git\"])",
        );
        return None;
    };
    let Some(program) = argv.first() else {
        errs.push(format!("{path}.command"), "must name a program");
        return None;
    };
    let mut ok = true;
    for (i, a) in argv.iter().enumerate() {
        if a.contains('\0') {
            errs.push(format!("{path}.command[{i}]"), "contains a NUL byte");
            ok = false;
        }
    }
    if program.is_empty() {
        errs.push(format!("{path}.command[0]"), "is empty");
        return None;
    }
    let search = vars
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    if let Err(why) = crate::base::hermetic::find_executable(program, search) {
        errs.push(format!("{path}.command[0]"), why);
        ok = false;
    }
    ok.then(|| argv.clone())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{one_error, GOOD};

    fn stdio(extra: &str) -> String {
        GOOD.replace(
            "    url: http://127.0.0.1:9000/mcp",
            &format!("    type: stdio\n{extra}"),
        )
    }

    #[test]
    fn a_stdio_upstream_compiles_with_a_minimal_environment() {
        let t = stdio("    command: [\"/bin/sh\", \"-c\", \"cat\"]\n    env: {GREETING: hi, PATH: /opt/bin}\n    max_processes: 2\n    idle_timeout_secs: 5\n");
        let rt = super::super::compile(&t, &|_| None).expect("compiles");
        let s = rt.upstreams[0].spawn.as_ref().expect("spawn");
        assert_eq!(s.command, vec!["/bin/sh", "-c", "cat"]);
        assert_eq!(s.max_processes, 2);
        let names: Vec<&str> = s.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["GREETING", "HOME", "LANG", "PATH"]);
        assert!(s.env.contains(&("PATH".into(), "/opt/bin".into())));
    }

    #[test]
    fn stdio_problems_carry_their_paths() {
        one_error(&stdio("    command: []\n"), "upstreams[0].command");
        one_error(&stdio(""), "upstreams[0].command");
        // (whether command[0] exists is checked outside the hermetic compile:
        // base::hermetic's tests and tests/stdio.rs)
        one_error(
            &stdio("    command: [\"/bin/sh\"]\n    env: {\"BAD-NAME\": x}\n"),
            "upstreams[0].env.BAD-NAME",
        );
        one_error(
            &stdio("    command: [\"/bin/sh\"]\n    max_processes: 0\n"),
            "upstreams[0].max_processes",
        );
        one_error(
            &stdio("    command: [\"/bin/sh\"]\n    url: http://127.0.0.1:1/mcp\n"),
            "upstreams[0].url",
        );
        // stdio keys on an http upstream
        let t = GOOD.replace(
            "    url: http://127.0.0.1:9000/mcp",
            "    url: http://127.0.0.1:9000/mcp\n    command: [\"/bin/sh\"]",
        );
        one_error(&t, "upstreams[0].command");
    }
}
