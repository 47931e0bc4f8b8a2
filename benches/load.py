#!/usr/bin/env python3
"""Load benchmark (`make bench`): wrk on loopback with a ~300-byte tools/call
against (a) a direct fast upstream (nginx `return 200`), (b) nginx as a plain
reverse proxy in front of it, (c) mcp-edge in front of it, in one run; with
--bare also (d) Pingora itself with no mcp-edge logic (benches/bare_pingora.rs),
which splits mcp-edge's cost into Pingora's and its own.

Prints requests/s, p50/p99 latency and the proxy's CPU time per request
(utime+stime of the whole process from /proc, all threads), with ratios to (b).
Every run is bounded: fixed duration per scenario, processes killed at the end.

Usage: benches/load.py --gateway target/release/mcp-edge [--bare target/release/examples/bare-pingora] [--also before=/path/to/older/mcp-edge] [--duration 10] [--connections 1,32] [--redis] [--sessions] [--jwt] [--tls] [--federated] [--tool-limits]

--tls adds HTTPS: nginx (TLS proxy) and mcp-edge with the same certificate, keep-alive and one new
connection per request (wrk), and full vs resumed handshakes per second (openssl s_time).

--federated adds mcp-edge+fed: the same tools/call on a virtual server (issue 19) whose one member
is the same nginx upstream (its own location, answering this call with the same bytes), named
`pa__search.documents`; one `initialize` through the gateway first, then every request carries the
sealed token. The row's CPU per request minus mcp-edge's is what federation adds to a call.
"""
import argparse, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

BODY = ('{"jsonrpc":"2.0","id":1723,"method":"tools/call","params":{"name":"search.documents",'
        '"arguments":{"query":"quarterly revenue by region","limit":20,"filters":{"year":2026,'
        '"tags":["finance","emea","apac"],"include_archived":false,"owner":"team-analytics"}},'
        '"_meta":{"progressToken":"tok-5d1b-0f3e"}}}')
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def settle(pid, quiet=0.2, limit=10.0):
    """Waits until a process has stopped using CPU (its log writers caught up):
    its CPU is counted in full, and the next target is not measured while this
    one still works in the background."""
    end = time.time() + limit
    last = cpu_seconds(pid)
    while time.time() < end:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.01 * quiet:
            return now
        last = now
    return last


