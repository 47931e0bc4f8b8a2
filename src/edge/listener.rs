//! The connection front of the public listener, before HTTP: the connection
//! cap (`server.limits.max_connections`) and the PROXY protocol.
//!
//! - [`EdgeApp`] wraps the HTTP proxy as a Pingora `ServerApp`. It counts
//!   open connections and closes those over the cap at once, and on a
//!   plaintext listener reads the PROXY header once per connection (never a
//!   byte more) and makes the announced source the connection's peer
//!   address, so `client_addr()`, logs, limits and policy see the real
//!   client. The proxy then runs its keep-alive loop inside.
//! - [`PreTls`] does the same checks on a TLS listener before the handshake
//!   (Pingora's pre-TLS hook), where the PROXY header sits in clear text.
//!
//! Connections from outside `trusted_cidrs` that send a PROXY header are
//! closed; trusted connections without a valid header within
//! `header_timeout_ms` are closed. Every refusal is logged and audited.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::listeners::PreTlsProcess;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, Peek, SocketDigest, Stream, UniqueID};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::addr::proxy_protocol::{self, Parsed, ProxyProtocol};
use crate::runtime::SharedRuntime;

/// Counts open client connections against `server.limits.max_connections`
/// (read from the live configuration, so a reload changes the cap).
#[derive(Clone)]
pub struct Gate {
    runtime: SharedRuntime,
    open: Arc<AtomicUsize>,
}

