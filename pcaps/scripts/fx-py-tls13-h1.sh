#!/usr/bin/env bash
# py-tls13-h1 (+ .keys): the Python SDK 1.x client (httpx, HTTP/1.1
# only, so ALPN offers just http/1.1) to the FastMCP server on hypercorn over
# TLS 1.3, server name tools.internal.example (pinned to 127.0.0.1; the
# certificate comes from a throwaway CA). Python's ssl module writes the
# session secrets to $SSLKEYLOGFILE = py-tls13-h1.keys.
# Check: tshark -r pcaps/py-tls13-h1.pcap -o tls.keylog_file:pcaps/py-tls13-h1.keys -Y http
source "$(dirname "${BASH_SOURCE[0]}")/pending-common.sh"
py_tls_session py-tls13-h1 9441
