//! The gateway side of one connected tunnel: MCP sessions multiplexed over
//! its frames, and the Streamable HTTP semantics a stdio server lacks.
//! Pingora-free and transport-free: the WebSocket task feeds
//! [`Link::on_frame`] and drains [`Link::outgoing`]; the HTTP bridge calls
//! [`Link::open_session`], [`Link::call`], [`Link::listen`] and
//! [`Link::close_session`].
//!
//! Routing of what a local process writes (stdio carries no request
//! context, so the relay supplies it):
//! - a response goes to the HTTP request with that id and ends it: as plain
//!   JSON when it is the first thing that request gets, else as the last
//!   event of its SSE stream;
//! - `notifications/progress` goes to the request whose
//!   `_meta.progressToken` it names;
//! - any other server message (a sampling or elicitation request, a log
//!   notification) goes to the newest request still waiting, else to the
//!   session's GET stream, else to a bounded backlog the next GET stream
//!   receives first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::protocol::{new_session_id, ClosedReason, Frame};
use crate::jsonrpc::peek;

/// Messages kept for a session with no GET stream open.
const BACKLOG: usize = 100;
/// Messages queued per waiting request / GET stream before the relay stops
/// reading that session's output (never unbounded).
const STREAM_QUEUE: usize = 256;

/// What a waiting HTTP request receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A message related to the request (SSE event).
    Message(Bytes),
    /// The response: the last thing the request gets.
    Final(Bytes),
    /// The process (or the tunnel) ended before the response.
    Ended(Ended),
}

/// Why a session ended under a waiting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The local process ended.
    Process(ClosedReason),
    /// The tunnel disconnected.
    TunnelDown,
    /// The session was closed (DELETE).
    SessionClosed,
}

/// The answer to a client message.
#[derive(Debug)]
pub enum Reply {
    /// The response came first: answer `application/json`.
    Json(Bytes),
    /// Related messages came first: answer `text/event-stream` with
    /// `first`, then whatever `rest` yields until [`Item::Final`].
    Stream {
        /// The first event.
        first: Bytes,
        /// The following items.
        rest: mpsc::Receiver<Item>,
    },
    /// A notification or a response from the client: forwarded, answer 202.
    Accepted,
    /// No such session (never opened, closed, or its process is gone): 404.
    SessionGone,
    /// The process ended before it answered: 502.
    Ended(Ended),
    /// The tunnel cannot take more frames right now, or is gone: 502.
    TunnelDown,
}

#[derive(Default)]
struct Session {
    /// JSON-RPC id text → the waiting request.
    pending: HashMap<String, mpsc::Sender<Item>>,
    /// Waiting ids, oldest first.
    order: Vec<String>,
    /// progress token text → request id text.
    progress: HashMap<String, String>,
    /// The GET stream, if one is open.
    listen: Option<mpsc::Sender<Item>>,
    /// Server messages no one was waiting for yet.
    backlog: VecDeque<Bytes>,
    last_used: Option<Instant>,
}

impl Session {
    fn finish(&mut self, id: &str) -> Option<mpsc::Sender<Item>> {
        self.order.retain(|x| x != id);
        self.progress.retain(|_, v| v != id);
        self.pending.remove(id)
    }

    fn end_all(&mut self, why: Ended) {
        for (_, tx) in self.pending.drain() {
            let _ = tx.try_send(Item::Ended(why));
        }
        self.order.clear();
        self.progress.clear();
        self.listen = None;
    }
}

/// Counters shown by the admin API.
#[derive(Debug, Default)]
pub struct Stats {
    /// Frames sent to the client.
    pub frames_out: AtomicU64,
    /// Frames received from the client.
    pub frames_in: AtomicU64,
    /// Message bytes sent to the client.
    pub bytes_out: AtomicU64,
    /// Message bytes received from the client.
    pub bytes_in: AtomicU64,
}