/// One admitted connection; dropping it frees the slot.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// A gate over the live configuration.
    pub fn new(runtime: SharedRuntime) -> Gate {
        Gate {
            runtime,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn cap(&self) -> usize {
        self.runtime.load().server.limits.max_connections
    }

    /// Admits a connection if there is room.
    pub fn enter(&self) -> Option<Slot> {
        let cap = self.cap();
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.open.clone());
        (before < cap).then_some(slot)
    }

    /// Whether a new connection would be over the cap (a cheap early check
    /// before a TLS handshake).
    pub fn full(&self) -> bool {
        self.open.load(Ordering::Acquire) >= self.cap()
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn refuse(&self, peer: Option<std::net::SocketAddr>, reason: &'static str) {
        let rt = self.runtime.load();
        crate::telemetry::refused::connection_refused(rt.audit(), peer, reason);
    }
}

/// The peer's address, IPv4-mapped IPv6 (a dual-stack listener's IPv4
/// client) as the IPv4 address it is, so `trusted_cidrs` match it.
fn peer_of<S: GetSocketDigest + ?Sized>(stream: &S) -> Option<std::net::SocketAddr> {
    match stream.get_socket_digest()?.peer_addr()? {
        PingoraAddr::Inet(a) => Some(std::net::SocketAddr::new(a.ip().to_canonical(), a.port())),
        _ => None,
    }
}

/// Reads exactly one PROXY header.
async fn read_header<S: AsyncRead + Unpin + ?Sized>(stream: &mut S) -> Result<Parsed, String> {
    let mut buf = [0u8; proxy_protocol::V2_MAX];
    let mut have = 0usize;
    let mut need = 16usize;
    loop {
        // v1 is read byte by byte past its first bytes (the line ends at an
        // unknown offset); v2 announces its length. Never read past the
        // header: the rest belongs to HTTP or TLS.
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

/// Applies the PROXY protocol to a fresh connection: trusted peers must
/// send a valid header in time (its source becomes the peer address),
/// untrusted peers must not send one. `Err` is the refusal reason.
async fn front<S>(stream: &mut S, pp: &ProxyProtocol) -> Result<(), &'static str>
where
    S: AsyncRead + Unpin + GetSocketDigest + UniqueID + Peek + Send + ?Sized,
{
    let peer = peer_of(stream).map(|a| a.ip());
    let trusted = peer.is_some_and(|ip| pp.trusted.iter().any(|n| n.contains(&ip)));
    if trusted {
        match tokio::time::timeout(pp.header_timeout, read_header(stream)).await {
            Ok(Ok(Parsed::Header {
                source,
                destination,
                ..
            })) => {
                // LOCAL (a balancer's own health check) keeps the peer
                if let Some(src) = source {
                    let digest = SocketDigest::from_raw_fd(stream.id());
                    let _ = digest.peer_addr.set(Some(PingoraAddr::Inet(src)));
                    if let Some(dst) = destination {
                        let _ = digest.local_addr.set(Some(PingoraAddr::Inet(dst)));
                    }
                    stream.set_socket_digest(digest);
                }
                Ok(())
            }
            Ok(Ok(_)) | Ok(Err(_)) => Err("proxy_header_invalid"),
            Err(_) => Err("proxy_header_timeout"),
        }
    } else {
        // an untrusted peer must not name its own address; a peer that
        // sends fewer than 12 bytes in the header time is stalled anyway
        let mut first = [0u8; 12];
        match tokio::time::timeout(pp.header_timeout, stream.try_peek(&mut first)).await {
            Ok(Ok(true)) if proxy_protocol::looks_like_header(&first) => {
                Err("proxy_header_untrusted")
            }
            Ok(_) => Ok(()),
            Err(_) => Err("proxy_header_timeout"),
        }
    }
}

/// Wraps an application (the HTTP proxy) with the connection cap and, on
/// plaintext listeners, the PROXY protocol.
pub struct EdgeApp<A> {
    /// The wrapped application.
    pub inner: Arc<A>,
    /// Connection counting.
    pub gate: Gate,
    /// PROXY protocol on a plaintext listener (`None` = off, or done pre-TLS).
    pub proxy_protocol: Option<ProxyProtocol>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for EdgeApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(_slot) = self.gate.enter() else {
            self.gate.refuse(peer_of(&*stream), "connection_limit");
            return None;
        };
        if let Some(pp) = &self.proxy_protocol {
            if let Err(reason) = front(&mut *stream, pp).await {
                self.gate.refuse(peer_of(&*stream), reason);
                return None;
            }
        }
        // with tunnels enabled, a connection opening with `GET <tunnel.path>`
        // is a tunnel; any other gets its first bytes replayed to the proxy
        let rt = self.gate.runtime.load_full();
        if let Some(t) = &rt.tunnel {
            use crate::tunnel::endpoint::{self, Prefixed, Sniffed};
            let timeout = rt.server.limits.header_timeout;
            let sniffed = endpoint::sniff(&mut stream, &t.path, timeout).await;
            match sniffed {
                Sniffed::Tunnel(prefix) => {
                    let peer = peer_of(&*stream);
                    endpoint::serve(Prefixed::new(prefix, stream), rt.clone(), peer).await;
                    return None;
                }
                Sniffed::Other(prefix) => {
                    stream = Box::new(Prefixed::new(prefix, stream));
                }
            }
        }
        // the proxy runs the connection's keep-alive loop and returns None
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// The pre-handshake step of a TLS listener: refuse over the cap without
/// spending a handshake, and read the PROXY header that precedes TLS.
pub struct PreTls {
    /// Connection counting (checked here, counted in [`EdgeApp`]).
    pub gate: Gate,
    /// PROXY protocol (`None` = off).
    pub proxy_protocol: Option<ProxyProtocol>,
}

#[async_trait]
impl PreTlsProcess for PreTls {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        if self.gate.full() {
            self.gate.refuse(peer_of(stream), "connection_limit");
            return pingora::Error::e_explain(pingora::ErrorType::AcceptError, "connection limit");
        }
        if let Some(pp) = &self.proxy_protocol {
            if let Err(reason) = front(stream, pp).await {
                self.gate.refuse(peer_of(stream), reason);
                return pingora::Error::e_explain(pingora::ErrorType::AcceptError, reason);
            }
        }
        Ok(())
    }
}
