#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks to build and test shadowmcp:
# libpcap headers (the `pcap` crate links libpcap) and pkg-config; with
# --test-receivers also the real receivers the integration tests start:
# rsyslog (+ TLS), Prometheus Alertmanager and Prometheus; and what the
# live-sensor end-to-end test (tests/e2e_sensor.rs) needs: iproute2 (ip netns),
# curl, python3 with venv, and the pinned MCP SDK virtualenv it runs
# (pcaps/scripts/setup.sh mcp1, from PyPI); tshark and editcap for the
# key-log decryption tests (tests/tls_decrypt_pcapng.rs), openssl for
# tests/tls_decrypt_openssl.rs.
set -euo pipefail
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ "${1:-}" = "--test-receivers" ]; then
  for p in rsyslog rsyslog-gnutls prometheus-alertmanager prometheus \
    iproute2 curl python3 python3-venv tshark openssl; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # In CI, packages that ship services must not start them (the tests start
  # their own receivers on loopback ports).
  if [ "${CI:-}" = "true" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
  fi
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ "${1:-}" = "--test-receivers" ]; then
  # Without network to PyPI the end-to-end test skips (it says so); the
  # rest of the suite does not need the SDK.
  "$(dirname "$0")/../pcaps/scripts/setup.sh" mcp1 ||
    echo "warning: MCP SDK virtualenv not installed; tests/e2e_sensor.rs will skip" >&2
fi
