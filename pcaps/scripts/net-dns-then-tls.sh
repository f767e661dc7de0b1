#!/usr/bin/env bash
# DNS lookups (dig against a local dnsmasq, UDP and TCP, A/AAAA/HTTPS with an
# `ech` parameter, a CNAME chain), then TLS connections WITHOUT SNI to the
# answered addresses (openssl s_client -noservername): the sensor must
# attribute them to the names that were looked up. Also look-alike names
# (mcpherson.edu, smcp.example.com) that must not be reported.
source "$(dirname "${BASH_SOURCE[0]}")/net/common.sh"
make_cert
# HTTPS RR for mcp.stripe.com: priority 1, target ".", alpn=h2, ech=<4 bytes>.
https_rr=0001000001000302683200050004deadbeef
bg dnsmasq --no-daemon --no-resolv --no-hosts --port=53 --listen-address=127.0.0.1 --bind-interfaces \
  --host-record=mcp.stripe.com,127.0.0.5 --host-record=mcp.linear.app,127.0.0.6 \
  --cname=assistant.corp.example,mcp.linear.app \
  --host-record=mcpherson.edu,127.0.0.7 --host-record=smcp.example.com,127.0.0.8 \
  --dns-rr=mcp.stripe.com,65,$https_rr --log-facility=-
bg openssl s_server -accept 8443 -cert "$TMP/cert.pem" -key "$TMP/key.pem" -www -quiet
wait_tcp 127.0.0.5 8443
for _ in $(seq 1 50); do dig +short +tries=1 +time=1 @127.0.0.1 probe.invalid >/dev/null 2>&1 && break; sleep 0.1; done
"$SCRIPTS/capture.sh" dns-then-tls "port 53 or tcp port 8443" -- bash -c '
  d="dig +tries=1 +time=2 @127.0.0.1"
  $d mcp.stripe.com A >/dev/null
  $d mcp.stripe.com HTTPS >/dev/null
  $d +tcp mcp.stripe.com AAAA >/dev/null
  $d assistant.corp.example A >/dev/null
  $d mcpherson.edu A >/dev/null
  $d smcp.example.com A >/dev/null
  echo | timeout 5 openssl s_client -connect 127.0.0.5:8443 -noservername >/dev/null 2>&1 || true
  echo | timeout 5 openssl s_client -connect 127.0.0.6:8443 -noservername >/dev/null 2>&1 || true
  echo | timeout 5 openssl s_client -connect 127.0.0.7:8443 -servername mcpherson.edu >/dev/null 2>&1 || true
  echo | timeout 5 openssl s_client -connect 127.0.0.8:8443 -servername smcp.example.com >/dev/null 2>&1 || true
'
