#!/usr/bin/env bash
# Fixture 6: Streamable HTTP (SSE mode) over IPv6 loopback [::1].
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8768
start_server ipv6 "$PY1" "$SCRIPTS/py/server_v1.py" --transport streamable-http --host ::1 --port $PORT --path /mcp
wait_port ::1 $PORT
"$SCRIPTS/capture.sh" ipv6 "ip6 and tcp port $PORT" -- \
  "$PY1" "$SCRIPTS/py/client_v1.py" --transport streamable-http --url "http://[::1]:$PORT/mcp"
