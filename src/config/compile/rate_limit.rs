//! The `rate_limit` section: requests per minute by default, by method and
//! by tool, the key prefix, the optional Redis store shared by replicas,
//! and the refusal-logging budget.

use std::time::Duration;

use super::errors::Errors;
use crate::config::raw;

/// `rate_limit.refusals_rpm`: on by default, with or without a rate_limit section.
pub(super) fn refusals_rpm(r: Option<&raw::RateLimit>) -> u32 {
    r.and_then(|r| r.refusals_rpm)
        .unwrap_or(crate::ratelimit::refusals::DEFAULT_RPM)
}

pub(super) fn compile_rate_limit(
    r: &raw::RateLimit,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Option<crate::ratelimit::Limits> {
    let before = errs.len();
    for (m, v) in &r.by_method {
        if *v == 0 {
            errs.push(
                format!("rate_limit.by_method.{m}"),
                "must be at least 1 per minute",
            );
        }
    }
    for (t, v) in &r.by_tool {
        if *v == 0 {
            errs.push(
                format!("rate_limit.by_tool.{t}"),
                "must be at least 1 per minute",
            );
        }
    }
    let redis_url = env("REDIS_URL").or_else(|| r.redis.as_ref().map(|x| x.url.clone()));
    let (timeout_ms, on_error) = r
        .redis
        .as_ref()
        .map_or((100, "local"), |x| (x.timeout_ms, x.on_error.as_str()));
    use crate::ratelimit::redis::{OnError, RedisStore};
    let on_error = match on_error {
        "local" => OnError::Local,
        "allow" => OnError::Allow,
        "deny" => OnError::Deny,
        other => {
            errs.push(
                "rate_limit.redis.on_error",
                format!("expected local, allow or deny, got \"{other}\""),
            );
            OnError::Local
        }
    };
    if timeout_ms == 0 {
        errs.push("rate_limit.redis.timeout_ms", "must be at least 1");
    }
    let redis = match redis_url {
        Some(url) => match RedisStore::new(&url, Duration::from_millis(timeout_ms), on_error) {
            Ok(s) => Some(std::sync::Arc::new(s)),
            Err(e) => {
                errs.push("rate_limit.redis.url", e);
                None
            }
        },
        None => None,
    };
    if errs.len() != before {
        return None;
    }
    Some(crate::ratelimit::Limits {
        default_rpm: r.default_rpm,
        by_method: r.by_method.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        by_tool: r.by_tool.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        prefix: env("RATE_LIMIT_KEY_PREFIX").unwrap_or_else(|| r.key_prefix.clone()),
        redis,
    })
}
