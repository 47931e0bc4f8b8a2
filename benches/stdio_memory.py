#!/usr/bin/env python3
"""Memory per idle stdio session on the gateway side (`make bench-stdio`,
issue 20): the relay, the process's pipe tasks and buffers, the session's
bookkeeping; the stdio server processes themselves are not counted.

Starts the release gateway with one `type: stdio` upstream whose command is
a tiny shell MCP server (answers `initialize`, then reads stdin forever),
opens one warm-up session, reads the gateway's RSS, opens --sessions (500)
more (initialize + notifications/initialized each, every answer checked),
waits --settle seconds, reads the RSS again and prints the difference per
session, with the gateway's thread and descriptor counts before and after.
Every loop is bounded (the session count, socket timeouts); the gateway is
stopped at the end (its processes with it).

Usage: benches/stdio_memory.py --gateway target/release/mcp-edge [--sessions 500]
       [--settle 2] [--json out.json]
"""
import argparse, http.client, json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import free_port, wait_port  # noqa: E402

SERVER = r'''read line
printf '%s\n' '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"sh","version":"1"}}}'
exec cat > /dev/null
'''
INIT = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def post(port, body, session=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if session:
        h["Mcp-Session-Id"] = session
    c.request("POST", "/mcp", body, h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("mcp-session-id"), data


def session(port):
    st, sid, body = post(port, INIT)
    assert st == 200 and sid and b"protocolVersion" in body, (st, body)
    st, _, _ = post(port, INITIALIZED, sid)
    assert st == 202, st
    return sid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--sessions", type=int, default=500)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="mcp-edge-stdio-bench-")
    server = os.path.join(d, "server.sh")
    with open(server, "w") as f:
        f.write(SERVER)
    port = free_port()
    conf = os.path.join(d, "gw.yaml")
    with open(conf, "w") as f:
        f.write(f"""server:
  listen: 127.0.0.1:{port}
  path: /mcp
  threads: 2
  pid_file: {d}/gw.pid
  upgrade_sock: {d}/gw.sock
auth: {{anonymous: true}}
policy:
  rules:
    - subject: {{tenant: "*"}}
      allow: {{methods: ["*"], tools: ["*"], resources: ["*"], prompts: ["*"]}}
upstreams:
  - name: sh
    type: stdio
    command: ["/bin/sh", "{server}"]
    max_processes: {a.sessions + 10}
    idle_timeout_secs: 3600
routing:
  - match: {{method: "*"}}
    upstream: sh
logging: {{level: warn}}
""")
    gw = subprocess.Popen([a.gateway, "run", "-c", conf], stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(d, "gw.log"), "w"))
    try:
        wait_port(port)
        session(port)
        time.sleep(a.settle)
        before = {"rss_kib": status(gw.pid, "VmRSS:"), "threads": status(gw.pid, "Threads:"), "fds": fds(gw.pid)}
        t0 = time.time()
        for _ in range(a.sessions):
            session(port)
        opened_s = time.time() - t0
        time.sleep(a.settle)
        after = {"rss_kib": status(gw.pid, "VmRSS:"), "threads": status(gw.pid, "Threads:"), "fds": fds(gw.pid)}
        per = (after["rss_kib"] - before["rss_kib"]) * 1024 / a.sessions
        out = {"sessions": a.sessions, "before": before, "after": after,
               "rss_bytes_per_session": round(per), "fds_per_session": (after["fds"] - before["fds"]) / a.sessions,
               "threads_added": after["threads"] - before["threads"], "open_seconds": round(opened_s, 2)}
        print(f"idle stdio sessions: {a.sessions} (opened in {opened_s:.1f} s)")
        print(f"gateway RSS: {before['rss_kib']} KiB -> {after['rss_kib']} KiB = {per / 1024:.1f} KiB per session")
        print(f"descriptors: {before['fds']} -> {after['fds']} ({out['fds_per_session']:.1f} per session: its stdin, stdout and stderr pipes)")
        print(f"threads: {before['threads']} -> {after['threads']}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=20)
        except subprocess.TimeoutExpired:
            gw.kill()


if __name__ == "__main__":
    main()