def median_run(runs):
    """One row from repeated runs of a target: the median of each figure."""
    out = dict(runs[0])
    for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req"):
        vals = sorted(r[k] for r in runs if k in r)
        if vals:
            out[k] = vals[len(vals) // 2]
    out["requests"] = sum(r["requests"] for r in runs)
    out["non2xx"] = sum(r["non2xx"] for r in runs)
    out["runs"] = len(runs)
    return out


def nginx(tmp, name, body, connections=4096, main=""):
    """One nginx worker (no master) with `body` in its http block."""
    os.makedirs(f"{tmp}/{name}/logs", exist_ok=True)
    conf = f"""
worker_processes 1; master_process off; daemon off; pid {tmp}/{name}/nginx.pid;
error_log {tmp}/{name}/logs/error.log warn; {main}
events {{ worker_connections {connections}; }}
http {{
  access_log {tmp}/{name}/logs/access.log;
  client_body_temp_path {tmp}/{name}/body; proxy_temp_path {tmp}/{name}/proxy;
  fastcgi_temp_path {tmp}/{name}/fcgi; uwsgi_temp_path {tmp}/{name}/uwsgi; scgi_temp_path {tmp}/{name}/scgi;
  keepalive_requests 1000000;
  {body}
}}"""
    path = f"{tmp}/{name}/nginx.conf"
    open(path, "w").write(conf)
    return subprocess.Popen(["nginx", "-c", path, "-p", f"{tmp}/{name}"], stderr=subprocess.DEVNULL)


def gateway_conf(tmp, gw, up):
    """mcp-edge doing its whole job on port `gw` in front of `up`: API key,
    inspection, policy, an in-memory rate limit (never refusing here),
    audit and JSON access lines."""
    return f"""server:
  listen: 127.0.0.1:{gw}
  path: /mcp
  threads: 1
  pid_file: {tmp}/gw.pid
  upgrade_sock: {tmp}/gw.sock
auth:
  api_keys: [{{id: bench, key: bench-key-0123456789, tenant: team}}]
audit: {{path: {tmp}/audit.jsonl}}
upstreams:
  - name: up
    url: http://127.0.0.1:{up}/mcp
routing:
  - match: {{method: "*"}}
    upstream: up
policy:
  rules:
    - subject: {{tenant: team}}
      allow: {{methods: ["tools/*", initialize, "notifications/*"], tools: ["search.*"]}}
      deny: {{tools: ["admin.*"]}}
rate_limit: {{default_rpm: 100000000}}
logging: {{level: info, format: json}}
"""


def spawn_variant(tmp, conf, gw, port, tag, binary, procs):
    """Start `binary` with `conf` (the gateway configuration for port `gw`)
    moved to `port`, with its own pid file, upgrade socket and audit file
    named after `tag`; appends the process to `procs` and returns it."""
    vconf = conf.replace(f"listen: 127.0.0.1:{gw}", f"listen: 127.0.0.1:{port}") \
        .replace(f"{tmp}/gw.pid", f"{tmp}/{tag}.pid").replace(f"{tmp}/gw.sock", f"{tmp}/{tag}.sock") \
        .replace(f"{tmp}/audit.jsonl", f"{tmp}/audit-{tag}.jsonl")
    open(f"{tmp}/{tag}.yaml", "w").write(vconf)
    procs.append(subprocess.Popen([binary, "run", "-c", f"{tmp}/{tag}.yaml"],
                                  stderr=open(f"{tmp}/{tag}.log", "w")))
    return procs[-1]


def wrk(url, conns, duration, tmp, close=False, session=None, bearer=None, body=BODY):
    lua = (f"{tmp}/post{'-close' if close else ''}{'-session' if session else ''}{'-jwt' if bearer else ''}"
           f"{'' if body == BODY else '-' + str(len(body))}.lua")
    cred = (f'wrk.headers["Authorization"] = "Bearer {bearer}"\n' if bearer
            else 'wrk.headers["X-API-Key"] = "bench-key-0123456789"\n')
    open(lua, "w").write('wrk.method = "POST"\nwrk.body = [[%s]]\n'
                         'wrk.headers["Content-Type"] = "application/json"\n'
                         'wrk.headers["Accept"] = "application/json, text/event-stream"\n' % body
                         + cred
                         + ('wrk.headers["Connection"] = "close"\n' if close else '')
                         + (f'wrk.headers["Mcp-Session-Id"] = "{session}"\n' if session else ''))
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", lua, url],
                         capture_output=True, text=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v if unit == "ms" else v * 1000
    return {"rps": rps, "requests": total, "p50_ms": pct(50), "p99_ms": pct(99),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else ""}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--bare", help="also run this bare Pingora proxy (cargo build --release --example bare-pingora)")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=BINARY",
                    help="also run this mcp-edge binary (another build) with the same configuration, "
                         "as target NAME: a before/after A/B in one interleaved run")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", default="1,32")
    ap.add_argument("--json", help="also write results here")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each target this many times, interleaved; the table shows medians")
    ap.add_argument("--redis", action="store_true",
                    help="also run mcp-edge with rate limits shared through a local redis-server")
    ap.add_argument("--sessions", action="store_true",
                    help="also run mcp-edge with a sealed session on every request (open + re-seal)")
    ap.add_argument("--jwt", action="store_true",
                    help="also run mcp-edge authenticating an ES256 JWT (verified once, then cached)")
    ap.add_argument("--tls", action="store_true",
                    help="also compare HTTPS termination: nginx and mcp-edge with the same certificate")
    ap.add_argument("--federated", action="store_true",
                    help="also run the same tools/call through a virtual server with one member (the same nginx)")
    ap.add_argument("--tool-limits", action="store_true",
                    help="also run mcp-edge with a tool_limits rule naming the called tool "
                         "(timeout, max_concurrent, max_response_bytes)")
    a = ap.parse_args()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install nginx-light wrk)")
    tmp = tempfile.mkdtemp(prefix="mcp-edge-bench-")
    up, px, gw, gwr, rport = free_port(), free_port(), free_port(), free_port(), free_port()
    procs = []
    try:
        reply = '{"jsonrpc":"2.0","id":1723,"result":{"content":[{"type":"text","text":"ok"}]}}'
        procs.append(nginx(tmp, "upstream", (fed_member_nginx(reply) if a.federated else "")
                           + f"""server {{ listen 127.0.0.1:{up}; location / {{
            default_type application/json; return 200 '{reply}'; }}"""
                           + (FED_LOCATION if a.federated else "") + " }"))
        procs.append(nginx(tmp, "proxy", f"""upstream up {{ server 127.0.0.1:{up}; keepalive 64; }}
            server {{ listen 127.0.0.1:{px}; location / {{ proxy_pass http://up;
            proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""))
        conf = gateway_conf(tmp, gw, up)
        open(f"{tmp}/gw.yaml", "w").write(conf)
        gwlog = open(f"{tmp}/gw.log", "w")
        procs.append(subprocess.Popen([a.gateway, "run", "-c", f"{tmp}/gw.yaml"], stderr=gwlog))
        pids = {"direct": None, "nginx-proxy": procs[1].pid, "mcp-edge": procs[2].pid}
        urls = {"direct": f"http://127.0.0.1:{up}/mcp", "nginx-proxy": f"http://127.0.0.1:{px}/mcp",
                "mcp-edge": f"http://127.0.0.1:{gw}/mcp"}
        ports = [up, px, gw]
        for spec in a.also:
            name, _, binary = spec.partition("=")
            port = free_port()
            pids[name] = spawn_variant(tmp, conf, gw, port, name, binary, procs).pid
            urls[name] = f"http://127.0.0.1:{port}/mcp"
            ports.append(port)
        if a.bare:
            bp = free_port()
            procs.append(subprocess.Popen([a.bare, f"127.0.0.1:{bp}", f"127.0.0.1:{up}"],
                                          stderr=subprocess.DEVNULL))
            pids["pingora-bare"] = procs[-1].pid
            urls["pingora-bare"] = f"http://127.0.0.1:{bp}/mcp"
            ports.append(bp)
        if a.redis:
            if not shutil.which("redis-server"):
                raise SystemExit("redis-server not found (apt-get install redis-server)")
            procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
            wait_port(rport)
            rconf = conf.replace("rate_limit: {default_rpm: 100000000}\n",
                                 f"rate_limit:\n  default_rpm: 100000000\n"
                                 f"  redis: {{url: \"redis://127.0.0.1:{rport}\", timeout_ms: 100}}\n")
            pids["mcp-edge+redis"] = spawn_variant(tmp, rconf, gw, gwr, "gwr", a.gateway, procs).pid
            urls["mcp-edge+redis"] = f"http://127.0.0.1:{gwr}/mcp"
            ports.append(gwr)
        sessions = {}
        if a.sessions:
            sessions = start_sessions(tmp, conf, gw, a.gateway, procs, reply)
            pids["mcp-edge+session"] = sessions["pid"]
            urls["mcp-edge+session"] = sessions["url"]
            pids["nginx+session"] = sessions["nginx_pid"]
            urls["nginx+session"] = sessions["nginx_url"]
            ports += [sessions["port"], sessions["up_port"], sessions["nginx_port"]]
        bearer = None
        if a.jwt:
            jport, bearer = start_jwt(tmp, conf, gw, a.gateway, procs)
            pids["mcp-edge+jwt"] = procs[-1].pid
            urls["mcp-edge+jwt"] = f"http://127.0.0.1:{jport}/mcp"
            ports.append(jport)
        fed = {}
        if a.federated:
            fport = free_port()
            spawn_variant(tmp, federated_conf(conf, up), gw, fport, "gwf", a.gateway, procs)
            pids["mcp-edge+fed"] = procs[-1].pid
            urls["mcp-edge+fed"] = f"http://127.0.0.1:{fport}/tools"
            fed["port"] = fport
            ports.append(fport)
        if a.tool_limits:
            lport = free_port()
            lconf = conf.replace("logging:", "tool_limits:\n  - tools: [\"search.*\"]\n"
                                 "    timeout_ms: 30000\n    max_concurrent: 100000\n"
                                 "    max_response_bytes: 1048576\nlogging:", 1)
            spawn_variant(tmp, lconf, gw, lport, "gwl", a.gateway, procs)
            pids["mcp-edge+limits"] = procs[-1].pid
            urls["mcp-edge+limits"] = f"http://127.0.0.1:{lport}/mcp"
            ports.append(lport)
        tls = None
        if a.tls:
            tls = start_tls(tmp, conf, gw, up, a.gateway, procs)
            ports += [tls["nginx_port"], tls["gw_port"]]
        for p in ports:
            wait_port(p)
        if sessions:
            sessions["token"] = session_token(sessions["port"])
        if fed:
            fed["token"] = federated_token(fed["port"], reply)
        # warm up keep-alive pools
        for name, u in urls.items():
            r = wrk(u, 4, 1, tmp, session=session_for(name, sessions, fed),
                    bearer=bearer if name == "mcp-edge+jwt" else None, body=body_for(name))
            if r["non2xx"] or r["socket_errors"]:
                print(f"warm-up of {name}: {r['non2xx']} non-2xx, socket errors: {r['socket_errors'] or 'none'}",
                      file=sys.stderr)
        results = []
        for conns in [int(c) for c in a.connections.split(",")]:
            runs = {name: [] for name in urls}
            # interleaved repeats: slow drifts of a noisy machine hit every target alike
            for _ in range(a.repeat):
                for name, url in urls.items():
                    pid = pids[name]
                    c0 = settle(pid) if pid else None
                    r = wrk(url, conns, a.duration, tmp,
                            session=session_for(name, sessions, fed),
                            bearer=bearer if name == "mcp-edge+jwt" else None, body=body_for(name))
                    if pid:
                        r["cpu_us_per_req"] = (settle(pid) - c0) * 1e6 / max(r["requests"], 1)
                    r.update(target=name, connections=conns)
                    runs[name].append(r)
            rows = {name: median_run(v) for name, v in runs.items()}
            for variant in ("mcp-edge+fed", "mcp-edge+limits"):
                if variant in runs:
                    # the same round's two runs side by side: drifts of a shared
                    # machine cancel better than in the difference of medians
                    d = sorted(f["cpu_us_per_req"] - m["cpu_us_per_req"]
                               for f, m in zip(runs[variant], runs["mcp-edge"]))
                    rows[variant]["cpu_paired_deltas"] = d
            results += list(rows.values())
        print_table(results)
        if tls:
            results += run_tls(tls, a.duration, tmp)
        if a.json:
            json.dump(results, open(a.json, "w"), indent=2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def print_table(results):
    reps = max(r.get("runs", 1) for r in results)
    print(f"\nwrk -t1, ~{len(BODY)}-byte tools/call POST, loopback; ratios are to nginx-proxy in the same run"
          + (f"; medians of {reps} interleaved runs" if reps > 1 else ""))
    hdr = f"{'conns':>5} {'target':<16} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'rps x':>6} {'p50 x':>6} {'p99 x':>6} {'CPU x':>6} {'errors':>6}"
    print(hdr); print("-" * len(hdr))
    for conns in sorted({r["connections"] for r in results}):
        rows = [r for r in results if r["connections"] == conns]
        base = next(r for r in rows if r["target"] == "nginx-proxy")
        direct = next(r for r in rows if r["target"] == "direct")
        for r in rows:
            cpu = r.get("cpu_us_per_req")
            cpux = f"{cpu / base['cpu_us_per_req']:.2f}" if cpu else "-"
            print(f"{conns:>5} {r['target']:<16} {r['rps']:>10.0f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
                  f"{(f'{cpu:.1f}' if cpu else '-'):>10} {r['rps']/base['rps']:>6.2f} {r['p50_ms']/base['p50_ms']:>6.2f} "
                  f"{r['p99_ms']/base['p99_ms']:>6.2f} {cpux:>6} {r['non2xx']:>6}")
        gw = next(r for r in rows if r["target"] == "mcp-edge")
        px = base
        bare = next((r for r in rows if r["target"] == "pingora-bare"), None)
        print(f"      added p50 vs direct: mcp-edge {gw['p50_ms']-direct['p50_ms']:.3f} ms, "
              f"nginx-proxy {px['p50_ms']-direct['p50_ms']:.3f} ms"
              + (f", pingora-bare {bare['p50_ms']-direct['p50_ms']:.3f} ms" if bare else ""))
        if bare:
            print(f"      CPU split: Pingora itself x{bare['cpu_us_per_req']/px['cpu_us_per_req']:.2f} of nginx-proxy; "
                  f"mcp-edge x{gw['cpu_us_per_req']/bare['cpu_us_per_req']:.2f} of bare Pingora "
                  f"({gw['cpu_us_per_req']-bare['cpu_us_per_req']:+.1f} us/req for auth, inspection, policy, rate limit, audit)")
        ses = next((r for r in rows if r["target"] == "mcp-edge+session"), None)
        nses = next((r for r in rows if r["target"] == "nginx+session"), None)
        if ses and nses:
            carry = nses['cpu_us_per_req'] - px['cpu_us_per_req']
            added = ses['cpu_us_per_req'] - gw['cpu_us_per_req']
            print(f"      session traffic (token-sized id both ways): mcp-edge sealed rps x{ses['rps']/gw['rps']:.3f}, "
                  f"CPU {added:+.1f} us/req; nginx pass-through rps x{nses['rps']/px['rps']:.3f}, CPU {carry:+.1f} us/req; "
                  f"sealing beyond carrying the bytes: {added - carry:+.1f} us/req")
        jw = next((r for r in rows if r["target"] == "mcp-edge+jwt"), None)
        if jw:
            print(f"      JWT (ES256, cached) instead of an API key: CPU x{jw['cpu_us_per_req']/gw['cpu_us_per_req']:.2f} "
                  f"of mcp-edge with an API key, x{jw['cpu_us_per_req']/px['cpu_us_per_req']:.2f} of nginx-proxy; "
                  f"p50 {jw['p50_ms']-gw['p50_ms']:+.3f} ms")
        fr = next((r for r in rows if r["target"] == "mcp-edge+fed"), None)
        if fr:
            print(f"      federated tools/call (virtual server, one member) vs mcp-edge: CPU "
                  f"{fr['cpu_us_per_req']-gw['cpu_us_per_req']:+.1f} us/req, rps x{fr['rps']/gw['rps']:.3f}, "
                  f"p50 {fr['p50_ms']-gw['p50_ms']:+.3f} ms"
                  + (f"; vs mcp-edge+session (a sealed token both ways too): CPU "
                     f"{fr['cpu_us_per_req']-ses['cpu_us_per_req']:+.1f} us/req" if ses else ""))
            pd = fr.get("cpu_paired_deltas")
            if pd and len(pd) > 1:
                print(f"      federated minus mcp-edge, CPU per round (paired runs): median {pd[len(pd) // 2]:+.1f}, "
                      f"range {pd[0]:+.1f} .. {pd[-1]:+.1f} us/req over {len(pd)} rounds")
        lim = next((r for r in rows if r["target"] == "mcp-edge+limits"), None)
        if lim:
            print(f"      tools/call under a tool_limits rule vs mcp-edge: CPU "
                  f"{lim['cpu_us_per_req']-gw['cpu_us_per_req']:+.1f} us/req, rps x{lim['rps']/gw['rps']:.3f}, "
                  f"p50 {lim['p50_ms']-gw['p50_ms']:+.3f} ms")
            pd = lim.get("cpu_paired_deltas")
            if pd and len(pd) > 1:
                print(f"      tool_limits minus mcp-edge, CPU per round (paired runs): median {pd[len(pd) // 2]:+.1f}, "
                      f"range {pd[0]:+.1f} .. {pd[-1]:+.1f} us/req over {len(pd)} rounds")
        red = next((r for r in rows if r["target"] == "mcp-edge+redis"), None)
        if red:
            print(f"      Redis rate limit adds: p50 {red['p50_ms']-gw['p50_ms']:+.3f} ms, "
                  f"p99 {red['p99_ms']-gw['p99_ms']:+.3f} ms, CPU {red['cpu_us_per_req']-gw['cpu_us_per_req']:+.1f} us/req")


def start_jwt(tmp, conf, gw, gateway, procs):
    """mcp-edge authenticating an ES256 JWT against a JWKS file: the first
    request verifies the signature, the rest hit the verified-token cache.
    Returns (port, token)."""
    import base64
    import jwt as pyjwt  # PyJWT, with the mcp SDK's test peers
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_numbers()

    def b64(n):
        return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": b64(pub.x), "y": b64(pub.y),
                      "kid": "bench", "alg": "ES256", "use": "sig"}]}
    open(f"{tmp}/jwks.json", "w").write(json.dumps(jwks))
    now = int(time.time())
    token = pyjwt.encode({"iss": "https://issuer.bench/", "aud": "mcp-bench", "sub": "bench-client",
                          "tenant": "team", "iat": now, "exp": now + 86400},
                         key, algorithm="ES256", headers={"kid": "bench"})
    jp = free_port()
    jconf = conf.replace("  api_keys: [{id: bench, key: bench-key-0123456789, tenant: team}]\n",
                         f"  jwt: {{issuer: \"https://issuer.bench/\", audiences: [mcp-bench], jwks_file: {tmp}/jwks.json, "
                         f"algorithms: [ES256], tenant_claim: tenant, client_claim: sub}}\n")
    spawn_variant(tmp, jconf, gw, jp, "gwj", gateway, procs)
    return jp, token


def session_for(name, sessions, fed=None):
    """The Mcp-Session-Id a target's requests carry: the sealed token through
    mcp-edge; through nginx (which passes ids through) a token-sized id, so
    both proxies carry the same header bytes; the virtual server's token."""
    if name == "mcp-edge+fed":
        return fed["token"]
    if name == "mcp-edge+session":
        return sessions.get("token")
    if name == "nginx+session":
        return "x" * len(sessions.get("token", ""))
    return None


def start_sessions(tmp, conf, gw, gateway, procs, reply):
    """mcp-edge with sessions.keys in front of an upstream that names a session in
    every answer: each request opens the client's token and re-seals the answer's.
    nginx proxies the same session traffic (ids passed through) for the baseline:
    the bytes of a session header cost any proxy something; what sealing adds
    is the difference of the differences."""
    up, gp, np = free_port(), free_port(), free_port()
    procs.append(nginx(tmp, "upstream-session", f"""server {{ listen 127.0.0.1:{up}; location / {{
        default_type application/json; add_header Mcp-Session-Id 3f2c6f1e-8a0b-4c55-9d8e-0d6c1b7a9e21 always;
        return 200 '{reply}'; }} }}"""))
    procs.append(nginx(tmp, "proxy-session", f"""upstream ups {{ server 127.0.0.1:{up}; keepalive 64; }}
        server {{ listen 127.0.0.1:{np}; location / {{ proxy_pass http://ups;
        proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""))
    nginx_pid = procs[-1].pid
    sconf = re.sub(r"url: http://127.0.0.1:\d+/mcp", f"url: http://127.0.0.1:{up}/mcp", conf) \
        + "sessions: {keys: [bench-session-key-0123456789abcdefghij]}\n"
    spawn_variant(tmp, sconf, gw, gp, "gws", gateway, procs)
    return {"port": gp, "up_port": up, "pid": procs[-1].pid, "url": f"http://127.0.0.1:{gp}/mcp",
            "nginx_port": np, "nginx_pid": nginx_pid, "nginx_url": f"http://127.0.0.1:{np}/mcp"}


def session_token(port):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("POST", "/mcp", BODY, {"Content-Type": "application/json", "X-API-Key": "bench-key-0123456789",
                                      "Accept": "application/json, text/event-stream"})
    r = c.getresponse()
    r.read()
    token = r.getheader("Mcp-Session-Id")
    if not token:
        raise SystemExit("the session gateway returned no session id")
    return token


FED_TOOL = "pa__search.documents"
FED_BODY = BODY.replace('"name":"search.documents"', f'"name":"{FED_TOOL}"')
FED_SESSION = "7b1e3c2a-4d5f-4e6a-9b8c-1d2e3f4a5b6c"
# the member's own location on the upstream nginx (inside its server block)
FED_LOCATION = f"""
            location /fed {{ default_type application/json;
            add_header Mcp-Session-Id {FED_SESSION} always; return 200 $fed_reply; }}"""


def body_for(name):
    return FED_BODY if name == "mcp-edge+fed" else BODY


def fed_member_nginx(reply):
    """The virtual server's member, on the upstream nginx: the gateway
    forwards the benchmark's call with the member's own name, i.e. exactly
    BODY (len(BODY) bytes), and gets exactly the answer the other rows get;
    anything else it sends (initialize, notifications/initialized, the
    tools/list that checks the member has the tool) gets one answer valid
    as both an initialize and a tools/list result."""
    other = ('{"jsonrpc":"2.0","id":1723,"result":{"protocolVersion":"2025-11-25",'
             '"capabilities":{"tools":{}},"serverInfo":{"name":"nginx","version":"1"},'
             '"tools":[{"name":"search.documents","inputSchema":{"type":"object"}}]}}')
    return f"""map $content_length $fed_reply {{ default '{other}'; {len(BODY)} '{reply}'; }}
  """


def federated_conf(conf, up):
    """The bench gateway plus a virtual server /tools with one member `fed`
    (prefix `pa`, `pa__<tool>`) on the upstream nginx's /fed location;
    sealed-session keys (a virtual server hands out one token); the policy's
    tool pattern prefixed like the exposed names."""
    fconf = conf.replace("routing:\n", f"  - name: fed\n    url: http://127.0.0.1:{up}/fed\nrouting:\n") \
        .replace('tools: ["search.*"]', 'tools: ["pa__search.*"]')
    return fconf + f"""sessions: {{keys: [bench-session-key-0123456789abcdefghij]}}
virtual_servers:
  - path: /tools
    name: acme
    members: [{{upstream: fed, prefix: pa}}]
    separator: "__"
    prefix_mode: always
    member_timeout_ms: 3000
"""


def federated_token(port, reply, timeout=10):
    """initialize (+ notifications/initialized) through the virtual server;
    then one tools/call checked by hand: 200, the member's answer, the token
    kept. Returns the token."""
    import http.client
    h = {"Content-Type": "application/json", "X-API-Key": "bench-key-0123456789",
         "Accept": "application/json, text/event-stream"}

    def post(body, headers):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("POST", "/tools", body, headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data
    init = ('{"jsonrpc":"2.0","id":1723,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
            '"capabilities":{},"clientInfo":{"name":"load.py","version":"1"}}}')
    r, data = post(init, h)
    token = r.getheader("Mcp-Session-Id")
    if r.status != 200 or not token:
        raise SystemExit(f"virtual server initialize: HTTP {r.status}, token {token!r}: {data[:300]!r}")
    if json.loads(data).get("result", {}).get("serverInfo", {}).get("name") != "acme":
        raise SystemExit(f"virtual server initialize: not the gateway's own answer: {data[:300]!r}")
    hs = dict(h, **{"Mcp-Session-Id": token})  # what wrk sends
    r, data = post('{"jsonrpc":"2.0","method":"notifications/initialized"}', hs)
    if r.status != 202:
        raise SystemExit(f"virtual server notifications/initialized: HTTP {r.status}: {data[:300]!r}")
    r, data = post(FED_BODY, hs)
    if r.status != 200 or json.loads(data) != json.loads(reply):
        raise SystemExit(f"federated tools/call: HTTP {r.status}: {data[:300]!r} (wanted {reply})")
    if r.getheader("Mcp-Session-Id") != token:
        raise SystemExit("federated tools/call: the answer's session id is not the client's token")
    return token


def start_tls(tmp, conf, gw, up, gateway, procs):
    """nginx (TLS proxy) and mcp-edge (TLS) with one ECDSA P-256 certificate."""
    crt, key = f"{tmp}/tls.pem", f"{tmp}/tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    np, gp = free_port(), free_port()
    procs.append(nginx(tmp, "proxy-tls", f"""upstream up {{ server 127.0.0.1:{up}; keepalive 64; }}
        ssl_session_cache shared:SSL:10m; ssl_session_tickets on;
        ssl_protocols TLSv1.2 TLSv1.3;
        server {{ listen 127.0.0.1:{np} ssl http2; ssl_certificate {crt}; ssl_certificate_key {key};
        location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""))
    spawn_variant(tmp, conf + f"tls: {{cert_file: {crt}, key_file: {key}}}\n", gw, gp, "gwt", gateway, procs)
    return {"nginx_port": np, "gw_port": gp, "nginx_pid": procs[-2].pid, "gw_pid": procs[-1].pid}


def s_time(port, reuse, seconds):
    """Handshakes per second (openssl s_time): full (-new) or resumed (-reuse).
    TLS 1.2: s_time does not pick up TLS 1.3 tickets, so -reuse would not resume there."""
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-time", str(seconds),
                          "-reuse" if reuse else "-new", "-tls1_2"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.findall(r"(\d+) connections in ([\d.]+)s", out)
    if not m:
        return 0.0
    n, t = m[-1]
    return int(n) / float(t)


def run_tls(tls, duration, tmp):
    targets = {"nginx-tls": (tls["nginx_port"], tls["nginx_pid"]), "mcp-edge-tls": (tls["gw_port"], tls["gw_pid"])}
    for port, _ in targets.values():
        wrk(f"https://127.0.0.1:{port}/mcp", 4, 1, tmp)
    rows = []
    for mode, conns, close in (("keep-alive", 32, False), ("new conn/request", 8, True)):
        for name, (port, pid) in targets.items():
            c0 = cpu_seconds(pid)
            r = wrk(f"https://127.0.0.1:{port}/mcp", conns, duration, tmp, close=close)
            r["cpu_us_per_req"] = (cpu_seconds(pid) - c0) * 1e6 / max(r["requests"], 1)
            r.update(target=name, connections=conns, mode=mode)
            rows.append(r)
    hs = {}
    for name, (port, pid) in targets.items():
        for reuse in (False, True):
            c0 = cpu_seconds(pid)
            t0 = time.time()
            rate = s_time(port, reuse, max(3, duration // 2))
            n = rate * (time.time() - t0)
            hs[(name, reuse)] = (rate, (cpu_seconds(pid) - c0) * 1e6 / max(n, 1))
    print("\nHTTPS (same ECDSA P-256 certificate, TLS 1.3; nginx: session cache + tickets; mcp-edge: OpenSSL tickets)")
    hdr = f"{'mode':<17} {'conns':>5} {'target':<13} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10} {'rps x':>6} {'CPU x':>6} {'errors':>6}"
    print(hdr); print("-" * len(hdr))
    for mode in ("keep-alive", "new conn/request"):
        base = next(r for r in rows if r["mode"] == mode and r["target"] == "nginx-tls")
        for r in (r for r in rows if r["mode"] == mode):
            print(f"{mode:<17} {r['connections']:>5} {r['target']:<13} {r['rps']:>9.0f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
                  f"{r['cpu_us_per_req']:>10.1f} {r['rps']/base['rps']:>6.2f} {r['cpu_us_per_req']/base['cpu_us_per_req']:>6.2f} {r['non2xx']:>6}")
    print(f"\n{'TLS 1.2 handshakes (s_time)':<30} {'full /s':>9} {'CPU us':>8} {'resumed /s':>11} {'CPU us':>8}")
    for name in targets:
        (f, fc), (r, rc) = hs[(name, False)], hs[(name, True)]
        print(f"{name:<30} {f:>9.0f} {fc:>8.0f} {r:>11.0f} {rc:>8.0f}")
    for (name, reuse), (rate, cpu) in hs.items():
        rows.append({"target": name, "mode": "s_time-reuse" if reuse else "s_time-new",
                     "handshakes_per_s": rate, "cpu_us_per_handshake": cpu})
    return rows


if __name__ == "__main__":
    main()
