#!/usr/bin/env bash
# The README's demo capture: several fixtures merged into one timeline
# (mergecap from Debian's wireshark-common).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mergecap -F pcap -w demo.pcap py-streamable-sse.pcap py-legacy-sse.pcap modern-2026.pcap \
  tls-sni-known.pcap dns-then-tls.pcap quic.pcap negative-lookalikes.pcap
