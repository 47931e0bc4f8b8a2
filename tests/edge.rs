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
    let g =
        Gateway::start(&Config::base(&up.url()).insert("rate_limit", json!({"default_rpm": 1})));
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
        &Config::base(&up.url())
            .insert("server.trust_proxy", ["127.0.0.1/32", "10.0.0.0/8"])
            .insert("rate_limit", json!({"default_rpm": 1})),
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
fn ipv4_clients_of_an_ipv6_socket_are_matched_as_ipv4() {
    // a socket bound to ::ffff:127.0.0.1 takes IPv4 connections and sees
    // its peers as ::ffff:127.0.0.1, like a dual-stack [::] listener does
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(
        &Config::base(&up.url())
            .insert("server.trust_proxy", ["127.0.0.1/32"])
            .set("server.listen", "[::ffff:127.0.0.1]:{PORT}"),
    );
    let r = post_json(g.port, LIST, &[("X-Forwarded-For", "198.51.100.9")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "198.51.100.9");
    let r = post_json(g.port, LIST, &[]);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "127.0.0.1");
    let lines = g.wait_access_lines(2);
    assert_eq!(lines[0]["client"], "198.51.100.9");
    let direct = lines[1]["client"].as_str().unwrap_or_default();
    assert!(direct.starts_with("127.0.0.1"), "{direct}");
}

#[test]
fn trust_proxy_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = |trust_proxy: &str| {
        Config::base("http://127.0.0.1:9/mcp")
            .insert("server.trust_proxy", yaml(trust_proxy))
            .with_port(7999)
            .with_dir("/tmp")
    };
    for (extra, want) in [
        (
            "true",
            "server.trust_proxy: true would let any client forge",
        ),
        ("[10.0.0.0/8, not-an-ip]", "server.trust_proxy[1]"),
        (
            "{proxies: [10.0.0.1], headers: {client_ip: \"bad header\"}}",
            "server.trust_proxy.headers.client_ip",
        ),
    ] {
        let f = dir.path().join("c.yaml");
        config(extra).write(&f);
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
    config("{proxies: [10.0.0.1, \"fd00::/8\"], headers: {client_ip: X-Real-IP}}").write(&f);
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
    let g = Gateway::start(
        &Config::base(&up.url())
            .insert("server.allowed_hosts", ["mcp.example.com"])
            .insert("server.limits.max_uri_bytes", 256),
    );
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

/// A PROXY v2 LOCAL header (a balancer's own health check): keeps the peer.
const V2_LOCAL: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

fn pp_gateway(up: &Upstream, trusted: &str, probe: &[u8]) -> Gateway {
    Gateway::start_with_probe_prefix(
        &Config::base(&up.url()).insert(
            "proxy_protocol",
            json!({"enabled": true, "trusted_cidrs": [trusted], "header_timeout_ms": 500}),
        ),
        probe,
    )
}

fn send(port: u16, prefix: &[u8]) -> std::io::Result<Response> {
    let mut req = prefix.to_vec();
    req.extend_from_slice(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            LIST.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(LIST);
    raw(port, &req)
}

#[test]
fn proxy_protocol_from_a_trusted_balancer_names_the_client() {
    let up = Upstream::start(Mode::Echo);
    // (the harness's readiness probe came in with a v2 LOCAL header)
    let g = pp_gateway(&up, "127.0.0.1/32", V2_LOCAL);
    let r = send(g.port, b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "203.0.113.7");
    // v2, IPv6
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x21, 0x00, 36]);
    let mut src = [0u8; 16];
    src[0] = 0x20;
    src[1] = 0x01;
    src[2] = 0x0d;
    src[3] = 0xb8;
    src[15] = 9;
    v2.extend_from_slice(&src);
    v2.extend_from_slice(&[0u8; 16]);
    v2.extend_from_slice(&[0xc3, 0x50, 0x00, 0x50]);
    let r = send(g.port, &v2).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "2001:db8::9");
    // a trusted peer without a header, or with a broken one, is cut off
    assert!(send(g.port, b"").map(|r| r.status).is_err());
    assert!(send(g.port, b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n")
        .map(|r| r.status)
        .is_err());
    let lines = g.wait_access_lines(2);
    assert_eq!(lines[0]["client"], "203.0.113.7");
}

#[test]
fn proxy_protocol_from_an_untrusted_peer_is_refused() {
    let up = Upstream::start(Mode::Echo);
    let g = pp_gateway(&up, "10.0.0.0/8", b"");
    // plain HTTP from an untrusted peer is served as is
    let r = send(g.port, b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "127.0.0.1");
    // but it may not name its own address
    assert!(
        send(g.port, b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\n")
            .map(|r| r.status)
            .is_err()
    );
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Connects from a chosen loopback source address (127.0.0.2, 127.0.0.3:
/// Linux routes all of 127/8 to lo, no namespace needed).
fn connect_from(src: &str, port: u16) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{src}:0").parse().unwrap()).unwrap();
        let stream = s
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std
    })
}

fn exchange(mut s: std::net::TcpStream, prefix: &[u8]) -> std::io::Result<Response> {
    use std::io::Write;
    let mut req = prefix.to_vec();
    req.extend_from_slice(
        format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            LIST.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(LIST);
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    s.write_all(&req)?;
    read_response(&mut std::io::BufReader::new(s))
}

#[test]
fn proxy_protocol_trusted_127_0_0_2_versus_untrusted_127_0_0_3() {
    let up = Upstream::start(Mode::Echo);
    // the readiness probe comes from 127.0.0.1: untrusted, plain HTTP is fine
    let g = pp_gateway(&up, "127.0.0.2/32", b"");
    let header = b"PROXY TCP4 198.51.100.23 10.0.0.1 40000 443\r\n";
    // trusted balancer: the header names the client
    let r = exchange(connect_from("127.0.0.2", g.port), header).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "198.51.100.23");
    // trusted balancer without a header: closed
    assert!(exchange(connect_from("127.0.0.2", g.port), b"").is_err());
    // untrusted peer with a header: closed, nothing forwarded
    let before = up.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(exchange(connect_from("127.0.0.3", g.port), header).is_err());
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), before);
    // untrusted peer, plain HTTP: served as itself
    let r = exchange(connect_from("127.0.0.3", g.port), b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-forwarded-for"], "127.0.0.3");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let refused: Vec<String> = g
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "connection")
        .map(|v| format!("{} {}", v["client"], v["error"]))
        .collect();
    assert!(
        refused.contains(&"\"127.0.0.3\" \"proxy_header_untrusted\"".to_string()),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.starts_with("\"127.0.0.2\" \"proxy_header_")),
        "{refused:?}"
    );
}
