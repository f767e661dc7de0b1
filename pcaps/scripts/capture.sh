#!/usr/bin/env bash
# capture.sh NAME FILTER -- COMMAND...
#
# Records loopback traffic matching the tcpdump FILTER (e.g. "tcp port 8765")
# into pcaps/NAME.pcap while COMMAND runs. tcpdump is started first and we wait
# until it reports "listening on lo" so the first SYN is never missed; COMMAND
# is bounded by `timeout`; tcpdump is then stopped with SIGINT so the file is
# flushed and closed cleanly (-U already writes packet by packet).
#
# Env: CAPTURE_TIMEOUT (seconds for COMMAND, default 60).
set -euo pipefail

if [[ $# -lt 4 || "$3" != "--" ]]; then
  echo "usage: $0 NAME FILTER -- COMMAND..." >&2
  exit 2
fi
name=$1
filter=$2
shift 3

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
outdir=$(cd "$here/.." && pwd)
out="$outdir/$name.pcap"
errlog=$(mktemp)
rm -f "$out"

# -Z root: Debian's tcpdump otherwise drops to user "tcpdump" and may not be
# able to write into the work tree. -s 0: full packets. -U: unbuffered writes.
# --immediate-mode: deliver packets at once (TPACKET_V3 otherwise holds them
# for up to 1 s, and a quick SIGINT would then lose them).
timeout 120 tcpdump -i lo -s 0 -U --immediate-mode -n -Z root -w "$out" "$filter" 2>"$errlog" &
tpid=$!

ready=0
for _ in $(seq 1 100); do
  if grep -q "listening on" "$errlog"; then ready=1; break; fi
  if ! kill -0 "$tpid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [[ $ready -ne 1 ]]; then
  echo "capture.sh: tcpdump did not start:" >&2
  cat "$errlog" >&2
  kill "$tpid" 2>/dev/null || true
  exit 1
fi
# The kernel attaches the filter before tcpdump prints "listening"; a short
# extra pause guards against packets queued before the socket was bound.
sleep 0.3

rc=0
timeout "${CAPTURE_TIMEOUT:-60}" "$@" || rc=$?

# Let trailing FIN/ACKs arrive, then stop tcpdump cleanly.
sleep 0.5
kill -INT "$tpid" 2>/dev/null || true
wait "$tpid" 2>/dev/null || true
sed 's/^/tcpdump: /' "$errlog" >&2
rm -f "$errlog"

if [[ ! -s "$out" ]]; then
  echo "capture.sh: $out is empty" >&2
  exit 1
fi
echo "capture.sh: wrote $out ($(stat -c %s "$out") bytes), command rc=$rc" >&2
exit "$rc"
