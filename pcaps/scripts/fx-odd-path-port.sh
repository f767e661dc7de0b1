#!/usr/bin/env bash
# Fixture 5: Streamable HTTP (SSE mode) on a port and path without "mcp" in them.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=9431
start_server odd-path-port "$PY1" "$SCRIPTS/py/server_v1.py" --transport streamable-http --port $PORT --path /api/v2/rpc --name inventory-service
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" odd-path-port "tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_v1.py" --transport streamable-http --url "http://127.0.0.1:$PORT/api/v2/rpc"
