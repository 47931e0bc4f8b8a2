//! Prometheus metrics: the process-wide registry, the families the gateway
//! records into, and the text exposition served on the admin listener
//! (`GET /metrics`). Pingora-free: the proxy hooks call the `record_*`
//! functions with values they already hold.
//!
//! Every label value comes from a bounded set (configured names, known MCP
//! methods, HTTP status codes, the gateway's own error labels), so a client
//! cannot grow the series count: an unknown JSON-RPC method is counted as
//! `other`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::tunnel::relay::Link;
use crate::upstream::Upstream;

/// Request duration buckets in seconds: sub-millisecond gateway answers up
/// to long SSE streams.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// MCP methods counted under their own name; anything else is `other`.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
];

/// The families, registered once in [`REGISTRY`].
struct Families {
    requests: IntCounterVec,
    duration: HistogramVec,
    jsonrpc_errors: IntCounterVec,
    rate_limited: IntCounterVec,
    auth_failures: IntCounterVec,
    sse_active: IntGauge,
    upstream_up: IntGaugeVec,
    upstream_in_flight: IntGaugeVec,
    sessions: IntCounterVec,
    members_left_out: IntCounterVec,
    tool_limits: IntCounterVec,
    tool_pins: IntCounterVec,
    reloads: IntCounterVec,
    reload_ok: IntGauge,
    reload_time: IntGauge,
    audit_dropped: IntCounter,
    access_dropped: IntCounter,
    connections_refused: IntCounterVec,
    build: IntGaugeVec,
    tunnel_sessions: IntGaugeVec,
    tunnel_bytes: IntGaugeVec,
}

/// The registry `/metrics` renders. Process-wide on purpose: Prometheus
/// counters must be monotonic for the life of the process, across every
/// reload; tests assert on labels of their own (e.g. `unit-test-up`).
static REGISTRY: LazyLock<(Registry, Option<Families>)> = LazyLock::new(|| {
    let registry = Registry::new();
    let families = families(&registry)
        .map_err(|e| log::error!("metrics: registry setup failed, metrics are off: {e}"))
        .ok();
    (registry, families)
});

/// Audit lines dropped so far, across configuration reloads (each reload
/// opens a new writer with its own count).
static AUDIT_DROPPED: AtomicU64 = AtomicU64::new(0);

