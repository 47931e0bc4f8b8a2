//! The open legacy HTTP+SSE streams (`legacy_sse`, `sse_front`): the
//! process-wide table of streams by reference, each bound to the principal
//! that opened it and the MCP endpoint it speaks to; how a legacy POST's
//! answer is diverted to its stream (`divert_*`: the proxied answer's
//! header and body, the gateway's own answers and refusals). Below
//! `sse_front` and `federate`, which both use it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use tokio::sync::mpsc;

use super::RequestCtx;
use crate::error::GatewayError;

/// Open legacy streams per process at most.
const MAX_STREAMS: usize = 10_000;
/// Messages queued for a stream whose client reads slowly.
const QUEUE: usize = 256;

/// One open legacy stream.
pub struct Stream {
    pub(super) id: String,
    pub(super) owner: [u8; crate::session::DIGEST],
    pub(super) tx: mpsc::Sender<Bytes>,
    /// The MCP endpoint it speaks to: `server.path` or a virtual server's.
    pub(super) target: String,
    /// The sealed `Mcp-Session-Id` of its MCP session, once initialized.
    pub(super) token: Mutex<Option<http::HeaderValue>>,
    /// Signalled when a POST that carried the session was answered (the
    /// session is up: its server messages can be listened to).
    pub(super) ready: tokio::sync::Notify,
}

/// What a request to the legacy paths is.
pub enum Front {
    /// `GET <at>`: open a stream to the MCP endpoint `target` (after
    /// authentication).
    Open {
        /// The path the stream was opened at.
        at: String,
        /// `server.path`, or the virtual server's path.
        target: String,
    },
    /// `POST <path>/message?session=<ref>`: a message for this stream.
    Post(Arc<Stream>),
}

pub(super) fn streams() -> std::sync::MutexGuard<'static, HashMap<String, Arc<Stream>>> {
    static STREAMS: OnceLock<Mutex<HashMap<String, Arc<Stream>>>> = OnceLock::new();
    STREAMS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// After admission of a POST: the stream must be the principal's own.
pub fn check_owner(ctx: &RequestCtx) -> Result<(), GatewayError> {
    match (&ctx.front, &ctx.principal) {
        (Some(Front::Post(s)), Some(p)) if s.owner != p.digest() => Err(
            GatewayError::SessionNotFound("legacy_stream_other_principal"),
        ),
        _ => Ok(()),
    }
}

/// A registered stream: removed from the table when its GET ends.
pub struct Registered {
    pub(super) stream: Arc<Stream>,
    pub(super) rx: mpsc::Receiver<Bytes>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        streams().remove(&self.stream.id);
    }
}

/// `GET <path>`, admitted: a new stream for the principal (refused when
/// the process holds its most).
pub fn register(ctx: &RequestCtx) -> Result<Registered, GatewayError> {
    let p = ctx.principal.as_ref().ok_or(GatewayError::Internal)?;
    let Some(Front::Open { target, .. }) = &ctx.front else {
        return Err(GatewayError::Internal);
    };
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    let id = crate::base::ids::new_request_id();
    let mut all = streams();
    if all.len() >= MAX_STREAMS {
        return Err(GatewayError::TooManyStreams);
    }
    let stream = Arc::new(Stream {
        id: id.clone(),
        owner: p.digest(),
        tx,
        target: target.clone(),
        token: Mutex::new(None),
        ready: tokio::sync::Notify::new(),
    });
    all.insert(id, stream.clone());
    Ok(Registered { stream, rx })
}

pub(super) fn message_event(m: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(m.len() + 24);
    b.extend_from_slice(b"event: message\n");
    for line in m.split(|c| *c == b'\n') {
        b.extend_from_slice(b"data: ");
        b.extend_from_slice(line);
        b.extend_from_slice(b"\n");
    }
    b.extend_from_slice(b"\n");
    b.freeze()
}

/// Where a diverted answer's messages go, and what is left of a split event.
pub struct Divert {
    stream: Arc<Stream>,
    sse: bool,
    pending: Vec<u8>,
}

