#!/usr/bin/env bash
# Whole-process benchmark of `shadowmcp analyze` against a libpcap baseline
# reader and tshark, on generated captures. Method: docs/performance.md.
#
#   bench/run.sh [--runs N] [--workers N] [--egress-mb MB] [--flows N]
#                [--only egress|flood] [--no-tshark] [--tshark-runs N]
#                [--pgo] [--timeout SECS] [--out DIR]
#
# --pgo also builds the analyzer with profile-guided optimisation
# (scripts/build-pgo.sh) and runs it beside the plain build (tools pgo-1w,
# pgo-Nw), in the same rounds.
#
# Every round runs each tool once on each file (interleaved, so a noisy
# neighbour slows all tools of a round alike); ratios to the baseline are taken
# within a round, then the median over rounds is reported. tshark is about
# 100x slower than the others: --tshark-runs limits it to the first N rounds.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=3
WORKERS=$(nproc)
EGRESS_MB=1024
FLOWS=1000000
ONLY=""
TSHARK=1
TSHARK_RUNS=""
PGO=0
TIMEOUT=1800
DATA=${BENCH_DATA:-bench/data}
OUT=""

die() { echo "bench/run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=${2:?}; shift 2 ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --egress-mb) EGRESS_MB=${2:?}; shift 2 ;;
    --flows) FLOWS=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --no-tshark) TSHARK=0; shift ;;
    --tshark-runs) TSHARK_RUNS=${2:?}; shift 2 ;;
    --pgo) PGO=1; shift ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
TSHARK_RUNS=${TSHARK_RUNS:-$RUNS}
[[ "$TSHARK_RUNS" =~ ^[0-9]+$ ]] || die "--tshark-runs must be a non-negative integer"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "--workers must be a positive integer"
case "$ONLY" in ""|egress|flood) ;; *) die "--only takes egress or flood" ;; esac

[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required: apt-get install time"
command -v python3 >/dev/null || die "python3 is required for the report"
if [ "$TSHARK" = 1 ] && ! command -v tshark >/dev/null; then
  echo "tshark not found; installing it (apt-get install tshark)" >&2
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y tshark >&2; } ; then
    echo "could not install tshark: running without it" >&2
    TSHARK=0
  fi
fi

echo "== building (release)" >&2
cargo build --release --bins --examples >&2
if [ "$PGO" = 1 ]; then
  echo "== building with profile-guided optimisation" >&2
  scripts/build-pgo.sh
fi
BIN=target/release
GEN=$BIN/shadowmcp-bench-gen
SMCP=$BIN/shadowmcp
BASE=$BIN/examples/pcap_baseline

mkdir -p "$DATA"
gen() { # gen FILE ARGS...: generate once; a partial file is never reused.
  local f=$1; shift
  if [ ! -s "$f" ]; then
    echo "== generating $f" >&2
    "$GEN" "$@" -o "$f.part" >&2
    mv "$f.part" "$f"
  fi
}
FILES=()
if [ "$ONLY" != flood ]; then
  F="$DATA/egress-mix-${EGRESS_MB}mb-seed42.pcap"
  gen "$F" --scenario egress-mix --size-mb "$EGRESS_MB" --seed 42
  FILES+=("$F")
fi
if [ "$ONLY" != egress ]; then
  F="$DATA/flow-flood-${FLOWS}-seed42.pcap"
  gen "$F" --scenario flow-flood --flows "$FLOWS" --seed 42
  FILES+=("$F")
  # The same flows left open: all of them alive at once at the end.
  F="$DATA/flow-flood-open-${FLOWS}-seed42.pcap"
  gen "$F" --scenario flow-flood --flows "$FLOWS" --open --seed 42
  FILES+=("$F")
fi

