#!/usr/bin/env bash
# Compare builds of the sensor on one capture: CPU seconds of
# `shadowmcp analyze`, interleaved rounds, each build's ratio to the first
# build within a round, medians over rounds. Method: docs/performance.md.
#
#   bench/ab.sh [--rounds N] [--workers N] [--timeout SECS] FILE BIN BIN...
#
# Name the first build twice (for example a copy of it at another path) to
# get an A/A control: its ratio is the noise floor of the run. On the shared
# VMs this project is measured on, whole-process times move by tens of
# percent between minutes; only differences well above the A/A ratio mean
# anything. For instruction counts, which do not move, use callgrind.
set -euo pipefail

die() { echo "bench/ab.sh: $*" >&2; exit 2; }

ROUNDS=15
WORKERS=1
TIMEOUT=600
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) break ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive integer"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
[[ $# -ge 3 ]] || die "need a capture and at least two builds (see --help)"
FILE=$1; shift
[[ -r "$FILE" ]] || die "cannot read $FILE"
for b in "$@"; do [[ -x "$b" ]] || die "not an executable: $b"; done
[[ $(printf '%s\n' "$@" | sort | uniq -d) == "" ]] ||
  die "a build named twice: copy it to another path for an A/A control"

# Page cache first, so every build reads from memory.
cat "$FILE" > /dev/null

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# CPU time per run from perf's task clock (milliseconds) where perf works,
# else from /usr/bin/time (user + system, 10 ms steps).
if perf stat -x, -e task-clock -o "$TMP/p" true 2> /dev/null; then
  PERF=1
else
  PERF=0
  [[ -x /usr/bin/time ]] || die "neither perf nor /usr/bin/time works (apt-get install linux-perf time)"
fi

# One run: CPU seconds, or "fail".
run() {
  local cmd=("$1" analyze --workers "$WORKERS" --quiet --no-progress -o /dev/null "$FILE")
  if [[ $PERF == 1 ]]; then
    if timeout "$TIMEOUT" perf stat -x, -e task-clock -o "$TMP/p" "${cmd[@]}" \
        > /dev/null 2> "$TMP/err"; then
      awk -F, '$3 == "task-clock" { printf "%.3f\n", $1 / 1000 }' "$TMP/p"
    else
      echo fail
    fi
  elif timeout "$TIMEOUT" /usr/bin/time -o "$TMP/t" -f '%U %S' "${cmd[@]}" \
      > /dev/null 2> "$TMP/err"; then
    awk '{ printf "%.3f\n", $1 + $2 }' "$TMP/t"
  else
    echo fail
  fi
}

for ((r = 1; r <= ROUNDS; r++)); do
  for b in "$@"; do
    echo "$r $b $(run "$b")"
  done
done | python3 -c '
import collections, statistics, sys
runs = collections.OrderedDict()
for line in sys.stdin:
    r, b, v = line.split()
    runs.setdefault(b, {})[int(r)] = None if v == "fail" else float(v)
builds = list(runs)
first = runs[builds[0]]
print("%-40s %8s %8s %8s %s" % ("build", "median s", "min s", "failed", "ratio to first (median of rounds)"))
for b in builds:
    got = runs[b]
    ok = [v for v in got.values() if v is not None]
    ratios = [got[r] / first[r] for r in got
              if got[r] is not None and first.get(r) is not None]
    print("%-40s %8.3f %8.3f %8d %.3f" % (
        b,
        statistics.median(ok) if ok else float("nan"),
        min(ok) if ok else float("nan"),
        len(got) - len(ok),
        statistics.median(ratios) if ratios else float("nan")))
'
