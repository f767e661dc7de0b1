#!/usr/bin/env bash
# Regenerates the network fixtures (TLS/DNS/QUIC/look-alikes); needs root for
# tcpdump on lo and dnsmasq on 127.0.0.1:53, plus openssl, curl, dig, dnsmasq,
# and PyPI aioquic and python-lsp-server.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for n in tls-sni-known dns-then-tls quic negative-lookalikes; do
  echo "=== $n" >&2
  timeout 180 "$here/net-$n.sh"
done
