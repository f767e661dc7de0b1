#!/usr/bin/env bash
# Fixture 9 (evasion-ish): curl POSTs MCP JSON-RPC bodies that are gzip-compressed
# (Content-Encoding: gzip) AND sent with Transfer-Encoding: chunked, to the
# Python SDK 1.x FastMCP Streamable HTTP server. The tools/call body spells its
# method with a JSON escape ("\u0074ools/call"). The server does not decode gzip
# request bodies, so it answers with errors; the requests are the point.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8772
URL="http://127.0.0.1:$PORT/mcp"
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT

printf '%s' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"gzip-curl-client","version":"7.1.0"}}}' > "$work/init.json"
printf '%s' '{"jsonrpc":"2.0","id":1,"method":"\u0074ools/call","params":{"name":"search","arguments":{"query":"secret-argument-value"}}}' > "$work/call.json"
# -n: no name/mtime in the gzip header, so the bodies are byte-reproducible.
gzip -n -9 -c "$work/init.json" > "$work/init.json.gz"
gzip -n -9 -c "$work/call.json" > "$work/call.json.gz"

cat > "$work/client.sh" <<CLIENT
set -u
H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
   -H 'Content-Encoding: gzip' -H 'Transfer-Encoding: chunked')
curl -sS -m 10 -D "$work/h1" -o "$work/b1" "\${H[@]}" --data-binary @"$work/init.json.gz" "$URL"
sid=\$(tr -d '\r' < "$work/h1" | awk -F': ' 'tolower(\$1)=="mcp-session-id"{print \$2}')
extra=()
[[ -n "\$sid" ]] && extra=(-H "Mcp-Session-Id: \$sid")
curl -sS -m 10 -D "$work/h2" -o "$work/b2" "\${H[@]}" -H 'MCP-Protocol-Version: 2025-06-18' "\${extra[@]}" \
  --data-binary @"$work/call.json.gz" "$URL"
head -1 "$work/h1"; cat "$work/b1"; echo; head -1 "$work/h2"; cat "$work/b2"; echo
CLIENT

start_server py-streamable-gzip-chunked "$PY1" "$SCRIPTS/py/server_v1.py" --transport streamable-http --port $PORT --path /mcp
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" py-streamable-gzip-chunked "tcp port $PORT" -- bash "$work/client.sh"
