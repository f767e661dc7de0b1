#!/usr/bin/env bash
# A capture on the Linux "any" device (link type LINUX_SLL2): curl POSTs an
# MCP initialize and a tools/list to a local JSON-RPC server on port 8790.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
bg python3 "$SCRIPTS/net/lookalike_server.py" 8790
wait_tcp 127.0.0.1 8790
out="$SCRIPTS/../any-sll2.pcap"
rm -f "$out"
timeout 60 tcpdump -i any -s 0 -U --immediate-mode -n -Z root -w "$out" "tcp port 8790" 2>"$TMP/td.log" &
td=$!
for _ in $(seq 1 100); do grep -q "listening on" "$TMP/td.log" && break; sleep 0.1; done
sleep 0.3
c='curl -s --max-time 5 -H Content-Type:application/json -H Accept:application/json,text/event-stream'
$c -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl-any-client","version":"8.0"}}}' http://127.0.0.1:8790/rpc >/dev/null
$c -H 'MCP-Protocol-Version: 2025-06-18' -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' http://127.0.0.1:8790/rpc >/dev/null
sleep 0.5
kill -INT $td; wait $td || true
tcpdump -r "$out" -n 2>&1 | head -1 >&2
