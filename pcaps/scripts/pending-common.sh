# Sourced by the fx-*.sh scripts whose captures go to pcaps/ (HTTP/2
# and TLS-with-key-log fixtures, no golden output yet): common.sh, several
# background servers, a throwaway CA with a server certificate for made-up
# names, and the tshark decryption check.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PENDING="$PCAPS"
mkdir -p "$PENDING"
WORK=$(mktemp -d)
# Server names of the TLS fixtures: nothing MCP-like in them, pinned to
# loopback by each client (curl --resolve, httpx backend, node dns.lookup).
NAME_A=tools.internal.example
NAME_B=api.acme-tools.test
pids=()

# bg_server LOGNAME COMMAND...  -- another server under timeout, in the background.
bg_server() {
  local log="$1"; shift
  timeout "$SERVER_TIMEOUT" "$@" >"$WORK/$log.server.log" 2>&1 &
  pids+=($!)
}

cleanup_pending() {
  stop_server
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup_pending EXIT

# make_certs -- $WORK/ca.pem (trust anchor) and $WORK/server.{pem,key} for
# NAME_A and NAME_B, P-256, valid two days. Never committed.
make_certs() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 -subj "/CN=Fixture Test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" -subj "/CN=$NAME_A" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    "$NAME_A" "$NAME_B" >"$WORK/ext.cnf"
  openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -out "$WORK/server.pem" -extfile "$WORK/ext.cnf" 2>/dev/null
}

# check_decrypt NAME -- tshark must decrypt pcaps/NAME.pcap with
# NAME.keys and find the JSON-RPC methods in the decrypted HTTP or HTTP/2.
check_decrypt() {
  local f="$PENDING/$1.pcap" k="$PENDING/$1.keys"
  local cmd=(tshark -n -r "$f" -o "tls.keylog_file:$k" -Y 'http.request || http2.type == 0'
             -T fields -e frame.number -e tcp.stream -e http.request.method -e json.value.string)
  echo "check: ${cmd[*]}" >&2
  timeout 60 "${cmd[@]}" >&2 2>/dev/null
}

# py_tls_session NAME PORT [SERVER-ARG...] -- [CLIENT-ARG...]
# The FastMCP server on hypercorn with TLS for $NAME_A:PORT, and one Python
# SDK client session (client_httpx.py) recorded into pcaps/NAME.pcap, its
# TLS secrets into pcaps/NAME.keys (SSLKEYLOGFILE), then check_decrypt.
py_tls_session() {
  local name=$1 port=$2; shift 2
  local sargs=() cargs=()
  while [[ $# -gt 0 && $1 != -- ]]; do sargs+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  cargs=("$@")
  make_certs
  start_server "$name" "$PYH2" "$SCRIPTS/py/hypercorn_server.py" --port "$port" \
    --certfile "$WORK/server.pem" --keyfile "$WORK/server.key" --allowed-host "$NAME_A:$port" "${sargs[@]}"
  wait_port 127.0.0.1 "$port"
  rm -f "$PENDING/$name.keys"
  SSLKEYLOGFILE="$PENDING/$name.keys" "$SCRIPTS/capture.sh" "$name" "tcp port $port" -- \
    "$PYH2" "$SCRIPTS/py/client_httpx.py" --url "https://$NAME_A:$port/mcp" \
    --cafile "$WORK/ca.pem" --pin "$NAME_A=127.0.0.1" "${cargs[@]}"
  check_decrypt "$name"
}
