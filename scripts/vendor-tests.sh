#!/usr/bin/env bash
# The vendored pingora-core's own unit tests for the HTTP/1 code our patch
# touches (protocols::http::v1: Pingora's tests plus the patch's), run on a
# copy outside this workspace (cargo will not build a non-member path crate
# as a package of its own inside it). Run it after changing vendor/pingora-core.
# Resolves pingora-core's dev-dependencies (reqwest, hyper, rustls, ...) from
# crates.io, so it is not part of .ci/run; the patch's behaviour is covered
# end to end there by tests/body_sizes.rs, tests/faults.rs and tests/sse.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
export CARGO_TARGET_DIR="${VENDOR_TARGET_DIR:-$HOME/.cache/mcp-edge/target-vendor}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r vendor/pingora-core "$work/pingora-core"
cd "$work/pingora-core"
cargo test --lib --no-default-features --features openssl -- protocols::http::v1
