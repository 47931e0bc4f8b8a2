//! The audit trail: exactly one JSON line per request, rejections included,
//! with who (principal), what (method and tool/resource/prompt), where
//! (upstream), the decision and its reason, status, JSON-RPC code, duration
//! and bytes. Written through a [`Sink`] (bounded queue, `on_full`, rotation).
//! Secrets never reach it: no header or body value is logged, string fields
//! are length-capped, and JSON escaping covers CR/LF and control characters.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

use crate::telemetry::sink::{OnFull, Sink, Target};

/// Longest string field written (longer values are cut and marked).
pub const MAX_FIELD: usize = 256;

/// The compiled audit settings.
#[derive(Debug, Clone)]
pub struct Audit {
    sink: &'static Sink,
}

/// Audit sinks by target, process-wide on purpose: a sink owns a writer
/// thread and an open file, and a reload that keeps `audit.path` must keep
/// writing through the same one (one writer per file, no lines lost at the
/// swap). Sinks are never freed (leaked once per distinct target; targets
/// come only from the operator's configuration).
static SINKS: OnceLock<Mutex<HashMap<Target, &'static Sink>>> = OnceLock::new();

impl Audit {
    /// The audit writer for a target, holding at most `queue_lines` lines
    /// in memory. Sinks live for the process and are shared by reloads that
    /// keep the same target (with the queue and `on_full` they started with).
    pub fn new(target: Target, on_full: OnFull, queue_lines: usize) -> std::io::Result<Audit> {
        let map = SINKS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sink) = map.get(&target) {
            return Ok(Audit { sink });
        }
        let sink: &'static Sink =
            Box::leak(Box::new(Sink::new(target.clone(), queue_lines, on_full)));
        sink.check()?;
        map.insert(target, sink);
        Ok(Audit { sink })
    }

    /// The target for `audit.path` (`-` = stdout).
    pub fn target(path: &str, max_file_bytes: u64) -> Target {
        if path == "-" {
            Target::Stdout
        } else {
            Target::File {
                path: PathBuf::from(path),
                max_bytes: max_file_bytes,
            }
        }
    }

    /// Writes one event.
    pub fn record(&self, event: &Event<'_>) {
        match serde_json::to_string(event) {
            Ok(line) => {
                if !self.sink.write(line) {
                    crate::telemetry::metrics::record_audit_drop();
                }
            }
            Err(e) => log::warn!("audit event not serialisable: {e}"),
        }
    }

    /// Events dropped because the queue was full (`on_full: drop`).
    pub fn dropped(&self) -> u64 {
        self.sink.dropped()
    }
}

/// A length-capped string field.
#[derive(Debug, Clone, Copy)]
pub struct Capped<'a>(pub &'a str);

impl Serialize for Capped<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.len() <= MAX_FIELD {
            return s.serialize_str(self.0);
        }
        let mut cut = MAX_FIELD;
        while !self.0.is_char_boundary(cut) {
            cut -= 1;
        }
        s.serialize_str(&format!("{}…(truncated)", &self.0[..cut]))
    }
}

/// The principal part of an event.
#[derive(Debug, Serialize)]
pub struct Who<'a> {
    /// Tenant.
    pub tenant: Capped<'a>,
    /// Client.
    pub client: Capped<'a>,
    /// API key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Capped<'a>>,
    /// JWT subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Capped<'a>>,
    /// `api_key`, `jwt`, `client_cert`, `anonymous`.
    pub source: &'static str,
}

/// The client-certificate part of an event.
#[derive(Debug, Serialize)]
pub struct CertWho<'a> {
    /// Subject CN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cn: Option<Capped<'a>>,
    /// Serial number (hex).
    pub serial: Capped<'a>,
    /// SHA-256 fingerprint (hex).
    pub sha256: Capped<'a>,
}

