//! The `sessions` section: the keys MCP session ids are sealed with (each
//! possibly from `${VAR}`; the first seals, all open) and their lifetime.

use std::sync::Arc;
use std::time::Duration;

use super::env::expand_env;
use super::errors::Errors;
use crate::config::raw;

pub(super) fn compile_sessions(
    s: &raw::Sessions,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<Arc<crate::session::SessionKeys>> {
    let mut secrets = Vec::new();
    let mut ok = true;
    for (i, k) in s.keys.iter().enumerate() {
        let mut env_errs = Vec::new();
        let v = expand_env(k, &format!("sessions.keys[{i}]"), env, &mut env_errs);
        ok &= env_errs.is_empty();
        errs.extend(env_errs);
        secrets.push(v);
    }
    if s.max_age_secs == 0 {
        errs.push("sessions.max_age_secs", "must be at least 1");
        ok = false;
    }
    match crate::session::SessionKeys::new(&secrets, Duration::from_secs(s.max_age_secs)) {
        Ok(k) if ok => Some(Arc::new(k)),
        Ok(_) => None,
        Err(problems) => {
            for (i, msg) in problems {
                errs.push(format!("sessions.keys[{i}]"), msg);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::compile;
    use super::super::test_support::{errors, GOOD};

    #[test]
    fn session_keys_are_checked_with_their_paths() {
        let long = "k".repeat(40);
        let text = format!(
            "{GOOD}sessions:\n  keys: [short, \"${{MISSING}}\", {long}, {long}]\n  max_age_secs: 0\n"
        );
        let e = errors(&text);
        for want in [
            "sessions.keys[0]: must be at least 32 characters",
            "sessions.keys[1]: environment variable MISSING is not set or empty",
            "sessions.keys[3]: duplicate key",
            "sessions.max_age_secs: must be at least 1",
        ] {
            assert!(
                e.iter().any(|l| l.contains(want)),
                "wanted {want:?} in {e:#?}"
            );
        }
        let ok = format!("{GOOD}sessions: {{keys: [{long}]}}\n");
        let rt = match compile(&ok, &|_| None) {
            Ok(rt) => rt,
            Err(e) => panic!("{e}"),
        };
        assert!(rt.sessions.is_some());
    }
}
