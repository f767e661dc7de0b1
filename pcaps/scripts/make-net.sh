#!/usr/bin/env bash
# Regenerates the network fixtures (TLS/DNS/QUIC/look-alikes); needs root for
# tcpdump on lo and dnsmasq on 127.0.0.1:53, plus openssl, curl, dig, dnsmasq,
# PyPI aioquic and python-lsp-server, and the `mcp` 1.x venv of setup.sh
# (.venv-mcp1) for the legacy-SSE and stateless tools/call captures.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for n in tls-sni-known dns-then-tls quic negative-lookalikes discovery-cards discovery-aid-txt \
         negative-mcp-docs py-legacy-sse-split curl-stateless-tools-call tunnels; do
  echo "=== $n" >&2
  timeout 180 "$here/net-$n.sh"
done