impl Stream {
    /// An answer to one of its POSTs: keeps the session token it hands
    /// out; the first 2xx answer to a POST that carried the session
    /// (`notifications/initialized`) signals that the session is up.
    pub(super) fn answered(&self, status: u16, token: Option<&http::HeaderValue>) {
        let mut t = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let had = t.is_some();
        if let Some(v) = token {
            *t = Some(v.clone());
        }
        if had && (200..300).contains(&status) {
            self.ready.notify_one();
        }
    }
}

/// A virtual server's own answer to a legacy POST (`federate`): a 2xx
/// answer's body goes to the stream and the POST gets an empty 202
/// (`true`); otherwise the POST is answered as usual (`false`).
pub fn divert_answer(ctx: &RequestCtx, status: u16, body: &Bytes, token: Option<&str>) -> bool {
    let Some(Front::Post(stream)) = &ctx.front else {
        return false;
    };
    let token = token.and_then(|t| http::HeaderValue::from_str(t).ok());
    stream.answered(status, token.as_ref());
    if !(200..300).contains(&status) {
        return false;
    }
    if !body.is_empty() && stream.tx.try_send(body.clone()).is_err() {
        log::warn!("legacy_sse stream {}: a message was dropped", stream.id);
    }
    true
}

impl Divert {
    fn send(&self, m: Vec<u8>) {
        if self.stream.tx.try_send(Bytes::from(m)).is_err() {
            log::warn!(
                "legacy_sse stream {}: the client does not read its stream; a message was dropped",
                self.stream.id
            );
        }
    }
}

/// `response_filter` of a legacy POST (after the usual filter): a 2xx
/// answer goes to the stream, the POST gets 202 once it has ended. The sealed session id
/// the answer carries (initialize) is kept for the stream's next POSTs.
pub fn divert_header(resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
    let Some(Front::Post(stream)) = &ctx.front else {
        return Ok(());
    };
    let status = resp.status.as_u16();
    stream.answered(status, resp.headers.get("mcp-session-id"));
    if !(200..300).contains(&status) {
        return Ok(());
    }
    ctx.divert = Some(Divert {
        stream: stream.clone(),
        sse: ctx.sse,
        pending: Vec::new(),
    });
    resp.set_status(202)?;
    for h in ["content-type", "mcp-session-id", "content-length"] {
        resp.remove_header(h);
    }
    // the 202 is held until the upstream's answer has ended: a client
    // that closes its POST once it has the header (the SDKs do) would
    // otherwise end the exchange before the answer reached the stream
    resp.insert_header("transfer-encoding", "chunked")?;
    ctx.hold = true;
    Ok(())
}

/// `response_body_filter` of a diverted answer: its checked output goes to
/// the stream, nothing to the POST.
pub fn divert_body(body: &mut Option<Bytes>, end: bool, ctx: &mut RequestCtx) {
    let Some(d) = ctx.divert.as_mut() else {
        return;
    };
    if let Some(b) = body.take() {
        d.pending.extend_from_slice(&b);
    }
    if d.sse {
        // the guard wrote each event canonically: `data: ` lines, blank line
        let events = super::member::take_events(&mut d.pending);
        for e in events {
            d.send(e);
        }
    } else if end && !d.pending.is_empty() {
        let whole = std::mem::take(&mut d.pending);
        d.send(whole);
    }
    if end {
        // everything went to the stream: the POST gets its empty 202
        ctx.release = Some((202, 0));
        ctx.hold = false;
    } else {
        ctx.hold = true;
    }
}

/// A gateway refusal of a legacy POST that is an answer (status 200, a
/// refused tool call): to the stream, and 202 for the POST. `false` when
/// it must answer the POST itself.
pub fn divert_refusal(ctx: &RequestCtx, status: u16, body: &Bytes) -> bool {
    match &ctx.front {
        Some(Front::Post(s)) if status == 200 => {
            if s.tx.try_send(body.clone()).is_err() {
                log::warn!("legacy_sse stream {}: a message was dropped", s.id);
            }
            true
        }
        _ => false,
    }
}

/// Whether the request opens a legacy stream.
pub fn is_open(ctx: &RequestCtx) -> bool {
    matches!(ctx.front, Some(Front::Open { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_one_event_each() {
        assert_eq!(
            &message_event(br#"{"a":1}"#)[..],
            b"event: message\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &message_event(b"{\n\"a\":1}")[..],
            b"event: message\ndata: {\ndata: \"a\":1}\n\n"
        );
    }
}
