//! Connections the edge closed before any request was complete (over the
//! connection cap, a PROXY header problem, a header deadline, an
//! unparsable request header, a refused tunnel): one metric, one access
//! line, one audit line each, from whichever adapter closed it.

use super::accesslog::ACCESS_TARGET;
use super::audit::{now_rfc3339, Audit, Capped, Event};

/// Logs and audits a connection the edge closed before any request was
/// complete: over the connection cap, a PROXY header problem, or a request
/// header that did not arrive within `limits.header_timeout_ms`.
pub fn connection_refused(
    audit: Option<&Audit>,
    peer: Option<std::net::SocketAddr>,
    reason: &'static str,
) {
    refusal_lines(audit, peer, reason, 0);
}

/// A request header Pingora could not parse (answered 400, connection
/// closed): logged, audited and counted like a refused connection.
pub fn malformed_request_header(audit: Option<&Audit>, peer: Option<std::net::SocketAddr>) {
    refusal_lines(audit, peer, "malformed_request_header", 400);
}

fn refusal_lines(
    audit: Option<&Audit>,
    peer: Option<std::net::SocketAddr>,
    reason: &'static str,
    status: u16,
) {
    super::metrics::record_connection_refused(reason);
    let client_ip = peer.map(|a| a.ip().to_string());
    if log::log_enabled!(target: ACCESS_TARGET, log::Level::Info) {
        let line = serde_json::json!({
            "type": "connection",
            "client": client_ip,
            "status": status,
            "error": reason,
        });
        super::accesslog::write(line.to_string());
    }
    let Some(audit) = audit else {
        return;
    };
    let request_id = crate::base::ids::new_request_id();
    audit.record(&Event {
        ts: now_rfc3339(),
        request_id: Capped(&request_id),
        client_ip,
        principal: None,
        client_cert: None,
        http_method: "-",
        path: Capped("-"),
        method: None,
        target: None,
        called_as: None,
        upstream: None,
        member_name: None,
        left_out: Vec::new(),
        tool_changes: Vec::new(),
        decision: "deny",
        reason: Some(reason),
        status,
        jsonrpc_code: None,
        duration_ms: 0.0,
        bytes_in: 0,
        bytes_out: 0,
    });
}
