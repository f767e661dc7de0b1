"""Fixture MCP client: the official Python SDK 1.x over a caller-built httpx
client, for HTTP/2 (h2c prior knowledge or ALPN h2) and TLS sessions.

Runs initialize (+ notifications/initialized), tools/list,
tools/call search {"query": "secret-argument-value"} and DELETE (stateful).

TLS: the context comes from ssl.create_default_context(), which writes the
session secrets to $SSLKEYLOGFILE when it is set. --pin HOST=IP maps a made-up
server name to a loopback address at connect time (like curl --resolve), so
the URL, Host/:authority and SNI keep the name.
"""

import argparse
import asyncio
import ssl

import httpcore
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--http2", action="store_true", help="offer HTTP/2 (ALPN h2 on TLS)")
p.add_argument("--prior-knowledge", action="store_true",
               help="HTTP/2 only (http1=False): h2c with prior knowledge on http://")
p.add_argument("--cafile", help="trust this CA (TLS)")
p.add_argument("--tls-max", choices=["1.2", "1.3"], default="1.3")
p.add_argument("--ciphers", help="TLS <= 1.2 cipher list")
p.add_argument("--pin", action="append", default=[], help="HOST=IP")
p.add_argument("--client-name", default="fixture-client")
p.add_argument("--client-version", default="0.9.1")
args = p.parse_args()

SECRET = "secret-argument-value"
PINS = dict(x.split("=", 1) for x in args.pin)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend with a static name -> address table."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return await self._inner.connect_tcp(PINS.get(host, host), port, timeout, local_address, socket_options)

    async def sleep(self, seconds):
        await self._inner.sleep(seconds)


def make_client() -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if args.cafile:
        verify = ssl.create_default_context(cafile=args.cafile)  # honours SSLKEYLOGFILE
        if args.tls_max == "1.2":
            verify.maximum_version = ssl.TLSVersion.TLSv1_2
        if args.ciphers:
            verify.set_ciphers(args.ciphers)
    http1 = not args.prior_knowledge
    transport = httpx.AsyncHTTPTransport(verify=verify, http1=http1, http2=args.http2 or args.prior_knowledge)
    if PINS:
        # AsyncHTTPTransport has no resolver hook; swap its pool's backend.
        transport._pool._network_backend = PinnedBackend()
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30, read=60))


async def main() -> None:
    async with make_client() as http:
        async with streamable_http_client(args.url, http_client=http) as (r, w, _sid):
            info = Implementation(name=args.client_name, version=args.client_version)
            async with ClientSession(r, w, client_info=info) as s:
                init = await s.initialize()
                print("negotiated", init.protocolVersion, init.serverInfo)
                tools = await s.list_tools()
                print("tools", [t.name for t in tools.tools])
                res = await s.call_tool("search", {"query": SECRET})
                print("call", res.content)


asyncio.run(main())
