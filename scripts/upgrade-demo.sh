#!/usr/bin/env bash
# `make upgrade-demo`: the zero-downtime binary upgrade, watched from outside.
# mcp-edge runs as a daemon (run -d, pid file) in front of a fast upstream
# (nginx `return 200` with an MCP JSON-RPC result) on loopback. Two wrk
# clients send tools/call POSTs for 40 s, one on kept-alive connections and
# one with `Connection: close`, while `mcp-edge upgrade` replaces the running
# process three times, 10 s apart. At the end wrk's error counters and the
# audit line count show what the upgrades cost: nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENSSL_NO_VENDOR=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mcp-edge/target}

scripts/deps.sh --system-only
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/mcp-edge"

tmp=$(mktemp -d /tmp/mcp-edge-upgrade-demo.XXXXXX)
up_port=7351 gw_port=7352 admin_port=7353
for p in $up_port $gw_port $admin_port; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
    echo "port $p is in use; stop what listens there first" >&2; exit 1
  fi
done

cleanup() {
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  for f in "$tmp"/gw.pid "$tmp"/gw.pid.old; do
    [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  pkill -f "mcp-edge run -u -d -c $tmp/gw.yaml" 2>/dev/null || true
  pkill -f "mcp-edge run -d -c $tmp/gw.yaml" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

mkdir -p "$tmp/nginx"
cat > "$tmp/nginx.conf" <<EOF
worker_processes 1; daemon on; pid $tmp/nginx.pid; error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http { access_log off;
  client_body_temp_path $tmp/nginx; proxy_temp_path $tmp/nginx; fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx; scgi_temp_path $tmp/nginx;
  server { listen 127.0.0.1:$up_port; location / {
    default_type application/json;
    return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}'; } } }
EOF
nginx -c "$tmp/nginx.conf" -p "$tmp"

cat > "$tmp/gw.yaml" <<EOF
server:
  listen: 127.0.0.1:$gw_port
  threads: 2
  grace_period_secs: 5
  pid_file: $tmp/gw.pid
  upgrade_sock: $tmp/gw.sock
admin: {listen: "127.0.0.1:$admin_port", token: upgrade-demo-admin-token}
auth:
  api_keys: [{id: demo, key: upgrade-demo-key, tenant: demo, client: wrk}]
policy:
  rules:
    - subject: {tenant: demo}
      allow: {methods: ["*"], tools: ["*"]}
audit: {path: $tmp/audit.jsonl, max_file_bytes: 4294967296}
upstreams: [{name: fast, url: "http://127.0.0.1:$up_port/mcp"}]
routing: [{match: {method: "*"}, upstream: fast}]
logging: {level: warn}
EOF
"$bin" validate -c "$tmp/gw.yaml" >/dev/null
"$bin" run -d -c "$tmp/gw.yaml" 2>>"$tmp/gw.log"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$gw_port/healthz" >/dev/null && break
  sleep 0.1
done

cat > "$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["X-API-Key"] = "upgrade-demo-key"
EOF

echo "== load: 40 s of tools/call, 8 kept-alive connections + 4 closing after each request"
wrk -t1 -c8 -d40s -s "$tmp/post.lua" "http://127.0.0.1:$gw_port/mcp" > "$tmp/wrk-keepalive.txt" &
wrk_ka=$!
wrk -t1 -c4 -d40s -s "$tmp/post.lua" -H "Connection: close" "http://127.0.0.1:$gw_port/mcp" > "$tmp/wrk-close.txt" &
wrk_close=$!

for round in 1 2 3; do
  sleep 10
  # to a file, not a pipe: the new daemon inherits the command's stdout
  "$bin" upgrade -c "$tmp/gw.yaml" > "$tmp/upgrade-$round.txt" 2>&1 || true
  echo "== upgrade $round: $(grep -v '^{' "$tmp/upgrade-$round.txt" | tail -1)"
done
wait "$wrk_ka" "$wrk_close"

summary() {
  local f=$1 name=$2 reqs errs non2xx
  reqs=$(awk '/requests in/ {print $1}' "$f")
  errs=$(grep -o 'Socket errors:.*' "$f" || echo "Socket errors: none")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$f")
  printf '%-11s %8s requests; %s; non-2xx responses: %s\n' "$name" "$reqs" "$errs" "${non2xx:-0}"
}
echo
summary "$tmp/wrk-keepalive.txt" keep-alive
summary "$tmp/wrk-close.txt" close
sleep 7 # the last replaced process drains, its audit lines are flushed
echo "audit lines: $(wc -l < "$tmp/audit.jsonl") (one per request: wrk's totals plus the requests wrk had in flight at its end)"
echo "serving pid: $(cat "$tmp/gw.pid"); gateway log: $tmp/gw.log"
