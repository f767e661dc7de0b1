#!/usr/bin/env bash
# py-h2c-streamable: the Python SDK 1.x FastMCP server (same tools as
# server_v1.py) served by hypercorn, and the SDK client over an httpx client
# with http1=False, http2=True: cleartext HTTP/2 with prior knowledge (h2c, no
# Upgrade), Streamable HTTP with SSE responses, stateful. One TCP connection.
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
PORT=8780
start_server py-h2c-streamable "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --port $PORT --path /mcp
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-h2c-streamable "tcp port $PORT" -- \
  "$PYH2" "$SCRIPTS/py/client_httpx.py" --url "http://127.0.0.1:$PORT/mcp" --prior-knowledge
