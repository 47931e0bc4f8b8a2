#!/usr/bin/env python3
"""The Python SDK's `Client` against a mcp-edge virtual server composed of
server-everything (prefix `ev`) and py_server.py (prefix `py`). One JSON object
per step on stdout (`{"step": ..., "ok": bool, ...}`), last `{"step": "done"}`;
exit 1 on any failure.

    py_fed_client.py URL [--name acme-tools] [--ev ev] [--py py] [--mode legacy|2026-07-28]
                     [--skip NAME,...]

Steps: initialize (serverInfo.name is the virtual server's), tools/list (both
members' tools, prefixed), tools/call of each member, progress through a
member's tool call, elicitation (a member's elicitation/create answered by the
client's callback and returned to that member), unknown-tool, resources/list
and a resources/read of each member's resource, prompts/list + get of each
member, get-stream (session era), delete, http (every exchange).
--skip leaves out steps (by name). Members left out (`--ev ''`) are not asked for.
"""
import argparse
import asyncio
import json
import sys
import time

import httpx2
from mcp import types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT

failed = []
http = []


def emit(step, ok=True, **detail):
    if not ok:
        failed.append(step)
    print(json.dumps({"step": step, "ok": bool(ok), **detail}), flush=True)


def text_of(result):
    return "".join(getattr(c, "text", "") for c in result.content)


async def log_response(response):
    req = response.request
    try:
        body = json.loads(req.content)
    except Exception:
        body = None
    body = body if isinstance(body, dict) else {}
    http.append({"method": req.method, "status": response.status_code,
                 "content_type": response.headers.get("content-type"),
                 "mcp_method": body.get("method"), "id": body.get("id"),
                 "h_name": req.headers.get("mcp-name"),
                 "r_session": response.headers.get("mcp-session-id")})


elicited = []


async def on_elicit(context, params):
    elicited.append(params.message)
    return types.ElicitResult(action="accept", content={"name": "Ada", "check": True})


async def run(a):
    skip = set(filter(None, a.skip.split(",")))
    http_client = httpx2.AsyncClient(event_hooks={"response": [log_response]},
                                     timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT))
    ev, py, sep = a.ev, a.py, "__"
    async with http_client, Client(streamable_http_client(a.url, http_client=http_client), mode=a.mode,
                                   elicitation_callback=on_elicit) as client:
        sid = next((h["r_session"] for h in http if h["mcp_method"] == "initialize"), None)
        info = client.server_info.model_dump(exclude_none=True) if client.server_info else {}
        emit("initialize", a.mode != "legacy" or (info.get("name") == a.name and sid is not None),
             server=info, sessionId=sid, protocolVersion=client.protocol_version)

        names = []
        cursor = None
        for _ in range(20):  # every page (a composite cursor walks the members)
            page = await client.list_tools(cursor=cursor)
            names += [t.name for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        want = ([f"{ev}{sep}echo"] if ev else []) + ([f"{py}{sep}add", f"{py}{sep}slow_progress"] if py else [])
        emit("tools/list", all(n in names for n in want), names=names, wanted=want)

        if ev:
            r = await client.call_tool(f"{ev}{sep}echo", {"message": "hi"})
            emit("tools/call", not r.is_error and "hi" in text_of(r), tool=f"{ev}{sep}echo", text=text_of(r))
        if py:
            r = await client.call_tool(f"{py}{sep}add", {"a": 2, "b": 40})
            emit("tools/call", not r.is_error and text_of(r) == "42", tool=f"{py}{sep}add", text=text_of(r))

        if py and "progress" not in skip:
            arrivals = []
            start = time.time()

            async def on_progress(p, total, message):
                arrivals.append(round((time.time() - start) * 1000, 1))

            r = await client.call_tool(f"{py}{sep}slow_progress", {"steps": 3, "interval_ms": 200},
                                       progress_callback=on_progress)
            emit("progress", not r.is_error and len(arrivals) == 3, arrivals_ms=arrivals)

        if ev and "elicitation" not in skip:
            tool = f"{ev}{sep}trigger-elicitation-request"
            if tool not in names:  # the member registers it once it knows the client can elicit
                names = [t.name for t in (await client.list_tools()).tools]
            r = await client.call_tool(tool, {})
            emit("elicitation", not r.is_error and len(elicited) == 1 and "Ada" in text_of(r),
                 asked=elicited, text=text_of(r)[:300])

        try:  # the same answer as a tool no member has: a JSON-RPC error -32602
            r = await client.call_tool(f"nobody{sep}echo", {"message": "x"})
            emit("unknown-tool", r.is_error, text=text_of(r))
        except Exception as e:
            emit("unknown-tool", "Unknown tool" in str(e) and getattr(getattr(e, "error", None), "code", -32602) == -32602,
                 error=str(e))

        res = []
        cursor = None
        for _ in range(20):
            page = await client.list_resources(cursor=cursor)
            res += [str(x.uri) for x in page.resources]
            cursor = page.next_cursor
            if not cursor:
                break
        emit("resources/list", (not py or "demo://greeting" in res) and len(res) > (1 if ev and py else 0),
             count=len(res), first=res[:3])
        reads = []
        if py:
            rr = await client.read_resource("demo://greeting")
            reads.append("hello from py_server" in "".join(getattr(c, "text", "") for c in rr.contents))
        if ev:
            uri = next(u for u in res if u != "demo://greeting")
            rr = await client.read_resource(uri)
            reads.append(len(rr.contents) > 0 and str(rr.contents[0].uri) == uri)
        emit("resources/read", all(reads), reads=reads)

        prompts = [p.name for p in (await client.list_prompts()).prompts]
        gets = []
        if py:
            pr = await client.get_prompt(f"{py}{sep}greet", {"name": "Ada"})
            gets.append("Ada" in json.dumps(pr.model_dump()))
        if ev:
            pr = await client.get_prompt(f"{ev}{sep}simple-prompt", {})
            gets.append(len(pr.messages) > 0)
        emit("prompts", all(gets) and bool(prompts), names=prompts, gets=gets)

        if sid and "get-stream" not in skip:
            for _ in range(40):
                if any(h["method"] == "GET" for h in http):
                    break
                await asyncio.sleep(0.05)
            get = next((h for h in http if h["method"] == "GET"), None)
            emit("get-stream", get is not None and get["status"] == 200
                 and "text/event-stream" in (get["content_type"] or ""), get=get)
    if sid:
        dele = next((h for h in http if h["method"] == "DELETE"), None)
        emit("delete", dele is not None and dele["status"] < 300, status=dele and dele["status"])
    emit("http", exchanges=http)
    emit("done", not failed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--name", default="acme-tools")
    ap.add_argument("--ev", default="ev")
    ap.add_argument("--py", default="py")
    ap.add_argument("--mode", default="legacy", choices=["legacy", "2026-07-28", "auto"])
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    try:
        asyncio.run(run(a))
    except BaseException as e:
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        emit("error", ok=False, error=f"{type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
