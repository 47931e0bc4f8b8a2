//! `mcp-edge tunnel`: the client next to a stdio MCP server. It dials out to
//! the gateway's tunnel endpoint over WebSocket (only outbound connections),
//! registers an upstream name with its token, and serves each MCP session
//! the gateway opens with its own local process (`sh -c "exec CMD"`,
//! run by `tunnel::processes`), relaying newline-delimited JSON-RPC both ways. It reconnects with
//! exponential backoff and jitter, pings every `keepalive` and treats two
//! silent intervals as a dead link.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::processes::{Launch, Limits, Processes};
use super::protocol::{Frame, MAX_FRAME_BYTES, NAME_HEADER, SUBPROTOCOL};

/// How long a stopped process has between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Client settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The local stdio MCP server command line.
    pub command: String,
    /// `ws://` / `wss://` URL of the tunnel endpoint (an `http(s)://` base
    /// gets the default path).
    pub gateway: String,
    /// The tunnel token.
    pub token: String,
    /// The upstream name to register.
    pub name: String,
    /// First reconnect delay (doubles up to `max_delay`, with jitter).
    pub reconnect_delay: Duration,
    /// Longest reconnect delay.
    pub max_delay: Duration,
    /// Connection attempts in a row before giving up (0 = forever).
    pub max_retries: u32,
    /// WebSocket ping interval; two silent intervals = dead link.
    pub keepalive: Duration,
    /// Local processes at most (one per MCP session).
    pub max_sessions: usize,
    /// A session with no traffic for this long is ended.
    pub idle_timeout: Duration,
    /// Extra CA (PEM) to verify a `wss://` gateway with.
    pub ca_file: Option<String>,
}

/// Why the client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway refused the token or the name: retrying cannot help.
    #[error("the gateway refused the registration ({0}): {1}")]
    Refused(u16, String),
    /// `max_retries` attempts in a row failed.
    #[error("gave up after {0} failed attempts in a row; last: {1}")]
    RetriesExhausted(u32, String),
    /// Bad options.
    #[error("{0}")]
    Config(String),
}

/// The endpoint URL: `http(s)` becomes `ws(s)`, a bare base gets the default path.
pub fn endpoint_url(gateway: &str) -> Result<String, ClientError> {
    let (scheme, rest) = gateway
        .split_once("://")
        .ok_or_else(|| ClientError::Config(format!("--gateway \"{gateway}\" is not a URL")))?;
    let scheme = match scheme {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(ClientError::Config(format!(
                "--gateway scheme \"{other}\": use ws://, wss://, http:// or https://"
            )))
        }
    };
    let rest = rest.trim_end_matches('/');
    let with_path = if rest.contains('/') {
        rest.to_owned()
    } else {
        format!("{rest}/reverse-proxy/ws")
    };
    Ok(format!("{scheme}://{with_path}"))
}

/// The delay before attempt `n` (0-based): `base * 2^n` capped, ±20 % jitter.
pub fn backoff(base: Duration, cap: Duration, n: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << n.min(16)).min(cap);
    let jitter = rand::random::<f64>() * 0.4 + 0.8;
    exp.mul_f64(jitter).min(cap)
}

