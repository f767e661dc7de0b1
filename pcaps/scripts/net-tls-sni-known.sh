#!/usr/bin/env bash
# TLS ClientHellos carrying the SNI of known MCP servers (curl and openssl
# s_client, names pinned to 127.0.0.1 with --resolve), a shared API host, an
# MCP-like name, and an ordinary site, against a local openssl s_server.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
make_cert
bg openssl s_server -accept 127.0.0.1:8443 -cert "$TMP/cert.pem" -key "$TMP/key.pem" -www -quiet
wait_tcp 127.0.0.1 8443
"$SCRIPTS/capture.sh" tls-sni-known "tcp port 8443" -- bash -c '
  curl -sk --max-time 5 --resolve mcp.notion.com:8443:127.0.0.1 https://mcp.notion.com:8443/mcp -o /dev/null || true
  echo | timeout 5 openssl s_client -connect 127.0.0.1:8443 -servername mcp.linear.app -alpn http/1.1 >/dev/null 2>&1 || true
  curl -sk --max-time 5 --resolve api.githubcopilot.com:8443:127.0.0.1 https://api.githubcopilot.com:8443/mcp/ -o /dev/null || true
  curl -sk --max-time 5 --resolve tools-mcp.example.dev:8443:127.0.0.1 https://tools-mcp.example.dev:8443/ -o /dev/null || true
  curl -sk --max-time 5 --resolve www.example.org:8443:127.0.0.1 https://www.example.org:8443/ -o /dev/null || true
'
