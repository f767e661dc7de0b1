#!/usr/bin/env bash
# Cost of HTTP/2 against HTTP/1.1 carrying the same bytes: `shadowmcp
# analyze --workers 1` on an egress mix where a share of the cleartext HTTP
# flows speaks HTTP/2 (prior knowledge), and on its twin where those flows
# are HTTP/1.1 with the same bodies. Method: docs/performance.md.
#
#   bench/http2-mix.sh [--size-mb MB] [--share S] [--rounds N] [--seed N]
#                      [--check] [--timeout SECS] [--no-build] [--out DIR]
#
# --size-mb (default 1024) and --share (default 0.3) shape the captures
# (generated into bench/data, or $BENCH_DATA, when missing). Every round
# runs both files, in alternating order; the h2/h1 ratio is taken within a
# round (wall and CPU seconds), then the median over rounds. --check first
# verifies the inputs: tshark finds no malformed HTTP/2 frame, and analyze
# reports the same number of findings on both, MCP sessions over HTTP/2
# with transport http2.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=1024
SHARE=0.3
ROUNDS=5
SEED=42
CHECK=0
TIMEOUT=1800
BUILD=1
DATA=${BENCH_DATA:-bench/data}
OUT=""

die() { echo "bench/http2-mix.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB=${2:?}; shift 2 ;;
    --share) SHARE=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    --check) CHECK=1; shift ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
