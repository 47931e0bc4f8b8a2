//! The CLI: `validate` (every shipped config, and every problem listed with
//! its YAML path), `routes`, `health`, `hash-key`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;

fn mcp_edge(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("MCP_MATH_TOKEN", "test-token")
        .env(
            "MCP_EDGE_SESSION_KEY",
            "a-test-session-key-of-32-characters-or-more",
        )
        .output()
        .expect("run mcp-edge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn yaml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read conf dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_shipped_config_validates() {
    let mut files = Vec::new();
    yaml_files(&root().join("conf"), &mut files);
    yaml_files(&root().join("packaging"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    // the packaged config logs to /var/log/mcp-edge, which the package
    // creates; here that directory (and /var/lib/mcp-edge) is a temporary one
    let logs = tempfile::tempdir().expect("tmp");
    for shipped in files {
        let mut cfg = Config::load(&shipped);
        let packaged = cfg
            .try_get("audit.path")
            .and_then(|p| p.as_str()?.strip_prefix("/var/log/mcp-edge/"))
            .map(str::to_string);
        if let Some(name) = packaged {
            cfg = cfg.set("audit.path", logs.path().join(name));
        }
        // and keeps tool pins in /var/lib/mcp-edge, which the package creates too
        let pins = cfg
            .try_get("tool_integrity.pins_file")
            .and_then(|p| p.as_str()?.strip_prefix("/var/lib/mcp-edge/"))
            .map(str::to_string);
        if let Some(name) = pins {
            cfg = cfg.set("tool_integrity.pins_file", logs.path().join(name));
        }
        let f = logs.path().join(shipped.file_name().expect("file name"));
        cfg.write(&f);
        let (code, out, err) = mcp_edge(&["validate", "-c", &f.display().to_string()]);
        assert_eq!(code, 0, "{}: {out}{err}", shipped.display());
        let (code, out, err) = mcp_edge(&["routes", "-c", &f.display().to_string()]);
        assert_eq!(code, 0, "{}: {out}{err}", shipped.display());
    }
}

#[test]
fn validate_lists_every_problem_with_its_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        r#"
server:
  listen: 127.0.0.1:7332
  limits: {max_json_depth: 0}
upstreams:
  - name: a
    url: http://127.0.0.1:9/mcp
    colour: blue
  - name: b
    url: gopher://x
routing:
  - match: {method: "*"}
    upstream: mcp-kb
"#,
    )
    .expect("write");
    let (code, _out, err) = mcp_edge(&["validate", "-c", &f.display().to_string()]);
    assert_eq!(code, 1);
    for want in [
        "server.limits.max_json_depth",
        "upstreams[0].colour: unknown field",
        "upstreams[1].url",
        "routing[0].upstream: unknown upstream \"mcp-kb\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let (code, _, err) = mcp_edge(&["validate", "-c", "/nonexistent.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"));
}

#[test]
fn routes_prints_the_rule_table() {
    let f = root().join("conf/examples/routing-table.yaml");
    let (code, out, err) = mcp_edge(&["routes", "-c", &f.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].contains("tools/call")
            && lines[1].contains("math.*")
            && lines[1].contains("mcp-math"),
        "{out}"
    );
    assert!(lines[2].contains("mcp-main"), "{out}");
    assert!(
        out.contains("GET streams, DELETE and JSON-RPC responses go to: mcp-main"),
        "{out}"
    );
}

#[test]
fn health_reports_a_running_gateway() {
    let up = Upstream::start(Mode::Echo);
    let g = Gateway::start(&Config::base(&up.url()));
    let (code, out, _) = mcp_edge(&["health", "--url", &format!("http://{}/health", g.addr())]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ready"));
    let conf = g.dir.path().join("gw.yaml").display().to_string();
    assert_eq!(mcp_edge(&["health", "-c", &conf]).0, 0);
    let dead = Port::reserve();
    assert_eq!(
        mcp_edge(&[
            "health",
            "--url",
            &format!("http://127.0.0.1:{dead}/health")
        ])
        .0,
        1
    );
}

#[test]
fn hash_key_prints_sha256() {
    let (code, out, _) = mcp_edge(&["hash-key", "dev_key_1"]);
    assert_eq!(code, 0);
    use sha2::{Digest, Sha256};
    let want: String = Sha256::digest(b"dev_key_1")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(out.trim(), format!("sha256:{want}"));
}
