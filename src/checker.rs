//! The active health checker: a Pingora background service that probes
//! every endpoint of the live configuration when its interval is due
//! (`upstreams[].health_check`: HTTP `GET path` expecting 2xx/3xx, or a TCP
//! connect when no path is set) and records the result in the endpoint's
//! [`crate::health::Health`].

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::health::{CheckSettings, UNHEALTHY_THRESHOLD};
use crate::runtime::SharedRuntime;

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
                    if ep.bridge.is_some() || !ep.health.due(up.health_check.interval) {
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
