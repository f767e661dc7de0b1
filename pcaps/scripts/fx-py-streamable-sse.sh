#!/usr/bin/env bash
# Fixture 1: Python SDK 1.x FastMCP, Streamable HTTP, default SSE response mode.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8765
start_server py-streamable-sse "$PY1" "$SCRIPTS/py/server_v1.py" --transport streamable-http --port $PORT --path /mcp
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-streamable-sse "tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_v1.py" --transport streamable-http --url "http://127.0.0.1:$PORT/mcp"