done
[[ "$SIZE_MB" =~ ^[1-9][0-9]*$ ]] || die "--size-mb must be a positive integer"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer"
[[ "$SEED" =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive integer"
[[ "$SHARE" =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "--share must be a number from 0 to 1"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required: apt-get install time"
command -v python3 > /dev/null || die "python3 is required"
# shellcheck source=bench/lib.sh
. bench/lib.sh


mkdir -p "$DATA"
gen() { # gen FILE ARGS...: generate once; a partial file is never reused.
  local f=$1; shift
  if [ ! -s "$f" ]; then
    echo "== generating $f" >&2
    "$GEN" "$@" -o "$f.part" >&2
    mv "$f.part" "$f"
  fi
}
STEM="$DATA/http2-mix-${SIZE_MB}mb-share${SHARE}-seed${SEED}"
H2="$STEM-h2.pcap"
H1="$STEM-h1.pcap"
ARGS=(--scenario egress-mix --size-mb "$SIZE_MB" --http2-share "$SHARE" --seed "$SEED")
gen "$H2" "${ARGS[@]}"
gen "$H1" "${ARGS[@]}" --http2-twin

OUT=${OUT:-bench/results/http2-mix-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

if [ "$CHECK" = 1 ]; then
  echo "== checking the inputs" >&2
  command -v tshark > /dev/null || die "--check needs tshark (apt-get install tshark)"
  # HTTP/2 connections are the TCP streams that start with the preface;
  # they are decoded as HTTP/2 on their ports (tshark's HTTP dissector on
  # ports 80 and 8080 hands over at the preface but then does not reassemble
  # frames across segments).
  streams=$(tshark -n -r "$H2" -Y http2.magic -T fields -e tcp.stream 2> /dev/null | sort -un | paste -sd, -)
  [ -n "$streams" ] || die "check: no HTTP/2 connection in $H2"
  decode=(-d "tcp.port==80,http2" -d "tcp.port==8080,http2" -d "tcp.port==8000,http2")
  bad=$(tshark -n -r "$H2" "${decode[@]}" \
      -Y "tcp.stream in {$streams} && (_ws.malformed || _ws.expert.severity >= warning)" \
      -T fields -e frame.number 2> /dev/null | wc -l)
  frames=$(tshark -n -r "$H2" "${decode[@]}" -Y "tcp.stream in {$streams}" \
      -T fields -e http2.type 2> /dev/null | tr ',' '\n' | grep -c . || true)
  echo "   tshark: $(tr ',' '\n' <<< "$streams" | wc -l) HTTP/2 connections, $frames frames, $bad malformed or warned" >&2
  [ "$bad" = 0 ] || die "check: tshark flags $bad HTTP/2 packets in $H2"
  for f in "$H2" "$H1"; do
    timeout "$TIMEOUT" "$SMCP" analyze --workers 1 --no-progress -o "$OUT/$(basename "$f" .pcap).findings" "$f" \
      2> "$OUT/$(basename "$f" .pcap).summary"
  done
  python3 - "$OUT/$(basename "$H2" .pcap).findings" "$OUT/$(basename "$H1" .pcap).findings" <<'EOF' >&2
import collections, json, sys
def load(p):
    return [json.loads(l) for l in open(p)]
h2, h1 = load(sys.argv[1]), load(sys.argv[2])
t2 = collections.Counter(f["transport"] for f in h2)
t1 = collections.Counter(f["transport"] for f in h1)
print(f"   analyze: {len(h2)} findings on HTTP/2 {dict(t2)}, {len(h1)} on the HTTP/1.1 twin {dict(t1)}")
key = lambda f: (f["client"]["ip"], f["server"]["name"], f["rule"]["id"])
if len(h2) != len(h1) or sorted(map(key, h2)) != sorted(map(key, h1)):
    sys.exit("check: the two captures give different findings")
if t2["http2"] == 0:
    sys.exit("check: no MCP session found over HTTP/2 (a larger --size-mb has more)")
EOF
fi

RESULTS="$OUT/runs.tsv"
printf 'round\tfile\trc\twall_s\tcpu_s\tmaxrss_kb\n' > "$RESULTS"
{
  echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet 2> /dev/null || echo ' (dirty)')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "files: $H2 ($(stat -c %s "$H2") bytes), $H1 ($(stat -c %s "$H1") bytes)"
  echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# cpu_seconds USER SYS PERFFILE: perf's task clock if it wrote one, else user + system.
run_one() { # run_one ROUND NAME FILE
  local rc wall cpu rss
  read -r rc wall cpu rss < <(timed "$OUT/$2.$1" \
    "$SMCP" analyze --workers 1 --quiet --no-progress -o /dev/null "$3")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rc" "$wall" "$cpu" "$rss" >> "$RESULTS"
  echo "-- round $1: $2 ${wall}s (exit $rc)" >&2
}

cat "$H2" "$H1" > /dev/null # page cache warm-up
for r in $(seq 1 "$ROUNDS"); do
  if (( r % 2 )); then
    run_one "$r" h2 "$H2"; run_one "$r" h1 "$H1"
  else
    run_one "$r" h1 "$H1"; run_one "$r" h2 "$H2"
  fi
done
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"

python3 - "$RESULTS" <<'EOF' | tee "$OUT/table.md"
import collections, statistics, sys
rows = collections.defaultdict(dict)
for line in list(open(sys.argv[1]))[1:]:
    r, name, rc, wall, cpu, rss = line.split("\t")
    if rc == "0":
        rows[int(r)][name] = (float(wall), float(cpu), int(rss))
ok = [r for r in rows if {"h2", "h1"} <= rows[r].keys()]
if not ok:
    sys.exit("no round where both runs succeeded")
med = lambda xs: statistics.median(xs)
print(f"| capture | median wall s | median CPU s | peak RSS MiB |")
print(f"|---|---|---|---|")
for n, label in (("h2", "HTTP/2 share"), ("h1", "HTTP/1.1 twin")):
    print(f"| {label} | {med([rows[r][n][0] for r in ok]):.2f} | {med([rows[r][n][1] for r in ok]):.3f} | "
          f"{max(rows[r][n][2] for r in ok) / 1024:.0f} |")
w = med([rows[r]["h2"][0] / rows[r]["h1"][0] for r in ok])
c = med([rows[r]["h2"][1] / rows[r]["h1"][1] for r in ok if rows[r]["h1"][1] > 0] or [float("nan")])
print(f"\nHTTP/2 / HTTP/1.1, median of {len(ok)} rounds: wall {w:.3f}x, CPU {c:.3f}x (target: within 1.5x)")
EOF
echo "results: $OUT" >&2
