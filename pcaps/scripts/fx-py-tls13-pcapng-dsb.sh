#!/usr/bin/env bash
# py-tls13-pcapng-dsb.pcapng: py-tls13-h1.pcap converted to
# pcapng with its key log embedded as a Decryption Secrets Block
# (editcap --inject-secrets), so the capture decrypts without a .keys file.
# Made from the committed py-tls13-h1 files (run fx-py-tls13-h1.sh first to
# regenerate both). Check: tshark -r pcaps/py-tls13-pcapng-dsb.pcapng -Y http
set -euo pipefail
PENDING=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
timeout 60 editcap -F pcapng --inject-secrets "tls,$PENDING/py-tls13-h1.keys" \
  "$PENDING/py-tls13-h1.pcap" "$PENDING/py-tls13-pcapng-dsb.pcapng"
echo "check: tshark -n -r $PENDING/py-tls13-pcapng-dsb.pcapng -Y http.request -T fields -e frame.number -e http.request.method -e json.value.string" >&2
timeout 60 tshark -n -r "$PENDING/py-tls13-pcapng-dsb.pcapng" -Y http.request \
  -T fields -e frame.number -e http.request.method -e json.value.string >&2 2>/dev/null
