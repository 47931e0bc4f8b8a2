#!/usr/bin/env python3
"""Fan-out benchmark (`make bench-fanout`, issue 19): what a virtual server's
`tools/list` costs over three members of known latency.

Starts four scripted MCP members, a, b, c and a slow s (each its own process: a
threaded HTTP/1.1 server that answers `initialize` with an `Mcp-Session-Id`,
notifications with 202, and `tools/list` after a fixed delay, checking that
every request after `initialize` carries its own session id), and the
release gateway with two virtual servers over them:

  /healthy  members a, b, c answering tools/list after --delays (5,10,20 ms)
  /slow     members a, b and s, s answering after --slow-ms (2000 ms), past
            the virtual servers' member_timeout_ms (--timeout-ms, 200)

It initializes once per virtual server, then times --requests (200)
sequential tools/list requests on one kept-alive connection and prints
p50/p99. Expected: /healthy ≈ the slowest member's latency + ≤ 1 ms (the
overhead is printed against the slowest member measured directly, with the
same client, so the client's own cost cancels); /slow ≈ member_timeout_ms
(the slow member left out, the answer at the deadline with the other two
members' tools). Every answer is checked (HTTP 200, the merged tool names).

Usage: benches/fanout.py --gateway target/release/mcp-edge [--requests 200] [--delays 5,10,20]
       [--slow-ms 2000] [--timeout-ms 200] [--json out.json]
Every loop is bounded (request counts, socket timeouts); processes are killed at the end.
"""
import argparse, http.client, json, os, shutil, signal, socket, subprocess, sys, tempfile, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "bench-key-0123456789"


from load import free_port, wait_port  # noqa: E402  (the load bench's helpers)


# --- a member (run as `fanout.py --member TAG PORT DELAY_MS`) ----------------

