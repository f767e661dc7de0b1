#!/usr/bin/env bash
# Agent Identity & Discovery over DNS: dig asks a local dnsmasq for the TXT
# record of _agent.example.test (v=aid1, proto=mcp, uri
# https://agent.example.test/mcp) and of _agent.other.test (proto=a2a, which
# names no MCP endpoint), then the A record of agent.example.test; openssl
# s_client then opens a TLS connection with SNI agent.example.test, which the
# sensor attributes to the TXT record.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
make_cert
bg dnsmasq --no-daemon --no-resolv --no-hosts --port=53 --listen-address=127.0.0.1 --bind-interfaces \
  --txt-record=_agent.example.test,"v=aid1;uri=https://agent.example.test/mcp;proto=mcp;auth=pat" \
  --txt-record=_agent.other.test,"v=aid1;uri=https://agent.other.test/a2a;proto=a2a" \
  --host-record=agent.example.test,127.0.0.9 --log-facility=-
bg openssl s_server -accept 8443 -cert "$TMP/cert.pem" -key "$TMP/key.pem" -www -quiet
wait_tcp 127.0.0.1 8443
for _ in $(seq 1 50); do dig +short +tries=1 +time=1 @127.0.0.1 probe.invalid >/dev/null 2>&1 && break; sleep 0.1; done
"$SCRIPTS/capture.sh" discovery-aid-txt "port 53 or tcp port 8443" -- bash -c '
  d="dig +tries=1 +time=2 @127.0.0.1"
  $d _agent.example.test TXT >/dev/null
  $d _agent.other.test TXT >/dev/null
  $d agent.example.test A >/dev/null
  echo | timeout 5 openssl s_client -connect 127.0.0.9:8443 -servername agent.example.test >/dev/null 2>&1 || true
'
