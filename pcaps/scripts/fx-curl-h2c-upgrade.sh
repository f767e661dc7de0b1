#!/usr/bin/env bash
# curl-h2c-upgrade: curl --http2 on http:// offers "Upgrade: h2c" on
# its first request, a POST carrying an MCP initialize body.
#  * port 8781: nghttpx (nghttp2's reverse proxy, cleartext frontend) accepts
#    the upgrade after reading the body: 101, then the initialize result comes
#    on HTTP/2 stream 1; curl --next reuses the connection for
#    notifications/initialized, tools/list and tools/call on streams 3, 5, 7.
#    Backend: the Python SDK 1.x FastMCP server on hypercorn (port 8782, not
#    captured), JSON responses, stateless (no session id to carry between
#    the --next requests).
#  * port 8783: the same POST straight to hypercorn, which ignores an h2c
#    upgrade on a request with a body and answers in HTTP/1.1.
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
FRONT=8781 BACK=8782 DIRECT=8783
start_server curl-h2c-upgrade-back "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --port $BACK --json --stateless
bg_server curl-h2c-upgrade-direct "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --port $DIRECT --json --stateless
bg_server curl-h2c-upgrade-nghttpx nghttpx --frontend="127.0.0.1,$FRONT;no-tls" --backend="127.0.0.1,$BACK" \
  --workers=1 --conf=/dev/null --errorlog-file="$WORK/nghttpx.err" --accesslog-file="$WORK/nghttpx.acc"
wait_port 127.0.0.1 $BACK
wait_port 127.0.0.1 $DIRECT
wait_port 127.0.0.1 $FRONT

INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl-h2c-client","version":"7.88.1"}}}'
cat > "$WORK/client.sh" <<CLIENT
set -u
H=(--http2 -sS -m 10 -H 'Accept: application/json, text/event-stream' -H 'Content-Type: application/json')
V=(-H 'MCP-Protocol-Version: 2025-06-18')
curl "\${H[@]}" --data-binary '$INIT' http://127.0.0.1:$FRONT/mcp \\
  --next "\${H[@]}" "\${V[@]}" --data-binary '{"jsonrpc":"2.0","method":"notifications/initialized"}' http://127.0.0.1:$FRONT/mcp \\
  --next "\${H[@]}" "\${V[@]}" --data-binary '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' http://127.0.0.1:$FRONT/mcp \\
  --next "\${H[@]}" "\${V[@]}" --data-binary '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"secret-argument-value"}}}' http://127.0.0.1:$FRONT/mcp
echo
curl "\${H[@]}" --data-binary '$INIT' http://127.0.0.1:$DIRECT/mcp
echo
CLIENT
"$SCRIPTS/capture.sh" curl-h2c-upgrade "tcp port $FRONT or tcp port $DIRECT" -- bash "$WORK/client.sh"
