#!/usr/bin/env bash
# Starts @modelcontextprotocol/server-everything in Streamable HTTP mode
# (MCP on /mcp: POST, GET stream, DELETE; session-era only) on 127.0.0.1:$1
# (default 3001). The port comes from env PORT (read by the package's
# dist/transports/streamableHttp.js); loopback.cjs pins the bind to 127.0.0.1
# and prints `READY <port>` on stdout. Needs `npm ci` in tests/peers first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PORT=${1:-3001}
exec node -r "$here/loopback.cjs" "$here/node_modules/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp
