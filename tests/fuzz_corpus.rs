//! The committed fuzz corpora (`fuzz/corpus/<target>/`: seeds, regression
//! inputs `regress-*`, and what `cargo fuzz cmin` kept) replayed through the
//! same contract functions the fuzz targets call, on every `cargo test`.
//! See docs/FUZZING.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

/// Runs `check` over every file of `fuzz/corpus/<target>`; at least `min` files.
fn replay(target: &str, min: usize, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: contract broken by {}", path.display());
        }
        n += 1;
    }
    assert!(n >= min, "corpus missing: {n} files in {}", dir.display());
}

#[test]
fn proxy_protocol_fuzz_corpus_replays() {
    replay(
        "proxy_protocol",
        10,
        mcp_edge::addr::proxy_protocol::check_contract,
    );
}

#[test]
fn jsonrpc_inspect_fuzz_corpus_replays() {
    replay("jsonrpc_inspect", 10, mcp_edge::jsonrpc::check_contract);
}

#[test]
fn trusted_proxy_fuzz_corpus_replays() {
    replay("trusted_proxy", 10, mcp_edge::addr::trusted::check_contract);
}

#[test]
fn session_open_fuzz_corpus_replays() {
    replay("session_open", 10, mcp_edge::session::check_contract);
}

#[test]
fn config_load_fuzz_corpus_replays() {
    replay("config_load", 10, mcp_edge::config::check_contract);
}

#[test]
fn uri_normalize_fuzz_corpus_replays() {
    replay("uri_normalize", 10, mcp_edge::uri::check_contract);
}

#[test]
fn answer_filter_fuzz_corpus_replays() {
    replay("answer_filter", 10, mcp_edge::answer::check_contract);
}

#[test]
fn federation_fuzz_corpus_replays() {
    replay("federation", 10, mcp_edge::federation::check_contract);
}
