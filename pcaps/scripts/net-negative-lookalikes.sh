#!/usr/bin/env bash
# Traffic that must NOT be reported as MCP: an LSP session over TCP with
# pylsp (PyPI python-lsp-server), and curl requests to a local server for
# Ethereum JSON-RPC, an OpenAI-style chat completion with a `tools` array,
# A2A message/send + tasks/get, an ACP initialize (integer protocolVersion),
# and documentation pages (HTML and JSON) that contain MCP JSON examples.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
bg pylsp --tcp --host 127.0.0.1 --port 2087
bg python3 "$SCRIPTS/net/lookalike_server.py" 8545
wait_tcp 127.0.0.1 2087
wait_tcp 127.0.0.1 8545
"$SCRIPTS/capture.sh" negative-lookalikes "tcp port 2087 or tcp port 8545" -- bash -c "
  set -e
  python3 '$SCRIPTS/net/lsp_client.py' 2087
  c='curl -s --max-time 5 -H Content-Type:application/json'
  \$c -d '{\"jsonrpc\":\"2.0\",\"method\":\"eth_blockNumber\",\"params\":[],\"id\":1}' http://127.0.0.1:8545/ >/dev/null
  \$c -d '{\"jsonrpc\":\"2.0\",\"method\":\"eth_getBalance\",\"params\":[\"0x0000000000000000000000000000000000000000\",\"latest\"],\"id\":2}' http://127.0.0.1:8545/ >/dev/null
  \$c -d '{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris?\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Get weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]}' http://127.0.0.1:8545/v1/chat/completions >/dev/null
  \$c -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"message/send\",\"params\":{\"message\":{\"role\":\"user\",\"parts\":[{\"kind\":\"text\",\"text\":\"hi\"}],\"messageId\":\"m1\"}}}' http://127.0.0.1:8545/a2a >/dev/null
  \$c -d '{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tasks/get\",\"params\":{\"id\":\"task-1\"}}' http://127.0.0.1:8545/a2a >/dev/null
  \$c -d '{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":1,\"clientCapabilities\":{\"fs\":{\"readTextFile\":true}}}}' http://127.0.0.1:8545/acp >/dev/null
  curl -s --max-time 5 http://127.0.0.1:8545/docs/mcp.html >/dev/null
  curl -s --max-time 5 http://127.0.0.1:8545/docs/examples.json >/dev/null
"
