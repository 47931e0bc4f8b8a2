//! Shared rate limits through a real `redis-server` on a loopback port: two
//! gateway processes enforce one limit together; Redis unreachable at startup
//! refuses to start; Redis stopped mid-run follows `on_error`; Redis back
//! restores the shared limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start(port: u16) -> Redis {
        assert!(
            have("redis-server"),
            "redis-server is needed (scripts/deps.sh installs it)"
        );
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { port, child }
    }
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Ten requests a minute, counted in the Redis on `redis_port` under `prefix`.
fn config(up: &Upstream, redis_port: u16, on_error: &str, prefix: &str) -> Config {
    Config::base(&up.url()).insert(
        "rate_limit",
        json!({
            "key_prefix": prefix,
            "default_rpm": 10,
            "redis": {"url": format!("redis://127.0.0.1:{redis_port}"), "timeout_ms": 200, "on_error": on_error},
        }),
    )
}

const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#;

#[test]
fn two_gateways_share_one_limit_and_follow_on_error() {
    let reserved = Port::reserve();
    let mut redis = Redis::start(reserved.get());
    let up = Upstream::start(Mode::Echo);
    let a = Gateway::start(&config(&up, redis.port, "local", "t1"));
    let b = Gateway::start(&config(&up, redis.port, "local", "t1"));
    // 10 per minute for the anonymous identity (127.0.0.1), across both processes
    let statuses: Vec<u16> = (0..16)
        .map(|i| post_json(if i % 2 == 0 { a.port } else { b.port }, LIST, &[]).status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");

    // Redis goes away: on_error local -> each process limits on its own
    redis.stop();
    let r = post_json(a.port, LIST, &[]);
    assert_eq!(r.status, 200, "local fallback serves");
    assert!(
        a.log_text().contains("rate limit: Redis"),
        "failure is logged"
    );

    // Redis comes back on the same port: shared limits again within seconds
    let port = redis.port;
    let _redis2 = Redis::start(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut shared_again = false;
    while Instant::now() < deadline {
        post_json(b.port, LIST, &[]);
        // the gateway writes its bucket into the new Redis once it reconnected
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &port.to_string(),
                "exists",
                "t1:rate:9:anonymous9:127.0.0.11:*",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "1" {
            shared_again = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(shared_again, "shared limits did not come back");
    // use the shared bucket up through b; a then sees it used up too
    let mut last = 200;
    for _ in 0..12 {
        last = post_json(b.port, LIST, &[]).status;
    }
    assert_eq!(last, 429);
    assert_eq!(post_json(a.port, LIST, &[]).status, 429);
}

#[test]
fn on_error_deny_answers_503_and_unreachable_redis_refuses_to_start() {
    let reserved = Port::reserve();
    let mut redis = Redis::start(reserved.get());
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&config(&up, redis.port, "deny", "t2"));
    assert_eq!(post_json(g.port, LIST, &[]).status, 200);
    redis.stop();
    let r = post_json(g.port, LIST, &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], -32603);
    assert_eq!(r.json()["id"], 3);

    // a gateway whose Redis is down at startup exits with a clear error
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gw.yaml");
    let dead = Port::reserve();
    let port = Port::reserve();
    config(&up, dead.get(), "local", "t3")
        .with_port(port.get())
        .with_dir(dir.path())
        .write(&conf);
    let out = Command::new(bin())
        .args(["run", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Redis is unreachable at startup"), "{err}");
}
