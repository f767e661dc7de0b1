#!/usr/bin/env bash
# Fixture 2: Python SDK 1.x FastMCP, Streamable HTTP with json_response=True and
# stateless_http=True (plain application/json responses, no Mcp-Session-Id).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8766
start_server py-streamable-json "$PY1" "$SCRIPTS/py/server_v1.py" --transport streamable-http --port $PORT --path /mcp --json --stateless
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-streamable-json "tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_v1.py" --transport streamable-http --url "http://127.0.0.1:$PORT/mcp"
