#!/usr/bin/env bash
# A whole legacy HTTP+SSE session whose POSTs each use their own connection:
# the Python `mcp` 1.30.0 FastMCP server (transport sse) and `sse_client`
# with an httpx client that keeps no idle connection (py/client_sse_split.py).
# The GET /sse stream announces /messages/?session_id=...; initialize,
# notifications/initialized, tools/list and tools/call each arrive on a new
# connection, and only initialize proves MCP on its own.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
PY1="$SCRIPTS/.venv-mcp1/bin/python"
[[ -x "$PY1" ]] || "$SCRIPTS/setup.sh"
PORT=8783
bg "$PY1" "$SCRIPTS/py/server_v1.py" --transport sse --port $PORT
wait_tcp 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-legacy-sse-split "tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_sse_split.py" --url "http://127.0.0.1:$PORT/sse"
