#!/usr/bin/env python3
"""A real MCP server built on the Python SDK's `MCPServer`, served over
Streamable HTTP on 127.0.0.1. By default it speaks both protocol eras: the
initialize/session era (Mcp-Session-Id, GET stream, DELETE) and the stateless
2026-07-28 revision. Used by mcp-edge's integration tests.

    py_server.py --port P [--path /mcp] [--stateless] [--json] [--max-body BYTES]
    py_server.py --stdio

--stdio:     serve one client over stdin/stdout (behind `mcp-edge tunnel`).

--stateless: the SDK's stateless_http (no session ids, no GET stream).
--json:      the SDK's json_response (plain JSON answers instead of SSE).
--max-body:  request body limit (default 64 MiB; the SDK's own default is 4 MiB).
Prints `READY <port>` on stdout once it accepts connections.
Tools: echo(text), add(a, b), slow_progress(steps, interval_ms), big_echo(text),
slow_count(n, interval_ms), cancelled_calls(), big_text(n).
Resource: demo://greeting. Prompt: greet(name).
"""
import argparse
import hashlib
import json
import time

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer(name="mcp-edge-test-server", version="1.0.0")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow_progress(steps: int, interval_ms: int, ctx: Context) -> str:
    """Send `steps` progress notifications `interval_ms` apart; returns their send times (ms since epoch)."""
    sent = []
    for i in range(1, steps + 1):
        await anyio.sleep(interval_ms / 1000)
        sent.append(time.time() * 1000)
        await ctx.report_progress(i, steps, f"step {i}")
    return json.dumps({"sent_ms": sent})


@server.tool()
def big_echo(text: str) -> str:
    """Length and sha256 of the text (for large-body tests)."""
    return json.dumps({"len": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()})


# request ids of slow_count calls that were cancelled (notifications/cancelled)
CANCELLED = []


@server.tool()
async def slow_count(n: int, interval_ms: int, ctx: Context) -> str:
    """Count to n, one step every interval_ms, reporting progress at each; a cancelled call is recorded (cancelled_calls)."""
    try:
        for i in range(1, n + 1):
            await anyio.sleep(interval_ms / 1000)
            await ctx.report_progress(i, n, f"count {i}")
        return f"counted to {n}"
    except anyio.get_cancelled_exc_class():
        CANCELLED.append(str(ctx.request_id))
        raise


@server.tool()
def cancelled_calls() -> str:
    """The request ids of the slow_count calls cancelled so far (JSON list)."""
    return json.dumps(CANCELLED)


@server.tool()
def big_text(n: int) -> str:
    """A text of n letters (for answer-size tests)."""
    return "x" * n


@server.resource("demo://greeting")
def greeting() -> str:
    """A static greeting."""
    return "hello from py_server"


@server.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Please greet {name} warmly."


async def serve(a: argparse.Namespace) -> None:
    app = server.streamable_http_app(
        streamable_http_path=a.path, stateless_http=a.stateless, json_response=a.json,
        max_request_body_size=a.max_body, host="127.0.0.1")
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=a.port, log_level="warning"))

    async def announce() -> None:
        while not uv.started:
            await anyio.sleep(0.02)
        print(f"READY {a.port}", flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce)
        await uv.serve()
        tg.cancel_scope.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int)
    ap.add_argument("--stdio", action="store_true",
                    help="serve over stdio instead (one client; what mcp-edge tunnel runs)")
    ap.add_argument("--path", default="/mcp")
    ap.add_argument("--stateless", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--max-body", type=int, default=64 * 1024 * 1024)
    a = ap.parse_args()
    if a.stdio:
        server.run("stdio")
        return
    if a.port is None:
        ap.error("--port is required (or --stdio)")
    anyio.run(serve, a)


if __name__ == "__main__":
    main()
