# shellcheck shell=bash
# Shared by bench/http2-mix.sh and bench/tls-decrypt.sh (sourced, after
# `die` and BUILD are set): the release build, and timing one run.

# CPU seconds from perf's task clock where perf works (millisecond steps;
# it wraps /usr/bin/time, which measures wall time and the run's peak RSS),
# else from /usr/bin/time's user + system (10 ms steps).
PERF=()
if perf stat -x, -e task-clock -o /dev/null true 2> /dev/null; then
  PERF=(perf stat "-x," -e task-clock -o)
fi

if [ "$BUILD" = 1 ]; then
  echo "== building (release)" >&2
  cargo build --release --bins >&2
fi
BIN=${CARGO_TARGET_DIR:-target}/release
GEN=$BIN/shadowmcp-bench-gen
SMCP=$BIN/shadowmcp
if [ ! -x "$GEN" ] || [ ! -x "$SMCP" ]; then die "no release build in $BIN (drop --no-build)"; fi

# cpu_seconds USER SYS PERF_FILE
cpu_seconds() {
  if [ ${#PERF[@]} -gt 0 ] && [ -s "$3" ]; then
    awk -F, '$3 == "task-clock" { printf "%.3f\n", $1 / 1000 }' "$3"
  else
    python3 -c "print(round($1 + $2, 2))"
  fi
}

# timed STEM CMD...: run CMD (stdout to STEM.out, stderr to STEM.err) under
# /usr/bin/time and perf, bounded by $TIMEOUT; prints "rc wall cpu rss".
timed() {
  local stem=$1 rc wall user sys rss
  shift
  local perf=()
  [ ${#PERF[@]} -gt 0 ] && perf=("${PERF[@]}" "$stem.perf")
  set +e
  "${perf[@]}" /usr/bin/time -o "$stem.time" -f '%e %U %S %M' timeout "$TIMEOUT" "$@" \
    > "$stem.out" 2> "$stem.err"
  rc=$?
  set -e
  read -r wall user sys rss < <(tail -1 "$stem.time")
  echo "$rc $wall $(cpu_seconds "$user" "$sys" "$stem.perf") $rss"
}
