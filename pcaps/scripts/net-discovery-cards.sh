#!/usr/bin/env bash
# MCP discovery over cleartext HTTP, then TLS to the hosts it named: curl
# fetches the server cards, catalogs and a registry page that python's
# http.server serves from discovery/www (/.well-known/mcp.json,
# /.well-known/mcp/server-card.json, /.well-known/mcp/catalog.json,
# /.well-known/ai-catalog.json with Accept application/ai-catalog+json,
# /mcp/server-card with Accept application/mcp-server-card+json, and
# /v0.1/servers); then openssl s_client opens TLS connections with the SNI of
# two named remotes (remote.discovery.test from the server card,
# weather.registry.test from the registry page) and of a host no answer named
# (unnamed.discovery.test, which must not be reported).
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
make_cert
bg python3 -m http.server 8780 --bind 127.0.0.1 --directory "$SCRIPTS/discovery/www"
bg openssl s_server -accept 8443 -cert "$TMP/cert.pem" -key "$TMP/key.pem" -www -quiet
wait_tcp 127.0.0.1 8780
wait_tcp 127.0.0.1 8443
"$SCRIPTS/capture.sh" discovery-cards "tcp port 8780 or tcp port 8443" -- bash -c '
  set -e
  c="curl -s --max-time 5 --resolve discovery.test:8780:127.0.0.1 --resolve registry.discovery.test:8780:127.0.0.1"
  $c http://discovery.test:8780/.well-known/mcp.json >/dev/null
  $c http://discovery.test:8780/.well-known/mcp/server-card.json >/dev/null
  $c http://discovery.test:8780/.well-known/mcp/catalog.json >/dev/null
  $c -H "Accept: application/ai-catalog+json" http://discovery.test:8780/.well-known/ai-catalog.json >/dev/null
  $c -H "Accept: application/mcp-server-card+json" http://discovery.test:8780/mcp/server-card >/dev/null
  $c "http://registry.discovery.test:8780/v0.1/servers?limit=2" >/dev/null
  for sni in remote.discovery.test weather.registry.test unnamed.discovery.test; do
    echo | timeout 5 openssl s_client -connect 127.0.0.1:8443 -servername $sni >/dev/null 2>&1 || true
  done
'
