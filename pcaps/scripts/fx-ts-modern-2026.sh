#!/usr/bin/env bash
# Extra fixture: protocol 2026-07-28 between the official TypeScript SDK 2.x
# server (createMcpHandler + @modelcontextprotocol/node) and 2.x client.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8773
start_server ts-modern-2026 node "$SCRIPTS/node2/server.mjs" 127.0.0.1 $PORT /mcp
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" ts-modern-2026 "tcp port $PORT" -- \
  node "$SCRIPTS/node2/client.mjs" "http://127.0.0.1:$PORT/mcp" auto
