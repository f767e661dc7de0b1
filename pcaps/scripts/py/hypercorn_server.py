"""Fixture servers on hypercorn (HTTP/1.1, h2c and HTTP/2 over TLS).

--app mcp    the Python SDK 1.x FastMCP server of server_v1.py (same name and
             tools: search, get_weather), Streamable HTTP at --path, served by
             hypercorn instead of uvicorn so it can speak HTTP/2.
--app plain  a non-MCP site: a static HTML page, a JSON REST API, an
             OpenAI-style /v1/chat/completions (echoes the offered tool names)
             and an Ethereum-style JSON-RPC endpoint (eth_blockNumber).

Plain TCP: hypercorn answers HTTP/1.1, h2c with prior knowledge (it sees the
connection preface) and h2c Upgrade on requests without a body. With
--certfile/--keyfile it serves TLS with the given ALPN list, optionally capped
at TLS 1.2 (--tls-max 1.2) with an explicit cipher list.
"""

import argparse
import asyncio
import json
import signal
import ssl

from hypercorn.asyncio import serve
from hypercorn.config import Config

p = argparse.ArgumentParser()
p.add_argument("--app", choices=["mcp", "plain"], default="mcp")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--path", default="/mcp")
p.add_argument("--json", action="store_true", help="json_response=True")
p.add_argument("--stateless", action="store_true", help="stateless_http=True")
p.add_argument("--name", default="fixture-server")
p.add_argument("--certfile")
p.add_argument("--keyfile")
p.add_argument("--alpn", default="h2,http/1.1", help="comma-separated ALPN ids")
p.add_argument("--tls-max", choices=["1.2", "1.3"], default="1.3")
p.add_argument("--ciphers", default="ECDHE+AESGCM", help="TLS <= 1.2 cipher list")
p.add_argument("--allowed-host", action="append", default=[],
               help="extra Host values the MCP server accepts (host:port)")
args = p.parse_args()


def mcp_app():
    from mcp.server.fastmcp import FastMCP
    from mcp.server.transport_security import TransportSecuritySettings

    # FastMCP on 127.0.0.1 only accepts Host 127.0.0.1/localhost (DNS
    # rebinding protection); the TLS fixtures use made-up names instead.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", *args.allowed_host],
    )
    mcp = FastMCP(
        args.name,
        host=args.host,
        port=args.port,
        streamable_http_path=args.path,
        json_response=args.json,
        stateless_http=args.stateless,
        log_level="WARNING",
        transport_security=security,
    )

    @mcp.tool()
    def search(query: str) -> str:
        """Search the fixture corpus."""
        return f"0 results for a query of {len(query)} characters"

    @mcp.tool()
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"Sunny in {city}"

    return mcp.streamable_http_app()


def plain_app():
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    async def index(_request):
        return HTMLResponse("<!doctype html><title>Acme tools</title><h1>Acme tools</h1><p>Inventory portal.</p>")

    async def items(_request):
        return JSONResponse({"items": [{"id": 1, "name": "hammer", "stock": 12},
                                       {"id": 2, "name": "wrench", "stock": 0}], "next": None})

    async def chat(request):
        body = await request.json()
        tools = [t.get("function", {}).get("name") for t in body.get("tools", [])]
        call = {"id": "call_0001", "type": "function",
                "function": {"name": tools[0] if tools else "none",
                             "arguments": json.dumps({"city": "Oslo"})}}
        return JSONResponse({
            "id": "chatcmpl-fixture-1", "object": "chat.completion", "created": 1796000000,
            "model": body.get("model", "gpt-4o-mini"),
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
            "usage": {"prompt_tokens": 57, "completion_tokens": 17, "total_tokens": 74},
        })

    async def rpc(request):
        req = await request.json()
        results = {"eth_blockNumber": "0x1403f2c", "eth_chainId": "0x1",
                   "net_version": "1", "eth_getBalance": "0x0"}
        if req.get("method") in results:
            return JSONResponse({"jsonrpc": "2.0", "id": req.get("id"), "result": results[req["method"]]})
        return JSONResponse({"jsonrpc": "2.0", "id": req.get("id"),
                             "error": {"code": -32601, "message": "Method not found"}})

    return Starlette(routes=[
        Route("/", index), Route("/api/items", items),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/rpc", rpc, methods=["POST"]),
    ])


class FixtureConfig(Config):
    def create_ssl_context(self):
        ctx = super().create_ssl_context()
        if ctx is not None and args.tls_max == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx


config = FixtureConfig()
config.bind = [f"{args.host}:{args.port}"]
config.loglevel = "WARNING"
config.accesslog = "-"
if args.certfile:
    config.certfile = args.certfile
    config.keyfile = args.keyfile
    config.alpn_protocols = args.alpn.split(",")
    config.ciphers = args.ciphers

app = mcp_app() if args.app == "mcp" else plain_app()

stop = asyncio.Event()


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)


asyncio.run(main())
