#!/usr/bin/env bash
# Fixture 7: SDK 1.x WebSocket transport (not a spec transport): Upgrade with
# Sec-WebSocket-Protocol: mcp, JSON-RPC in text frames.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8769
start_server py-websocket "$PY1" "$SCRIPTS/py/server_v1.py" --transport ws --port $PORT --path /ws
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-websocket "tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_v1.py" --transport ws --url "ws://127.0.0.1:$PORT/ws"
