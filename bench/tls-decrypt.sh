#!/usr/bin/env bash
# Cost of TLS decryption: `shadowmcp analyze --workers 1` on a generated
# capture of TLS 1.3 (AES-128-GCM) connections, mostly downloads with some
# MCP sessions, with every key given (--tls-keylog) and without keys; tshark
# decrypting the same capture with the same key log is the anchor.
# Method: docs/performance.md.
#
#   bench/tls-decrypt.sh [--size-mb MB] [--mcp-share S] [--rounds N]
#                        [--tshark-runs N] [--seed N] [--check]
#                        [--timeout SECS] [--no-build] [--out DIR]
#
# --size-mb (default 1024) and --mcp-share (default 0.2, of connections)
# shape the capture (generated with its key log into bench/data, or
# $BENCH_DATA, when missing). Every round runs analyze without and with keys,
# in alternating order; the with/without ratio is taken within a round (wall
# and CPU seconds), then the median over rounds (target: at most 2.5x).
# Decrypted bytes per second = the application data plaintext analyze
# reports / its median wall (and CPU) seconds with keys. tshark is slow: it runs in the
# first --tshark-runs rounds only (default 1; 0 skips it). --check first
# verifies the input: tshark decrypts it (HTTP and JSON visible, no
# malformed packet), analyze with keys finds exactly the MCP sessions the
# generator wrote, and none without keys.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=1024
MCP_SHARE=0.2
ROUNDS=5
TSHARK_RUNS=1
SEED=42
CHECK=0
TIMEOUT=3600
BUILD=1
DATA=${BENCH_DATA:-bench/data}
OUT=""

die() { echo "bench/tls-decrypt.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB=${2:?}; shift 2 ;;
    --mcp-share) MCP_SHARE=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --tshark-runs) TSHARK_RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --check) CHECK=1; shift ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
