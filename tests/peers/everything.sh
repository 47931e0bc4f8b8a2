#!/usr/bin/env bash
# Starts @modelcontextprotocol/server-everything (Streamable HTTP, /mcp) on
# 127.0.0.1:$1 (default 3001). Needs `npm ci` in tests/peers first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PORT=${1:-3001}
exec node -r "$here/loopback.cjs" "$here/node_modules/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp
