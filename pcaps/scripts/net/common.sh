# Sourced by the net-*.sh fixture scripts: a throwaway self-signed certificate,
# background servers bounded by `timeout`, and waiting for a port before the
# capture starts (so the probe is not recorded).
set -euo pipefail
SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -subj /CN=fixture.test 2>/dev/null
}

# bg COMMAND... : run in the background for at most 90 s.
bg() {
  timeout 90 "$@" >>"$TMP/bg.log" 2>&1 &
  pids+=($!)
}

# wait_tcp HOST PORT
wait_tcp() {
  for _ in $(seq 1 100); do
    if python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.5).close()" "$1" "$2" 2>/dev/null; then
      sleep 0.2; return 0
    fi
    sleep 0.1
  done
  echo "timeout waiting for $1:$2" >&2; cat "$TMP/bg.log" >&2; return 1
}
