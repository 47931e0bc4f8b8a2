//! The PROXY protocol front of the plaintext listener: a Pingora `ServerApp`
//! that reads the header once per connection (never a byte more), makes the
//! announced source the connection's peer address (so `client_addr()`, logs,
//! limits and policy see the real client), then hands the connection to the
//! HTTP proxy for its keep-alive loop. Connections from outside
//! `trusted_cidrs` that send a PROXY header are closed; trusted connections
//! without a valid header within `header_timeout_ms` are closed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use pingora::apps::ServerApp;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora::protocols::{SocketDigest, Stream};
use pingora::server::ShutdownWatch;
use tokio::io::AsyncReadExt;

use super::proxy_protocol::{self, Parsed};

/// PROXY protocol settings.
#[derive(Debug, Clone)]
pub struct ProxyProtocol {
    /// Peers allowed (and required) to send a header.
    pub trusted: Vec<IpNet>,
    /// Time allowed for the header.
    pub header_timeout: Duration,
}

/// Wraps an application (the HTTP proxy) with PROXY protocol handling.
pub struct ProxyProtocolApp<A> {
    /// The wrapped application.
    pub inner: Arc<A>,
    /// Settings.
    pub settings: ProxyProtocol,
}

fn peer_ip(stream: &Stream) -> Option<std::net::IpAddr> {
    let digest = stream.get_socket_digest()?;
    match digest.peer_addr()? {
        PingoraAddr::Inet(a) => Some(a.ip()),
        _ => None,
    }
}

/// Reads exactly one PROXY header.
async fn read_header(stream: &mut Stream) -> Result<Parsed, String> {
    let mut buf = [0u8; proxy_protocol::V2_MAX];
    let mut have = 0usize;
    let mut need = 16usize;
    loop {
        // v1 is read byte by byte past its first bytes (the line ends at an
        // unknown offset); v2 announces its length. Never read past the
        // header: the rest belongs to HTTP.
        let end = need.min(buf.len());
        if end <= have {
            return Err("PROXY header too long".into());
        }
        let n = stream
            .read(&mut buf[have..end])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed inside the PROXY header".into());
        }
        have += n;
        match proxy_protocol::parse(&buf[..have]) {
            Parsed::Incomplete(more) => {
                need = if buf[..have].starts_with(b"PROXY ") {
                    have + 1
                } else {
                    more
                };
            }
            done => return Ok(done),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ProxyProtocolApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let trusted = peer_ip(&stream)
            .is_some_and(|ip| self.settings.trusted.iter().any(|n| n.contains(&ip)));
        if trusted {
            let header =
                tokio::time::timeout(self.settings.header_timeout, read_header(&mut stream)).await;
            match header {
                Ok(Ok(Parsed::Header {
                    source,
                    destination,
                    ..
                })) => {
                    if let Some(src) = source {
                        let digest = SocketDigest::from_raw_fd(stream.id());
                        let _ = digest.peer_addr.set(Some(PingoraAddr::Inet(src)));
                        if let Some(dst) = destination {
                            let _ = digest.local_addr.set(Some(PingoraAddr::Inet(dst)));
                        }
                        stream.set_socket_digest(digest);
                    }
                }
                Ok(Ok(_)) | Ok(Err(_)) => {
                    log::debug!("PROXY header missing or invalid from a trusted peer: closing");
                    return None;
                }
                Err(_) => {
                    log::debug!(
                        "no PROXY header within {:?}: closing",
                        self.settings.header_timeout
                    );
                    return None;
                }
            }
        } else {
            // an untrusted peer must not name its own address
            let mut first = [0u8; 12];
            if let Ok(true) = stream.try_peek(&mut first).await {
                if proxy_protocol::looks_like_header(&first) {
                    log::debug!("PROXY header from an untrusted peer: closing");
                    return None;
                }
            }
        }
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}
