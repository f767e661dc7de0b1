#!/usr/bin/env bash
# Fixture 8: protocol 2026-07-28 ("modern", no initialize) between the official
# Python SDK 2.x server (MCPServer, Streamable HTTP) and 2.x Client (mode auto:
# server/discover probe, then per-request _meta + Mcp-* headers).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8771
start_server modern-2026 "$PY2" "$SCRIPTS/py/server_v2.py" --port $PORT --path /mcp
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" modern-2026 "tcp port $PORT" -- \
  "$PY2" "$SCRIPTS/py/client_v2.py" --url "http://127.0.0.1:$PORT/mcp"
