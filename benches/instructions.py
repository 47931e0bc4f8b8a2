#!/usr/bin/env python3
"""Instructions per request (callgrind), for comparisons a shared 2-core VM
cannot time: the same ~300-byte tools/call through

  mcp-edge          the load bench's gateway, one single-upstream route;
  mcp-edge+session  the same with sealed sessions (a token opened on every
                    request, the answer's re-sealed: load.py --sessions);
  mcp-edge+fed      a virtual server with one member (load.py --federated):
                    the client's composite token opened, the call resolved
                    to the member and its name rewritten, the member's own
                    session id sent;
  pingora-bare      (--bare) stock Pingora proxying to the same upstream with
                    no logic (benches/bare_pingora.rs): mcp-edge minus this is
                    the instructions of mcp-edge's own work per request.

Each gateway runs under `valgrind --tool=callgrind` behind the same nginx
upstream as benches/load.py (its configurations are load.py's). After a
warm-up of --warmup requests the counters are dumped (`callgrind_control
-d`), then --requests sequential keep-alive requests are sent and the
counters dumped again: instructions per request = the second dump / requests
(all threads; the idle background between requests is included and small).

Usage: benches/instructions.py --gateway target/release/mcp-edge [--bare target/release/examples/bare-pingora] [--requests 2000] [--warmup 200] [--keep DIR]
Bounded: fixed request counts, socket timeouts, processes killed at the end.
"""
import argparse, glob, http.client, os, re, shutil, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (the load bench's configurations and helpers)


def send(port, path, body, session, n):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "X-API-Key": "bench-key-0123456789"}
    if session:
        h["Mcp-Session-Id"] = session
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    bad = 0
    for _ in range(n):
        c.request("POST", path, body, h)
        r = c.getresponse()
        r.read()
        bad += r.status != 200
    c.close()
    return bad


def dump(pid, out, keep=None):
    """Dumps (and zeroes) the counters of callgrind process `pid`; the
    instruction count of that dump (copied to `keep` if given)."""
    before = set(glob.glob(f"{out}.*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True, timeout=120)
    end = time.time() + 60
    while time.time() < end:
        new = sorted(set(glob.glob(f"{out}.*")) - before)
        if new:
            time.sleep(0.5)  # let it finish writing
            text = open(new[-1]).read()
            m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if m and keep:
                shutil.copy(new[-1], keep)
            if m:
                return int(m.group(1))
        time.sleep(0.2)
    raise SystemExit(f"no callgrind dump from {pid}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--keep", help="copy each target's measured dump here (for callgrind_annotate)")
    ap.add_argument("--bare", help="also count bare Pingora (cargo build --release --example bare-pingora)")
    a = ap.parse_args()
    for tool in ("nginx", "valgrind", "callgrind_control"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found")
    n = max(100, min(a.requests, 20000))
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="mcp-edge-instr-")
    procs = []
    try:
        up, gw = load.free_port(), load.free_port()
        reply = '{"jsonrpc":"2.0","id":1723,"result":{"content":[{"type":"text","text":"ok"}]}}'
        procs.append(load.nginx(tmp, "upstream", load.fed_member_nginx(reply)
                                + f"""server {{ listen 127.0.0.1:{up}; location / {{
            default_type application/json; return 200 '{reply}'; }}""" + load.FED_LOCATION + " }"))
        wrapper = f"{tmp}/under-callgrind.sh"
        open(wrapper, "w").write(f"""#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file={tmp}/cg-$MCP_EDGE_TAG.out "${{MCP_EDGE_BIN:-{os.path.abspath(a.gateway)}}}" "$@"
""")
        os.chmod(wrapper, 0o755)
        conf = load.gateway_conf(tmp, gw, up)
        targets = {}

        def start(tag, make):
            os.environ["MCP_EDGE_TAG"] = tag
            targets[tag] = make()

        def plain():
            port = load.free_port()
            p = load.spawn_variant(tmp, conf, gw, port, "plain", wrapper, procs)
            return {"port": port, "pid": p.pid, "path": "/mcp", "body": load.BODY}

        def session():
            s = load.start_sessions(tmp, conf, gw, wrapper, procs, reply)
            return {"port": s["port"], "pid": s["pid"], "path": "/mcp", "body": load.BODY, "kind": "session"}

        def fed():
            port = load.free_port()
            # a long member deadline: under valgrind the first member request
            # (which loads the system CA store) takes seconds; calls are unaffected
            fconf = load.federated_conf(conf, up).replace("member_timeout_ms: 3000", "member_timeout_ms: 120000")
            p = load.spawn_variant(tmp, fconf, gw, port, "fed", wrapper, procs)
            return {"port": port, "pid": p.pid, "path": "/tools", "body": load.FED_BODY, "kind": "fed"}
        def bare():
            port = load.free_port()
            os.environ["MCP_EDGE_BIN"] = os.path.abspath(a.bare)
            procs.append(subprocess.Popen([wrapper, f"127.0.0.1:{port}", f"127.0.0.1:{up}"],
                                          stderr=subprocess.DEVNULL))
            del os.environ["MCP_EDGE_BIN"]
            return {"port": port, "pid": procs[-1].pid, "path": "/mcp", "body": load.BODY}
        start("mcp-edge", plain)
        start("mcp-edge+session", session)
        start("mcp-edge+fed", fed)
        if a.bare:
            start("pingora-bare", bare)
        for t in targets.values():
            load.wait_port(t["port"], timeout=120)
        for t in targets.values():
            if t.get("kind") != "fed":
                send(t["port"], "/mcp", load.BODY, None, 1)  # the first request is slow under valgrind
            if t.get("kind") == "session":
                t["session"] = load.session_token(t["port"])
            elif t.get("kind") == "fed":
                t["session"] = load.federated_token(t["port"], reply, timeout=180)
        rows = []
        for tag, t in targets.items():
            # the callgrind process is the wrapper's pid (exec)
            bad = send(t["port"], t["path"], t["body"], t.get("session"), a.warmup)
            dump(t["pid"], f"{tmp}/cg-{tag}.out")
            bad += send(t["port"], t["path"], t["body"], t.get("session"), n)
            ins = dump(t["pid"], f"{tmp}/cg-{tag}.out",
                       os.path.join(a.keep, f"callgrind.{tag}.out") if a.keep else None)
            rows.append((tag, ins / n, bad))
        base = rows[0][1]
        print(f"\ninstructions per request (callgrind, all threads), {n} sequential keep-alive tools/call "
              f"after {a.warmup} warm-up requests")
        print(f"{'target':<18} {'instr/req':>10} {'vs mcp-edge':>12} {'non-200':>8}")
        for tag, per, bad in rows:
            print(f"{tag:<18} {per:>10.0f} {per - base:>+12.0f} {bad:>8}")
        bare_row = next((r for r in rows if r[0] == "pingora-bare"), None)
        if bare_row:
            print(f"mcp-edge's own work over bare Pingora: {base - bare_row[1]:+.0f} instructions per request")
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
