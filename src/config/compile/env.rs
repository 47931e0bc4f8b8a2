//! `${VAR}` expansion in secrets and header values: a missing or empty
//! variable, or a malformed placeholder, is a problem at the value's path.

use crate::config::Problem;

/// Replaces `${VAR}` placeholders; a missing or empty variable is an error.
pub fn expand_env(
    s: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<Problem>,
) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    errs.push(Problem::new(
                        path,
                        format!("invalid placeholder \"${{{name}}}\""),
                    ));
                } else {
                    match env(name) {
                        Some(v) if !v.is_empty() => out.push_str(&v),
                        _ => errs.push(Problem::new(
                            path,
                            format!("environment variable {name} is not set or empty"),
                        )),
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                errs.push(Problem::new(path, "unterminated \"${\" placeholder"));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{errors, one_error, GOOD};
    use super::*;

    #[test]
    fn env_placeholders() {
        let with_auth = |v: &str| {
            GOOD.replace(
                "    url: http://127.0.0.1:9000/mcp",
                &format!("    url: http://127.0.0.1:9000/mcp\n    auth: {{header: Authorization, value: \"{v}\"}}"),
            )
        };
        assert!(errors(&with_auth("Bearer ${SET}")).is_empty());
        one_error(
            &with_auth("Bearer ${MISSING_VAR}"),
            "upstreams[0].auth.value: environment variable MISSING_VAR is not set",
        );
        one_error(&with_auth("Bearer ${bad-name}"), "invalid placeholder");
        one_error(&with_auth("Bearer ${SET"), "unterminated");
        let mut e = Vec::new();
        assert_eq!(
            expand_env("a${SET}b${SET}", "p", &|_| Some("x".into()), &mut e),
            "axbx"
        );
        assert!(e.is_empty());
    }
}
