#!/usr/bin/env bash
# fragroute-ipv4-tiny-random, fragroute-ipv6-tiny-reverse: two real SDK
# sessions (py-streamable-json.pcap, over IPv4; ipv6.pcap, over IPv6) sent
# again through fragroute's IP fragmentation, the classic tool for evading a
# sensor (tcprewrite --fragroute, from tcpreplay). Every packet with a
# payload becomes fragments of 24 bytes (IPv4) or 16 bytes (IPv6), so the
# first one cuts the TCP header; the IPv4 fragments of each packet are
# shuffled (`order random`: the committed file is one run), the IPv6 ones
# reversed. Expected: the findings of the sessions they were made from.
set -euo pipefail
pcaps="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v tcprewrite >/dev/null || { echo "tcprewrite (tcpreplay) is needed" >&2; exit 1; }
conf="$(mktemp)"
trap 'rm -f "$conf"' EXIT
printf 'ip_frag 24\norder random\n' >"$conf"
tcprewrite --fragroute="$conf" -i "$pcaps/py-streamable-json.pcap" \
  -o "$pcaps/fragroute-ipv4-tiny-random.pcap"
printf 'ip_frag 16\norder reverse\n' >"$conf"
tcprewrite --fragroute="$conf" -i "$pcaps/ipv6.pcap" \
  -o "$pcaps/fragroute-ipv6-tiny-reverse.pcap"
