#!/usr/bin/env bash
# tls-negative-llm-api (+ .keys): decryptable HTTPS that is not MCP.
# curl (SSLKEYLOGFILE) to hypercorn's plain site (--app plain) as
# api.acme-tools.test over TLS 1.3, twice:
#   tcp.stream 0, HTTP/1.1 (ALPN http/1.1), keep-alive via --next
#   tcp.stream 1, HTTP/2 (ALPN h2), two streams via --next
# each with an OpenAI chat-completions POST carrying a function tool
# (/v1/chat/completions, answered with a tool_calls choice) and an Ethereum
# JSON-RPC POST (eth_blockNumber on /rpc).
# Check: tshark -r pcaps/tls-negative-llm-api.pcap -o tls.keylog_file:pcaps/tls-negative-llm-api.keys -Y 'http || http2'
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
NAME=tls-negative-llm-api PORT=9447
make_certs
start_server $NAME "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --app plain --port $PORT \
  --certfile "$WORK/server.pem" --keyfile "$WORK/server.key"
wait_port 127.0.0.1 $PORT
U="https://$NAME_B:$PORT"
CHAT='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the weather in Oslo?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather for a city.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":"auto"}'
ETH='{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
cat > "$WORK/client.sh" <<CLIENT
set -u
for v in --http1.1 --http2; do
  C=(\$v -sS -m 10 --resolve $NAME_B:$PORT:127.0.0.1 --cacert "$WORK/ca.pem" --tlsv1.3
     -H 'Content-Type: application/json' -H 'Accept: application/json')
  curl "\${C[@]}" -H 'Authorization: Bearer sk-fixture-not-a-key' --data-binary '$CHAT' $U/v1/chat/completions \\
    --next "\${C[@]}" --data-binary '$ETH' $U/rpc
  echo
done
CLIENT
rm -f "$PENDING/$NAME.keys"
SSLKEYLOGFILE="$PENDING/$NAME.keys" "$SCRIPTS/capture.sh" $NAME "tcp port $PORT" -- bash "$WORK/client.sh"
check_decrypt $NAME