/// One audit line.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// Request id (also in `X-Request-ID`).
    pub request_id: Capped<'a>,
    /// Client address.
    pub client_ip: Option<String>,
    /// Who; absent when authentication failed.
    pub principal: Option<Who<'a>>,
    /// The verified client certificate of the connection (mTLS), whoever
    /// the principal is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<CertWho<'a>>,
    /// HTTP method.
    pub http_method: &'a str,
    /// Request path (never the query string).
    pub path: Capped<'a>,
    /// JSON-RPC method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Capped<'a>>,
    /// Tool name, resource URI or prompt name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Capped<'a>>,
    /// A renamed tool's call (`tool_overrides`): the name the client
    /// called (`target` is the tool's exposed name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub called_as: Option<Capped<'a>>,
    /// Upstream name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a str>,
    /// A virtual server's call: the member's own name of the target
    /// (`target` is the exposed name, `upstream` the member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_name: Option<Capped<'a>>,
    /// Virtual server members left out of this answer (failed or late).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// Tool definitions this answer listed that changed since they were
    /// pinned (`upstream/tool sha256:pinned -> sha256:listed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_changes: Vec<String>,
    /// `allow` or `deny` (the gateway refused) or `error` (upstream failed).
    pub decision: &'static str,
    /// Why, when not simply allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// HTTP status sent.
    pub status: u16,
    /// JSON-RPC error code of a gateway-made error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonrpc_code: Option<i32>,
    /// Milliseconds from request start to the end of the response.
    pub duration_ms: f64,
    /// Request body bytes.
    pub bytes_in: usize,
    /// Response body bytes.
    pub bytes_out: usize,
}

/// Masks the values of query parameters named in `logging.redact_keys` in a
/// logged URI-like field (a resource URI such as `https://h/x?token=…`).
pub fn redact_query<'a>(s: &'a str, keys: &[String]) -> std::borrow::Cow<'a, str> {
    let Some((base, query)) = s.split_once('?') else {
        return std::borrow::Cow::Borrowed(s);
    };
    let mut changed = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if keys.iter().any(|r| r.eq_ignore_ascii_case(k)) => {
                changed = true;
                format!("{k}=[redacted]")
            }
            _ => kv.to_string(),
        })
        .collect();
    if !changed {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(format!("{base}?{}", parts.join("&")))
}

pub use crate::base::clock::now_rfc3339;

/// Whether audit runs in environment `env` given `audit.environments` globs.
pub fn enabled_in(environments: &[crate::base::glob::Glob], env: &str) -> bool {
    environments.iter().any(|g| g.matches(env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_fields_and_escaping() {
        let long = "x".repeat(1000);
        let e = Event {
            ts: now_rfc3339(),
            request_id: Capped("r\r\nInjected: yes"),
            client_ip: None,
            principal: None,
            client_cert: None,
            http_method: "POST",
            path: Capped("/mcp"),
            method: Some(Capped(&long)),
            target: None,
            called_as: None,
            upstream: None,
            member_name: None,
            left_out: Vec::new(),
            tool_changes: Vec::new(),
            decision: "deny",
            reason: Some("x"),
            status: 400,
            jsonrpc_code: Some(-32600),
            duration_ms: 1.0,
            bytes_in: 0,
            bytes_out: 0,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert!(!line.contains('\n') && !line.contains('\r'));
        assert!(line.contains("\\r\\n"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(v["method"].as_str().unwrap().len() < 300);
        assert!(v["method"].as_str().unwrap().ends_with("(truncated)"));
    }

    #[test]
    fn query_values_are_redacted() {
        let keys = vec!["token".to_string(), "api-key".to_string()];
        assert_eq!(redact_query("file:///a", &keys), "file:///a");
        assert_eq!(
            redact_query("https://h/x?Token=s3cret&page=2&api-key=k", &keys),
            "https://h/x?Token=[redacted]&page=2&api-key=[redacted]"
        );
        assert_eq!(
            redact_query("https://h/x?page=2", &keys),
            "https://h/x?page=2"
        );
    }

    #[test]
    fn timestamps_look_right() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }

    #[test]
    fn environments() {
        use crate::base::glob::Glob;
        assert!(enabled_in(&[Glob::new("*")], "anything"));
        assert!(enabled_in(&[Glob::new("prod*")], "production"));
        assert!(!enabled_in(&[Glob::new("prod*")], "dev"));
        assert!(!enabled_in(&[], "dev"));
    }
}
