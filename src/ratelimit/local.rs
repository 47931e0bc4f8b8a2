//! The in-memory bucket store: sharded mutexes over `key → TAT`, exact across
//! worker threads (each decision holds its shard's lock). Buckets that have
//! fully refilled carry no information and are dropped, so memory stays
//! bounded by the identities active in the last minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::{gcra, Decision, Rate};

/// The process-wide store: buckets survive configuration reloads (a
/// reload must not hand every client a fresh budget), so it outlives
/// every snapshot; keys carry the tenant, client and rule, so tests with
/// distinct clients do not share buckets.
pub fn shared() -> &'static LocalStore {
    static STORE: std::sync::OnceLock<LocalStore> = std::sync::OnceLock::new();
    STORE.get_or_init(LocalStore::default)
}

const SHARDS: usize = 64;
/// A shard is swept for refilled buckets when it grows past this.
const SWEEP_AT: usize = 4096;

/// In-memory buckets.
#[derive(Debug)]
pub struct LocalStore {
    shards: Vec<Mutex<HashMap<String, u64>>>,
    epoch: Instant,
    sweep_at: usize,
}

impl Default for LocalStore {
    fn default() -> Self {
        LocalStore::with_sweep_at(SWEEP_AT)
    }
}

fn shard_of(key: &str) -> usize {
    // FNV-1a: cheap and good enough to spread keys over shards
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    (h as usize) % SHARDS
}

impl LocalStore {
    /// A store whose shards are swept when they hold `sweep_at` buckets.
    pub fn with_sweep_at(sweep_at: usize) -> LocalStore {
        LocalStore {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            epoch: Instant::now(),
            sweep_at,
        }
    }

    /// Nanoseconds since the store was created.
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Decides one call for `key` at the current time.
    pub fn check(&self, key: &str, rate: Rate) -> Decision {
        self.check_at(key, rate, self.now())
    }

    /// Decides one call for `key` at `now` (tests drive the clock).
    pub fn check_at(&self, key: &str, rate: Rate, now: u64) -> Decision {
        let shard = &self.shards[shard_of(key)];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let tat = map.get(key).copied();
        let (d, new) = gcra::decide(tat, now, rate);
        if d.allowed {
            match map.get_mut(key) {
                Some(v) => *v = new,
                None => {
                    if map.len() >= self.sweep_at {
                        map.retain(|_, t| *t > now);
                    }
                    map.insert(key.to_string(), new);
                }
            }
        }
        d
    }

    /// Buckets held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn exact_under_concurrency() {
        let store = Arc::new(LocalStore::default());
        let allowed = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let (s, a) = (store.clone(), allowed.clone());
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        if s.check_at("k", Rate { per_minute: 100 }, 1).allowed {
                            a.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(allowed.load(Ordering::SeqCst), 100);
    }

    #[test]
    fn idle_buckets_are_dropped() {
        let sweep = 16;
        let store = LocalStore::with_sweep_at(sweep);
        let r = Rate { per_minute: 60 };
        for i in 0..(sweep * SHARDS * 2) {
            store.check_at(&format!("id-{i}"), r, 0);
        }
        assert!(store.len() > sweep * SHARDS / 2);
        // a minute later everything has refilled: new keys sweep the old ones
        let later = 61 * 1_000_000_000;
        for i in 0..(sweep * SHARDS * 4) {
            store.check_at(&format!("new-{i}"), r, later);
        }
        // live buckets are never swept; refilled ones are
        assert!(store.len() <= sweep * SHARDS * 4, "{}", store.len());
        assert!(!(0..(sweep * SHARDS * 2)).all(|i| {
            let shard = &store.shards[shard_of(&format!("id-{i}"))];
            shard.lock().unwrap().contains_key(&format!("id-{i}"))
        }));
    }

    #[test]
    fn distinct_identities_do_not_interfere() {
        let store = LocalStore::default();
        let r = Rate { per_minute: 1 };
        for i in 0..10_000 {
            assert!(store.check_at(&format!("id-{i}"), r, 5).allowed);
        }
    }
}
