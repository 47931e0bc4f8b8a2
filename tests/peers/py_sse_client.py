#!/usr/bin/env python3
"""The Python SDK's `Client` over its HTTP+SSE (2024-11-05) transport
(`mcp.client.sse.sse_client`) against a gateway's `legacy_sse` endpoint. One
JSON object per step on stdout (`{"step": ..., "ok": bool, ...}`), last
`{"step": "done", "ok": true}`; exit 1 on any failure.

    py_sse_client.py URL

Steps (server-everything's names): connect, tools/list, tools/call (echo),
progress (a long-running tool), resources/list + read, prompts/list + get.
Env MCP_HEADERS: JSON object of extra HTTP headers for every request.
"""
import asyncio
import json
import os
import sys

from mcp.client.client import Client
from mcp.client.sse import sse_client

failed = []


def emit(step, ok=True, **detail):
    if not ok:
        failed.append(step)
    print(json.dumps({"step": step, "ok": bool(ok), **detail}), flush=True)


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def run(url):
    headers = json.loads(os.environ.get("MCP_HEADERS", "{}"))
    async with Client(sse_client(url, headers=headers), mode="legacy") as client:
        emit("connect", client.server_info is not None,
             server=client.server_info.model_dump(exclude_none=True) if client.server_info else None)
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        emit("tools/list", "echo" in names, count=len(names))
        r = await client.call_tool("echo", {"message": "hi"})
        emit("tools/call", not r.is_error and "hi" in text_of(r), text=text_of(r))
        progress = []

        async def on_progress(p, total, message):
            progress.append(p)

        r = await client.call_tool("trigger-long-running-operation", {"duration": 2, "steps": 4},
                                   progress_callback=on_progress)
        emit("progress", not r.is_error and len(progress) == 4, progress=progress)
        res = await client.list_resources()
        emit("resources/list", len(res.resources) > 0, count=len(res.resources))
        rr = await client.read_resource(str(res.resources[0].uri))
        emit("resources/read", len(rr.contents) > 0)
        prompts = await client.list_prompts()
        emit("prompts/list", len(prompts.prompts) > 0)
        pr = await client.get_prompt("simple-prompt", {})
        emit("prompts/get", len(pr.messages) > 0)


def main():
    if len(sys.argv) < 2:
        print("usage: py_sse_client.py URL", file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(asyncio.wait_for(run(sys.argv[1]), 60))
    except Exception as e:  # noqa: BLE001 - the step line says what failed
        emit("error", False, error=repr(e))
    emit("done", not failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
