"""QUIC handshakes with aioquic (PyPI): a server and a client that connects
with a chosen SNI and QUIC version, completes the handshake and closes."""
import argparse
import asyncio
import ssl

from aioquic.asyncio import connect, serve
from aioquic.quic.configuration import QuicConfiguration


async def run_server(args):
    cfg = QuicConfiguration(is_client=False, alpn_protocols=["h3", "mcp-fixture"])
    cfg.supported_versions = [0x00000001, 0x6B3343CF]
    cfg.load_cert_chain(args.cert, args.key)
    await serve(args.host, args.port, configuration=cfg)
    await asyncio.sleep(args.lifetime)


async def run_client(args):
    alpn = ["h3"]
    if args.pad_alpn:
        # Long ALPN list: the ClientHello no longer fits one Initial packet.
        alpn += [f"x-padding-{i:02d}-" + "p" * 90 for i in range(args.pad_alpn)]
    cfg = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name=args.sni)
    cfg.verify_mode = ssl.CERT_NONE
    cfg.supported_versions = [int(args.version, 16)]
    try:
        async with connect(args.host, args.port, configuration=cfg, wait_connected=True) as proto:
            await proto.ping()
    except Exception as e:  # the handshake itself is what the fixture needs
        print("client:", type(e).__name__, e)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4433)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--lifetime", type=float, default=30)
    p.add_argument("--sni", default="mcp.deepwiki.com")
    p.add_argument("--version", default="1")
    p.add_argument("--pad-alpn", type=int, default=0)
    args = p.parse_args()
    asyncio.run(asyncio.wait_for(run_server(args) if args.role == "server" else run_client(args), 40))


if __name__ == "__main__":
    main()
