#!/usr/bin/env python3
"""A real MCP server built on the Python SDK's `MCPServer`, served over
Streamable HTTP on 127.0.0.1 (both protocol eras: the initialize/session era
and the stateless 2026-07-28 revision). Used by mcp-edge's integration tests.

    py_server.py --port P [--path /mcp]

Prints `READY <port>` once it accepts connections.
Tools: echo(text), add(a, b), slow_progress(steps, interval_ms), big_echo(text).
Resource: demo://greeting. Prompt: greet(name).
"""
import argparse
import hashlib
import json
import socket
import threading
import time

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
    import anyio

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


@server.resource("demo://greeting")
def greeting() -> str:
    """A static greeting."""
    return "hello from py_server"


@server.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Please greet {name} warmly."


def announce_when_listening(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            print(f"READY {port}", flush=True)
            return
        except OSError:
            time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/mcp")
    a = ap.parse_args()
    threading.Thread(target=announce_when_listening, args=(a.port,), daemon=True).start()
    import anyio

    anyio.run(lambda: server.run_streamable_http_async(host="127.0.0.1", port=a.port, streamable_http_path=a.path))


if __name__ == "__main__":
    main()
