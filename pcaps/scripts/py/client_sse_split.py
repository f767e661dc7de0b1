"""Legacy HTTP+SSE client (Python `mcp` 1.x `sse_client`) whose httpx client
keeps no idle connection: the event stream is one connection and every POST
to the announced endpoint opens its own.

Runs: initialize (+ notifications/initialized), tools/list,
tools/call search {"query": "secret-argument-value"}.
"""

import argparse
import asyncio

import httpx
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.types import Implementation

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
args = p.parse_args()


def no_keepalive(headers=None, timeout=None, auth=None):
    return httpx.AsyncClient(
        headers=headers,
        timeout=timeout or httpx.Timeout(30, read=300),
        auth=auth,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def main() -> None:
    async with sse_client(args.url, httpx_client_factory=no_keepalive) as (r, w):
        async with ClientSession(
            r, w, client_info=Implementation(name="split-client", version="0.2.0")
        ) as s:
            await s.initialize()
            tools = await s.list_tools()
            print("tools", [t.name for t in tools.tools])
            res = await s.call_tool("search", {"query": "secret-argument-value"})
            print("call", res.content)


asyncio.run(main())
