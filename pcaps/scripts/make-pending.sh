#!/usr/bin/env bash
# Regenerates the HTTP/2 and TLS-with-key-log fixtures in pcaps/ (no
# golden output yet, so tests/golden.rs does not read them). Needs root for
# tcpdump on lo, plus tshark/editcap (Debian tshark, wireshark-common), nghttp,
# h2load and nghttpx (nghttp2-client, nghttp2-proxy), curl and openssl.
# Usage: make-pending.sh [NAME...]   (default: all, in MANIFEST order)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/setup.sh" h2 node
all=(py-h2c-streamable curl-h2c-upgrade h2-prior-knowledge-negative grpc-h2c-negative
     py-tls13-h1 py-tls12-h1 py-tls13-h2 ts-tls13-keylog tls13-chacha20
     py-tls13-pcapng-dsb tls-partial-keys tls-negative-llm-api)
names=("${@:-${all[@]}}")
for n in "${names[@]}"; do
  echo "=== $n" >&2
  timeout 180 "$here/fx-$n.sh"
done
ls -l "$here"/../pending >&2
