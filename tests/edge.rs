//! The edge's view of the client: forwarding headers are believed only from
//! trusted proxies, spoofing never moves the client address or its rate-limit
//! bucket, and upstreams get the gateway's own forwarding headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

#[test]
fn untrusted_peer_cannot_spoof_its_address() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&(simple_config(&up.url(), "") + "rate_limit: {default_rpm: 1}\n"));
    let r = post_json(
        g.port,
        LIST,
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=7.7.7.7"),
        ],
    );
    assert_eq!(r.status, 200);
    let h = &r.json()["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h.get("forwarded").is_none());
    // a different forged address does not buy a fresh rate-limit bucket
    let r = post_json(g.port, LIST, &[("X-Forwarded-For", "8.8.8.8")]);
    assert_eq!(r.status, 429);
    let lines = g.wait_access_lines(2);
    assert!(
        lines.iter().all(|l| l["client"] == "127.0.0.1"),
        "{lines:?}"
    );
}

#[test]
fn trusted_proxy_chain_names_the_client() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(
        &(simple_config(&up.url(), "  trust_proxy: [127.0.0.1/32, 10.0.0.0/8]")
            + "rate_limit: {default_rpm: 1}\n"),
    );
    // the left-most entry is forged by the client; 10.1.1.1 is one of ours
    let xff = ("X-Forwarded-For", "6.6.6.6, 198.51.100.4, 10.1.1.1");
    let r = post_json(g.port, LIST, &[xff, ("X-Forwarded-Proto", "https")]);
    assert_eq!(r.status, 200);
    let h = &r.json()["headers"];
    assert_eq!(h["x-forwarded-for"], "198.51.100.4");
    assert_eq!(h["x-forwarded-proto"], "https");
    // each real client has its own bucket behind the proxy
    assert_eq!(
        post_json(g.port, LIST, &[("X-Forwarded-For", "198.51.100.5")]).status,
        200
    );
    assert_eq!(
        post_json(g.port, LIST, &[("X-Forwarded-For", "198.51.100.4")]).status,
        429
    );
    let lines = g.wait_access_lines(3);
    assert_eq!(lines[0]["client"], "198.51.100.4");
    assert_eq!(lines[1]["client"], "198.51.100.5");
}

#[test]
fn trust_proxy_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, want) in [
        (
            "  trust_proxy: true",
            "server.trust_proxy: true would let any client forge",
        ),
        (
            "  trust_proxy: [10.0.0.0/8, not-an-ip]",
            "server.trust_proxy[1]",
        ),
        (
            "  trust_proxy: {proxies: [10.0.0.1], headers: {client_ip: \"bad header\"}}",
            "server.trust_proxy.headers.client_ip",
        ),
    ] {
        let f = dir.path().join("c.yaml");
        std::fs::write(
            &f,
            simple_config("http://127.0.0.1:9/mcp", extra)
                .replace("{PORT}", "7999")
                .replace("{DIR}", "/tmp"),
        )
        .unwrap();
        let out = std::process::Command::new(bin())
            .args(["validate", "-c"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra}: {err}");
        assert!(err.contains(want), "{extra}: {err}");
    }
    let f = dir.path().join("ok.yaml");
    std::fs::write(
        &f,
        simple_config(
            "http://127.0.0.1:9/mcp",
            "  trust_proxy: {proxies: [10.0.0.1, \"fd00::/8\"], headers: {client_ip: X-Real-IP}}",
        )
        .replace("{PORT}", "7999")
        .replace("{DIR}", "/tmp"),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["validate", "-c"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn host_allowlist_is_421_and_long_uris_414() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&simple_config(
        &up.url(),
        "  allowed_hosts: [mcp.example.com]\n  limits: {max_uri_bytes: 256}",
    ));
    // the test client sends Host: 127.0.0.1:<port>
    let r = post_json(g.port, LIST, &[]);
    assert_eq!(r.status, 421);
    assert_eq!(r.json()["error"]["code"], -32600);
    let allowed = format!(
        "POST /mcp HTTP/1.1\r\nHost: mcp.example.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        LIST.len()
    );
    let mut req = allowed.into_bytes();
    req.extend_from_slice(LIST);
    assert_eq!(raw(g.port, &req).unwrap().status, 200);
    let long = format!("/mcp?{}", "a".repeat(400));
    let r = request(g.port, "GET", &long, &[], b"").unwrap();
    assert_eq!(r.status, 414);
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
