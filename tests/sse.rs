//! SSE passes through event by event, unbuffered and untouched (`id:`,
//! `retry:` lines kept), for POST responses and GET listen streams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::Duration;

const CALL: &[u8] =
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{}}}"#;

fn check_timing(events: &[(Duration, String)], n: usize, gap: Duration) {
    assert_eq!(events.len(), n, "{events:?}");
    for (i, (at, ev)) in events.iter().enumerate() {
        assert!(ev.contains(&format!("id: ev-{i}\n")), "{ev}");
        assert!(ev.contains("retry: 1500\n"), "{ev}");
        assert!(ev.contains("\"progress\":"), "{ev}");
        if i > 0 {
            let delta = *at - events[i - 1].0;
            // each event arrives when it is sent, not batched with the next
            assert!(
                delta > gap / 2 && delta < gap * 2,
                "event {i} arrived {delta:?} after the previous one (sent {gap:?} apart)"
            );
        }
    }
}

#[test]
fn post_response_stream_is_not_buffered() {
    let gap = Duration::from_millis(300);
    let up = Upstream::start(Mode::Sse { n: 5, gap });
    // a tool under a size bound and a timeout (tool_limits): its events are
    // counted, not held
    let g = Gateway::start(&Config::base(&up.url()).insert(
        "tool_limits",
        yaml(r#"[{tools: ["*"], max_response_bytes: 1048576, timeout_ms: 60000}]"#),
    ));
    let (resp, events) = sse_events(
        g.port,
        "POST",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        CALL,
    );
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream")));
    assert!(resp.header("content-encoding").is_none());
    check_timing(&events, 5, gap);
    let lines = g.wait_access_lines(1);
    assert_eq!(
        lines.last().map(|l| l["sse"].clone()),
        Some(serde_json::json!(true))
    );
}

#[test]
fn get_listen_stream_forwards_session_and_last_event_id() {
    let gap = Duration::from_millis(250);
    let up = Upstream::start(Mode::Sse { n: 4, gap });
    const KEY: &str = "test-session-key-0123456789abcdefghij";
    let g = Gateway::start(&Config::base(&up.url()).sessions(&[KEY]));
    // a token sealed by "another replica" with the same key (this test)
    let keys =
        mcp_edge::session::SessionKeys::new(&[KEY.to_string()], Duration::from_secs(3600)).unwrap();
    let token = keys
        .seal(&mcp_edge::session::Owner {
            upstream: "up".into(),
            // the endpoint identity: host:port and path as configured
            endpoint: up.url().trim_start_matches("http://").to_string(),
            session: "sess-7".into(),
            principal: mcp_edge::session::principal_digest("anonymous", "127.0.0.1"),
            issued: mcp_edge::base::clock::now_secs(),
        })
        .unwrap();
    let (resp, events) = sse_events(
        g.port,
        "GET",
        &[
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", &token),
            ("Last-Event-ID", "ev-3"),
            ("MCP-Protocol-Version", "2025-11-25"),
            ("Cookie", "session=secret"),
        ],
        b"",
    );
    assert_eq!(resp.status, 200);
    check_timing(&events, 4, gap);
    let seen = up.seen.lock().expect("seen");
    let h = seen.last().expect("upstream saw the GET");
    let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("mcp-session-id"), Some("sess-7"));
    assert_eq!(get("last-event-id"), Some("ev-3"));
    assert_eq!(get("mcp-protocol-version"), Some("2025-11-25"));
    assert_eq!(get("cookie"), None);
}

/// `timeout_ms` bounds the wait for a response header, not an open SSE
/// stream: a POST answered with SSE may be silent longer than `timeout_ms`
/// between events, up to `sse_idle_timeout_ms`.
#[test]
fn post_sse_stream_outlives_the_response_timeout_up_to_the_idle_timeout() {
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let gap = Duration::from_millis(700);
    let up = Upstream::start(Mode::Sse { n: 3, gap });
    let g = Gateway::start(
        &Config::base(&up.url())
            .set("upstreams[0].timeout_ms", 300)
            .insert("upstreams[0].sse_idle_timeout_ms", 5000),
    );
    let (resp, events) = sse_events(g.port, "POST", &headers, CALL);
    assert_eq!(resp.status, 200);
    check_timing(&events, 3, gap);
    // a silence longer than the idle timeout still ends the stream
    let slow = Upstream::start(Mode::Sse {
        n: 3,
        gap: Duration::from_millis(1500),
    });
    let g2 = Gateway::start(
        &Config::base(&slow.url())
            .set("upstreams[0].timeout_ms", 300)
            .insert("upstreams[0].sse_idle_timeout_ms", 700),
    );
    let (resp, events) = sse_events(g2.port, "POST", &headers, CALL);
    assert_eq!(resp.status, 200);
    assert!(events.len() < 3, "{events:?}");
}