/// One connected tunnel.
pub struct Link {
    /// Unique per connection (admin API id).
    pub id: String,
    /// The upstream name it registered.
    pub name: String,
    /// The client's address as the edge saw it.
    pub remote: String,
    /// When it connected.
    pub since: SystemTime,
    /// Traffic counters.
    pub stats: Stats,
    out: mpsc::Sender<Frame>,
    sessions: Mutex<HashMap<String, Session>>,
    kill: tokio::sync::Notify,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link and the receiver of the frames to write to the WebSocket
    /// (bounded: a slow client backs up into waiting requests, not memory).
    pub fn new(name: &str, remote: &str, queue: usize) -> (Link, mpsc::Receiver<Frame>) {
        let (out, rx) = mpsc::channel(queue.max(1));
        (
            Link {
                id: new_session_id(),
                name: name.to_owned(),
                remote: remote.to_owned(),
                since: SystemTime::now(),
                stats: Stats::default(),
                out,
                sessions: Mutex::new(HashMap::new()),
                kill: tokio::sync::Notify::new(),
            },
            rx,
        )
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // a panic while holding the lock cannot leave a session half-updated
        // in a way that matters more than losing the link; keep serving
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the WebSocket task to close this tunnel (admin DELETE).
    pub fn disconnect(&self) {
        self.kill.notify_one();
    }

    /// Resolves once [`Link::disconnect`] was called.
    pub async fn disconnected(&self) {
        self.kill.notified().await;
    }

    /// MCP sessions open on this link.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// Requests waiting for an answer, over every session.
    pub fn waiting(&self) -> usize {
        self.sessions().values().map(|s| s.pending.len()).sum()
    }

    /// Whether `session` is open on this link.
    pub fn has_session(&self, session: &str) -> bool {
        self.sessions().contains_key(session)
    }

    async fn send(&self, frame: Frame) -> bool {
        let n = match &frame {
            Frame::Message { message, .. } => message.get().len() as u64,
            _ => 0,
        };
        if self.out.send(frame).await.is_err() {
            return false;
        }
        self.stats.frames_out.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_out.fetch_add(n, Ordering::Relaxed);
        true
    }

    /// Starts a session (a local process on the client); its id.
    pub async fn open_session(&self) -> Option<String> {
        let id = new_session_id();
        self.sessions().insert(
            id.clone(),
            Session {
                last_used: Some(Instant::now()),
                ..Session::default()
            },
        );
        if self
            .send(Frame::Open {
                session: id.clone(),
            })
            .await
        {
            Some(id)
        } else {
            self.sessions().remove(&id);
            None
        }
    }

    /// Sends one client message (`json`, already inspected by the gateway)
    /// to `session` and waits for what answers it.
    pub async fn call(&self, session: &str, json: &[u8]) -> Reply {
        let Some(p) = peek(json) else {
            // the gateway only forwards inspected JSON-RPC objects
            return Reply::TunnelDown;
        };
        let Ok(frame) = Frame::message(session, json) else {
            return Reply::TunnelDown;
        };
        let waiting = match (&p.id, p.is_request()) {
            (Some(id), true) => {
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                let mut all = self.sessions();
                let Some(s) = all.get_mut(session) else {
                    return Reply::SessionGone;
                };
                s.last_used = Some(Instant::now());
                // a reused id replaces (and ends) the older request
                if let Some(old) = s.finish(id) {
                    let _ = old.try_send(Item::Ended(Ended::SessionClosed));
                }
                s.pending.insert(id.clone(), tx);
                s.order.push(id.clone());
                if let Some(t) = &p.progress_token {
                    s.progress.insert(t.clone(), id.clone());
                }
                Some((id.clone(), rx))
            }
            _ => {
                let mut all = self.sessions();
                let Some(s) = all.get_mut(session) else {
                    return Reply::SessionGone;
                };
                s.last_used = Some(Instant::now());
                None
            }
        };
        if !self.send(frame).await {
            if let Some((id, _)) = &waiting {
                if let Some(s) = self.sessions().get_mut(session) {
                    s.finish(id);
                }
            }
            return Reply::TunnelDown;
        }
        let Some((_, mut rx)) = waiting else {
            return Reply::Accepted;
        };
        match rx.recv().await {
            Some(Item::Final(b)) => Reply::Json(b),
            Some(Item::Message(first)) => Reply::Stream { first, rest: rx },
            Some(Item::Ended(e)) => Reply::Ended(e),
            None => Reply::Ended(Ended::TunnelDown),
        }
    }

    /// Opens the session's GET stream (replacing an older one); the
    /// backlog comes first.
    pub fn listen(&self, session: &str) -> Option<mpsc::Receiver<Item>> {
        let mut all = self.sessions();
        let s = all.get_mut(session)?;
        let (tx, rx) = mpsc::channel(STREAM_QUEUE + BACKLOG);
        for b in s.backlog.drain(..) {
            let _ = tx.try_send(Item::Message(b));
        }
        s.listen = Some(tx);
        s.last_used = Some(Instant::now());
        Some(rx)
    }

    /// Ends a session from the HTTP side (DELETE): the client ends the
    /// process. `false` if there was no such session.
    pub async fn close_session(&self, session: &str) -> bool {
        let Some(mut s) = self.sessions().remove(session) else {
            return false;
        };
        s.end_all(Ended::SessionClosed);
        self.send(Frame::Close {
            session: session.to_owned(),
        })
        .await;
        true
    }

    /// Every session ends (the WebSocket is gone): waiting requests get
    /// [`Ended::TunnelDown`], later calls [`Reply::SessionGone`].
    pub fn fail_all(&self) {
        for (_, mut s) in self.sessions().drain() {
            s.end_all(Ended::TunnelDown);
        }
    }

    /// A frame from the client. Returns a frame to send back, if any (a
    /// `close` for a session the gateway does not know).
    pub async fn on_frame(&self, frame: Frame) -> Option<Frame> {
        self.stats.frames_in.fetch_add(1, Ordering::Relaxed);
        match frame {
            Frame::Message { session, message } => {
                let bytes = Bytes::from(message.get().to_owned());
                self.stats
                    .bytes_in
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if self.route(&session, bytes).await {
                    None
                } else {
                    Some(Frame::Close { session })
                }
            }
            Frame::Closed { session, reason } => {
                if let Some(mut s) = self.sessions().remove(&session) {
                    s.end_all(Ended::Process(reason));
                }
                None
            }
            // gateway-to-client frames are not valid this way: ignore
            Frame::Open { .. } | Frame::Close { .. } => None,
        }
    }

    /// Delivers one message from a process; `false` for an unknown session.
    async fn route(&self, session: &str, msg: Bytes) -> bool {
        let Some(p) = peek(&msg) else {
            log::debug!(
                "tunnel {}: session {session} wrote a non-JSON-RPC line; dropped",
                self.name
            );
            return self.has_session(session);
        };
        let target = {
            let mut all = self.sessions();
            let Some(s) = all.get_mut(session) else {
                return false;
            };
            s.last_used = Some(Instant::now());
            if p.is_response() {
                let id = p.id.as_deref().unwrap_or_default();
                match s.finish(id) {
                    Some(tx) => Some((tx, Item::Final(msg))),
                    None => {
                        log::debug!(
                            "tunnel {}: response to no waiting request; dropped",
                            self.name
                        );
                        None
                    }
                }
            } else {
                let by_token = p
                    .progress_token
                    .as_ref()
                    .filter(|_| p.method.as_deref() == Some("notifications/progress"))
                    .and_then(|t| s.progress.get(t))
                    .and_then(|id| s.pending.get(id));
                let newest = s.order.last().and_then(|id| s.pending.get(id));
                match by_token.or(newest).or(s.listen.as_ref()) {
                    Some(tx) => Some((tx.clone(), Item::Message(msg))),
                    None => {
                        if s.backlog.len() == BACKLOG {
                            s.backlog.pop_front();
                        }
                        s.backlog.push_back(msg);
                        None
                    }
                }
            }
        };
        if let Some((tx, item)) = target {
            // waits when that stream's reader is slow (back-pressure to the
            // tunnel) but never for a reader that has gone away
            let _ = tx.send(item).await;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(session: &str, json: &str) -> Frame {
        Frame::message(session, json.as_bytes()).unwrap()
    }

    async fn opened(link: &Link, out: &mut mpsc::Receiver<Frame>) -> String {
        let s = link.open_session().await.unwrap();
        assert!(matches!(out.recv().await, Some(Frame::Open { session }) if session == s));
        s
    }

    #[tokio::test]
    async fn a_response_alone_is_json_and_related_messages_make_a_stream() {
        let (link, mut out) = Link::new("laptop", "127.0.0.1:1", 16);
        let link = std::sync::Arc::new(link);
        let s = opened(&link, &mut out).await;

        let l = link.clone();
        let s2 = s.clone();
        let call = tokio::spawn(async move {
            l.call(&s2, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
                .await
        });
        let sent = out.recv().await.unwrap();
        assert!(
            matches!(&sent, Frame::Message { message, .. } if message.get().contains("tools/list"))
        );
        link.on_frame(msg(&s, r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#))
            .await;
        match call.await.unwrap() {
            Reply::Json(b) => assert!(b.starts_with(b"{\"jsonrpc\"")),
            other => panic!("{other:?}"),
        }

        // progress first: a stream, ended by the response
        let l = link.clone();
        let s2 = s.clone();
        let call = tokio::spawn(async move {
            l.call(
                &s2,
                br#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"slow","_meta":{"progressToken":7}}}"#,
            )
            .await
        });
        out.recv().await.unwrap();
        link.on_frame(msg(&s, r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}"#)).await;
        link.on_frame(msg(&s, r#"{"jsonrpc":"2.0","id":"c","result":{}}"#))
            .await;
        match call.await.unwrap() {
            Reply::Stream { first, mut rest } => {
                assert!(first.windows(8).any(|w| w == b"progress"));
                assert!(matches!(rest.recv().await, Some(Item::Final(_))));
                assert!(
                    rest.recv().await.is_none(),
                    "the stream ends after the response"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn unrelated_messages_reach_the_get_stream_or_wait_for_it() {
        let (link, mut out) = Link::new("laptop", "x", 16);
        let s = opened(&link, &mut out).await;
        link.on_frame(msg(
            &s,
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
        ))
        .await;
        let mut get = link.listen(&s).unwrap();
        assert!(
            matches!(get.recv().await, Some(Item::Message(b)) if b.windows(12).any(|w| w == b"list_changed"))
        );
        link.on_frame(msg(
            &s,
            r#"{"jsonrpc":"2.0","id":9,"method":"sampling/createMessage","params":{}}"#,
        ))
        .await;
        assert!(matches!(get.recv().await, Some(Item::Message(_))));
        // a client response to it is forwarded and answered 202
        assert!(matches!(
            link.call(&s, br#"{"jsonrpc":"2.0","id":9,"result":{}}"#)
                .await,
            Reply::Accepted
        ));
        assert!(matches!(out.recv().await, Some(Frame::Message { .. })));
    }

    #[tokio::test]
    async fn a_crash_ends_waiting_requests_and_the_session() {
        let (link, mut out) = Link::new("laptop", "x", 16);
        let link = std::sync::Arc::new(link);
        let s = opened(&link, &mut out).await;
        let l = link.clone();
        let s2 = s.clone();
        let call = tokio::spawn(async move {
            l.call(
                &s2,
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"boom"}}"#,
            )
            .await
        });
        out.recv().await.unwrap();
        link.on_frame(Frame::Closed {
            session: s.clone(),
            reason: ClosedReason::Crashed,
        })
        .await;
        assert!(matches!(
            call.await.unwrap(),
            Reply::Ended(Ended::Process(ClosedReason::Crashed))
        ));
        assert!(matches!(
            link.call(&s, br#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#)
                .await,
            Reply::SessionGone
        ));
        // output for a session the gateway does not know is answered with close
        assert!(matches!(
            link.on_frame(msg("ghost", r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
                .await,
            Some(Frame::Close { .. })
        ));
    }

    #[tokio::test]
    async fn a_dropped_tunnel_ends_everything() {
        let (link, mut out) = Link::new("laptop", "x", 16);
        let link = std::sync::Arc::new(link);
        let s = opened(&link, &mut out).await;
        let l = link.clone();
        let s2 = s.clone();
        let call = tokio::spawn(async move {
            l.call(&s2, br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
                .await
        });
        out.recv().await.unwrap();
        link.fail_all();
        assert!(matches!(
            call.await.unwrap(),
            Reply::Ended(Ended::TunnelDown)
        ));
        assert_eq!(link.session_count(), 0);
        drop(out);
        assert!(
            link.open_session().await.is_none(),
            "no writer: nothing opens"
        );
    }

    #[tokio::test]
    async fn delete_closes_the_session_on_both_sides() {
        let (link, mut out) = Link::new("laptop", "x", 16);
        let s = opened(&link, &mut out).await;
        assert!(link.close_session(&s).await);
        assert!(matches!(out.recv().await, Some(Frame::Close { session }) if session == s));
        assert!(!link.close_session(&s).await);
        assert!(link.listen(&s).is_none());
    }
}
