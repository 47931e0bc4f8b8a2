//! The tunnel endpoint on the public listener (`tunnel.path`): spotting a
//! tunnel connection among ordinary HTTP ones, the authenticated WebSocket
//! handshake, and the task that pumps frames between the WebSocket and the
//! tunnel's [`Link`].
//!
//! Spotting: with tunnels enabled, the edge reads the first bytes of each
//! connection (after TLS and PROXY protocol). A connection whose first
//! request line is `GET <tunnel.path>` is a tunnel; any other connection
//! goes to the proxy with those bytes replayed first ([`Prefixed`]), so the
//! proxy sees the connection unchanged.
//!
//! Registration (on the upgrade request): `Authorization: Bearer <token>`
//! must match a `tunnel.tokens` entry (401), the `Mcp-Edge-Tunnel-Name`
//! must be one of its upstreams (403), the subprotocol must be
//! `mcp-edge-tunnel.v1` (400), and the name must not be connected already
//! (409). Refusals are audited like refused connections.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::{
    frame::coding::CloseCode, CloseFrame, WebSocketConfig,
};
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{Frame, MAX_FRAME_BYTES, NAME_HEADER, SUBPROTOCOL};
use super::relay::Link;
use crate::runtime::{Runtime, TunnelSettings};

/// A stream whose first bytes were already read: they are read again first.
#[derive(Debug)]
pub struct Prefixed {
    prefix: Bytes,
    inner: Stream,
}

