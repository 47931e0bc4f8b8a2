#!/usr/bin/env python3
"""The Python SDK's `Client` (Streamable HTTP) driving a full MCP flow against a
URL. One JSON object per step on stdout (`{"step": ..., "ok": bool, ...}`), last
`{"step": "done", "ok": true}`; exit 1 on any failure.

    py_client.py URL [--scenario full|stateless] [--server everything|py]

full:      the initialize handshake and a session (2025-11-25 era), GET stream, DELETE.
stateless: protocol revision 2026-07-28 as the SDK speaks it: no initialize, no
           session; every POST carries MCP-Protocol-Version, Mcp-Method, Mcp-Name
           (checked by the `headers` step).
Steps: initialize|connect, tools/list, tools/call, progress (arrival times in ms
since the request started, and the server's send times when it reports them),
resources/list + read, prompts/list + get, [get-stream, delete,] headers, http.
--mode legacy|2026-07-28 is an alias of --scenario full|stateless.
--server picks tool/prompt names; by default they are detected from tools/list.
Env MCP_HEADERS: JSON object of extra HTTP headers for every request.
"""
import argparse
import asyncio
import json
import os
import sys
import time

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT

NAMES = {
    "py": {"echo": ("echo", {"text": "hi"}), "slow": ("slow_progress", {"steps": 4, "interval_ms": 400}),
           "prompt": ("greet", {"name": "Ada"})},
    "everything": {"echo": ("echo", {"message": "hi"}),
                   "slow": ("trigger-long-running-operation", {"duration": 2, "steps": 4}),
                   "prompt": ("simple-prompt", {})},
}
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}  # -> Mcp-Name
MODES = {"full": "legacy", "legacy": "legacy", "stateless": "2026-07-28", "2026-07-28": "2026-07-28"}


failed = []


def emit(step, ok=True, **detail):
    if not ok:
        failed.append(step)
    print(json.dumps({"step": step, "ok": bool(ok), **detail}), flush=True)


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


http = []  # every HTTP exchange: method, status, content type, MCP routing headers


async def log_response(response):
    req = response.request
    try:
        body = json.loads(req.content)
    except Exception:
        body = None
    body = body if isinstance(body, dict) else {}
    http.append({
        "method": req.method, "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "mcp_method": body.get("method"),
        "body_name": (body.get("params") or {}).get(NAME_PARAM.get(body.get("method"), "")),
        "h_version": req.headers.get("mcp-protocol-version"),
        "h_method": req.headers.get("mcp-method"),
        "h_name": req.headers.get("mcp-name"),
        "session": req.headers.get("mcp-session-id") is not None,
        "r_session": response.headers.get("mcp-session-id"),
    })


async def run(url, mode, server):
    headers = json.loads(os.environ.get("MCP_HEADERS", "{}"))
    http_client = httpx2.AsyncClient(
        headers=headers, event_hooks={"response": [log_response]},
        timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT))
    async with http_client, Client(streamable_http_client(url, http_client=http_client), mode=mode) as client:
        # a stateless server issues no session id: get-stream/delete are then skipped
        sid = next((h["r_session"] for h in http if h["mcp_method"] == "initialize"), None)
        emit("initialize" if mode == "legacy" else "connect", mode=mode, protocolVersion=client.protocol_version,
             sessionId=sid,
             server=client.server_info.model_dump(exclude_none=True) if client.server_info else None)

        tools = await client.list_tools()
        tool_names = [t.name for t in tools.tools]
        server = server or ("py" if "slow_progress" in tool_names else "everything")
        names = NAMES[server]
        emit("tools/list", names["slow"][0] in tool_names, count=len(tool_names), names=tool_names, server=server)

        name, args = names["echo"]
        r = await client.call_tool(name, args)
        emit("tools/call", not r.is_error and "hi" in text_of(r), tool=name, text=text_of(r))

        name, args = names["slow"]
        arrivals, progress = [], []
        start = time.time()

        async def on_progress(p, total, message):
            arrivals.append(round((time.time() - start) * 1000, 1))
            progress.append(p)

        r = await client.call_tool(name, args, progress_callback=on_progress)
        try:  # py_server reports its send times (epoch ms) in the result
            sent = [round(t - start * 1000, 1) for t in json.loads(text_of(r))["sent_ms"]]
        except Exception:
            sent = None
        emit("progress", not r.is_error and len(arrivals) == args["steps"], tool=name, arrivals_ms=arrivals,
             server_sent_ms=sent, progress=progress, started_ms=start * 1000, result=text_of(r))

        res = await client.list_resources()
        emit("resources/list", len(res.resources) > 0, count=len(res.resources))
        uri = str(res.resources[0].uri)
        rr = await client.read_resource(uri)
        emit("resources/read", len(rr.contents) > 0, uri=uri)

        prompts = await client.list_prompts()
        emit("prompts/list", len(prompts.prompts) > 0, names=[p.name for p in prompts.prompts])
        pname, pargs = names["prompt"]
        pr = await client.get_prompt(pname, pargs)
        emit("prompts/get", len(pr.messages) > 0, name=pname, messages=len(pr.messages))

        if sid:  # the transport opens the GET stream after notifications/initialized
            for _ in range(40):
                if any(h["method"] == "GET" for h in http):
                    break
                await asyncio.sleep(0.05)
            get = next((h for h in http if h["method"] == "GET"), None)
            emit("get-stream", get is not None and get["status"] == 200
                 and "text/event-stream" in (get["content_type"] or ""), get=get)
    if sid:  # leaving the Client sent DELETE for the session (terminate_on_close)
        dele = next((h for h in http if h["method"] == "DELETE"), None)
        emit("delete", dele is not None and (dele["status"] < 300 or dele["status"] == 405),
             status=dele and dele["status"])

    if mode == "legacy":  # every request after initialize carries the session id (if one was issued)
        bad = [h for h in http if h["mcp_method"] != "initialize" and h["session"] != bool(sid)]
    else:  # 2026-07-28: routing headers on every POST, agreeing with the body; no session, no GET
        bad = [h for h in http if h["method"] != "POST" or h["session"] or h["h_version"] != mode
               or h["h_method"] != h["mcp_method"] or h["h_name"] != h["body_name"]]
    emit("headers", not bad, mismatched=bad)
    emit("http", exchanges=http)
    emit("done", not failed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--scenario", "--mode", dest="scenario", default="full", choices=sorted(MODES))
    ap.add_argument("--server", choices=sorted(NAMES))
    a = ap.parse_args()
    try:
        asyncio.run(run(a.url, MODES[a.scenario], a.server))
    except BaseException as e:  # report (innermost causes of task groups too), then fail
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        emit("error", ok=False, error=f"{type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
