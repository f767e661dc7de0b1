#!/usr/bin/env bash
# One stateless tools/call and nothing else: curl POSTs a single JSON-RPC
# request (no initialize, no MCP headers; `params` first with a 6 KB
# argument, `method` last) to the Python `mcp` 1.30.0 FastMCP server in
# stateless JSON mode, which answers with the tool result (content,
# structuredContent, isError).
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
PY1="$SCRIPTS/.venv-mcp1/bin/python"
[[ -x "$PY1" ]] || "$SCRIPTS/setup.sh"
PORT=8784
bg "$PY1" "$SCRIPTS/py/server_v1.py" --transport streamable-http --json --stateless --port $PORT
wait_tcp 127.0.0.1 $PORT
arg=$(head -c 6000 /dev/zero | tr '\0' 'q')
printf '{"params":{"arguments":{"query":"%s"},"name":"search"},"id":"call-1","method":"tools/call","jsonrpc":"2.0"}' "$arg" >"$TMP/body.json"
"$SCRIPTS/capture.sh" curl-stateless-tools-call "tcp port $PORT" -- \
  curl -s --max-time 10 -H "Content-Type: application/json" \
    -H "Accept: application/json, text/event-stream" \
    --data-binary "@$TMP/body.json" "http://127.0.0.1:$PORT/mcp"
