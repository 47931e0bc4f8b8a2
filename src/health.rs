//! Upstream endpoint health: the state of each pool member, kept across
//! configuration reloads (keyed by the endpoint's identity), the active
//! checks (`upstreams[].health_check`: HTTP `GET path` expecting 2xx/3xx, or
//! a TCP connect when no path is set), and passive ejection (a connect
//! failure marks the endpoint down at once; the next passing check brings
//! it back).
//!
//! An endpoint goes down after `unhealthy_threshold` consecutive failed
//! checks (or one connect failure of a real request) and up after one
//! passing check. Down endpoints get no new sessions or stateless calls
//! and their sessions are answered 404 (clients re-initialize on a healthy
//! member). If every member of a pool is down, all are used (panic mode:
//! better a chance than a certain 503).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::SharedRuntime;

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

    fn due(&self, interval: Duration) -> bool {
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
pub fn readiness(rt: Option<&crate::runtime::Runtime>, draining: bool) -> (u16, bytes::Bytes) {
    readiness_with(rt, draining, true)
}

/// The public `/health` on the MCP listener: the status only (which
/// upstreams exist and how many endpoints are up is for the admin listener).
pub fn public_readiness(draining: bool) -> (u16, bytes::Bytes) {
    readiness_with(None, draining, false)
}

fn readiness_with(
    rt: Option<&crate::runtime::Runtime>,
    draining: bool,
    detail: bool,
) -> (u16, bytes::Bytes) {
    let (status, state) = if draining {
        (503, "draining")
    } else {
        (200, "ready")
    };
    let upstreams: serde_json::Map<String, serde_json::Value> = rt
        .iter()
        .flat_map(|rt| rt.upstreams.iter())
        .map(|u| {
            (
                u.name.to_string(),
                serde_json::json!({"up": u.up_count(), "endpoints": u.endpoints.len()}),
            )
        })
        .collect();
    let body = if detail {
        serde_json::json!({"status": state, "upstreams": upstreams})
    } else {
        serde_json::json!({"status": state})
    }
    .to_string();
    (status, bytes::Bytes::from(body))
}

/// The shared state of an endpoint identity: the same `Arc` for every
/// configuration snapshot that names it, so a reload keeps what is known.
pub fn state_of(key: &str) -> Arc<Health> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Health>>>> = OnceLock::new();
    let reg = REGISTRY.get_or_init(Default::default);
    match reg.lock() {
        Ok(mut m) => m
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Health::new()))
            .clone(),
        Err(_) => Arc::new(Health::new()),
    }
}

/// One check: TCP connect, or `GET path` answered 2xx/3xx.
pub async fn probe(addr: SocketAddr, host: &str, s: &CheckSettings) -> bool {
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
        let Some(path) = &s.path else {
            return Some(true);
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mcp-edge-health\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(req.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).await.ok()?;
        // "HTTP/1.x NNN"
        let status = std::str::from_utf8(&head[9..12])
            .ok()?
            .parse::<u16>()
            .ok()?;
        Some(head.starts_with(b"HTTP/1.") && (200..400).contains(&status))
    };
    matches!(
        tokio::time::timeout(s.timeout, attempt).await,
        Ok(Some(true))
    )
}

/// The background service running the active checks of the live configuration.
pub struct Checker {
    /// The live snapshot (its upstreams and their settings).
    pub runtime: SharedRuntime,
}

#[async_trait]
impl BackgroundService for Checker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let rt = self.runtime.load_full();
            for up in &rt.upstreams {
                for ep in &up.endpoints {
                    // a tunnel endpoint is up exactly while its tunnel is connected
                    if ep.tunnel || !ep.health.due(up.health_check.interval) {
                        continue;
                    }
                    let (ep, up) = (ep.clone(), up.clone());
                    tokio::spawn(async move {
                        let ok = probe(ep.addr, &ep.host_header, &up.health_check).await;
                        if let Some(now_up) = ep.health.record(ok) {
                            if now_up {
                                log::warn!(
                                    "upstream {} endpoint {} is healthy again",
                                    up.name,
                                    ep.url
                                );
                            } else {
                                log::warn!(
                                    "upstream {} endpoint {} is down ({UNHEALTHY_THRESHOLD} failed checks)",
                                    up.name,
                                    ep.url
                                );
                            }
                        }
                    });
                }
            }
        }
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

    #[tokio::test]
    async fn probes_tcp_and_http() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let status = if buf[..n].starts_with(b"GET /ok ") {
                    "204"
                } else {
                    "404"
                };
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                    )
                    .await;
            }
        });
        let tcp = CheckSettings::default();
        assert!(probe(addr, "x", &tcp).await);
        let http = |p: &str| CheckSettings {
            path: Some(p.into()),
            ..CheckSettings::default()
        };
        assert!(probe(addr, "x", &http("/ok")).await);
        assert!(!probe(addr, "x", &http("/missing")).await);
        let closed: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(!probe(closed, "x", &tcp).await);
    }
}