[[ "$SIZE_MB" =~ ^[1-9][0-9]*$ ]] || die "--size-mb must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$TSHARK_RUNS" =~ ^[0-9]+$ ]] || die "--tshark-runs must be a non-negative integer"
[[ "$SEED" =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
[[ "$MCP_SHARE" =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "--mcp-share must be a number from 0 to 1"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required: apt-get install time"
command -v python3 > /dev/null || die "python3 is required"
# shellcheck source=bench/lib.sh
. bench/lib.sh
if { [ "$TSHARK_RUNS" -gt 0 ] || [ "$CHECK" = 1 ]; } && ! command -v tshark > /dev/null; then
  die "tshark is required (apt-get install tshark), or --tshark-runs 0 without --check"
fi


mkdir -p "$DATA"
F="$DATA/tls13-bulk-${SIZE_MB}mb-mcp${MCP_SHARE}-seed${SEED}.pcap"
K="${F%.pcap}.keys"
if [ ! -s "$F" ] || [ ! -s "$K" ]; then
  echo "== generating $F and $K" >&2
  "$GEN" --scenario tls13-bulk --size-mb "$SIZE_MB" --mcp-share "$MCP_SHARE" --seed "$SEED" \
    -o "$F.part" --keylog "$K.part" 2> "$F.gen"
  cat "$F.gen" >&2
  mv "$K.part" "$K"
  mv "$F.part" "$F"
fi

OUT=${OUT:-bench/results/tls-decrypt-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

if [ "$CHECK" = 1 ]; then
  echo "== checking the input" >&2
  want=$(sed -n 's/.*(\([0-9]*\) MCP sessions.*/\1/p' "$F.gen" 2> /dev/null || true)
  [ -n "$want" ] || die "check: $F.gen (the generator's summary) is missing: remove $F to regenerate"
  reqs=$(tshark -n -r "$F" -o "tls.keylog_file:$K" -Y http.request -T fields -e frame.number 2> /dev/null | wc -l)
  json=$(tshark -n -r "$F" -o "tls.keylog_file:$K" -Y 'json.member_with_value contains "initialize"' \
      -T fields -e frame.number 2> /dev/null | wc -l)
  bad=$(tshark -n -r "$F" -o "tls.keylog_file:$K" -Y '_ws.malformed || _ws.expert.severity >= warning' \
      -T fields -e frame.number 2> /dev/null | wc -l)
  echo "   tshark with the key log: $reqs HTTP requests, $json JSON initialize messages, $bad malformed or warned" >&2
  if [ "$reqs" = 0 ] || [ "$bad" != 0 ]; then die "check: tshark does not decrypt $F cleanly"; fi
  [ "$json" -ge "$want" ] || die "check: tshark shows $json initialize messages, the generator wrote $want sessions"
  with=$("$SMCP" analyze --workers 1 --no-progress --tls-keylog "$K" "$F" 2> "$OUT/check-keys.summary" | wc -l)
  without=$("$SMCP" analyze --workers 1 --no-progress "$F" 2> "$OUT/check-nokeys.summary" | wc -l)
  echo "   analyze: $with findings with keys, $without without; the generator wrote $want MCP sessions" >&2
  if [ "$with" != "$want" ] || [ "$without" != 0 ]; then
    die "check: analyze's findings do not match the MCP sessions"
  fi
fi

RESULTS="$OUT/runs.tsv"
printf 'round\ttool\trc\twall_s\tcpu_s\tmaxrss_kb\tplaintext_bytes\n' > "$RESULTS"
{
  echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet 2> /dev/null || echo ' (dirty)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "file: $F ($(stat -c %s "$F") bytes), key log $K ($(wc -l < "$K") lines)"
  command -v tshark > /dev/null && echo "tshark: $(tshark --version 2> /dev/null | head -1)"
  echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# cpu_seconds USER SYS PERFFILE: perf's task clock if it wrote one, else user + system.
run_one() { # run_one ROUND TOOL
  local rc wall cpu rss plain cmd
  case "$2" in
    keys) cmd=("$SMCP" analyze --workers 1 --no-progress -o /dev/null --tls-keylog "$K" "$F") ;;
    nokeys) cmd=("$SMCP" analyze --workers 1 --no-progress -o /dev/null "$F") ;;
    # A statistic over decrypted HTTP makes tshark decrypt and dissect every record.
    tshark) cmd=(tshark -n -r "$F" -o "tls.keylog_file:$K" -q -z "io,stat,0,COUNT(http.request)http.request") ;;
  esac
  read -r rc wall cpu rss < <(timed "$OUT/$2.$1" "${cmd[@]}")
  plain=$(sed -n 's/.*plaintext bytes \([0-9]*\).*/\1/p' "$OUT/$2.$1.err")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rc" "$wall" "$cpu" "$rss" "${plain:-}" >> "$RESULTS"
  echo "-- round $1: $2 ${wall}s (exit $rc)" >&2
}

cat "$F" "$K" > /dev/null # page cache warm-up
for r in $(seq 1 "$ROUNDS"); do
  if (( r % 2 )); then
    run_one "$r" nokeys; run_one "$r" keys
  else
    run_one "$r" keys; run_one "$r" nokeys
  fi
  if [ "$r" -le "$TSHARK_RUNS" ]; then run_one "$r" tshark; fi
done
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"

python3 - "$RESULTS" "$(stat -c %s "$F")" <<'EOF' | tee "$OUT/table.md"
import collections, statistics, sys
rows = collections.defaultdict(dict)
plain = 0
for line in list(open(sys.argv[1]))[1:]:
    r, tool, rc, wall, cpu, rss, p = line.rstrip("\n").split("\t")
    if rc == "0":
        rows[int(r)][tool] = (float(wall), float(cpu), int(rss))
        if tool == "keys" and p:
            plain = int(p)
size = int(sys.argv[2])
ok = [r for r in rows if {"keys", "nokeys"} <= rows[r].keys()]
if not ok:
    sys.exit("no round where both analyze runs succeeded")
med = statistics.median
print("| run | median wall s | median CPU s | peak RSS MiB | rounds |")
print("|---|---|---|---|---|")
for tool, label in (("nokeys", "analyze, no keys"), ("keys", "analyze, every key"),
                    ("tshark", "tshark -o tls.keylog_file")):
    got = [rows[r][tool] for r in rows if tool in rows[r]]
    if got:
        print(f"| {label} | {med(g[0] for g in got):.2f} | {med(g[1] for g in got):.3f} | "
              f"{max(g[2] for g in got) / 1024:.0f} | {len(got)} |")
w = med(rows[r]["keys"][0] / rows[r]["nokeys"][0] for r in ok)
c = [rows[r]["keys"][1] / rows[r]["nokeys"][1] for r in ok if rows[r]["nokeys"][1] > 0]
print(f"\nwith keys / without, median of {len(ok)} rounds: wall {w:.3f}x, "
      f"CPU {med(c) if c else float('nan'):.3f}x (target: at most 2.5x)")
kw = med(rows[r]["keys"][0] for r in ok)
kc = med(rows[r]["keys"][1] for r in ok)
print(f"capture {size / 2**20:.0f} MiB; application data decrypted by analyze: {plain / 2**20:.0f} MiB, "
      f"{plain / kw / 2**20:.0f} MiB/s of wall time and {plain / max(kc, 1e-3) / 2**20:.0f} MiB per CPU second "
      f"with keys")
t = [rows[r]["tshark"][0] for r in rows if "tshark" in rows[r]]
if t:
    print(f"tshark: {med(t):.1f} s, {plain / med(t) / 2**20:.0f} MiB/s of the same plaintext; "
          f"analyze with keys takes {kw / med(t):.3f}x tshark's time")
EOF
echo "results: $OUT" >&2
