#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks to build and test shadowmcp:
# libpcap headers (the `pcap` crate links libpcap) and pkg-config.
set -euo pipefail
need=()
dpkg -s libpcap-dev >/dev/null 2>&1 || need+=(libpcap-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}"
fi
