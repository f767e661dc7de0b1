"""Fixture MCP client built on the official Python SDK 1.x.

Runs: initialize (+ notifications/initialized), tools/list,
tools/call search {"query": "secret-argument-value"}.
"""

import argparse
import asyncio
from contextlib import asynccontextmanager

from mcp import ClientSession
from mcp.types import Implementation

p = argparse.ArgumentParser()
p.add_argument("--transport", choices=["streamable-http", "sse", "ws"], required=True)
p.add_argument("--url", required=True)
args = p.parse_args()

CLIENT_INFO = Implementation(name="fixture-client", version="0.9.1")
SECRET = "secret-argument-value"


@asynccontextmanager
async def connect():
    if args.transport == "streamable-http":
        from mcp.client.streamable_http import streamablehttp_client

        async with streamablehttp_client(args.url) as (r, w, _sid):
            yield r, w
    elif args.transport == "sse":
        from mcp.client.sse import sse_client

        async with sse_client(args.url) as (r, w):
            yield r, w
    else:
        from mcp.client.websocket import websocket_client

        async with websocket_client(args.url) as (r, w):
            yield r, w


async def main() -> None:
    async with connect() as (r, w):
        async with ClientSession(r, w, client_info=CLIENT_INFO) as s:
            init = await s.initialize()
            print("negotiated", init.protocolVersion, init.serverInfo)
            tools = await s.list_tools()
            print("tools", [t.name for t in tools.tools])
            res = await s.call_tool("search", {"query": SECRET})
            print("call", res.content)


asyncio.run(main())
