#!/usr/bin/env bash
# Regenerates every pcaps/*.pcap fixture (needs root for tcpdump on lo).
# Usage: make-all.sh [NAME...]   (default: all fixtures, in MANIFEST order)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/setup.sh"
all=(py-streamable-sse py-streamable-json ts-streamable py-legacy-sse odd-path-port
     ipv6 py-websocket modern-2026 py-streamable-gzip-chunked ts-modern-2026
     ts2-legacy-stateless py-websocket-plain fragroute)
names=("${@:-${all[@]}}")
for n in "${names[@]}"; do
  echo "=== $n" >&2
  timeout 180 "$here/fx-$n.sh"
done
ls -l "$here"/../*.pcap >&2
