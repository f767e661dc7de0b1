"""Fixture MCP server built on the official Python SDK 2.x (MCPServer),
Streamable HTTP. SDK 2.x serves both the modern 2026-07-28 protocol
(server/discover, per-request _meta) and the legacy initialize handshake."""

import argparse

from mcp.server.mcpserver import MCPServer

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--path", default="/mcp")
p.add_argument("--json", action="store_true", help="json_response=True")
p.add_argument("--stateless", action="store_true", help="stateless_http=True")
args = p.parse_args()

mcp = MCPServer("fixture-server-v2", version="2.0.0", log_level="WARNING")


@mcp.tool()
def search(query: str) -> str:
    """Search the fixture corpus."""
    return f"0 results for a query of {len(query)} characters"


@mcp.tool()
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny in {city}"


mcp.run(
    transport="streamable-http",
    host=args.host,
    port=args.port,
    streamable_http_path=args.path,
    json_response=args.json,
    stateless_http=args.stateless,
)