impl Prefixed {
    /// `inner` with `prefix` put back in front.
    pub fn new(prefix: Bytes, inner: Stream) -> Prefixed {
        Prefixed { prefix, inner }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Prefixed {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for Prefixed {
    fn id(&self) -> pingora::protocols::UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Prefixed {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }
    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }
    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Prefixed {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Prefixed {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, d: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(d)
    }
}

impl GetSocketDigest for Prefixed {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for Prefixed {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        let n = self.prefix.len().min(buf.len());
        buf[..n].copy_from_slice(&self.prefix[..n]);
        if n == buf.len() {
            return Ok(true);
        }
        self.inner.try_peek(&mut buf[n..]).await
    }
}

/// What the first bytes of a connection are.
#[derive(Debug)]
pub enum Sniffed {
    /// `GET <tunnel.path>`: a tunnel registration.
    Tunnel(Bytes),
    /// Anything else (including nothing within the timeout): the proxy's.
    Other(Bytes),
}

/// Reads until the first bytes decide whether this is a tunnel request.
/// Never waits past `timeout`; what was read is returned either way.
pub async fn sniff(stream: &mut Stream, path: &str, timeout: Duration) -> Sniffed {
    let want = format!("GET {path}");
    let mut got = BytesMut::with_capacity(4096);
    let deadline = Instant::now() + timeout;
    loop {
        let n = got.len();
        // decided: a mismatch, or the path followed by ' ' or '?'
        if n > want.len() {
            let tunnel = got.starts_with(want.as_bytes()) && matches!(got[want.len()], b' ' | b'?');
            return if tunnel {
                Sniffed::Tunnel(got.freeze())
            } else {
                Sniffed::Other(got.freeze())
            };
        }
        if !want.as_bytes().starts_with(&got[..n]) {
            return Sniffed::Other(got.freeze());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if got.capacity() == got.len() {
            got.reserve(4096);
        }
        match tokio::time::timeout(left, stream.read_buf(&mut got)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Sniffed::Other(got.freeze()),
            Ok(Ok(_)) => {}
        }
    }
}

/// The registration a handshake accepted.
#[derive(Debug, Clone)]
struct Registration {
    token_id: String,
    name: String,
}

fn refuse(status: u16, message: &str) -> ErrorResponse {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut r = ErrorResponse::new(Some(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Checks a tunnel upgrade request against the configuration.
fn check(t: &TunnelSettings, req: &Request) -> Result<Registration, (u16, &'static str, String)> {
    let h = req.headers();
    let bearer = h
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = bearer.and_then(|b| t.token(b)) else {
        return Err((
            401,
            "tunnel_unauthorized",
            "a valid tunnel token is required".into(),
        ));
    };
    let name = h
        .get(NAME_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !token.upstreams.contains(&name) {
        return Err((
            403,
            "tunnel_name_not_allowed",
            format!("token \"{}\" may not register \"{name}\"", token.id),
        ));
    }
    let offers = h
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offers {
        return Err((
            400,
            "tunnel_protocol",
            format!("Sec-WebSocket-Protocol must offer {SUBPROTOCOL}"),
        ));
    }
    if super::registry().is_connected(&name) {
        return Err((
            409,
            "tunnel_name_connected",
            format!("a tunnel for \"{name}\" is already connected"),
        ));
    }
    Ok(Registration {
        token_id: token.id.clone(),
        name,
    })
}

/// Serves one tunnel connection to its end.
// the handshake callback's error type is tungstenite's
#[allow(clippy::result_large_err)]
pub async fn serve(stream: Prefixed, rt: Arc<Runtime>, peer: Option<std::net::SocketAddr>) {
    let Some(settings) = rt.tunnel.clone() else {
        return;
    };
    let mut accepted: Option<Registration> = None;
    let mut refused: Option<&'static str> = None;
    let callback = |req: &Request, mut resp: Response| match check(&settings, req) {
        Ok(reg) => {
            accepted = Some(reg);
            resp.headers_mut().insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_static(SUBPROTOCOL),
            );
            Ok(resp)
        }
        Err((status, reason, message)) => {
            refused = Some(reason);
            Err(refuse(status, &message))
        }
    };
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_FRAME_BYTES);
    config.max_frame_size = Some(MAX_FRAME_BYTES);
    let handshake = tokio::time::timeout(
        rt.server.limits.header_timeout,
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)),
    )
    .await;
    let ws = match handshake {
        Ok(Ok(ws)) => ws,
        _ => {
            crate::telemetry::refused::connection_refused(
                rt.audit(),
                peer,
                refused.unwrap_or("tunnel_handshake_failed"),
            );
            return;
        }
    };
    let Some(reg) = accepted else {
        return;
    };
    let remote = peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let (link, out) = Link::new(&reg.name, &remote, 1024);
    let link = Arc::new(link);
    if !super::registry().register(link.clone()) {
        // lost a race with another registration of the same name
        let mut ws = ws;
        let _ = ws
            .close(Some(CloseFrame {
                code: CloseCode::Policy,
                reason: "name already connected".into(),
            }))
            .await;
        crate::telemetry::refused::connection_refused(rt.audit(), peer, "tunnel_name_connected");
        return;
    }
    log::info!(
        "tunnel {} connected from {remote} (token {}, link {})",
        reg.name,
        reg.token_id,
        link.id
    );
    let why = pump(ws, out, link.clone(), settings.keepalive).await;
    super::registry().unregister(&link);
    log::warn!("tunnel {} from {remote} disconnected: {why}", reg.name);
}

/// Moves frames both ways until the tunnel ends; why it ended.
async fn pump<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    mut out: tokio::sync::mpsc::Receiver<Frame>,
    link: Arc<Link>,
    keepalive: Duration,
) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval(keepalive);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            incoming = ws.next() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => match Frame::decode(text.as_str()) {
                        Ok(frame) => {
                            if let Some(reply) = link.on_frame(frame).await {
                                if ws.send(Message::text(reply.encode())).await.is_err() {
                                    return "write failed".into();
                                }
                            }
                        }
                        Err(e) => {
                            let _ = ws.close(Some(CloseFrame {
                                code: CloseCode::Protocol,
                                reason: "bad frame".into(),
                            })).await;
                            return format!("protocol error: {e}");
                        }
                    },
                    Some(Ok(Message::Binary(_))) => {
                        let _ = ws.close(Some(CloseFrame {
                            code: CloseCode::Unsupported,
                            reason: "text frames only".into(),
                        })).await;
                        return "binary frame".into();
                    }
                    Some(Ok(Message::Close(_))) | None => return "closed by the client".into(),
                    Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                    Some(Err(e)) => return format!("read error: {e}"),
                }
            }
            frame = out.recv() => {
                let Some(frame) = frame else { return "link dropped".into() };
                if ws.send(Message::text(frame.encode())).await.is_err() {
                    return "write failed".into();
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > keepalive * 2 {
                    return format!("silent for {} s (keepalive)", (keepalive * 2).as_secs());
                }
                if ws.send(Message::Ping(Bytes::new())).await.is_err() {
                    return "write failed".into();
                }
            }
            _ = link.disconnected() => {
                let _ = ws.close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: "disconnected by the gateway admin".into(),
                })).await;
                return "disconnected by admin".into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (tokio::net::TcpStream, Stream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, Box::new(pingora::protocols::l4::stream::Stream::from(s)))
    }

    #[tokio::test]
    async fn a_tunnel_request_is_spotted_and_anything_else_replayed_whole() {
        let (mut c, mut s) = pair().await;
        // the request line arrives in pieces
        c.write_all(b"GET /reverse").await.unwrap();
        let t = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c.write_all(b"-proxy/ws HTTP/1.1\r\n").await.unwrap();
            c
        });
        let got = sniff(&mut s, "/reverse-proxy/ws", Duration::from_secs(2)).await;
        assert!(matches!(got, Sniffed::Tunnel(ref b) if b.starts_with(b"GET /reverse-proxy/ws ")));
        drop(t.await.unwrap());

        let (mut c, mut s) = pair().await;
        let req = b"POST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        c.write_all(req).await.unwrap();
        let Sniffed::Other(prefix) =
            sniff(&mut s, "/reverse-proxy/ws", Duration::from_secs(2)).await
        else {
            panic!("not a tunnel");
        };
        drop(c);
        let mut p = Prefixed::new(prefix, s);
        let mut peeked = [0u8; 4];
        assert!(p.try_peek(&mut peeked).await.unwrap());
        assert_eq!(&peeked, b"POST");
        let mut all = Vec::new();
        p.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, req);

        // a longer path that starts like the tunnel path is not the tunnel
        let (mut c, mut s) = pair().await;
        c.write_all(b"GET /reverse-proxy/wsx HTTP/1.1\r\n")
            .await
            .unwrap();
        assert!(matches!(
            sniff(&mut s, "/reverse-proxy/ws", Duration::from_secs(2)).await,
            Sniffed::Other(_)
        ));
        // nothing within the timeout: the proxy's (its own timeouts apply)
        let (_c, mut s) = pair().await;
        assert!(matches!(
            sniff(&mut s, "/reverse-proxy/ws", Duration::from_millis(50)).await,
            Sniffed::Other(ref b) if b.is_empty()
        ));
    }
}
