//! The shared bucket store: one Lua script per decision runs the same GCRA as
//! the in-memory store atomically inside Redis, on Redis's own clock (`TIME`),
//! so several gateway processes enforce one limit together. The connection
//! manager is created lazily on the worker runtime (it must live there, not in
//! `main`), reconnects by itself, and every call is bounded by `timeout_ms`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Decision, Rate, PERIOD};

/// What to do when Redis fails at runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Decide with the in-memory store of this process.
    Local,
    /// Let the call through.
    Allow,
    /// Refuse the call (503).
    Deny,
}

/// GCRA on Redis. KEYS[1] = bucket; ARGV = interval µs, period µs, limit.
/// Returns {allowed, remaining, reset_secs, retry_after_secs}.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tau = period - interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tau then
  return {0, 0, math.ceil((tat - now) / 1000000), math.max(1, math.ceil((tat - now - tau) / 1000000))}
end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 1000)
local remaining = math.floor((period - (new - now)) / interval)
return {1, remaining, math.ceil((new - now) / 1000000), 0}
"#;

/// The Redis-backed store.
pub struct RedisStore {
    client: redis::Client,
    url: String,
    timeout: Duration,
    /// What happens when Redis fails.
    pub on_error: OnError,
    manager: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    failures: AtomicU64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish()
    }
}

impl RedisStore {
    /// A store for `url` (nothing connects yet).
    pub fn new(url: &str, timeout: Duration, on_error: OnError) -> Result<RedisStore, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        Ok(RedisStore {
            client,
            url: url.to_string(),
            timeout,
            on_error,
            manager: tokio::sync::OnceCell::new(),
            script: redis::Script::new(SCRIPT),
            failures: AtomicU64::new(0),
        })
    }

    /// Connects and PINGs once (startup check: unreachable = refuse to start).
    pub async fn ping(&self, within: Duration) -> Result<(), String> {
        let fut = async {
            let mut con = self
                .client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut con)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(within, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {within:?}")),
        }
    }

    async fn manager(&self) -> Result<ConnectionManager, String> {
        let m = self
            .manager
            .get_or_try_init(|| async {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_with_config(self.client.clone(), cfg)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        Ok(m.clone())
    }

    /// Decides one call in Redis, within `timeout_ms`.
    pub async fn check(&self, key: &str, rate: Rate) -> Result<Decision, String> {
        let fut = async {
            let mut con = self.manager().await?;
            let interval = rate.interval().as_micros() as u64;
            let period = PERIOD.as_micros() as u64;
            let r: Vec<i64> = self
                .script
                .key(key)
                .arg(interval)
                .arg(period)
                .arg(rate.per_minute)
                .invoke_async(&mut con)
                .await
                .map_err(|e| e.to_string())?;
            match r[..] {
                [allowed, remaining, reset, retry] => Ok(Decision {
                    allowed: allowed == 1,
                    limit: rate.per_minute,
                    remaining: remaining.clamp(0, rate.per_minute as i64) as u32,
                    reset_secs: reset.max(0) as u64,
                    retry_after_secs: retry.max(0) as u64,
                }),
                _ => Err(format!("unexpected script reply {r:?}")),
            }
        };
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        };
        if let Err(e) = &result {
            let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            // first failure and then every 1000th: the log must not drown
            if n == 1 || n % 1000 == 0 {
                log::warn!(
                    "rate limit: Redis {} failed ({e}); on_error={:?}; failures so far: {n}",
                    self.url,
                    self.on_error
                );
            }
        }
        result
    }

    /// Decisions that could not be made in Redis.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}
