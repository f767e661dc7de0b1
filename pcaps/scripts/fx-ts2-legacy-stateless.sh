#!/usr/bin/env bash
# Extra fixture: TypeScript SDK 2.x client in its DEFAULT version-negotiation
# mode ("legacy": initialize handshake, 2025-11-25) against the TS SDK 2.x
# server (createMcpHandler), which answers via its stateless legacy fallback
# (no Mcp-Session-Id; GET -> 405).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8774
start_server ts2-legacy-stateless node "$SCRIPTS/node2/server.mjs" 127.0.0.1 $PORT /mcp
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" ts2-legacy-stateless "tcp port $PORT" -- \
  node "$SCRIPTS/node2/client.mjs" "http://127.0.0.1:$PORT/mcp" legacy
