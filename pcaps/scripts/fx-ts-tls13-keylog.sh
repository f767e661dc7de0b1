#!/usr/bin/env bash
# ts-tls13-keylog (+ .keys): the TypeScript SDK 1.x client
# (node/client.mjs: Client + StreamableHTTPClientTransport on Node's fetch)
# over TLS 1.3 to the Python FastMCP server on hypercorn, server name
# api.acme-tools.test (pinned to 127.0.0.1 by node/pin-hosts.cjs; the CA comes
# in through NODE_EXTRA_CA_CERTS). node --tls-keylog writes the secrets.
# Check: tshark -r pcaps/ts-tls13-keylog.pcap -o tls.keylog_file:pcaps/ts-tls13-keylog.keys -Y http
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
NAME=ts-tls13-keylog PORT=9444
make_certs
start_server $NAME "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --port $PORT \
  --certfile "$WORK/server.pem" --keyfile "$WORK/server.key" --allowed-host "$NAME_B:$PORT"
wait_port 127.0.0.1 $PORT
rm -f "$PENDING/$NAME.keys"
NODE_EXTRA_CA_CERTS="$WORK/ca.pem" PIN_HOSTS="$NAME_B=127.0.0.1" "$SCRIPTS/capture.sh" $NAME "tcp port $PORT" -- \
  node --tls-keylog="$PENDING/$NAME.keys" --require "$SCRIPTS/node/pin-hosts.cjs" \
  "$SCRIPTS/node/client.mjs" "https://$NAME_B:$PORT/mcp"
check_decrypt $NAME
