#!/usr/bin/env python3
"""The Python SDK's `Client` driving a full MCP flow against a URL, one JSON
line per step on stdout (`{"step": ..., "ok": true, ...}`), exit 1 on failure.

    py_client.py URL [--mode legacy|2026-07-28] [--server everything|py]

--mode legacy: the initialize handshake and session (2025-11-25 era).
--mode 2026-07-28: the stateless revision (no initialize, Mcp-Method/Mcp-Name headers).
--server picks the tool/resource/prompt names of the peer behind the URL.
Env MCP_HEADERS: JSON object of extra HTTP headers for every request.
"""
import argparse
import asyncio
import json
import os
import sys
import time

from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

NAMES = {
    "py": {"echo": ("echo", {"text": "hi"}), "slow": ("slow_progress", {"steps": 4, "interval_ms": 400}),
           "resource": "demo://greeting", "prompt": ("greet", {"name": "Ada"})},
    "everything": {"echo": ("echo", {"message": "hi"}),
                   "slow": ("trigger-long-running-operation", {"duration": 2, "steps": 4}),
                   "resource": None, "prompt": ("simple-prompt", {})},
}


def emit(step, ok=True, **detail):
    print(json.dumps({"step": step, "ok": ok, **detail}), flush=True)


async def run(url, mode, names):
    headers = json.loads(os.environ.get("MCP_HEADERS", "{}"))
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    async with Client(transport, mode=mode) as client:
        emit("connect", mode=mode)
        tools = await client.list_tools()
        emit("tools/list", count=len(tools.tools), names=[t.name for t in tools.tools][:20])

        name, args = names["echo"]
        r = await client.call_tool(name, args)
        text = "".join(getattr(c, "text", "") for c in r.content)
        emit("tools/call", ok=not r.is_error and "hi" in text, text=text)

        name, args = names["slow"]
        arrivals = []
        start = time.time()

        async def on_progress(progress, total, message):
            arrivals.append(round((time.time() - start) * 1000, 1))

        r = await client.call_tool(name, args, progress_callback=on_progress)
        text = "".join(getattr(c, "text", "") for c in r.content)
        emit("progress", ok=not r.is_error and len(arrivals) == args["steps"], arrivals_ms=arrivals,
             started_ms=start * 1000, result=text)

        res = await client.list_resources()
        uri = names["resource"] or str(res.resources[0].uri)
        rr = await client.read_resource(uri)
        emit("resources/read", ok=len(rr.contents) > 0, uri=uri)

        prompts = await client.list_prompts()
        pname, pargs = names["prompt"]
        pr = await client.get_prompt(pname, pargs)
        emit("prompts/get", ok=len(pr.messages) > 0, listed=len(prompts.prompts))
    emit("done")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--mode", default="legacy")
    ap.add_argument("--server", default="py", choices=sorted(NAMES))
    a = ap.parse_args()
    try:
        asyncio.run(run(a.url, a.mode, NAMES[a.server]))
    except BaseException as e:  # report (innermost causes of task groups too), then fail
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        emit("error", ok=False, error=f"{type(e).__name__}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
