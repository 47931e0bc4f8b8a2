//! The `admin` section: the separate listener for health and metrics, and
//! the bearer token metrics need (possibly from `${VAR}`).

use super::env::expand_env;
use super::errors::Errors;
use crate::config::raw;

/// Shortest accepted `admin.token`.
const MIN_ADMIN_TOKEN: usize = 16;

pub(super) fn compile_admin(
    a: &raw::Admin,
    public: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<crate::runtime::AdminSettings> {
    let listen = match a.listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errs.push(
                "admin.listen",
                format!(
                    "expected host:port with an IP address, got \"{}\"",
                    a.listen
                ),
            );
            None
        }
    };
    if public.contains(&a.listen) {
        errs.push("admin.listen", "must differ from server.listen");
    }
    let token = a.token.as_ref().and_then(|t| {
        let mut env_errs = Vec::new();
        let t = expand_env(t, "admin.token", env, &mut env_errs);
        errs.extend(env_errs.iter().cloned());
        if !env_errs.is_empty() {
            return None;
        }
        if t.len() < MIN_ADMIN_TOKEN || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errs.push(
                "admin.token",
                format!("must be at least {MIN_ADMIN_TOKEN} characters without spaces"),
            );
            return None;
        }
        Some(crate::runtime::AdminToken::new(&t))
    });
    Some(crate::runtime::AdminSettings {
        listen: listen?,
        token,
    })
}
