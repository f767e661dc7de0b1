"""Fixture MCP server built on the official Python SDK 1.x (FastMCP).

Transports: streamable-http (SSE or JSON response mode, optionally stateless,
over TLS with --certfile/--keyfile), legacy HTTP+SSE ("sse") and the SDK 1.x
WebSocket transport ("ws").
"""

import argparse

from mcp.server.fastmcp import FastMCP

p = argparse.ArgumentParser()
p.add_argument("--transport", choices=["streamable-http", "sse", "ws"], required=True)
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--path", default="/mcp", help="streamable_http_path")
p.add_argument("--json", action="store_true", help="json_response=True")
p.add_argument("--stateless", action="store_true", help="stateless_http=True")
p.add_argument("--name", default="fixture-server")
p.add_argument("--no-deflate", action="store_true", help="ws: refuse permessage-deflate")
p.add_argument("--certfile", help="streamable-http: serve TLS with this certificate chain")
p.add_argument("--keyfile", help="streamable-http: the certificate's private key")
args = p.parse_args()

mcp = FastMCP(
    args.name,
    host=args.host,
    port=args.port,
    streamable_http_path=args.path,
    json_response=args.json,
    stateless_http=args.stateless,
    log_level="WARNING",
)


@mcp.tool()
def search(query: str) -> str:
    """Search the fixture corpus."""
    return f"0 results for a query of {len(query)} characters"


@mcp.tool()
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny in {city}"


if args.transport == "ws":
    # SDK 1.x ships a WebSocket server transport (subprotocol "mcp") but no
    # FastMCP.run() mode for it, so mount it in a Starlette app ourselves.
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from mcp.server.websocket import websocket_server

    lowlevel = mcp._mcp_server

    async def ws_endpoint(websocket):
        async with websocket_server(websocket.scope, websocket.receive, websocket.send) as (r, w):
            await lowlevel.run(r, w, lowlevel.create_initialization_options())

    app = Starlette(routes=[WebSocketRoute(args.path, ws_endpoint)])
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        ws="websockets",
        # The Python client offers permessage-deflate (RFC 7692); uvicorn accepts
        # it by default, so JSON-RPC frames are compressed unless disabled here.
        ws_per_message_deflate=not args.no_deflate,
    )
elif args.certfile and args.transport == "streamable-http":
    # FastMCP.run() has no TLS option: the same app under uvicorn with TLS.
    import uvicorn

    uvicorn.run(
        mcp.streamable_http_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        ssl_certfile=args.certfile,
        ssl_keyfile=args.keyfile,
    )
else:
    mcp.run(transport=args.transport)
