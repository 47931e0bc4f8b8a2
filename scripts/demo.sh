#!/usr/bin/env bash
# `make demo`: mcp-edge from the shipped demo config (conf/examples/demo.yaml,
# 127.0.0.1:7332) in front of a real MCP server, @modelcontextprotocol/server-everything
# (Streamable HTTP on 127.0.0.1:3001). Installs what it needs, runs a real MCP
# client through the gateway once, then keeps both running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mcp-edge/target}

scripts/deps.sh
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/mcp-edge"
"$bin" validate -c conf/examples/demo.yaml

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

tests/peers/everything.sh 3001 > /tmp/mcp-edge-demo-everything.log 2>&1 &
pids+=($!)
"$bin" run -c conf/examples/demo.yaml 2> /tmp/mcp-edge-demo-gateway.log &
pids+=($!)

for _ in $(seq 100); do
  if "$bin" health --url http://127.0.0.1:7332/health >/dev/null 2>&1 \
     && (exec 3<>/dev/tcp/127.0.0.1/3001) 2>/dev/null; then break; fi
  sleep 0.1
done

echo
echo "== mcp-edge is serving MCP on http://127.0.0.1:7332/mcp -> server-everything on 127.0.0.1:3001"
echo "== a real MCP client (TypeScript SDK) through the gateway:"
node tests/peers/ts_client.mjs http://127.0.0.1:7332/mcp --server everything
echo
cat <<'TXT'
== Try it yourself:
  curl -s http://127.0.0.1:7332/mcp -H 'Content-Type: application/json' \
       -H 'Accept: application/json, text/event-stream' \
       -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' -i
  curl -s http://127.0.0.1:7332/mcp -H 'Content-Type: application/json' -d '{not json'      # 400 / -32700
  curl -s http://127.0.0.1:7333/metrics -H 'Authorization: Bearer demo-admin-token-change-me' | grep mcp_edge_requests_total
  npx @modelcontextprotocol/inspector   # then connect to http://127.0.0.1:7332/mcp (Streamable HTTP)
Access log: /tmp/mcp-edge-demo-gateway.log     Ctrl-C stops both.
TXT
wait
