//! Upstream endpoint health: the state of each pool member, kept across
//! configuration reloads (keyed by the endpoint's identity), what the active
//! checks record (`upstreams[].health_check`; the checks themselves run in
//! `crate::checker`), passive ejection (a connect failure marks the
//! endpoint down at once; the next passing check brings it back), and the
//! `/healthz` and `/health` answers.
//!
//! An endpoint goes down after `unhealthy_threshold` consecutive failed
//! checks (or one connect failure of a real request) and up after one
//! passing check. Down endpoints get no new sessions or stateless calls
//! and their sessions are answered 404 (clients re-initialize on a healthy
//! member). If every member of a pool is down, all are used (panic mode:
//! better a chance than a certain 503).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Consecutive failed checks that take an endpoint out.
pub const UNHEALTHY_THRESHOLD: u32 = 2;

/// `upstreams[].health_check` (compiled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSettings {
    /// Time between checks of one endpoint.
    pub interval: Duration,
    /// Time allowed for one check.
    pub timeout: Duration,
    /// `GET` this path (2xx/3xx = healthy); `None` = TCP connect.
    pub path: Option<String>,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            interval: Duration::from_millis(5000),
            timeout: Duration::from_millis(1000),
            path: None,
        }
    }
}

/// The health of one endpoint.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    failures: AtomicU32,
    last_check: Mutex<Option<Instant>>,
}

impl Health {
    fn new() -> Health {
        Health {
            up: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            last_check: Mutex::new(None),
        }
    }

    /// Whether the endpoint takes new work.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Records a check result; returns `Some(new state)` on a transition.
    pub fn record(&self, ok: bool) -> Option<bool> {
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            (!self.up.swap(true, Ordering::Relaxed)).then_some(true)
        } else {
            let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= UNHEALTHY_THRESHOLD {
                self.up.swap(false, Ordering::Relaxed).then_some(false)
            } else {
                None
            }
        }
    }

    /// Sets the state directly (tunnel endpoints: up while registered).
    pub fn set(&self, up: bool) {
        self.failures.store(0, Ordering::Relaxed);
        self.up.store(up, Ordering::Relaxed);
    }

    /// Passive ejection: a real request could not connect.
    pub fn eject(&self) -> bool {
        self.failures.store(UNHEALTHY_THRESHOLD, Ordering::Relaxed);
        self.up.swap(false, Ordering::Relaxed)
    }

    /// Whether an active check is due (`interval` since the last), taking
    /// the slot when it is.
    pub fn due(&self, interval: Duration) -> bool {
        let Ok(mut last) = self.last_check.lock() else {
            return false;
        };
        let now = Instant::now();
        match *last {
            Some(t) if now.duration_since(t) < interval => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

/// `/healthz`: the process is alive.
pub fn liveness() -> (u16, bytes::Bytes) {
    (200, bytes::Bytes::from_static(b"{\"status\":\"ok\"}"))
}

/// `/health`: 200 `ready` with how many members of each upstream take work,
/// or 503 `draining` once the process is shutting down (load balancers take
/// it out of rotation while it finishes what it holds).
/// `upstreams` gives `(name, endpoints up, endpoints)` per upstream.
pub fn readiness<'a>(
    upstreams: impl Iterator<Item = (&'a str, usize, usize)>,
    draining: bool,
) -> (u16, bytes::Bytes) {
    readiness_with(Some(upstreams), draining)
}

/// The public `/health` on the MCP listener: the status only (which
/// upstreams exist and how many endpoints are up is for the admin listener).
pub fn public_readiness(draining: bool) -> (u16, bytes::Bytes) {
    readiness_with(None::<std::iter::Empty<(&str, usize, usize)>>, draining)
}

fn readiness_with<'a>(
    upstreams: Option<impl Iterator<Item = (&'a str, usize, usize)>>,
    draining: bool,
) -> (u16, bytes::Bytes) {
    let (status, state) = if draining {
        (503, "draining")
    } else {
        (200, "ready")
    };
    let body = match upstreams {
        Some(list) => {
            let upstreams: serde_json::Map<String, serde_json::Value> = list
                .map(|(name, up, endpoints)| {
                    (
                        name.to_string(),
                        serde_json::json!({"up": up, "endpoints": endpoints}),
                    )
                })
                .collect();
            serde_json::json!({"status": state, "upstreams": upstreams})
        }
        None => serde_json::json!({"status": state}),
    }
    .to_string();
    (status, bytes::Bytes::from(body))
}

/// The shared state of an endpoint identity: the same `Arc` for every
/// configuration snapshot that names it, so a reload keeps what is known.
/// A new identity starts up.
///
/// Process-wide on purpose: health outlives every snapshot (a reload must
/// not forget that a member is down, and the tunnel registry reports a
/// tunnel's connection here whether or not a snapshot names it yet); keys
/// are endpoint identities, so tests that use distinct addresses do not
/// share entries.
pub fn state_of(key: &str) -> Arc<Health> {
    state_or(key, true)
}

/// [`state_of`], starting a new identity down unless `up` (a tunnel
/// endpoint is down until its tunnel connects).
pub fn state_or(key: &str, up: bool) -> Arc<Health> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Health>>>> = OnceLock::new();
    let reg = REGISTRY.get_or_init(Default::default);
    let fresh = || {
        let h = Health::new();
        h.set(up);
        Arc::new(h)
    };
    match reg.lock() {
        Ok(mut m) => m.entry(key.to_string()).or_insert_with(fresh).clone(),
        Err(_) => fresh(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_passive_ejection() {
        let h = Health::new();
        assert!(h.is_up());
        assert_eq!(h.record(false), None, "one failure is not enough");
        assert_eq!(h.record(false), Some(false));
        assert!(!h.is_up());
        assert_eq!(h.record(false), None, "already down");
        assert_eq!(h.record(true), Some(true));
        assert!(h.eject());
        assert!(!h.is_up());
        assert_eq!(h.record(true), Some(true));
    }

    #[test]
    fn state_survives_by_identity() {
        let a = state_of("10.9.9.9:1/x");
        a.eject();
        assert!(!state_of("10.9.9.9:1/x").is_up());
        assert!(state_of("10.9.9.9:2/x").is_up());
    }
}