def serve_member(tag, port, delay_ms):
    """A minimal session-era MCP server: `tools/list` answers after
    `delay_ms`, everything else at once."""
    session = f"sess-{tag}"

    class Member(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # header and body are two writes

        def log_message(self, *args):
            pass

        def reply(self, status, body=None, headers=()):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply(405, {"error": "no GET stream"})

        def do_DELETE(self):
            self.reply(200)

        def do_POST(self):
            msg = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            method, rid = msg.get("method"), msg.get("id")
            if method == "initialize":
                return self.reply(200, {"jsonrpc": "2.0", "id": rid, "result": {
                    "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                    "serverInfo": {"name": tag, "version": "1"}}}, [("Mcp-Session-Id", session)])
            if self.headers.get("Mcp-Session-Id") != session:
                return self.reply(400, {"jsonrpc": "2.0", "id": rid,
                                        "error": {"code": -32000, "message": "Bad Request: no valid session ID"}})
            if rid is None:
                return self.reply(202)
            if method == "tools/list":
                time.sleep(delay_ms / 1000)
                return self.reply(200, {"jsonrpc": "2.0", "id": rid, "result": {
                    "tools": [{"name": f"{tag}-tool", "inputSchema": {"type": "object"}}]}})
            self.reply(200, {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # the gateway gave up on a slow answer and closed the connection

    Server(("127.0.0.1", port), Member).serve_forever()


# --- the benchmark -------------------------------------------------------------

def gateway_conf(tmp, port, members, healthy, slow, timeout_ms):
    ups = "".join(f"  - name: {t}\n    url: http://127.0.0.1:{p}/mcp\n    timeout_ms: 5000\n"
                  for t, (p, _) in members.items())

    def vs(path, tags):
        ms = ", ".join(f"{{upstream: {t}, prefix: {t}}}" for t in tags)
        return (f"  - path: {path}\n    name: {path.strip('/')}\n    members: [{ms}]\n"
                f"    separator: \"__\"\n    prefix_mode: always\n    member_timeout_ms: {timeout_ms}\n")
    return f"""server:
  listen: 127.0.0.1:{port}
  path: /mcp
  threads: 1
  pid_file: {tmp}/gw.pid
  upgrade_sock: {tmp}/gw.sock
auth:
  api_keys: [{{id: bench, key: {KEY}, tenant: team}}]
upstreams:
{ups}routing:
  - match: {{method: "*"}}
    upstream: {healthy[0]}
policy:
  rules:
    - subject: {{tenant: team}}
      allow: {{methods: ["tools/*", initialize, ping, "notifications/*"], tools: ["*"]}}
sessions: {{keys: [bench-session-key-0123456789abcdefghij]}}
virtual_servers:
{vs("/healthy", healthy)}{vs("/slow", slow)}logging: {{level: info, format: json}}
"""


class Client:
    """One kept-alive connection; POSTs JSON-RPC and times each answer."""

    def __init__(self, port, path, headers):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.path, self.headers = path, headers

    def post(self, body):
        t0 = time.perf_counter()
        self.conn.request("POST", self.path, body, self.headers)
        r = self.conn.getresponse()
        data = r.read()
        return time.perf_counter() - t0, r, data

    def close(self):
        self.conn.close()


def list_body(i):
    return json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/list", "params": {}})


def initialize(port, path, notes=None):
    """initialize + notifications/initialized on a new connection; the
    client, with the session token. With `notes`, a failed first initialize
    is noted there and tried once more (a fresh gateway loads the system CA
    store on its first member request, inside member_timeout_ms)."""
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "X-API-Key": KEY}
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fanout.py", "version": "1"}}})
    for attempt in (1, 2):
        c = Client(port, path, h)
        dt, r, data = c.post(body)
        token = r.getheader("Mcp-Session-Id")
        if notes is not None:
            notes.append(f"{path} initialize #{attempt}: HTTP {r.status} in {dt * 1000:.1f} ms")
        if r.status == 200 and token:
            break
        c.close()
        if notes is None or attempt == 2:
            raise SystemExit(f"{path} initialize: HTTP {r.status}, token {token!r}: {data[:300]!r}")
    c.headers = dict(h, **{"Mcp-Session-Id": token, "MCP-Protocol-Version": "2025-11-25"})
    _, r, data = c.post('{"jsonrpc":"2.0","method":"notifications/initialized"}')
    if r.status != 202:
        raise SystemExit(f"{path} notifications/initialized: HTTP {r.status}: {data[:300]!r}")
    return c


def timed_lists(client, n, want, warmup=5):
    """n sequential tools/list on `client`; every answer must be 200 with
    exactly the tool names `want` (None: not checked). Returns the latencies
    (ms) and the wrong answers seen."""
    lat, wrong = [], []
    for i in range(warmup + n):
        dt, r, data = client.post(list_body(i + 1))
        names = None
        if r.status == 200:
            try:
                names = sorted(t["name"] for t in json.loads(data)["result"]["tools"])
            except (ValueError, KeyError, TypeError):
                pass
        if r.status != 200 or (want is not None and names != want):
            wrong.append(f"HTTP {r.status}: {data[:200]!r}")
        if i >= warmup:
            lat.append(dt * 1000)
    return lat, wrong


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--delays", default="5,10,20", help="tools/list delays (ms) of the three healthy members")
    ap.add_argument("--slow-ms", type=int, default=2000, help="the slow member's tools/list delay (ms)")
    ap.add_argument("--timeout-ms", type=int, default=200, help="member_timeout_ms of both virtual servers")
    ap.add_argument("--json", help="also write results here")
    a = ap.parse_args()
    delays = [int(d) for d in a.delays.split(",")]
    if len(delays) != 3:
        raise SystemExit("--delays: three members")
    if a.slow_ms <= a.timeout_ms:
        raise SystemExit("--slow-ms must exceed --timeout-ms")
    n = max(1, min(a.requests, 2000))
    tmp = tempfile.mkdtemp(prefix="mcp-edge-fanout-")
    members = {t: (free_port(), d) for t, d in zip("abc", delays)}
    members["s"] = (free_port(), a.slow_ms)
    procs = []
    try:
        for tag, (port, delay) in members.items():
            procs.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "--member", tag,
                                           str(port), str(delay)]))
        gw = free_port()
        open(f"{tmp}/gw.yaml", "w").write(gateway_conf(tmp, gw, members, ["a", "b", "c"], ["a", "b", "s"],
                                                        a.timeout_ms))
        procs.append(subprocess.Popen([a.gateway, "run", "-c", f"{tmp}/gw.yaml"],
                                      stderr=open(f"{tmp}/gw.log", "w")))
        for port, _ in members.values():
            wait_port(port)
        wait_port(gw)

        # each member directly, with the same client (initialize, then timed lists)
        direct = {}
        for tag, (port, delay) in members.items():
            c = initialize(port, "/mcp")
            k = n if tag != "s" else 3  # the slow one: a few, it takes slow_ms each
            lat, wrong = timed_lists(c, k, [f"{tag}-tool"], warmup=2 if tag != "s" else 0)
            c.close()
            if wrong:
                raise SystemExit(f"member {tag} directly: {wrong[0]}")
            direct[tag] = lat

        rows, notes = [], []
        for path, tags, want in (("/healthy", "abc", ["a__a-tool", "b__b-tool", "c__c-tool"]),
                                 ("/slow", "abs", ["a__a-tool", "b__b-tool"])):
            c = initialize(gw, path, notes)
            lat, wrong = timed_lists(c, n, want)
            c.close()
            rows.append({"path": path, "members": {t: members[t][1] for t in tags}, "requests": n,
                         "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "min_ms": min(lat), "max_ms": max(lat),
                         "wrong": len(wrong), "first_wrong": wrong[0] if wrong else None})
        # the gateway's own view: duration_ms of its access lines (the last n
        # tools/list lines per path; the log is written in background batches)
        time.sleep(0.5)
        own = {r["path"]: [] for r in rows}
        for line in open(f"{tmp}/gw.log"):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("type") == "access" and e.get("mcp_method") == "tools/list" and e.get("path") in own:
                own[e["path"]].append(e["duration_ms"])
        for r in rows:
            d = own[r["path"]][-n:]
            r["gateway_p50_ms"] = pct(d, 50) if d else None
            r["gateway_p99_ms"] = pct(d, 99) if d else None
        # what waiting for all three costs without a gateway: the per-request
        # maximum of the three direct series (independent samples)
        max3 = [max(x) for x in zip(direct["a"], direct["b"], direct["c"])]
        slowest = max("abc", key=lambda t: pct(direct[t], 50))

        print(f"\nvirtual server tools/list over three members, {n} sequential requests each, one kept-alive "
              f"connection, loopback; member_timeout_ms {a.timeout_ms}")
        hdr = (f"{'target':<26} {'delay ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'min ms':>8} {'max ms':>8} {'wrong':>5}"
               f"  {'in-gateway p50/p99 ms':>21}")
        print(hdr); print("-" * len(hdr))
        for tag, (port, delay) in members.items():
            lat = direct[tag]
            print(f"{'member ' + tag + ' directly':<26} {delay:>8} {pct(lat, 50):>8.3f} {pct(lat, 99):>8.3f} "
                  f"{min(lat):>8.3f} {max(lat):>8.3f} {0:>5}" + (f"   ({len(lat)} requests)" if tag == "s" else ""))
        print(f"{'max(a, b, c) directly':<26} {max(delays):>8} {pct(max3, 50):>8.3f} {pct(max3, 99):>8.3f} "
              f"{min(max3):>8.3f} {max(max3):>8.3f} {0:>5}")
        for r in rows:
            label = f"gateway {r['path']} ({','.join(r['members'])})"
            delay = max(r["members"].values()) if r["path"] == "/healthy" else a.timeout_ms
            print(f"{label:<26} {delay:>8} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['min_ms']:>8.3f} "
                  f"{r['max_ms']:>8.3f} {r['wrong']:>5}  "
                  + (f"{r['gateway_p50_ms']:>10.3f}/{r['gateway_p99_ms']:<10.3f}" if r["gateway_p50_ms"] else "-"))
        h, s = rows
        print(f"\n  all healthy: p50 {h['p50_ms']:.3f} ms = slowest member ({slowest}, measured directly) "
              f"{h['p50_ms'] - pct(direct[slowest], 50):+.3f} ms; = max of three measured directly "
              f"{h['p50_ms'] - pct(max3, 50):+.3f} ms; = its configured delay {h['p50_ms'] - max(delays):+.3f} ms "
              f"(p99 vs slowest directly {h['p99_ms'] - pct(direct[slowest], 99):+.3f} ms)")
        print(f"  (in-gateway: the access line's duration_ms, request read to answer written)")
        print(f"  one slow member ({a.slow_ms} ms): p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms "
              f"against the deadline {a.timeout_ms} ms: {s['p50_ms'] - a.timeout_ms:+.3f} / "
              f"{s['p99_ms'] - a.timeout_ms:+.3f} ms")
        print("  " + "; ".join(notes))
        for r in rows:
            if r["wrong"]:
                print(f"  {r['path']}: {r['wrong']} wrong answers, first: {r['first_wrong']}")
        if a.json:
            json.dump({"direct": {t: {"delay_ms": members[t][1], "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)}
                                  for t, v in direct.items()}, "gateway": rows}, open(a.json, "w"), indent=2)
    except SystemExit:
        log = f"{tmp}/gw.log"
        if os.path.exists(log):
            print("gateway log (last lines):", *[l.rstrip() for l in open(log).readlines()[-6:]],
                  sep="\n  ", file=sys.stderr)
        raise
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--member":
        serve_member(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
