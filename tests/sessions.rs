//! Sealed sessions (issue 6, first part) against a real MCP server
//! (`@modelcontextprotocol/server-everything`): the client only ever sees a
//! sealed token; it continues across a gateway restart and across two
//! gateway processes with the same keys; forged, other-principal and
//! rotated-out tokens get 404 and never reach the upstream; a token is no
//! credential.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

const K1: &str = "session-key-one-0123456789abcdefghijkl";
const K2: &str = "session-key-two-0123456789abcdefghijkl";

/// Alice's and Bob's API keys; sessions sealed with `keys`.
fn config(upstream: &str, keys: &[&str]) -> Config {
    Config::base(upstream)
        .api_keys([
            api_key("a", "key-alice-0123", "t", Some("alice")),
            api_key("b", "key-bob-012345", "t", Some("bob")),
        ])
        .sessions(keys)
}

const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"sessions-test","version":"1"}}}"#;
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
const V: (&str, &str) = ("MCP-Protocol-Version", "2025-11-25");

fn list(g: &Gateway, key: &str, token: &str) -> Response {
    post_json(
        g.port,
        LIST,
        &[("X-API-Key", key), ("Mcp-Session-Id", token), V],
    )
}

/// initialize + notifications/initialized through `g`; the sealed token.
fn initialize(g: &Gateway, key: &str) -> String {
    let r = post_json(g.port, INIT, &[("X-API-Key", key)]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.header("mcp-session-id").expect("session id").to_string();
    let ok = post_json(
        g.port,
        INITIALIZED,
        &[("X-API-Key", key), ("Mcp-Session-Id", &token), V],
    );
    assert_eq!(ok.status, 202);
    token
}

fn lists_tools(r: &Response) -> bool {
    r.status == 200 && String::from_utf8_lossy(&r.body).contains("\"echo\"")
}

#[test]
fn sealed_sessions_survive_restarts_span_processes_and_refuse_forgeries() {
    let peer = Peer::everything();
    let g1 = Gateway::start(&config(&peer.url(), &[K1]));
    let token = initialize(&g1, "key-alice-0123");
    assert!(token.starts_with('1') && token.len() < 200, "{token}");
    assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    assert!(lists_tools(&list(&g1, "key-alice-0123", &token)));

    // forged: every refusal is a 404 JSON-RPC error (the client re-initializes)
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 5;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for (key, tok) in [
        ("key-alice-0123", forged.as_str()),
        ("key-alice-0123", "3f2c6f1e-8a0b-4c55-9d8e-0d6c1b7a9e21"),
        ("key-alice-0123", &token[..token.len() - 3]),
        // another principal's token
        ("key-bob-012345", token.as_str()),
    ] {
        let r = list(&g1, key, tok);
        assert_eq!(r.status, 404, "{tok}");
        assert_eq!(r.json()["error"]["code"], -32600);
    }
    // a token is not a credential
    let r = post_json(g1.port, LIST, &[("Mcp-Session-Id", &token), V]);
    assert_eq!(r.status, 401);

    // restart with the same keys: the session continues
    drop(g1);
    let g2 = Gateway::start(&config(&peer.url(), &[K1]));
    assert!(lists_tools(&list(&g2, "key-alice-0123", &token)));
    // a second process with the new key first (rotation): both serve it, alternately
    let g3 = Gateway::start(&config(&peer.url(), &[K2, K1]));
    for _ in 0..3 {
        assert!(lists_tools(&list(&g2, "key-alice-0123", &token)));
        assert!(lists_tools(&list(&g3, "key-alice-0123", &token)));
    }
    // the rotated gateway seals new sessions with K2; K1 dropped = old tokens refused
    let r = post_json(g3.port, INIT, &[("X-API-Key", "key-bob-012345")]);
    let bob = r.header("mcp-session-id").expect("session id").to_string();
    let g4 = Gateway::start(&config(&peer.url(), &[K2]));
    assert_eq!(list(&g4, "key-alice-0123", &token).status, 404);
    let init = post_json(
        g4.port,
        INITIALIZED,
        &[("X-API-Key", "key-bob-012345"), ("Mcp-Session-Id", &bob), V],
    );
    assert_eq!(init.status, 202);
    assert!(lists_tools(&list(&g4, "key-bob-012345", &bob)));
    // the audit/access log names the refusal
    let lines = g4.wait_access_lines(1);
    assert!(
        lines.iter().any(|l| l["error"] == "session_not_opened"),
        "{lines:?}"
    );
}

/// An upstream that restarted has forgotten its sessions; server-everything
/// answers `400 No valid session ID provided`. The client gets 404 (so the
/// SDK re-initializes), the audit names the reason, and a new session works.
#[test]
fn an_upstream_that_forgot_the_session_gets_the_client_a_404() {
    let peer = Peer::everything();
    let port = peer.reservation();
    let g = Gateway::start(&config(&peer.url(), &[K1]));
    let token = initialize(&g, "key-alice-0123");
    assert!(lists_tools(&list(&g, "key-alice-0123", &token)));
    // the same upstream restarted on its port: the session id means nothing to it
    drop(peer);
    let _peer = Peer::everything_on(port);
    let r = list(&g, "key-alice-0123", &token);
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["error"]["code"].is_i64(), "{}", r.json());
    let lines = g.wait_access_lines(4);
    assert!(
        lines
            .iter()
            .any(|l| l["status"] == 404 && l["error"] == "session_refused_upstream"),
        "{lines:?}"
    );
    // what the client does next: a new session on the restarted upstream
    let fresh = initialize(&g, "key-alice-0123");
    assert!(lists_tools(&list(&g, "key-alice-0123", &fresh)));
}
