#!/usr/bin/env bash
# tls-partial-keys (+ .keys): two MCP sessions over TLS 1.3 + HTTP/2 to
# the same FastMCP-on-hypercorn server (port 9446), one TLS connection each:
#   tcp.stream 0: SNI tools.internal.example, client "keyed-client" 1.0.0
#   tcp.stream 1: SNI api.acme-tools.test,    client "unkeyed-client" 1.0.0
# The committed key log holds only stream 0's secrets: the script deletes the
# lines of stream 1's ClientHello random. Stream 0 stays provable; stream 1 is
# opaque (only its ClientHello: SNI, ALPN h2/http/1.1).
# Check: tshark -r pcaps/tls-partial-keys.pcap -o tls.keylog_file:pcaps/tls-partial-keys.keys -Y http2
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
NAME=tls-partial-keys PORT=9446
make_certs
start_server $NAME "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --port $PORT \
  --certfile "$WORK/server.pem" --keyfile "$WORK/server.key" \
  --allowed-host "$NAME_A:$PORT" --allowed-host "$NAME_B:$PORT"
wait_port 127.0.0.1 $PORT
C=("$PYH2" "$SCRIPTS/py/client_httpx.py" --http2 --cafile "$WORK/ca.pem" --pin "$NAME_A=127.0.0.1" --pin "$NAME_B=127.0.0.1")
SSLKEYLOGFILE="$WORK/all.keys" "$SCRIPTS/capture.sh" $NAME "tcp port $PORT" -- bash -c '
  "$@" --url "https://'"$NAME_A:$PORT"'/mcp" --client-name keyed-client --client-version 1.0.0 &&
  "$@" --url "https://'"$NAME_B:$PORT"'/mcp" --client-name unkeyed-client --client-version 1.0.0' _ "${C[@]}"
# Client random of the second connection's ClientHello (hex, no colons).
drop=$(timeout 60 tshark -n -r "$PENDING/$NAME.pcap" -Y 'tcp.stream == 1 && tls.handshake.type == 1' \
  -T fields -e tls.handshake.random 2>/dev/null | tr -d ':\n')
[[ ${#drop} -eq 64 ]] || { echo "no ClientHello random for stream 1" >&2; exit 1; }
grep -v -i " $drop " "$WORK/all.keys" > "$PENDING/$NAME.keys"
echo "kept $(wc -l < "$PENDING/$NAME.keys") of $(wc -l < "$WORK/all.keys") key log lines (dropped client random $drop)" >&2
check_decrypt $NAME
