#!/usr/bin/env python3
"""Idle SSE stream memory (`make bench-sse`): N streams held open through
(a) nginx as a plain reverse proxy (proxy_buffering off) and (b) mcp-edge
doing its whole job (API key, inspection, policy, audit), and with --bare
(c) stock Pingora with no logic (benches/bare_pingora.rs), in one run, in
front of the same upstream, which answers every POST with an event stream,
sends one event and then stays silent.

Prints the proxy's resident memory (VmRSS, the whole process) before and
with N streams open, and the difference per stream, with the ratio to nginx.
Kernel socket buffers are the same for both and not in RSS.

Usage: benches/sse_memory.py --gateway target/release/mcp-edge [--bare target/release/examples/bare-pingora] [--streams 20000]
Bounded: streams are opened in batches with a timeout, then closed; every
process is killed at the end.
"""
import argparse, asyncio, os, resource, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import BODY, free_port, gateway_conf, nginx, wait_port  # noqa: E402

UPSTREAM = r'''
import asyncio, sys
async def serve(r, w):
    try:
        head = await r.readuntil(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        await r.readexactly(n)
        ev = b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"ready"}}\n\n'
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(ev) + ev + b"\r\n")
        await w.drain()
        await r.read()  # idle until the proxy closes
    except Exception:
        pass
    w.close()
async def main():
    s = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with s:
        await s.serve_forever()
asyncio.run(main())
'''


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def open_streams(port, n, sockets):
    req = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
           f"Accept: application/json, text/event-stream\r\nX-API-Key: bench-key-0123456789\r\n"
           f"Content-Length: {len(BODY)}\r\n\r\n{BODY}").encode()
    failed = 0

    async def one(i):
        nonlocal failed
        # spread over 127.0.x.y sources: far from the ephemeral port limit
        src = f"127.0.{1 + i // 20000}.{2 + (i // 250) % 250}"
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0)), 10)
            w.write(req)
            await w.drain()
            got = b""
            while b"ready" not in got:
                chunk = await asyncio.wait_for(r.read(4096), 10)
                if not chunk:
                    raise ConnectionError("closed")
                got += chunk
            sockets.append(w)
        except Exception:
            failed += 1

    for start in range(0, n, 500):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 500))))
    return failed


async def hold(port, n, pid):
    """Opens `n` streams, lets the proxy settle, reads its RSS, closes them:
    (streams that failed, RSS with them open)."""
    sockets = []
    failed = await open_streams(port, n, sockets)
    await asyncio.sleep(2)
    rss = rss_kib(pid)
    for w in sockets:
        w.close()
    await asyncio.sleep(0.5)
    return failed, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--streams", type=int, default=20000)
    ap.add_argument("--bare", help="also measure this bare Pingora proxy (cargo build --release --example bare-pingora)")
    a = ap.parse_args()
    # a proxy holds two sockets per stream (client side, upstream side)
    want = 2 * a.streams + 2048
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        fit = (hard - 2048) // 2
        if fit < a.streams:
            print(f"note: the open-file limit here is {hard} (raising it needs CAP_SYS_RESOURCE), "
                  f"so {fit} streams instead of {a.streams}; the per-stream figures are what counts")
            a.streams = fit
    tmp = tempfile.mkdtemp(prefix="mcp-edge-bench-sse-")
    up, px, gw = free_port(), free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up)]))
        wait_port(up)
        procs.append(nginx_sse(tmp, up, px, a.streams))
        # the load benchmark's gateway; streams stay open, no log line per stream
        conf = gateway_conf(tmp, gw, up) \
            .replace("  upgrade_sock:", f"  limits: {{max_connections: {a.streams + 1000}}}\n  upgrade_sock:", 1) \
            .replace("    url: http://", "    sse_idle_timeout_ms: 600000\n    url: http://", 1) \
            .replace("logging: {level: info", "logging: {level: warn")
        open(f"{tmp}/gw.yaml", "w").write(conf)
        procs.append(subprocess.Popen([a.gateway, "run", "-c", f"{tmp}/gw.yaml"],
                                      stderr=open(f"{tmp}/gw.log", "w")))
        targets = [("nginx-proxy", procs[1], px), ("mcp-edge", procs[2], gw)]
        if a.bare:
            bp = free_port()
            procs.append(subprocess.Popen([a.bare, f"127.0.0.1:{bp}", f"127.0.0.1:{up}"],
                                          stderr=subprocess.DEVNULL))
            targets.append(("pingora-bare", procs[-1], bp))
        for _, _, port in targets:
            wait_port(port)
        rows = []
        for name, proc, port in targets:
            # one stream first: lazily created pools, threads and writers exist
            asyncio.run(hold(port, 10, proc.pid))
            time.sleep(1)
            before = rss_kib(proc.pid)
            t = time.time()
            failed, after = asyncio.run(hold(port, a.streams, proc.pid))
            took = time.time() - t
            per = (after - before) * 1024 / max(1, a.streams - failed)
            rows.append((name, before, after, failed, took, per))
        base = rows[0][5]
        print(f"{'target':<12} {'streams':>8} {'failed':>6} {'RSS before':>11} {'RSS open':>10} "
              f"{'per stream':>11} {'x nginx':>8}")
        for name, before, after, failed, took, per in rows:
            print(f"{name:<12} {a.streams:>8} {failed:>6} {before:>8} KiB {after:>7} KiB "
                  f"{per / 1024:>7.1f} KiB {per / base if base else 0:>8.2f}")
        if any(r[3] for r in rows):
            raise SystemExit("some streams failed to open")
    finally:
        for p in procs:
            p.kill()
            p.wait()


def nginx_sse(tmp, up, px, streams):
    """nginx as a plain streaming proxy (no response buffering) for `streams`."""
    return nginx(tmp, "proxy", f"""upstream up {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{ listen 127.0.0.1:{px} backlog=4096; location / {{ proxy_pass http://up;
    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off;
    proxy_read_timeout 600s; }} }}""", connections=2 * streams + 2048,
                 main=f"worker_rlimit_nofile {2 * streams + 2048};")

if __name__ == "__main__":
    main()
