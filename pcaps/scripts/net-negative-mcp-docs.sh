#!/usr/bin/env bash
# MCP JSON-RPC as content, which must not be reported: curl GETs (over one
# keep-alive connection, from python's http.server in HTTP/1.1 mode) an HTML
# page with initialize / tools/call examples and JSON files that each hold
# an MCP message as documentation or test fixture: an initialize request, an
# initialize result, a batch of tools/list + tools/call + initialized, a
# tools/call result.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
cat >"$TMP/server.py" <<'PY'
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
handler.func.protocol_version = "HTTP/1.1"
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
PY
bg python3 "$TMP/server.py" 8782 "$SCRIPTS/discovery/docs"
wait_tcp 127.0.0.1 8782
"$SCRIPTS/capture.sh" negative-mcp-docs "tcp port 8782" -- \
  curl -s --max-time 10 -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    http://127.0.0.1:8782/mcp-lifecycle.html \
    http://127.0.0.1:8782/initialize-request.json \
    http://127.0.0.1:8782/initialize-result.json \
    http://127.0.0.1:8782/session-batch.json \
    http://127.0.0.1:8782/tools-call-result.json
