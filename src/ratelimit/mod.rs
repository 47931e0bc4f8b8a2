//! Per-client rate limits: which bucket a call counts against (`Limits`), the
//! GCRA decision (`gcra`), the in-memory store (`local`) and the shared Redis
//! store (`redis`). Pingora-free.

pub mod gcra;
pub mod local;
pub mod redis;
pub mod refusals;

use std::collections::HashMap;
use std::time::Duration;

/// A limit: `per_minute` requests, burst of the same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate {
    /// Requests per minute.
    pub per_minute: u32,
}

impl Rate {
    /// Time between two requests at the steady rate.
    pub fn interval(&self) -> Duration {
        PERIOD / self.per_minute.max(1)
    }
}

/// The window the limits are expressed in.
pub const PERIOD: Duration = Duration::from_secs(60);

/// Outcome of one check, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the call may proceed.
    pub allowed: bool,
    /// The limit (requests per minute).
    pub limit: u32,
    /// Calls left right now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// When refused: seconds until one more call would be allowed.
    pub retry_after_secs: u64,
}

/// Compiled `rate_limit` settings.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// `default_rpm`: per identity, any method (0 = no default limit).
    pub default_rpm: u32,
    /// `by_method`: per identity and method.
    pub by_method: HashMap<String, u32>,
    /// `by_tool`: per identity and tool (`tools/call`).
    pub by_tool: HashMap<String, u32>,
    /// Key prefix (`key_prefix`, env `RATE_LIMIT_KEY_PREFIX`).
    pub prefix: String,
    /// The shared store, when `rate_limit.redis` (or `REDIS_URL`) is set.
    pub redis: Option<std::sync::Arc<redis::RedisStore>>,
}

impl Limits {
    /// Decides a call in the configured store, applying `on_error` when Redis
    /// fails. `Err(())` = Redis failed and `on_error: deny`.
    pub async fn decide(&self, key: &str, rate: Rate) -> Result<Decision, ()> {
        let Some(store) = &self.redis else {
            return Ok(local::shared().check(key, rate));
        };
        match store.check(key, rate).await {
            Ok(d) => Ok(d),
            Err(_) => match store.on_error {
                redis::OnError::Local => Ok(local::shared().check(key, rate)),
                redis::OnError::Allow => Ok(Decision {
                    allowed: true,
                    limit: rate.per_minute,
                    remaining: rate.per_minute,
                    reset_secs: 0,
                    retry_after_secs: 0,
                }),
                redis::OnError::Deny => Err(()),
            },
        }
    }
}

impl Limits {
    /// The bucket a call counts against: the most specific configured limit
    /// (tool, then method, then the default). `None` = not limited.
    pub fn bucket(
        &self,
        tenant: &str,
        client: &str,
        method: Option<&str>,
        tool: Option<&str>,
    ) -> Option<(String, Rate)> {
        let m = method.unwrap_or("*");
        if let (Some(t), Some(rpm)) = (tool, tool.and_then(|t| self.by_tool.get(t))) {
            return Some((
                self.key(tenant, client, m, Some(t)),
                Rate { per_minute: *rpm },
            ));
        }
        if let Some(rpm) = method.and_then(|m| self.by_method.get(m)) {
            return Some((self.key(tenant, client, m, None), Rate { per_minute: *rpm }));
        }
        (self.default_rpm > 0).then(|| {
            (
                self.key(tenant, client, "*", None),
                Rate {
                    per_minute: self.default_rpm,
                },
            )
        })
    }

    /// `{prefix}:rate:` then each field as `{byte length}:{field}`: fields
    /// are client-controlled (a tenant or client id, a tool name may hold
    /// `:`), so they are length-prefixed and two different calls can never
    /// share a bucket.
    fn key(&self, tenant: &str, client: &str, method: &str, tool: Option<&str>) -> String {
        use std::fmt::Write;
        let mut k = String::with_capacity(
            self.prefix.len() + 24 + tenant.len() + client.len() + method.len(),
        );
        k.push_str(&self.prefix);
        k.push_str(":rate:");
        for f in [Some(tenant), Some(client), Some(method), tool]
            .into_iter()
            .flatten()
        {
            let _ = write!(k, "{}:", f.len());
            k.push_str(f);
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_limit_wins() {
        let l = Limits {
            default_rpm: 600,
            by_method: [("tools/call".to_string(), 120)].into(),
            by_tool: [("expensive.search".to_string(), 10)].into(),
            prefix: "mcp-edge".into(),
            redis: None,
        };
        let (k, r) = l
            .bucket("t", "c", Some("tools/call"), Some("expensive.search"))
            .unwrap();
        assert_eq!(
            (k.as_str(), r.per_minute),
            ("mcp-edge:rate:1:t1:c10:tools/call16:expensive.search", 10)
        );
        let (k, r) = l
            .bucket("t", "c", Some("tools/call"), Some("cheap"))
            .unwrap();
        assert_eq!(
            (k.as_str(), r.per_minute),
            ("mcp-edge:rate:1:t1:c10:tools/call", 120)
        );
        let (k, r) = l.bucket("t", "c", Some("tools/list"), None).unwrap();
        assert_eq!((k.as_str(), r.per_minute), ("mcp-edge:rate:1:t1:c1:*", 600));
        assert!(Limits::default()
            .bucket("t", "c", Some("x"), None)
            .is_none());
    }

    #[test]
    fn keys_cannot_collide() {
        let l = Limits {
            default_rpm: 1,
            by_tool: [("b:c".to_string(), 1), ("c".to_string(), 1)].into(),
            prefix: "p".into(),
            ..Limits::default()
        };
        let key = |t, c, m, tool| l.bucket(t, c, Some(m), tool).map(|(k, _)| k);
        let pairs = [
            (key("a:b", "c", "m", None), key("a", "b:c", "m", None)),
            (key("a", "b", "m:x", None), key("a", "b:m", "x", None)),
            (
                key("a", "b", "tools/call", Some("b:c")),
                key("a", "b", "tools/call:b", Some("c")),
            ),
        ];
        for (x, y) in pairs {
            assert_ne!(x, y);
        }
    }
}
