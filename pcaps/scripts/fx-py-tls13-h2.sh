#!/usr/bin/env bash
# py-tls13-h2 (+ .keys): MCP over HTTP/2 over TLS 1.3. The Python SDK
# 1.x client's httpx client has http2=True (ALPN offers h2, http/1.1); hypercorn
# picks h2. One TLS connection carries every request as HTTP/2 streams.
# Check: tshark -r pcaps/py-tls13-h2.pcap -o tls.keylog_file:pcaps/py-tls13-h2.keys -Y http2
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
py_tls_session py-tls13-h2 9443 -- --http2
