#!/usr/bin/env bash
# describe.sh FILE.pcap [MAXLINES] -- print each TCP conversation of a capture
# as ASCII (tshark "follow"), for checking what a fixture contains.
set -euo pipefail
f=$1; max=${2:-60}
tshark -r "$f" -q -z conv,tcp 2>/dev/null | sed -n '/<->/p'
n=$(tshark -r "$f" -T fields -e tcp.stream 2>/dev/null | sort -n | uniq | wc -l)
for ((i = 0; i < n; i++)); do
  tshark -r "$f" -q -z "follow,tcp,ascii,$i" 2>/dev/null \
    | grep -v -E '^[0-9]+$|^=+$|^Follow:|^Filter:' | head -n "$max"
  echo "-----"
done