fn families(r: &Registry) -> prometheus::Result<Families> {
    fn reg<T: prometheus::core::Collector + Clone + 'static>(
        r: &Registry,
        c: T,
    ) -> prometheus::Result<T> {
        r.register(Box::new(c.clone()))?;
        Ok(c)
    }
    let counter = |name: &str, help: &str, labels: &[&str]| {
        reg(r, IntCounterVec::new(Opts::new(name, help), labels)?)
    };
    let f = Families {
        requests: counter(
            "mcp_edge_requests_total",
            "Requests answered, by route, upstream, MCP method, HTTP status and decision (allow, deny, error).",
            &["route", "upstream", "method", "status", "decision"],
        )?,
        duration: reg(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "mcp_edge_request_duration_seconds",
                    "Time from request start to the end of the response (for SSE: the end of the stream).",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["upstream", "method", "sse"],
            )?,
        )?,
        jsonrpc_errors: counter(
            "mcp_edge_jsonrpc_errors_total",
            "JSON-RPC error responses the gateway made itself, by error code and reason.",
            &["code", "reason"],
        )?,
        rate_limited: counter(
            "mcp_edge_rate_limit_rejections_total",
            "Requests refused by a rate limit (429), or because the shared limiter was unavailable (503).",
            &["reason"],
        )?,
        auth_failures: counter(
            "mcp_edge_auth_failures_total",
            "Requests refused at authentication: missing or bad credentials.",
            &["reason"],
        )?,
        sse_active: reg(
            r,
            IntGauge::new(
                "mcp_edge_sse_streams_active",
                "SSE streams being relayed right now.",
            )?,
        )?,
        upstream_up: reg(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_upstream_up",
                    "1 if the pool member takes new work (health checks pass), else 0.",
                ),
                &["upstream", "endpoint"],
            )?,
        )?,
        upstream_in_flight: reg(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_upstream_in_flight",
                    "Requests in flight to the pool member.",
                ),
                &["upstream", "endpoint"],
            )?,
        )?,
        sessions: counter(
            "mcp_edge_sessions_total",
            "Session tokens sealed (new sessions), opened (calls in a session) and rejected (404), by reason.",
            &["event", "reason"],
        )?,
        members_left_out: counter(
            "mcp_edge_federation_members_left_out_total",
            "Virtual server members left out of an answer (failed, slow past member_timeout_ms, session gone), by virtual server, member and reason.",
            &["server", "member", "reason"],
        )?,
        tool_limits: counter(
            "mcp_edge_tool_limits_total",
            "Tool calls a tool_limits bound or server.limits.max_response_bytes ended, by limit (timeout, max_concurrent, max_response_bytes).",
            &["limit"],
        )?,
        tool_pins: counter(
            "mcp_edge_tool_pins_total",
            "Tool definitions checked against their pins (tool_integrity), by event: pinned (first seen), changed_served (warn), changed_blocked (block).",
            &["event"],
        )?,
        reloads: counter(
            "mcp_edge_config_reloads_total",
            "Configuration reloads (SIGHUP), by result.",
            &["result"],
        )?,
        reload_ok: reg(
            r,
            IntGauge::new(
                "mcp_edge_config_last_reload_successful",
                "1 if the last reload was applied (or none was tried), 0 if it was refused and the previous configuration is serving.",
            )?,
        )?,
        reload_time: reg(
            r,
            IntGauge::new(
                "mcp_edge_config_last_reload_timestamp_seconds",
                "Unix time of the last reload attempt (0 = none yet).",
            )?,
        )?,
        audit_dropped: reg(
            r,
            IntCounter::new(
                "mcp_edge_audit_dropped_total",
                "Audit lines dropped because the writer fell behind (audit.on_full: drop).",
            )?,
        )?,
        access_dropped: reg(
            r,
            IntCounter::new(
                "mcp_edge_access_log_dropped_total",
                "Access-log lines dropped because stderr fell behind.",
            )?,
        )?,
        connections_refused: counter(
            "mcp_edge_connections_refused_total",
            "Connections closed before a request completed: connection cap, PROXY header problems, header timeout.",
            &["reason"],
        )?,
        tunnel_sessions: reg(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_tunnel_sessions",
                    "MCP sessions open on each connected tunnel (absent = not connected; see mcp_edge_upstream_up).",
                ),
                &["name"],
            )?,
        )?,
        tunnel_bytes: reg(
            r,
            IntGaugeVec::new(
                Opts::new(
                    "mcp_edge_tunnel_message_bytes",
                    "JSON-RPC bytes relayed over each connected tunnel since it connected, by direction (in = from the tunneled server).",
                ),
                &["name", "direction"],
            )?,
        )?,
        build: reg(
            r,
            IntGaugeVec::new(
                Opts::new("mcp_edge_build_info", "The running binary's version."),
                &["version"],
            )?,
        )?,
    };
    f.reload_ok.set(1);
    f.build
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    Ok(f)
}

fn with<F: FnOnce(&Families)>(f: F) {
    if let Some(fam) = &REGISTRY.1 {
        f(fam);
    }
}

/// The method label: known MCP methods by name, the rest `other`, none `-`.
pub fn method_label(method: Option<&str>) -> &'static str {
    match method {
        None => "-",
        Some(m) => KNOWN_METHODS
            .iter()
            .find(|k| **k == m)
            .copied()
            .unwrap_or("other"),
    }
}

