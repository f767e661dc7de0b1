#!/usr/bin/env bash
# h2-prior-knowledge-negative: cleartext HTTP/2 that is not MCP, to
# hypercorn serving a plain site (py/hypercorn_server.py --app plain):
#  1. curl --http2-prior-knowledge: GET / (HTML), GET /api/items (JSON),
#     POST /rpc Ethereum JSON-RPC eth_blockNumber, POST /v1/chat/completions
#     (OpenAI shape with a function tool), one connection each (curl 7.88.1
#     fails "Error in the HTTP2 framing layer" when --next reuses a
#     prior-knowledge connection).
#  2. nghttp (prior knowledge): GET / and GET /api/items on one connection.
#  3. nghttp -u: the same over an accepted "Upgrade: h2c" (GET, no body).
#  4. h2load: 4 GET /api/items on one connection.
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
PORT=8784
U=http://127.0.0.1:$PORT
start_server h2-negative "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --app plain --port $PORT
wait_port 127.0.0.1 $PORT
cat > "$WORK/client.sh" <<CLIENT
set -u
C=(--http2-prior-knowledge -sS -m 10)
J=(-H 'Content-Type: application/json' -H 'Accept: application/json')
curl "\${C[@]}" $U/; echo
curl "\${C[@]}" $U/api/items; echo
curl "\${C[@]}" "\${J[@]}" --data-binary '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' $U/rpc; echo
curl "\${C[@]}" "\${J[@]}" -H 'Authorization: Bearer sk-fixture-not-a-key' \\
    --data-binary '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Weather in Oslo?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather for a city.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":"auto"}' \\
    $U/v1/chat/completions
echo
nghttp -n -t 10 $U/ $U/api/items
nghttp -n -u -t 10 $U/
h2load -n 4 -c 1 -m 1 -t 1 -T 10 $U/api/items | grep -E 'requests|status codes'
CLIENT
"$SCRIPTS/capture.sh" h2-prior-knowledge-negative "tcp port $PORT" -- bash "$WORK/client.sh"
