#!/usr/bin/env bash
# Installs the pinned SDKs the fixture scripts use (idempotent):
#   .venv-mcp1  Python mcp 1.x (+ websockets) from requirements-mcp1.txt
#   .venv-mcp2  Python mcp 2.x                 from requirements-mcp2.txt
#   node/       @modelcontextprotocol/sdk 1.x  from package-lock.json
#   node2/      @modelcontextprotocol/{client,server,node} 2.x from package-lock.json
# Needs: python3 (3.10+), node (20+) with npm, tcpdump, curl, gzip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for v in 1 2; do
  if [[ ! -x .venv-mcp$v/bin/python ]]; then
    python3 -m venv .venv-mcp$v
  fi
  .venv-mcp$v/bin/pip install -q --disable-pip-version-check -r requirements-mcp$v.txt
done
for d in node node2; do
  [[ -d $d/node_modules ]] || (cd $d && npm ci --no-audit --no-fund)
done