/// What the access log knows about a finished request.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// `routing[N]`, `session`, `default`, `virtual_servers[N]` or `-`
    /// (answered before routing).
    pub route: &'a str,
    /// Upstream name, `-` if none was chosen.
    pub upstream: &'a str,
    /// The JSON-RPC method, if the request had one.
    pub method: Option<&'a str>,
    /// HTTP status sent (0 if none was).
    pub status: u16,
    /// The gateway's own answer, if it made one: (label, JSON-RPC code, refusal?).
    pub error: Option<(&'static str, i32, bool)>,
    /// The response was an SSE stream.
    pub sse: bool,
    /// Seconds since the request started.
    pub seconds: f64,
}

/// Counts a finished request in every family it concerns.
pub fn record_request(r: &Finished<'_>) {
    with(|f| {
        let method = method_label(r.method);
        let decision = match r.error {
            None => "allow",
            Some((_, _, true)) => "deny",
            Some((_, _, false)) => "error",
        };
        let status = http::StatusCode::from_u16(r.status)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| "0".to_owned());
        f.requests
            .with_label_values(&[r.route, r.upstream, method, &status, decision])
            .inc();
        f.duration
            .with_label_values(&[r.upstream, method, if r.sse { "true" } else { "false" }])
            .observe(r.seconds);
        if let Some((label, code, _)) = r.error {
            f.jsonrpc_errors
                .with_label_values(&[&code.to_string(), label])
                .inc();
            match label {
                "rate_limited" | "rate_limit_unavailable" => {
                    f.rate_limited.with_label_values(&[label]).inc()
                }
                "unauthenticated" | "bad_credentials" => {
                    f.auth_failures.with_label_values(&[label]).inc()
                }
                _ => {}
            }
        }
    });
}

/// Session token events: `sealed`, `opened`, `rejected` (with the reason).
pub fn record_session(event: &'static str, reason: &'static str) {
    with(|f| f.sessions.with_label_values(&[event, reason]).inc());
}

/// A virtual server member left out of an answer. `server` and `member`
/// are configured names; `why` is bounded here to a few reasons.
pub fn record_member_left_out(server: &str, member: &str, why: &str) {
    let reason = if why == "member_timeout" {
        "timeout"
    } else if why.starts_with("HTTP ") {
        "http_error"
    } else if why == "session_gone" {
        "session_gone"
    } else if why.starts_with("connect") {
        "connect"
    } else {
        "bad_answer"
    };
    with(|f| {
        f.members_left_out
            .with_label_values(&[server, member, reason])
            .inc()
    });
}

/// A call ended or refused by a tool-call bound: `timeout`,
/// `max_concurrent` or `max_response_bytes`.
pub fn record_tool_limit(limit: &'static str) {
    with(|f| f.tool_limits.with_label_values(&[limit]).inc());
}

/// A tool definition checked against its pin: `pinned`,
/// `changed_served` or `changed_blocked`.
pub fn record_tool_pin(event: &'static str) {
    with(|f| f.tool_pins.with_label_values(&[event]).inc());
}

/// A configuration reload attempt and whether it was applied.
pub fn record_reload(ok: bool) {
    with(|f| {
        f.reloads
            .with_label_values(&[if ok { "ok" } else { "failed" }])
            .inc();
        f.reload_ok.set(i64::from(ok));
        f.reload_time
            .set(i64::try_from(crate::base::clock::now_secs()).unwrap_or(i64::MAX));
    });
}

/// An audit line dropped by a full queue.
pub fn record_audit_drop() {
    AUDIT_DROPPED.fetch_add(1, Ordering::Relaxed);
    with(|f| f.audit_dropped.inc());
}

/// An access-log line dropped by a full queue.
pub fn record_access_log_drop() {
    with(|f| f.access_dropped.inc());
}

/// A connection closed before any request completed.
pub fn record_connection_refused(reason: &'static str) {
    with(|f| f.connections_refused.with_label_values(&[reason]).inc());
}

