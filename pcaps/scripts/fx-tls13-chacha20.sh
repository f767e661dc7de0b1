#!/usr/bin/env bash
# tls13-chacha20 (+ .keys): TLS 1.3 with TLS_CHACHA20_POLY1305_SHA256,
# forced by the client: openssl s_client -ciphersuites ... -keylogfile, ALPN
# http/1.1, SNI tools.internal.example. It writes two pipelined HTTP/1.1
# requests by hand (MCP initialize, then tools/list with Connection: close) to
# the Python FastMCP server on hypercorn (JSON responses, stateless).
# Check: tshark -r pcaps/tls13-chacha20.pcap -o tls.keylog_file:pcaps/tls13-chacha20.keys -Y http
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
NAME=tls13-chacha20 PORT=9445
make_certs
start_server $NAME "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --port $PORT --json --stateless \
  --certfile "$WORK/server.pem" --keyfile "$WORK/server.key" --allowed-host "$NAME_A:$PORT"
wait_port 127.0.0.1 $PORT

post() { # post BODY [EXTRA-HEADER-LINES]
  printf 'POST /mcp HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: openssl-s_client/3.0\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s' \
    "$NAME_A" "$PORT" "${2:-}" "${#1}" "$1"
}
{
  post '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"s-client-fixture","version":"3.0.19"}}}'
  post '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' $'MCP-Protocol-Version: 2025-11-25\r\nConnection: close\r\n'
} > "$WORK/requests"
rm -f "$PENDING/$NAME.keys"
"$SCRIPTS/capture.sh" $NAME "tcp port $PORT" -- \
  openssl s_client -connect 127.0.0.1:$PORT -servername "$NAME_A" -alpn http/1.1 -tls1_3 \
    -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -CAfile "$WORK/ca.pem" -verify_return_error \
    -keylogfile "$PENDING/$NAME.keys" -quiet -ign_eof < "$WORK/requests"
check_decrypt $NAME
