# Sourced by the fixture scripts. Helpers to run a server in the background
# (bounded by `timeout`), wait for its port without touching it during the
# capture, and stop it by its own pid.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PCAPS=$(cd "$SCRIPTS/.." && pwd)
PY1="$SCRIPTS/.venv-mcp1/bin/python"   # mcp 1.x (requirements-mcp1.txt)
PY2="$SCRIPTS/.venv-mcp2/bin/python"   # mcp 2.x (requirements-mcp2.txt)
PYH2="$SCRIPTS/.venv-h2/bin/python"    # mcp 1.x + hypercorn/h2/grpcio (requirements-h2.txt)
SERVER_TIMEOUT=${SERVER_TIMEOUT:-90}
export PYTHONUNBUFFERED=1

# Install the pinned SDKs on first use.
if [[ ! -x "$PY1" || ! -x "$PY2" || ! -x "$PYH2" || ! -d "$SCRIPTS/node/node_modules" || ! -d "$SCRIPTS/node2/node_modules" ]]; then
  "$SCRIPTS/setup.sh"
fi

server_pid=""

# start_server LOGNAME COMMAND...  -- runs COMMAND under timeout in background.
start_server() {
  local log="$1"; shift
  timeout "$SERVER_TIMEOUT" "$@" >"/tmp/pcaps-$log.server.log" 2>&1 &
  server_pid=$!
}

# wait_port HOST PORT -- connect probe, done BEFORE tcpdump starts so the
# probe connection is not in the capture.
wait_port() {
  local host="$1" port="$2"
  for _ in $(seq 1 150); do
    if python3 - "$host" "$port" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5)
s.close()
PY
    then
      sleep 0.3
      return 0
    fi
    if [[ -n "$server_pid" ]] && ! kill -0 "$server_pid" 2>/dev/null; then
      echo "server exited early" >&2; return 1
    fi
    sleep 0.2
  done
  echo "timeout waiting for $host:$port" >&2
  return 1
}

stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT
