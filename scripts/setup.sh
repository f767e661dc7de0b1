#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks to build and test shadowmcp:
# libpcap headers (the `pcap` crate links libpcap) and pkg-config; with
# --test-receivers also the real receivers the integration tests start:
# rsyslog (+ TLS), Prometheus Alertmanager and Prometheus.
set -euo pipefail
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ "${1:-}" = "--test-receivers" ]; then
  for p in rsyslog rsyslog-gnutls prometheus-alertmanager prometheus; do
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