OUT=${OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RESULTS="$OUT/runs.tsv"
printf 'tool\tfile\tround\trc\tfile_bytes\telapsed_s\tmaxrss_kb\tpackets\n' > "$RESULTS"

# ---- tools: name and command line (the file is appended)
TOOL_NAMES=(baseline)
TOOL_CMDS=("$BASE")
if "$SMCP" analyze --help | grep -q -- --workers; then
  # Multi-worker analyzer available: 1 worker and N workers.
  TOOL_NAMES+=("shadowmcp-1w" "shadowmcp-${WORKERS}w")
  TOOL_CMDS+=("$SMCP analyze --quiet --no-progress -o /dev/null --workers 1"
              "$SMCP analyze --quiet --no-progress -o /dev/null --workers $WORKERS")
else
  # >>> WORKERS: `analyze --workers N` does not exist yet; once it does, the
  # >>> branch above runs 1 and N workers. Until then: the single pipeline.
  TOOL_NAMES+=("shadowmcp")
  TOOL_CMDS+=("$SMCP analyze --quiet --no-progress -o /dev/null")
fi
if [ "$PGO" = 1 ]; then
  PGO_SMCP=target/pgo/release/shadowmcp
  TOOL_NAMES+=("pgo-1w" "pgo-${WORKERS}w")
  TOOL_CMDS+=("$PGO_SMCP analyze --quiet --no-progress -o /dev/null --workers 1"
              "$PGO_SMCP analyze --quiet --no-progress -o /dev/null --workers $WORKERS")
fi
if [ "$TSHARK" = 1 ]; then
  # Same questions as the analyzer: DNS names, SNI, HTTP bodies with JSON-RPC.
  # -n: no name resolution; port 8000 is not among tshark's default HTTP ports.
  TOOL_NAMES+=("tshark")
  TOOL_CMDS+=("tshark") # command line in run_one (the filter holds spaces)
fi

{
  echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "mem: $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "libpcap: $(ldd "$BASE" | grep -o 'libpcap[^ ]*' | head -1)"
  [ "$TSHARK" = 1 ] && echo "tshark: $(tshark --version 2>/dev/null | head -1)"
  echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "runs: $RUNS tshark_runs: $TSHARK_RUNS timeout_s: $TIMEOUT"
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# run_one NAME CMD FILE ROUND: one timed run, appended to runs.tsv.
run_one() {
  local name=$1 cmd=$2 file=$3 round=$4 tag rc
  tag="$OUT/$name.$(basename "$file" .pcap).$round"
  echo "-- round $round: $name $(basename "$file")" >&2
  set +e
  local t0 t1
  t0=$(date +%s%N)
  if [ "$name" = tshark ]; then
    local filter='dns.qry.name || tls.handshake.extensions_server_name || http.file_data contains "jsonrpc"'
    /usr/bin/time -v -o "$tag.time" timeout "$TIMEOUT" tshark -n -d tcp.port==8000,http \
      -Y "$filter" -T fields -e frame.number -e dns.qry.name \
      -e tls.handshake.extensions_server_name -e http.file_data -r "$file" \
      > /dev/null 2> "$tag.err"
  else
    # shellcheck disable=SC2086 # $cmd is a word list on purpose
    /usr/bin/time -v -o "$tag.time" timeout "$TIMEOUT" $cmd "$file" > "$tag.out" 2> "$tag.err"
  fi
  rc=$?
  t1=$(date +%s%N)
  set -e
  [ $rc -eq 0 ] || echo "   exit status $rc (see $tag.err)" >&2
  local packets=""
  if [ "$name" = baseline ] && [ -f "$tag.out" ]; then
    packets=$(sed -n 's/^total packets=\([0-9]*\).*/\1/p' "$tag.out")
  fi
  local rss elapsed
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p' "$tag.time" 2>/dev/null)
  elapsed=$(( (t1 - t0) / 1000000 ))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(basename "$file")" "$round" "$rc" \
      "$(stat -c %s "$file")" "$(printf '%d.%03d' $((elapsed / 1000)) $((elapsed % 1000)))" \
    "${rss:-0}" "$packets" >> "$RESULTS"
}

for f in "${FILES[@]}"; do
  cat "$f" > /dev/null # page cache warm-up: every tool reads from memory
done
for round in $(seq 1 "$RUNS"); do
  for f in "${FILES[@]}"; do
    for i in "${!TOOL_NAMES[@]}"; do
      if [ "${TOOL_NAMES[$i]}" = tshark ] && [ "$round" -gt "$TSHARK_RUNS" ]; then continue; fi
      run_one "${TOOL_NAMES[$i]}" "${TOOL_CMDS[$i]}" "$f" "$round"
    done
  done
done
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"

python3 bench/report.py "$RESULTS" | tee "$OUT/table.md"
echo "results: $OUT" >&2