/// Audit lines dropped since the process started.
pub fn audit_dropped() -> u64 {
    AUDIT_DROPPED.load(Ordering::Relaxed)
}

/// Holds one unit of `mcp_edge_sse_streams_active` while an SSE stream is
/// relayed; dropping it (at the end of the request, however it ends)
/// releases the unit.
#[derive(Debug)]
pub struct SseStream(());

impl SseStream {
    /// Counts a stream as active until the guard drops.
    pub fn start() -> Self {
        with(|f| f.sse_active.inc());
        SseStream(())
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        with(|f| f.sse_active.dec());
    }
}

/// The text exposition (format 0.0.4) of every family, with the upstream
/// and tunnel gauges taken from `upstreams` and `tunnels` at this moment.
pub fn render(upstreams: &[Arc<Upstream>], tunnels: &[Arc<Link>]) -> String {
    with(|f| {
        // members removed by a reload disappear from the output
        f.upstream_up.reset();
        f.upstream_in_flight.reset();
        for u in upstreams {
            for e in u.endpoints.iter() {
                f.upstream_up
                    .with_label_values(&[&*u.name, e.url.as_str()])
                    .set(i64::from(e.health.is_up()));
                f.upstream_in_flight
                    .with_label_values(&[&*u.name, e.url.as_str()])
                    .set(i64::try_from(e.in_flight.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
            }
        }
    });
    with(|f| {
        use std::sync::atomic::Ordering::Relaxed;
        f.tunnel_sessions.reset();
        f.tunnel_bytes.reset();
        for l in tunnels {
            f.tunnel_sessions
                .with_label_values(&[l.name.as_str()])
                .set(i64::try_from(l.session_count()).unwrap_or(i64::MAX));
            for (dir, v) in [
                ("in", l.stats.bytes_in.load(Relaxed)),
                ("out", l.stats.bytes_out.load(Relaxed)),
            ] {
                f.tunnel_bytes
                    .with_label_values(&[l.name.as_str(), dir])
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            }
        }
    });
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&REGISTRY.0.gather(), &mut out) {
        log::warn!("metrics: encoding failed: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(Some("tools/call")), "tools/call");
        assert_eq!(method_label(Some("x/evil-unbounded-123")), "other");
        assert_eq!(method_label(None), "-");
    }

    #[test]
    fn requests_are_counted_with_their_labels() {
        record_request(&Finished {
            route: "routing[0]",
            upstream: "unit-test-up",
            method: Some("tools/call"),
            status: 429,
            error: Some(("rate_limited", -32600, true)),
            sse: false,
            seconds: 0.002,
        });
        record_session("rejected", "unit_test_reason");
        record_reload(false);
        let guard = SseStream::start();
        let rt = crate::config::load_str(
            "server: {listen: 127.0.0.1:1}\nupstreams: [{name: a, url: http://127.0.0.1:9/mcp}]\nrouting: [{match: {method: \"*\"}, upstream: a}]\n",
            &|_| None,
        )
        .expect("config");
        let text = render(&rt.upstreams, &[]);
        drop(guard);
        for want in [
            r#"mcp_edge_requests_total{decision="deny",method="tools/call",route="routing[0]",status="429",upstream="unit-test-up"}"#,
            r#"mcp_edge_rate_limit_rejections_total{reason="rate_limited"}"#,
            r#"mcp_edge_jsonrpc_errors_total{code="-32600",reason="rate_limited"}"#,
            r#"mcp_edge_sessions_total{event="rejected",reason="unit_test_reason"}"#,
            r#"mcp_edge_config_reloads_total{result="failed"}"#,
            "mcp_edge_config_last_reload_successful 0",
            r#"mcp_edge_upstream_up{endpoint="http://127.0.0.1:9/mcp",upstream="a"}"#,
            "mcp_edge_request_duration_seconds_bucket",
            "mcp_edge_sse_streams_active",
            "mcp_edge_build_info",
        ] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
    }
}
