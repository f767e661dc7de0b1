#!/usr/bin/env bash
# Fixture 3: TypeScript SDK 1.x server (McpServer + StreamableHTTPServerTransport
# on node:http) and TS client (Client + StreamableHTTPClientTransport).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PORT=8770
start_server ts-streamable node "$SCRIPTS/node/server.mjs" 127.0.0.1 $PORT /mcp
wait_port 127.0.0.1 $PORT
"$SCRIPTS/capture.sh" ts-streamable "tcp port $PORT" -- \
  node "$SCRIPTS/node/client.mjs" "http://127.0.0.1:$PORT/mcp"
