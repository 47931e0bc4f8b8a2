//! The admin listener (`admin.listen`): `/healthz` and `/health` for anyone
//! who can reach it; `/metrics` (Prometheus text), the tunnel API
//! (`GET /reverse-proxy/sessions`, `DELETE /reverse-proxy/sessions/{id}`)
//! and the in-process upstreams (`GET /upstreams/local`: stdio and sse,
//! their open sessions) behind `admin.token`.
//! [`answer`] decides from the request line and headers alone and is
//! Pingora-free; [`AdminApp`] is the thin Pingora `ServeHttp` adapter.
//!
//! The listener address is fixed at start (a change needs a restart or
//! upgrade); the token and everything served follow the live configuration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::runtime::{Runtime, SharedRuntime};

/// An admin answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
    /// `Allow` for a 405, `WWW-Authenticate` for a 401.
    pub extra: Option<(&'static str, &'static str)>,
}

impl Answer {
    fn json(status: u16, body: Bytes) -> Self {
        Answer {
            status,
            content_type: "application/json",
            body,
            extra: None,
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Answer::json(
            status,
            Bytes::from(serde_json::json!({ "error": message }).to_string()),
        )
    }
}

/// Whether the `Authorization` header carries the admin token.
enum Access {
    Granted,
    NoToken,
    Denied,
}

fn access(rt: &Runtime, authorization: Option<&[u8]>) -> Access {
    let Some(token) = rt.admin.as_ref().and_then(|a| a.token.as_ref()) else {
        return Access::NoToken;
    };
    let presented = authorization
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    match presented {
        Some(t) if token.matches(t) => Access::Granted,
        _ => Access::Denied,
    }
}

/// The answer to `method path` with the given `Authorization` header.
/// `draining` is true once the process is shutting down.
pub fn answer(
    rt: &Runtime,
    method: &str,
    path: &str,
    authorization: Option<&[u8]>,
    draining: bool,
) -> Answer {
    let read_only = method == "GET" || method == "HEAD";
    match path {
        "/healthz" | "/health" if !read_only => Answer {
            extra: Some(("allow", "GET, HEAD")),
            ..Answer::error(405, "method not allowed")
        },
        "/healthz" => {
            let (s, b) = crate::health::liveness();
            Answer::json(s, b)
        }
        "/health" => {
            let up = rt
                .upstreams
                .iter()
                .map(|u| (&*u.name, u.up_count(), u.endpoints.len()));
            let (s, b) = crate::health::readiness(up, draining);
            Answer::json(s, b)
        }
        "/metrics" => match access(rt, authorization) {
            a @ (Access::NoToken | Access::Denied) => refused(a),
            Access::Granted if !read_only => Answer {
                extra: Some(("allow", "GET, HEAD")),
                ..Answer::error(405, "method not allowed")
            },
            Access::Granted => Answer {
                status: 200,
                content_type: crate::telemetry::metrics::CONTENT_TYPE,
                body: Bytes::from(crate::telemetry::metrics::render(
                    &rt.upstreams,
                    &crate::tunnel::registry().list(),
                )),
                extra: None,
            },
        },
        "/upstreams/local" => match access(rt, authorization) {
            Access::Granted if read_only => Answer::json(200, local_json()),
            Access::Granted => Answer {
                extra: Some(("allow", "GET, HEAD")),
                ..Answer::error(405, "method not allowed")
            },
            denied => refused(denied),
        },
        "/reverse-proxy/sessions" => match access(rt, authorization) {
            Access::Granted if read_only => Answer::json(200, tunnels_json()),
            Access::Granted => Answer {
                extra: Some(("allow", "GET, HEAD")),
                ..Answer::error(405, "method not allowed")
            },
            denied => refused(denied),
        },
        p if p.starts_with("/reverse-proxy/sessions/") => match access(rt, authorization) {
            Access::Granted if method == "DELETE" => {
                let id = &p["/reverse-proxy/sessions/".len()..];
                match crate::tunnel::registry().by_id(id) {
                    Some(link) => {
                        link.disconnect();
                        Answer::json(
                            200,
                            Bytes::from(
                                serde_json::json!({"disconnected": link.id, "name": link.name})
                                    .to_string(),
                            ),
                        )
                    }
                    None => Answer::error(404, "no tunnel with that id"),
                }
            }
            Access::Granted => Answer {
                extra: Some(("allow", "DELETE")),
                ..Answer::error(405, "method not allowed")
            },
            denied => refused(denied),
        },
        _ => Answer::error(404, "not found"),
    }
}

fn refused(a: Access) -> Answer {
    match a {
        Access::NoToken => Answer::error(
            403,
            "admin.token is not configured: only /healthz and /health are served",
        ),
        _ => Answer {
            extra: Some(("www-authenticate", "Bearer realm=\"mcp-edge admin\"")),
            ..Answer::error(401, "admin token required")
        },
    }
}

/// `GET /upstreams/local`: the upstreams served from inside the gateway
/// (`type: stdio` and `sse`) and their open sessions.
fn local_json() -> Bytes {
    let list: Vec<serde_json::Value> = crate::tunnel::local::list()
        .into_iter()
        .map(|(name, kind, sessions, waiting)| {
            serde_json::json!({"name": name, "type": kind, "mcp_sessions": sessions, "waiting_requests": waiting})
        })
        .collect();
    Bytes::from(serde_json::json!({ "upstreams": list }).to_string())
}

/// `GET /reverse-proxy/sessions`: the connected tunnels.
fn tunnels_json() -> Bytes {
    use std::sync::atomic::Ordering::Relaxed;
    let list: Vec<serde_json::Value> = crate::tunnel::registry()
        .list()
        .iter()
        .map(|l| {
            let since = crate::base::clock::unix_secs(l.since);
            serde_json::json!({
                "id": l.id,
                "name": l.name,
                "remote": l.remote,
                "connected_since": since,
                "mcp_sessions": l.session_count(),
                "frames_in": l.stats.frames_in.load(Relaxed),
                "frames_out": l.stats.frames_out.load(Relaxed),
                "bytes_in": l.stats.bytes_in.load(Relaxed),
                "bytes_out": l.stats.bytes_out.load(Relaxed),
            })
        })
        .collect();
    Bytes::from(serde_json::json!({ "tunnels": list }).to_string())
}

/// Pingora app serving [`answer`] on the admin listener.
pub struct AdminApp {
    /// The live configuration.
    pub runtime: SharedRuntime,
    /// Set when the process starts shutting down (`/health` says draining).
    pub draining: Arc<AtomicBool>,
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let rt = self.runtime.load();
        let req = session.req_header();
        let a = answer(
            &rt,
            req.method.as_str(),
            req.uri.path(),
            req.headers.get("authorization").map(|v| v.as_bytes()),
            self.draining.load(Ordering::Relaxed),
        );
        let head = req.method == http::Method::HEAD;
        let len = a.body.len();
        let mut b = http::Response::builder()
            .status(a.status)
            .header("content-type", a.content_type)
            .header("content-length", len)
            .header("cache-control", "no-store");
        if let Some((k, v)) = a.extra {
            b = b.header(k, v);
        }
        let body = if head { Vec::new() } else { a.body.to_vec() };
        b.body(body).unwrap_or_else(|_| {
            let mut r = http::Response::new(Vec::new());
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(admin: &str) -> Runtime {
        let text = format!(
            "server: {{listen: 127.0.0.1:1}}\nupstreams: [{{name: a, url: http://127.0.0.1:9/mcp}}]\nrouting: [{{match: {{method: \"*\"}}, upstream: a}}]\n{admin}"
        );
        crate::config::load_str(&text, &|k| {
            (k == "TOK").then(|| "0123456789abcdef-token".to_string())
        })
        .expect("config")
    }

    #[test]
    fn health_is_open_metrics_need_the_token() {
        let r = rt("admin: {listen: 127.0.0.1:2, token: \"${TOK}\"}\n");
        assert_eq!(answer(&r, "GET", "/healthz", None, false).status, 200);
        let ready = answer(&r, "GET", "/health", None, false);
        assert_eq!(ready.status, 200);
        assert!(String::from_utf8_lossy(&ready.body).contains("\"a\""));
        assert_eq!(answer(&r, "GET", "/health", None, true).status, 503);
        assert_eq!(answer(&r, "POST", "/health", None, false).status, 405);
        let no = answer(&r, "GET", "/metrics", None, false);
        assert_eq!(no.status, 401);
        assert_eq!(no.extra.map(|e| e.0), Some("www-authenticate"));
        let wrong = answer(&r, "GET", "/metrics", Some(b"Bearer nope"), false);
        assert_eq!(wrong.status, 401);
        let basic = answer(
            &r,
            "GET",
            "/metrics",
            Some(b"Basic 0123456789abcdef-token"),
            false,
        );
        assert_eq!(basic.status, 401);
        let ok = answer(
            &r,
            "GET",
            "/metrics",
            Some(b"bearer  0123456789abcdef-token "),
            false,
        );
        assert_eq!(ok.status, 200);
        assert!(String::from_utf8_lossy(&ok.body).contains("mcp_edge_build_info"));
        assert_eq!(answer(&r, "GET", "/nope", None, false).status, 404);
    }

    #[test]
    fn without_a_token_only_health_is_served() {
        let r = rt("admin: {listen: 127.0.0.1:2}\n");
        assert_eq!(answer(&r, "GET", "/metrics", None, false).status, 403);
        assert_eq!(answer(&r, "GET", "/healthz", None, false).status, 200);
    }

    fn errors(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        match crate::config::load_str(text, env) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn admin_config_errors_name_their_keys() {
        let text = "server: {listen: 127.0.0.1:1}\nupstreams: [{name: a, url: http://127.0.0.1:9/mcp}]\nrouting: [{match: {method: \"*\"}, upstream: a}]\nadmin: {listen: 127.0.0.1:1, token: short}\n";
        let errs = errors(text, &|_| None);
        assert!(
            errs.iter().any(|e| e.starts_with("admin.listen:")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("admin.token:")),
            "{errs:?}"
        );
        let text = text.replace("127.0.0.1:1, token: short", "localhost, token: \"${NOPE}\"");
        let errs = errors(&text, &|_| None);
        assert!(
            errs.iter().any(|e| e.starts_with("admin.listen:")),
            "{errs:?}"
        );
        assert!(errs.iter().any(|e| e.contains("NOPE")), "{errs:?}");
    }
}