/// Runs until refused, out of retries, or killed.
pub async fn run(opts: Options) -> Result<(), ClientError> {
    let url = endpoint_url(&opts.gateway)?;
    let connector = tls_connector(&opts)?;
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let outcome = session_loop(&opts, &url, connector.clone()).await;
        match outcome {
            Err(Attempt::Refused(status, body)) => return Err(ClientError::Refused(status, body)),
            Err(Attempt::Failed(why)) => {
                // a link that served for a while resets the backoff
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                failures += 1;
                if opts.max_retries > 0 && failures >= opts.max_retries {
                    return Err(ClientError::RetriesExhausted(failures, why));
                }
                let wait = backoff(opts.reconnect_delay, opts.max_delay, failures - 1);
                log::warn!(
                    "tunnel {}: {why}; reconnecting in {} ms (attempt {failures})",
                    opts.name,
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
            Ok(()) => return Ok(()),
        }
    }
}

fn tls_connector(opts: &Options) -> Result<Option<tokio_tungstenite::Connector>, ClientError> {
    let Some(ca) = &opts.ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(ca).map_err(|e| ClientError::Config(format!("--ca-file {ca}: {e}")))?;
    let cert = native_tls::Certificate::from_pem(&pem)
        .map_err(|e| ClientError::Config(format!("--ca-file {ca}: {e}")))?;
    let tls = native_tls::TlsConnector::builder()
        .add_root_certificate(cert)
        .build()
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?;
    Ok(Some(tokio_tungstenite::Connector::NativeTls(tls)))
}

enum Attempt {
    Refused(u16, String),
    Failed(String),
}

/// One connection: register, then serve until the link ends.
async fn session_loop(
    opts: &Options,
    url: &str,
    connector: Option<tokio_tungstenite::Connector>,
) -> Result<(), Attempt> {
    let mut req = url
        .into_client_request()
        .map_err(|e| Attempt::Failed(format!("bad URL: {e}")))?;
    let h = req.headers_mut();
    let bearer = http::HeaderValue::from_str(&format!("Bearer {}", opts.token))
        .map_err(|_| Attempt::Refused(0, "the token is not a valid header value".into()))?;
    h.insert(http::header::AUTHORIZATION, bearer);
    h.insert(
        NAME_HEADER,
        http::HeaderValue::from_str(&opts.name)
            .map_err(|_| Attempt::Refused(0, "the name is not a valid header value".into()))?,
    );
    h.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static(SUBPROTOCOL),
    );
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_FRAME_BYTES);
    config.max_frame_size = Some(MAX_FRAME_BYTES);
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(config), false, connector);
    let (ws, _) = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Err(_) => return Err(Attempt::Failed("connect timed out".into())),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            return if matches!(status, 401 | 403) {
                Err(Attempt::Refused(status, body))
            } else {
                Err(Attempt::Failed(format!("HTTP {status} {body}")))
            };
        }
        Ok(Err(e)) => return Err(Attempt::Failed(format!("connect: {e}"))),
        Ok(Ok(ok)) => ok,
    };
    log::info!("tunnel {}: registered at {url}", opts.name);
    let (mut sink, mut stream) = ws.split();
    let (to_gw, mut outgoing) = mpsc::channel::<Frame>(1024);
    let mut locals = Processes::new(
        &format!("tunnel {}", opts.name),
        Launch::shell(&opts.command),
        Limits {
            max_sessions: opts.max_sessions,
            idle_timeout: opts.idle_timeout,
            stop_grace: STOP_GRACE,
        },
        log::Level::Debug,
        to_gw,
    );
    let mut ping = tokio::time::interval(opts.keepalive);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle = tokio::time::interval(Duration::from_secs(1));
    let mut last_heard = Instant::now();
    let why = loop {
        tokio::select! {
            incoming = stream.next() => {
                last_heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(t))) => match Frame::decode(t.as_str()) {
                        Ok(f) => locals.handle(f).await,
                        Err(e) => break format!("bad frame from the gateway: {e}"),
                    },
                    Some(Ok(Message::Close(c))) => break format!("closed by the gateway: {c:?}"),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("read: {e}"),
                    None => break "the gateway closed the connection".into(),
                }
            }
            Some(frame) = outgoing.recv() => {
                if let Frame::Closed { session, .. } = &frame {
                    locals.forget(session);
                }
                if let Err(e) = sink.send(Message::text(frame.encode())).await {
                    break format!("write: {e}");
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > opts.keepalive * 2 {
                    break format!("no traffic for {} ms (keepalive)", (opts.keepalive * 2).as_millis());
                }
                if let Err(e) = sink.send(Message::Ping(bytes::Bytes::new())).await {
                    break format!("write: {e}");
                }
            }
            _ = idle.tick() => locals.reap_idle(),
        }
    };
    locals.stop_all().await;
    Err(Attempt::Failed(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls() {
        assert_eq!(
            endpoint_url("http://127.0.0.1:7332").unwrap(),
            "ws://127.0.0.1:7332/reverse-proxy/ws"
        );
        assert_eq!(
            endpoint_url("wss://gw.example.com/custom/ws").unwrap(),
            "wss://gw.example.com/custom/ws"
        );
        assert_eq!(
            endpoint_url("https://gw.example.com/").unwrap(),
            "wss://gw.example.com/reverse-proxy/ws"
        );
        assert!(endpoint_url("ftp://x").is_err());
        assert!(endpoint_url("nonsense").is_err());
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        for n in 0..8 {
            let d = backoff(base, cap, n);
            let exp = (base * 2u32.pow(n)).min(cap);
            assert!(
                d >= exp.mul_f64(0.8).min(cap) && d <= exp.mul_f64(1.2).min(cap),
                "{n}: {d:?}"
            );
        }
        assert!(backoff(base, cap, 40) <= cap);
    }
}
