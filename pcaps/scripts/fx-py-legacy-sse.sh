#!/usr/bin/env bash
# Fixture 4: legacy HTTP+SSE transport (2024-11-05 style): GET /sse stream
# (first event "endpoint"), JSON-RPC via POST /messages/?session_id=...
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8767
start_server py-legacy-sse "$PY1" "$SCRIPTS/py/server_v1.py" --transport sse --port $PORT
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-legacy-sse "tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_v1.py" --transport sse --url "http://127.0.0.1:$PORT/sse"
