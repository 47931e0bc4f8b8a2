//! The tunnel wire protocol, version 1: JSON text frames over one WebSocket
//! between the gateway and `mcp-edge tunnel`, multiplexing MCP sessions.
//! Pingora-free and I/O-free: frame types, encoding, limits and the
//! shallow peek at a JSON-RPC message that routing needs.
//!
//! The WebSocket upgrade (`GET tunnel.path`) carries the registration:
//! `Authorization: Bearer <tunnel token>`, `Mcp-Edge-Tunnel-Name: <upstream
//! name>` and `Sec-WebSocket-Protocol: mcp-edge-tunnel.v1`. After the 101:
//!
//! | direction | frame | meaning |
//! |---|---|---|
//! | gateway → client | `{"type":"open","session":S}` | start a local process for session `S` |
//! | both | `{"type":"message","session":S,"message":{…}}` | one JSON-RPC message to `S`'s stdin / from its stdout |
//! | gateway → client | `{"type":"close","session":S}` | end `S` (the HTTP client sent DELETE, or the session idled out) |
//! | client → gateway | `{"type":"closed","session":S,"reason":R}` | `S`'s process is gone: `exited`, `crashed`, `idle`, `refused` (over `max_sessions`), `spawn_failed` |
//!
//! Session ids are chosen by the gateway (random, URL-safe). A frame for an
//! unknown session is answered with `close`/`closed` and otherwise ignored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The WebSocket subprotocol naming this version.
pub const SUBPROTOCOL: &str = "mcp-edge-tunnel.v1";

/// The registration header carrying the upstream name.
pub const NAME_HEADER: &str = "mcp-edge-tunnel-name";

/// Largest frame either side accepts (a JSON-RPC message plus framing).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Why a local process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedReason {
    /// It exited with status 0 (or after `close`).
    Exited,
    /// It exited with an error status or a signal.
    Crashed,
    /// The client ended it after its idle timeout.
    Idle,
    /// The client is at `max_sessions`.
    Refused,
    /// The command could not be started.
    SpawnFailed,
}

/// One frame.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// Gateway → client: start a process for `session`.
    Open {
        /// The session id.
        session: String,
    },
    /// Either way: one JSON-RPC message.
    Message {
        /// The session id.
        session: String,
        /// The JSON-RPC message, unchanged.
        message: Box<RawValue>,
    },
    /// Gateway → client: end `session`.
    Close {
        /// The session id.
        session: String,
    },
    /// Client → gateway: `session`'s process is gone.
    Closed {
        /// The session id.
        session: String,
        /// Why.
        reason: ClosedReason,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    session: String,
    #[serde(default)]
    message: Option<Box<RawValue>>,
    #[serde(default)]
    reason: Option<ClosedReason>,
}

/// A frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Over [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a frame of this protocol version.
    #[error("not a tunnel frame: {0}")]
    Invalid(String),
}

impl Frame {
    /// The frame as WebSocket text.
    pub fn encode(&self) -> String {
        // a Frame holds only strings and already-valid JSON: cannot fail
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses WebSocket text.
    pub fn decode(text: &str) -> Result<Frame, FrameError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(text.len()));
        }
        // serde's internally tagged enums cannot hold a RawValue: decode
        // through a flat struct
        let w: Wire<'_> =
            serde_json::from_str(text).map_err(|e| FrameError::Invalid(e.to_string()))?;
        if !valid_session_id(&w.session) {
            return Err(FrameError::Invalid("bad session id".into()));
        }
        let session = w.session;
        let f = match (&*w.kind, w.message, w.reason) {
            ("open", None, None) => Frame::Open { session },
            ("close", None, None) => Frame::Close { session },
            ("message", Some(message), None) => Frame::Message { session, message },
            ("closed", None, Some(reason)) => Frame::Closed { session, reason },
            (kind, _, _) => {
                return Err(FrameError::Invalid(format!(
                    "frame type \"{kind}\" with the wrong fields, or unknown"
                )))
            }
        };
        Ok(f)
    }

    /// The session the frame is about.
    pub fn session(&self) -> &str {
        match self {
            Frame::Open { session }
            | Frame::Message { session, .. }
            | Frame::Close { session }
            | Frame::Closed { session, .. } => session,
        }
    }

    /// A `message` frame for `session` carrying `json` (which must be one
    /// JSON value).
    pub fn message(session: &str, json: &[u8]) -> Result<Frame, FrameError> {
        let text = std::str::from_utf8(json).map_err(|e| FrameError::Invalid(e.to_string()))?;
        let message = RawValue::from_string(text.trim().to_owned())
            .map_err(|e| FrameError::Invalid(e.to_string()))?;
        Ok(Frame::Message {
            session: session.to_owned(),
            message,
        })
    }
}

/// Session ids are 1–64 characters of `[A-Za-z0-9_-]`.
pub fn valid_session_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new random session id (128 bits, hex).
pub fn new_session_id() -> String {
    crate::base::ids::new_request_id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_keep_the_message_bytes() {
        let f = Frame::message("s1", br#" {"jsonrpc":"2.0","id":7,"method":"ping"} "#).unwrap();
        let text = f.encode();
        assert_eq!(
            text,
            r#"{"type":"message","session":"s1","message":{"jsonrpc":"2.0","id":7,"method":"ping"}}"#
        );
        match Frame::decode(&text).unwrap() {
            Frame::Message { session, message } => {
                assert_eq!(session, "s1");
                assert_eq!(message.get(), r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#);
            }
            other => panic!("{other:?}"),
        }
        let c = Frame::Closed {
            session: "s1".into(),
            reason: ClosedReason::SpawnFailed,
        };
        assert_eq!(
            c.encode(),
            r#"{"type":"closed","session":"s1","reason":"spawn_failed"}"#
        );
    }

    #[test]
    fn bad_frames_are_refused() {
        for bad in [
            r#"{"type":"open"}"#,
            r#"{"type":"open","session":""}"#,
            r#"{"type":"open","session":"a b"}"#,
            r#"{"type":"open","session":"a","extra":1}"#,
            r#"{"type":"nope","session":"a"}"#,
            r#"{"type":"message","session":"a","message":}"#,
            "not json",
        ] {
            assert!(Frame::decode(bad).is_err(), "{bad}");
        }
        let big = format!(
            r#"{{"type":"message","session":"a","message":"{}"}}"#,
            "x".repeat(MAX_FRAME_BYTES)
        );
        assert!(matches!(Frame::decode(&big), Err(FrameError::TooLarge(_))));
        assert!(Frame::message("a", b"{not json").is_err());
        assert!(Frame::message("a", b"{} {}").is_err());
    }
}
