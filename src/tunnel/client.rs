//! `mcp-edge tunnel`: the client next to a stdio MCP server. It dials out to
//! the gateway's tunnel endpoint over WebSocket (only outbound connections),
//! registers an upstream name with its token, and serves each MCP session
//! the gateway opens with its own local process (`sh -c "exec CMD"`),
//! relaying newline-delimited JSON-RPC both ways. It reconnects with
//! exponential backoff and jitter, pings every `keepalive` and treats two
//! silent intervals as a dead link.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::protocol::{ClosedReason, Frame, MAX_FRAME_BYTES, NAME_HEADER, SUBPROTOCOL};

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

/// One local process serving one session.
struct Local {
    stdin: mpsc::Sender<String>,
    child: Arc<tokio::sync::Mutex<tokio::process::Child>>,
    last_used: Instant,
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
    let mut locals: HashMap<String, Local> = HashMap::new();
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
                        Ok(f) => handle(opts, f, &mut locals, &to_gw).await,
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
                    locals.remove(session);
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
            _ = idle.tick() => {
                let stale: Vec<String> = locals
                    .iter()
                    .filter(|(_, l)| l.last_used.elapsed() > opts.idle_timeout)
                    .map(|(k, _)| k.clone())
                    .collect();
                for s in stale {
                    if let Some(l) = locals.remove(&s) {
                        let _ = l.child.lock().await.start_kill();
                        let _ = to_gw.send(Frame::Closed { session: s, reason: ClosedReason::Idle }).await;
                    }
                }
            }
        }
    };
    for (_, l) in locals.drain() {
        let _ = l.child.lock().await.start_kill();
    }
    Err(Attempt::Failed(why))
}

/// Handles one frame from the gateway.
async fn handle(
    opts: &Options,
    frame: Frame,
    locals: &mut HashMap<String, Local>,
    to_gw: &mpsc::Sender<Frame>,
) {
    match frame {
        Frame::Open { session } => {
            if locals.len() >= opts.max_sessions {
                log::warn!(
                    "tunnel {}: at max_sessions ({}); session refused",
                    opts.name,
                    opts.max_sessions
                );
                let _ = to_gw
                    .send(Frame::Closed {
                        session,
                        reason: ClosedReason::Refused,
                    })
                    .await;
                return;
            }
            match spawn(opts, &session, to_gw.clone()) {
                Ok(local) => {
                    locals.insert(session, local);
                }
                Err(e) => {
                    log::error!(
                        "tunnel {}: cannot start \"{}\": {e}",
                        opts.name,
                        opts.command
                    );
                    let _ = to_gw
                        .send(Frame::Closed {
                            session,
                            reason: ClosedReason::SpawnFailed,
                        })
                        .await;
                }
            }
        }
        Frame::Message { session, message } => match locals.get_mut(&session) {
            Some(l) => {
                l.last_used = Instant::now();
                if l.stdin.send(message.get().to_owned()).await.is_err() {
                    // the writer is gone: the wait task reports the exit
                }
            }
            None => {
                let _ = to_gw
                    .send(Frame::Closed {
                        session,
                        reason: ClosedReason::Exited,
                    })
                    .await;
            }
        },
        Frame::Close { session } => {
            if let Some(l) = locals.remove(&session) {
                let _ = l.child.lock().await.start_kill();
            }
        }
        Frame::Closed { .. } => {}
    }
}

/// Starts the local process for `session` and its three relay tasks.
fn spawn(opts: &Options, session: &str, to_gw: mpsc::Sender<Frame>) -> std::io::Result<Local> {
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {}", opts.command))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
        return Err(std::io::Error::other("no stdio pipes"));
    };
    let (tx, mut rx) = mpsc::channel::<String>(256);
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if stdin.write_all(line.as_bytes()).await.is_err()
                || stdin.write_all(b"\n").await.is_err()
                || stdin.flush().await.is_err()
            {
                break;
            }
        }
    });
    let sid = session.to_owned();
    let name = opts.name.clone();
    let out_tx = to_gw.clone();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match Frame::message(&sid, line.as_bytes()) {
                Ok(f) => {
                    if out_tx.send(f).await.is_err() {
                        break;
                    }
                }
                Err(_) => {
                    log::debug!("tunnel {name}: session {sid} wrote a non-JSON line; skipped")
                }
            }
        }
    });
    let sid = session.to_owned();
    let name = opts.name.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log::debug!("tunnel {name} session {sid} stderr: {line}");
        }
    });
    let child = Arc::new(tokio::sync::Mutex::new(child));
    let waiter = child.clone();
    let sid = session.to_owned();
    tokio::spawn(async move {
        // stdout first: every message the process wrote reaches the gateway
        // before its exit does
        let _ = reader.await;
        let status = waiter.lock().await.wait().await;
        let reason = match status {
            Ok(s) if s.success() => ClosedReason::Exited,
            _ => ClosedReason::Crashed,
        };
        let _ = to_gw
            .send(Frame::Closed {
                session: sid,
                reason,
            })
            .await;
    });
    Ok(Local {
        stdin: tx,
        child,
        last_used: Instant::now(),
    })
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
