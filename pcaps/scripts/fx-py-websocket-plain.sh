#!/usr/bin/env bash
# Extra fixture: as py-websocket, but the server declines permessage-deflate,
# so the JSON-RPC text frames are plain (only client-side masking). SDK 1.x
# WebSocket transport (not a spec transport): Upgrade with
# Sec-WebSocket-Protocol: mcp, JSON-RPC in text frames.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8775
start_server py-websocket-plain "$PY1" "$SCRIPTS/py/server_v1.py" --transport ws --port $PORT --path /ws --no-deflate
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-websocket-plain "tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_v1.py" --transport ws --url "ws://127.0.0.1:$PORT/ws"
