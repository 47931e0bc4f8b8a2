//! Bodies of every size up to the limit reach the upstream byte-exact, over
//! HTTP/1.1 and HTTP/2 (h2c) downstreams. Pingora alone drops bodies past its
//! 64 KiB retry buffer; this is what the vendored patch fixes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::process::Command;

const SIZES: [usize; 5] = [1024, 63 * 1024, 64 * 1024 + 1, 65 * 1024, 1024 * 1024];

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn http1_bodies_arrive_intact() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&Config::base(&up.url()));
    for size in SIZES {
        let body = tools_call_of_size(size);
        let r = post_json(g.port, &body, &[]);
        assert_eq!(r.status, 200, "size {size}");
        let j = r.json();
        assert_eq!(j["len"], size, "size {size}");
        assert_eq!(j["sha256"], sha(&body), "size {size}");
    }
}

#[test]
fn http1_keepalive_connection_carries_several_large_bodies() {
    use std::io::{BufReader, Write};
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&Config::base(&up.url()));
    let s = std::net::TcpStream::connect(("127.0.0.1", g.port)).expect("connect");
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    for size in [70 * 1024, 1024, 300 * 1024] {
        let body = tools_call_of_size(size);
        let head = format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        );
        w.write_all(head.as_bytes()).expect("head");
        w.write_all(&body).expect("body");
        let resp = read_response(&mut r).expect("response");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json()["sha256"], sha(&body), "size {size}");
    }
}

#[test]
fn http2_bodies_arrive_intact() {
    assert!(
        have("curl"),
        "curl is needed for the HTTP/2 test (.ci/run installs it)"
    );
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&Config::base(&up.url()));
    for size in SIZES {
        let body = tools_call_of_size(size);
        let f = g.dir.path().join(format!("body-{size}.json"));
        std::fs::write(&f, &body).expect("write body");
        let out = Command::new("curl")
            .args([
                "-s",
                "-m",
                "10",
                "--http2-prior-knowledge",
                "-H",
                "content-type: application/json",
            ])
            .arg("--data-binary")
            .arg(format!("@{}", f.display()))
            .args(["-w", "\n%{http_version} %{http_code}"])
            .arg(g.url())
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let (json, tail) = text.rsplit_once('\n').expect("curl output");
        assert_eq!(tail, "2 200", "size {size}: {text}");
        let j: serde_json::Value = serde_json::from_str(json).expect("json");
        assert_eq!(j["len"], size);
        assert_eq!(j["sha256"], sha(&body), "size {size}");
    }
}
