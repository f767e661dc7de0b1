"""Fixture MCP client built on the official Python SDK 2.x high-level Client.

mode "auto" (the SDK default) probes server/discover and speaks 2026-07-28 if
the server supports it; "legacy" forces the initialize handshake.
Runs: (discover), tools/list, tools/call search {"query": "secret-argument-value"}.
"""

import argparse
import asyncio

from mcp import Client, Implementation

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--mode", default="auto")
args = p.parse_args()

SECRET = "secret-argument-value"


async def main() -> None:
    async with Client(
        args.url,
        mode=args.mode,
        client_info=Implementation(name="fixture-client-v2", version="0.9.3"),
    ) as c:
        print("negotiated", c.protocol_version, c.server_info)
        tools = await c.list_tools()
        print("tools", [t.name for t in tools.tools])
        res = await c.call_tool("search", {"query": SECRET})
        print("call", res.content)


asyncio.run(main())
