# mcp-edge developer entry points. `make help` lists them.
#
# Builds link the system OpenSSL (OPENSSL_NO_VENDOR=1) and keep the target
# directory outside the checkout so repeated (CI) builds are incremental.

export OPENSSL_NO_VENDOR := 1
export CARGO_TARGET_DIR ?= $(HOME)/.cache/mcp-edge/target
CARGO ?= cargo
BIN_DEBUG := $(CARGO_TARGET_DIR)/debug/mcp-edge
BIN_RELEASE := $(CARGO_TARGET_DIR)/release/mcp-edge
BENCH_SECS ?= 10
BENCH_REPEAT ?= 3
FANOUT_REQUESTS ?= 200
FUZZ_SECS ?= 300
SSE_STREAMS ?= 20000
STDIO_SESSIONS ?= 500
SOAK_SLOWLORIS ?= 5000
FUZZ_TARGET_DIR ?= $(HOME)/.cache/mcp-edge/fuzz-target

.PHONY: help deps peers build release run demo upgrade-demo test vendor-test vendor-check lint supply-chain fmt bench bench-micro bench-load bench-sse bench-fanout bench-stdio soak fuzz deb rpm package-check clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

deps: ## install system packages and test peers (Debian; needs root for apt)
	scripts/deps.sh

peers: ## install the npm and PyPI test peers only
	scripts/deps.sh --peers-only

build: ## debug build
	$(CARGO) build

release: ## optimised build
	$(CARGO) build --release

run: release ## run with conf/mcp-edge.yaml
	$(BIN_RELEASE) run -c conf/mcp-edge.yaml

demo: ## gateway in front of @modelcontextprotocol/server-everything on loopback
	scripts/demo.sh

upgrade-demo: ## three zero-downtime binary upgrades under wrk load (0 failed requests)
	scripts/upgrade-demo.sh

test: deps ## every test (unit, integration with real MCP peers)
	# the slowloris test holds 1000+ sockets: use the hard open-file limit
	ulimit -n $$(ulimit -Hn) 2>/dev/null || true; $(CARGO) test --all-targets --features contracts

vendor-test: ## the vendored pingora-core's own HTTP/1 unit tests (Pingora's and the patch's), after changing vendor/
	scripts/vendor-tests.sh

vendor-check: ## vendor/ is exactly the crates.io Pingora sources plus vendor/patches/* in order (diff otherwise)
	scripts/vendor-check.sh

lint: ## rustfmt and clippy (-D warnings)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features contracts -- -D warnings

supply-chain: ## cargo-deny (offline advisories, bans, licenses, sources: deny.toml) and cargo-machete
	scripts/supply-chain.sh

fmt: ## format the code
	$(CARGO) fmt --all

bench: bench-micro bench-load bench-sse bench-fanout bench-stdio ## criterion hot paths, wrk load vs direct and nginx, idle SSE memory vs nginx, virtual-server fan-out, memory per idle stdio session

bench-micro: ## criterion benches of the hot paths
	$(CARGO) bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3

bench-load: release ## wrk load: direct upstream, nginx proxy, bare Pingora, mcp-edge, a federated call, a call under tool_limits (ratios)
	scripts/deps.sh --system-only
	$(CARGO) build --release --example bare-pingora
	benches/load.py --gateway $(BIN_RELEASE) --bare $(CARGO_TARGET_DIR)/release/examples/bare-pingora --duration $(BENCH_SECS) --redis --sessions --jwt --tls --federated --tool-limits --repeat $(BENCH_REPEAT)

bench-stdio: release ## gateway memory per idle stdio session (STDIO_SESSIONS, 500, processes the gateway runs)
	benches/stdio_memory.py --gateway $(BIN_RELEASE) --sessions $(STDIO_SESSIONS)

bench-fanout: release ## virtual-server tools/list over three members of known latency, all healthy and one slow
	benches/fanout.py --gateway $(BIN_RELEASE) --requests $(FANOUT_REQUESTS)

bench-sse: release ## memory per idle SSE stream, mcp-edge vs nginx vs bare Pingora, SSE_STREAMS (20000) open at once (root: raises the fd limit)
	scripts/deps.sh --system-only
	$(CARGO) build --release --example bare-pingora
	benches/sse_memory.py --gateway $(BIN_RELEASE) --bare $(CARGO_TARGET_DIR)/release/examples/bare-pingora --streams $(SSE_STREAMS)

soak: ## the longer abuse runs: SOAK_SLOWLORIS (5000) slowloris connections at the shipped limits
	ulimit -n $$(ulimit -Hn) 2>/dev/null || true; MCP_EDGE_SLOWLORIS=$(SOAK_SLOWLORIS) $(CARGO) test --test limits slowloris -- --nocapture

fuzz: ## run every cargo-fuzz target for FUZZ_SECS each (stable toolchain, -s none)
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $$($(CARGO) fuzz list); do \
		$(CARGO) fuzz run $$t -s none --target-dir $(FUZZ_TARGET_DIR) -- -max_total_time=$(FUZZ_SECS) || exit 1; \
	done

deb: release ## .deb package (cargo-deb) in $(CARGO_TARGET_DIR)/debian/
	scripts/package-tools.sh
	scripts/package-build.sh deb release $(CARGO_TARGET_DIR)/debian

rpm: release ## .rpm package (cargo-generate-rpm) in $(CARGO_TARGET_DIR)/generate-rpm/
	scripts/package-tools.sh
	scripts/package-build.sh rpm release $(CARGO_TARGET_DIR)/generate-rpm

package-check: ## build the .deb (debug binary), install, validate, start, upgrade, purge; check the .rpm (root)
	scripts/package-check.sh --profile dev

clean:
	$(CARGO) clean
