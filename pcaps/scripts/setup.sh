#!/usr/bin/env bash
# Installs the pinned SDKs the fixture scripts use (idempotent):
#   .venv-mcp1  Python mcp 1.x (+ websockets) from requirements-mcp1.txt
#   .venv-mcp2  Python mcp 2.x                 from requirements-mcp2.txt
#   .venv-h2    mcp 1.x + hypercorn, h2, grpcio from requirements-h2.txt
#   node/       @modelcontextprotocol/sdk 1.x  from package-lock.json
#   node2/      @modelcontextprotocol/{client,server,node} 2.x from package-lock.json
# Usage: setup.sh [mcp1] [mcp2] [h2] [node] [node2]   (no argument: all; the
# live-sensor end-to-end test needs only mcp1).
# Needs: python3 (3.10+), node (20+) with npm, tcpdump, curl, gzip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(mcp1 mcp2 h2 node node2)
for w in "${want[@]}"; do
  case $w in
    mcp1 | mcp2)
      v=${w#mcp}
      if [[ ! -x .venv-mcp$v/bin/python ]]; then
        python3 -m venv .venv-mcp$v
      fi
      .venv-mcp$v/bin/pip install -q --disable-pip-version-check -r requirements-mcp$v.txt
      ;;
    h2)
      [[ -x .venv-h2/bin/python ]] || python3 -m venv .venv-h2
      .venv-h2/bin/pip install -q --disable-pip-version-check -r requirements-h2.txt
      ;;
    node | node2)
      [[ -d $w/node_modules ]] || (cd "$w" && npm ci --no-audit --no-fund)
      ;;
    *)
      echo "setup.sh: unknown component '$w' (mcp1, mcp2, h2, node, node2)" >&2
      exit 2
      ;;
  esac
done
